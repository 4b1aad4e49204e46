"""The service units: packaging/ holds them as rendered (one source: daemon/service.py), the
systemd unit passes `systemd-analyze verify` with no warning where systemd is present, the
launchd agent is a valid plist running the daemon, and `daemon install|uninstall` writes and
removes them for the current user only."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memos_desktop.daemon import service

ROOT = Path(__file__).resolve().parents[2]


def test_packaging_holds_the_rendered_units() -> None:
    assert (ROOT / "packaging" / service.SYSTEMD_NAME).read_text() == service.render_systemd(
        "/usr/bin/python3"
    )
    assert (
        ROOT / "packaging" / f"{service.LAUNCHD_LABEL}.default.plist"
    ).read_text() == service.render_launchd("/usr/bin/python3", "default")


def verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    return subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd here")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = tmp_path / "memos-desktop-daemon@default.service"
    unit.write_text(service.render_systemd(sys.executable, "/home/someone/memos data"))
    r = verify(unit, tmp_path)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # the check can fail: the same unit naming a Python that is not there does
    unit.write_text(service.render_systemd("/nonexistent/python3"))
    bad = verify(unit, tmp_path)
    assert bad.returncode != 0 and "not executable" in bad.stderr


def test_the_rendered_systemd_unit_runs_the_daemon_for_the_instance() -> None:
    text = service.render_systemd("/opt/py/bin/python", "/data/memos")
    assert "ExecStart=/opt/py/bin/python -m memos_desktop.daemon run --profile %i\n" in text
    assert 'Environment="MEMOS_DESKTOP_HOME=/data/memos"\n' in text
    assert "RestartPreventExitStatus=5 7" in text and "LimitCORE=0" in text
    assert "PASSPHRASE" not in text


def test_the_launchd_agent_is_a_plist_running_the_daemon() -> None:
    d = plistlib.loads(service.render_launchd("/opt/py & co/python", "work", "/data/m<e>").encode())
    assert d["Label"] == "org.memos-desktop.daemon.work"
    assert d["ProgramArguments"] == [
        "/opt/py & co/python",
        "-m",
        "memos_desktop.daemon",
        "run",
        "--profile",
        "work",
    ]
    assert d["EnvironmentVariables"] == {"MEMOS_DESKTOP_HOME": "/data/m<e>"}
    assert d["KeepAlive"] == {"SuccessfulExit": False} and d["RunAtLoad"] is True
    with pytest.raises(Exception, match="cannot be used in a service name"):
        service.render_launchd("/usr/bin/python3", "../evil")


@pytest.mark.parametrize("kind", ["systemd", "launchd"])
def test_install_and_uninstall_for_the_current_user(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    done = service.install("default", kind=kind, enable=False, home_dir=tmp_path)
    assert done.path.is_relative_to(tmp_path) and done.path.exists() and not done.enabled
    assert "memos_desktop.daemon" in done.path.read_text()
    assert service.uninstall("default", kind=kind, home_dir=tmp_path)
    assert not done.path.exists()
    assert not service.uninstall("default", kind=kind, home_dir=tmp_path)


def test_daemon_install_print_through_the_cli() -> None:
    from click.testing import CliRunner

    from memos_desktop.cli import main

    r = CliRunner().invoke(main, ["daemon", "install", "--print"])
    assert r.exit_code == 0, r.output
    assert f"ExecStart={sys.executable} -m memos_desktop.daemon run --profile %i" in r.output
