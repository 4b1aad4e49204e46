"""``memos-desktop daemon start|stop|status|run|run-once|logs|install|uninstall``.

Design rule: a passphrase profile's daemon is unlocked here, once per login session: the
passphrase is asked on this terminal (or taken from MEMOS_DESKTOP_PASSPHRASE) and handed to
the daemon on a pipe; it is never written anywhere (docs/DESIGN-NOTES.md, issue 12)."""

from __future__ import annotations

import sys
import time

import click

from memos_desktop.cli.common import Ctx, emit_json
from memos_desktop.config import PASSPHRASE_ENV, env_passphrase
from memos_desktop.errors import PassphraseRequiredError


def _needs_passphrase(obj: Ctx) -> bool:
    from memos_desktop.api import start_state

    st = start_state(obj.paths, obj.profile)
    return st.key_method == "passphrase"


def _passphrase(obj: Ctx) -> str | None:
    if not _needs_passphrase(obj):
        return None
    env = env_passphrase()
    if env:
        return env
    if not sys.stdin.isatty():
        raise PassphraseRequiredError(
            f"profile '{obj.profile}' is protected by a passphrase and there is no terminal to "
            "ask it on",
            hint=f"run `memos-desktop daemon start` in a terminal and type it once per login "
            f"session, or set {PASSPHRASE_ENV} for this command",
        )
    return str(click.prompt(f"Passphrase for profile '{obj.profile}'", hide_input=True))


def _status_text(st: dict[str, object]) -> str:
    from memos_desktop.api.daemon_ops import status_line

    line = status_line(st)
    if st.get("running"):
        return f"daemon {line} (pid {st.get('pid')})"
    if st.get("state") == "failed" and st.get("error"):
        return f"daemon off (last start failed: {st['error']})"
    return f"daemon {line}"


@click.group()
def daemon() -> None:
    """The background daemon: consolidates memory while you are away."""


@daemon.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def start(obj: Ctx, as_json: bool) -> None:
    """Start the daemon for this profile (asks a passphrase profile's passphrase once)."""
    from memos_desktop.daemon.control import start as start_daemon

    st = start_daemon(obj.paths, obj.profile, passphrase=_passphrase(obj))
    if as_json:
        emit_json(st)
    else:
        click.echo(f"Daemon started on profile '{obj.profile}' (pid {st.get('pid')}).")


@daemon.command()
@click.pass_obj
def stop(obj: Ctx) -> None:
    """Stop the daemon (SIGTERM: a job in progress is put back untouched)."""
    from memos_desktop.daemon.control import stop as stop_daemon

    if stop_daemon(obj.paths, obj.profile):
        click.echo("Daemon stopped.")
    else:
        click.echo(f"No daemon is running on profile '{obj.profile}'.", err=True)


@daemon.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(obj: Ctx, as_json: bool) -> None:
    """Is it running, what it did last, and its queue."""
    from memos_desktop.api import start_state
    from memos_desktop.api.daemon_ops import daemon_state

    st = daemon_state(obj.paths, obj.profile)
    if start_state(obj.paths, obj.profile).kind == "open":
        # The queue is in the database: this opens the profile (a CLI command beside it) when
        # that needs no passphrase typed; otherwise the state file alone is shown.
        st = obj.api().daemon_status()
    if as_json:
        emit_json(st)
    else:
        click.echo(_status_text(st))


@daemon.command()
@click.pass_obj
def run(obj: Ctx) -> None:
    """Run the daemon in the foreground (what the service units run)."""
    from memos_desktop.daemon.worker import serve

    sys.exit(serve(obj.paths, obj.settings, obj.profile, passphrase=env_passphrase()))


@daemon.command("run-once")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def run_once(obj: Ctx, as_json: bool) -> None:
    """Run every ready job now, in this process, then exit (refused while a daemon runs)."""
    from memos_desktop.api.daemon_ops import daemon_state
    from memos_desktop.daemon.worker import serve

    started = time.time()
    code = serve(obj.paths, obj.settings, obj.profile, passphrase=_passphrase(obj), once=True)
    st = daemon_state(obj.paths, obj.profile)
    last = st.get("last") or {}
    if as_json:
        emit_json({"jobs_done": st.get("jobs_done"), "jobs_failed": st.get("jobs_failed"), **last})
    else:
        did = last.get("summary") if float(last.get("at") or 0) >= started else ""
        click.echo(
            f"{st.get('jobs_done', 0)} jobs done, {st.get('jobs_failed', 0)} failed"
            + (f": {did}." if did else ".")
        )
    sys.exit(code)


@daemon.command()
@click.option("-n", "--lines", default=50, type=click.IntRange(0, 100000))
@click.option("-f", "--follow", is_flag=True)
@click.pass_obj
def logs(obj: Ctx, lines: int, follow: bool) -> None:
    """Show the daemon's log (job kinds, counts and times: no memory text)."""
    from memos_desktop.daemon.control import follow as follow_log
    from memos_desktop.daemon.control import log_path, tail

    path = log_path(obj.paths, obj.profile)
    for line in tail(path, lines):
        click.echo(line)
    if follow and path.exists():
        try:
            for line in follow_log(path):
                click.echo(line)
        except KeyboardInterrupt:
            pass


@daemon.command()
@click.option("--no-enable", is_flag=True, help="write the unit only, do not enable it")
@click.option("--print", "print_only", is_flag=True, help="print the unit, write nothing")
@click.pass_obj
def install(obj: Ctx, no_enable: bool, print_only: bool) -> None:
    """Install the daemon as a user service (systemd user unit, or launchd agent on macOS)."""
    import os

    from memos_desktop.config import HOME_ENV
    from memos_desktop.daemon import service

    if print_only:
        home = os.environ.get(HOME_ENV)
        if service.platform_kind() == "launchd":
            click.echo(service.render_launchd(sys.executable, obj.profile, home), nl=False)
        else:
            click.echo(service.render_systemd(sys.executable, home), nl=False)
        return
    done = service.install(obj.profile, enable=not no_enable)
    click.echo(f"Wrote {done.path}" + (" and enabled it." if done.enabled else "."))
    if not no_enable and not done.enabled:
        click.echo(
            "  (the service manager was not reachable: enable it with "
            + (
                f"`launchctl load -w {done.path}`)"
                if done.kind == "launchd"
                else f"`systemctl --user enable --now memos-desktop-daemon@{obj.profile}`)"
            ),
            err=True,
        )
    if _needs_passphrase(obj):
        click.echo(
            f"note: profile '{obj.profile}' is protected by a passphrase, which a service cannot "
            "type: the service will refuse to start (exit 5). Run `memos-desktop daemon start` "
            "once per login session instead, or move the key to the OS keyring.",
            err=True,
        )


@daemon.command()
@click.pass_obj
def uninstall(obj: Ctx) -> None:
    """Remove the user service installed by `daemon install`."""
    from memos_desktop.daemon import service

    if service.uninstall(obj.profile):
        click.echo("Service removed.")
    else:
        click.echo("No service was installed.", err=True)
