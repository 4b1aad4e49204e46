"""A probe around the real entry points (``python -m tests.faults.secret_probe REPORT MODE ...``)
for tests/faults/test_secrets.py.

It records, with an audit hook (PEP 578), every child process the program starts (subprocess,
exec, posix_spawn, system, fork) and whether the passphrase was in that child's environment,
and at the end (or, for ``tui``, once the profile is open) whether the process is dumpable and
its core-file limit. Core files are allowed at start (soft limit raised to the hard one), so a
program that does not turn them off is seen.

Modes:
    cli ARGS...  ``memos_desktop.cli.main`` with ARGS (as ``memos-desktop ARGS``)
    tui          the terminal app's open path: what ``main`` does first (taking the secrets
                 out of the environment), then the real app, headless, until the profile is
                 open; then it prints OPEN and waits for a line on stdin (the test looks at
                 /proc meanwhile)
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
from typing import Any

SECRET = os.environ.get("MEMOS_DESKTOP_PASSPHRASE", "")
SPAWN_EVENTS = {
    "subprocess.Popen",
    "os.posix_spawn",
    "os.exec",
    "os.system",
    "os.fork",
    "os.forkpty",
    "os.spawn",
    "pty.spawn",
}
report: dict[str, Any] = {"spawns": []}


def _env_has_secret(env: Any) -> bool:
    if env is None:  # inherits this process's environment as it is now
        env = os.environ
    try:
        return any(SECRET and SECRET in str(v) for v in dict(env).values())
    except Exception:
        return True  # unknown: count it as carrying it


def hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in SPAWN_EVENTS:
        return
    env = args[3] if event == "subprocess.Popen" else args[-1] if args else None
    report["spawns"].append(
        {"event": event, "what": repr(args[:2])[:200], "secret": _env_has_secret(env)}
    )


def state() -> dict[str, Any]:
    from memos_desktop.config import dumpable

    with open("/proc/self/environ", "rb") as fh:
        environ = fh.read()
    return {
        "dumpable": dumpable(),
        "core_limit": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "environ_has_secret": SECRET.encode() in environ,
        "os_environ_has_secret": any(SECRET in v for v in os.environ.values()),
    }


def main() -> None:
    out, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:  # core files on, as a user may have them (root may raise the hard limit too)
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)
    except (ValueError, OSError):
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    report["start"] = {"core_limit": list(resource.getrlimit(resource.RLIMIT_CORE))}

    def write() -> None:
        report.setdefault("end", state())
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(report, fh)

    atexit.register(write)
    sys.addaudithook(hook)
    if mode == "cli":
        from memos_desktop.cli import main as cli_main

        try:
            cli_main.main(args=args, prog_name="memos-desktop")
        except SystemExit as exc:
            report["exit"] = exc.code
        return
    if mode == "tui":
        run_tui()
        return
    raise SystemExit(f"unknown mode {mode}")


def run_tui() -> None:
    import asyncio

    from memos_desktop.config import load_settings, resolve_paths, take_env_secrets

    take_env_secrets()  # what memos_desktop.cli's MemosGroup.main does first
    from memos_desktop.tui.app import MemosApp

    paths = resolve_paths()
    app = MemosApp(paths, load_settings(paths), "default")

    async def drive() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(1200):
                if app.session is not None:
                    break
                await pilot.pause(0.05)
            report["opened"] = app.session is not None
            # Let the model worker finish first: while llama.cpp loads a model it points fd 1
            # and 2 at /dev/null (llama-cpp-python's suppress_stdout_stderr), so a line
            # written then is lost and the test waits for it forever.
            for _ in range(1200):
                if app.status.state in ("ready", "no model"):
                    break
                await pilot.pause(0.05)
            report["state"] = app.status.state
            report["end"] = state()
            # Raw file descriptors: Textual captures sys.stdout while the app runs.
            os.write(1, b"OPEN\n")
            await asyncio.get_running_loop().run_in_executor(None, os.read, 0, 1)
            app.exit()

    asyncio.run(drive())


if __name__ == "__main__":
    main()
