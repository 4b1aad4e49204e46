"""The daemon as a process: SIGKILL in the middle of a job (redone once after its lease, one
effect), SIGTERM (stops within 2 s, a job in progress put back untouched), one daemon per
profile (exit 7), yielding to an answer in progress, and a log and state file without memory
text."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from memos_desktop.config import resolve_paths
from memos_desktop.store import presence
from memos_desktop.store.profile import Store
from memos_desktop.store.records import SearchFilters
from tests.daemon.conftest import daemon_up, spawn, wait_for

SECRET = "my locker code is 4417 at the Elm Street gym"


def effect_job(
    store: Store, tmp_path: Path, text: str = SECRET, hang_s: float = 60
) -> tuple[int, Path]:
    marker = tmp_path / "started"
    cube = store.cubes.list()[0]
    jid = store.jobs.enqueue(
        "test.effect",
        {"cube_id": cube.id, "text": text, "marker": str(marker), "hang_s": hang_s},
        priority=10,
    )
    assert jid is not None
    return jid, marker


def copies(store: Store, text: str) -> int:
    f = SearchFilters(statuses=("active", "archived", "deleted"))
    return sum(1 for m in store.memories.list(f, limit=1000) if m.text == text)


def test_sigkill_during_a_job_redoes_it_once_after_the_lease(
    profile: Store, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    jid, marker = effect_job(profile, tmp_path)
    a = spawn()
    daemons.append(a)
    wait_for(marker.exists, what="the job to start in daemon A")
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    job = profile.jobs.get(jid)
    assert job.status == "running" and job.attempts == 1  # leased by a dead worker
    assert copies(profile, SECRET) == 0  # nothing of it committed

    b = spawn()
    daemons.append(b)
    wait_for(lambda: profile.jobs.get(jid).status == "done", what="daemon B to redo the job")
    job = profile.jobs.get(jid)
    assert job.attempts == 2
    assert marker.read_text().startswith("started 2 ")
    assert copies(profile, SECRET) == 1  # exactly one effect
    b.send_signal(signal.SIGTERM)
    b.wait(timeout=10)
    assert copies(profile, SECRET) == 1


def test_sigterm_stops_an_idle_daemon_within_2_s(
    profile: Store, daemons: list[subprocess.Popen[bytes]]
) -> None:
    d = spawn()
    daemons.append(d)
    wait_for(daemon_up, what="the daemon to come up")
    d.send_signal(signal.SIGTERM)
    assert d.wait(timeout=2.0) == 0  # raises TimeoutExpired if it is still running after 2 s
    st = presence.read_state(resolve_paths().profile_dir("default"))
    assert st["state"] == "stopped" and not st["running"]


def test_sigterm_during_a_job_stops_within_2_s_and_puts_the_job_back(
    profile: Store, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    jid, marker = effect_job(profile, tmp_path)
    d = spawn()
    daemons.append(d)
    wait_for(marker.exists, what="the job to start")
    d.send_signal(signal.SIGTERM)
    assert d.wait(timeout=2.0) == 0
    job = profile.jobs.get(jid)
    assert job.status == "queued" and job.attempts == 0  # put back, the attempt not counted
    assert copies(profile, SECRET) == 0


def test_a_second_daemon_on_the_profile_exits_7(
    profile: Store, daemons: list[subprocess.Popen[bytes]]
) -> None:
    first = spawn()
    daemons.append(first)
    wait_for(daemon_up, what="the first daemon")
    second = spawn()
    daemons.append(second)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 7
    assert b"already running on profile 'default'" in err
    assert f"pid {first.pid}".encode() in err
    assert first.poll() is None


def test_the_daemon_waits_while_an_answer_is_in_progress(
    profile: Store, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    pdir = resolve_paths().profile_dir("default")
    with presence.answering(pdir):
        jid, marker = effect_job(profile, tmp_path, hang_s=0)
        d = spawn()
        daemons.append(d)
        wait_for(
            lambda: presence.read_state(pdir).get("state") == "paused", what="the daemon to pause"
        )
        assert profile.jobs.get(jid).status == "queued"
        assert not marker.exists()
    wait_for(lambda: profile.jobs.get(jid).status == "done", what="the job after the answer")


def test_log_and_state_hold_no_memory_text(
    profile: Store, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    jid, _ = effect_job(profile, tmp_path, hang_s=0)
    d = spawn()
    daemons.append(d)
    wait_for(lambda: profile.jobs.get(jid).status == "done", what="the job")
    d.send_signal(signal.SIGTERM)
    d.wait(timeout=10)
    pdir = resolve_paths().profile_dir("default")
    log = (pdir / "daemon.log").read_text()
    state = json.loads((pdir / "daemon.json").read_text())
    assert f"job {jid} (test.effect): done" in log
    from tests.daemon.conftest import cli

    shown = cli("daemon", "logs", "-n", "3")
    assert shown.returncode == 0 and "daemon stopped" in shown.stdout
    for word in ("locker", "4417", "Elm"):
        assert word not in log and word not in json.dumps(state)
    assert state["last"]["summary"].startswith("added 1 memory")
    assert (pdir / "daemon.log").stat().st_mode & 0o077 == 0
    assert (pdir / "daemon.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("with_passphrase", [True, False, "wrong"])
def test_daemon_start_hands_the_passphrase_over_a_pipe(
    profile: Store, with_passphrase: bool | str
) -> None:
    """`daemon start`: the child gets the passphrase on a pipe (not in its environment or
    command line); without one and without a terminal it says what to do (exit 5)."""
    from tests.conftest import PASSPHRASE
    from tests.daemon.conftest import child_env, cli

    env = child_env()
    if with_passphrase == "wrong":
        r = cli("daemon", "start", env={**env, "MEMOS_DESKTOP_PASSPHRASE": "not it"})
        assert r.returncode == 5, r.stderr
        assert "the daemon stopped while starting" in r.stderr and "passphrase" in r.stderr
        assert "not it" not in (resolve_paths().profile_dir("default") / "daemon.log").read_text()
        return
    if not with_passphrase:
        env.pop("MEMOS_DESKTOP_PASSPHRASE")
        r = cli("daemon", "start", env=env)
        assert r.returncode == 5, r.stderr
        assert "once per login session" in r.stderr
        return
    r = cli("daemon", "start", env=env)
    assert r.returncode == 0, r.stderr
    st = json.loads(cli("daemon", "status", "--json", env=env).stdout)
    pid = int(st["pid"])
    try:
        assert st["running"]
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert PASSPHRASE.encode() not in environ and PASSPHRASE.encode() not in cmdline
        assert "MEMOS_DESKTOP_PASSPHRASE" not in environ.decode(errors="replace")
        again = cli("daemon", "start", env=env)
        assert again.returncode == 7 and "already running" in again.stderr
    finally:
        r = cli("daemon", "stop", env=env)
    assert r.returncode == 0 and "Daemon stopped" in r.stdout
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, "the daemon to exit")
    assert "daemon off" in cli("daemon", "status", env=env).stdout


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_pid_of_a_killed_daemon_is_not_signalled(
    profile: Store, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """A SIGKILLed daemon's state file still names its pid; `stop` sees no running daemon."""
    from tests.daemon.conftest import cli

    d = spawn()
    daemons.append(d)
    wait_for(daemon_up, what="the daemon")
    os.kill(d.pid, signal.SIGKILL)
    d.wait(timeout=10)
    r = cli("daemon", "stop")
    assert r.returncode == 0 and "No daemon is running" in r.stderr
