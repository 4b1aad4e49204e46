"""The daemon as a per-user service: a systemd user unit (Linux) and a launchd agent (macOS),
rendered from the templates here and installed for the current user only.

Design rules:
- The templates are the one source: ``packaging/`` holds them rendered for a generic install
  (a test checks it matches), ``daemon install`` renders them for this Python, this profile
  and this ``MEMOS_DESKTOP_HOME``.
- A service runs with nobody at the keyboard: it can unlock a keyring profile only. For a
  passphrase profile the unit is still written, but ``install`` says plainly that the daemon
  will refuse to start from it, and that ``memos-desktop daemon start`` (typed once per login
  session) is the way (docs/DESIGN-NOTES.md, issue 12).
- No secret is ever written into a unit: only the command line and where the data is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from memos_desktop.config import HOME_ENV
from memos_desktop.errors import InvalidInputError

SYSTEMD_NAME = "memos-desktop-daemon@.service"
LAUNCHD_LABEL = "org.memos-desktop.daemon"

SYSTEMD_TEMPLATE = """\
[Unit]
Description=memos-desktop memory daemon (profile %i)
After=default.target

[Service]
Type=simple
ExecStart={python} -m memos_desktop.daemon run --profile %i
{environment}Restart=on-failure
RestartSec=30
# A passphrase profile cannot be unlocked by a service (nobody to type it): exit code 5 is
# not retried. Use `memos-desktop daemon start` once per login session instead.
RestartPreventExitStatus=5 7
KillSignal=SIGTERM
TimeoutStopSec=10
Nice=10
NoNewPrivileges=true
PrivateTmp=true
LimitCORE=0

[Install]
WantedBy=default.target
"""

LAUNCHD_TEMPLATE = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{label}</string>
  <key>ProgramArguments</key>
  <array>
    <string>{python}</string>
    <string>-m</string>
    <string>memos_desktop.daemon</string>
    <string>run</string>
    <string>--profile</string>
    <string>{profile}</string>
  </array>
{environment}  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ThrottleInterval</key>
  <integer>30</integer>
  <key>ProcessType</key>
  <string>Background</string>
  <key>Nice</key>
  <integer>10</integer>
  <key>SoftResourceLimits</key>
  <dict>
    <key>Core</key>
    <integer>0</integer>
  </dict>
</dict>
</plist>
"""


def _check_profile(profile: str) -> None:
    if not profile or not all(c.isalnum() or c in "-_." for c in profile) or profile[0] == ".":
        raise InvalidInputError(
            f"profile name {profile!r} cannot be used in a service name",
            hint="use letters, digits, '-', '_' or '.'",
        )


def render_systemd(python: str, home: str | None = None) -> str:
    """The systemd user unit template (``memos-desktop-daemon@<profile>.service``)."""
    env = f'Environment="{HOME_ENV}={home}"\n' if home else ""
    return SYSTEMD_TEMPLATE.format(python=python, environment=env)


def render_launchd(python: str, profile: str, home: str | None = None) -> str:
    _check_profile(profile)
    env = ""
    if home:
        env = (
            "  <key>EnvironmentVariables</key>\n  <dict>\n"
            f"    <key>{HOME_ENV}</key>\n    <string>{escape(home)}</string>\n  </dict>\n"
        )
    return LAUNCHD_TEMPLATE.format(
        label=f"{LAUNCHD_LABEL}.{profile}",
        python=escape(python),
        profile=escape(profile),
        environment=env,
    )


@dataclass(frozen=True)
class Installed:
    kind: str  # "systemd" or "launchd"
    path: Path
    enabled: bool  # the service manager was told (systemctl --user enable / launchctl load)
    note: str = ""


def platform_kind() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


def unit_path(kind: str, profile: str, home_dir: Path | None = None) -> Path:
    home = home_dir or Path.home()
    if kind == "launchd":
        return home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.{profile}.plist"
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return config / "systemd" / "user" / SYSTEMD_NAME


def _run(cmd: list[str]) -> bool:
    if shutil.which(cmd[0]) is None:
        return False
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def install(
    profile: str, *, kind: str | None = None, enable: bool = True, home_dir: Path | None = None
) -> Installed:
    """Write the unit for the current user; with ``enable``, tell the service manager."""
    _check_profile(profile)
    kind = kind or platform_kind()
    home = os.environ.get(HOME_ENV)
    path = unit_path(kind, profile, home_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        render_launchd(sys.executable, profile, home)
        if kind == "launchd"
        else render_systemd(sys.executable, home)
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    enabled = False
    if enable:
        if kind == "launchd":
            enabled = _run(["launchctl", "load", "-w", str(path)])
        else:
            enabled = _run(["systemctl", "--user", "daemon-reload"]) and _run(
                ["systemctl", "--user", "enable", "--now", f"memos-desktop-daemon@{profile}"]
            )
    return Installed(kind, path, enabled)


def uninstall(profile: str, *, kind: str | None = None, home_dir: Path | None = None) -> bool:
    """Stop and remove the unit; False when none was installed."""
    _check_profile(profile)
    kind = kind or platform_kind()
    path = unit_path(kind, profile, home_dir)
    if kind == "launchd":
        if path.exists():
            _run(["launchctl", "unload", "-w", str(path)])
    else:
        _run(["systemctl", "--user", "disable", "--now", f"memos-desktop-daemon@{profile}"])
    if not path.exists():
        return False
    if kind == "systemd":
        # The template serves every profile: keep it while another profile's instance is on.
        wants = path.parent / "default.target.wants"
        others = [p for p in wants.glob("memos-desktop-daemon@*.service")] if wants.exists() else []
        if any(p.name != f"memos-desktop-daemon@{profile}.service" for p in others):
            return True
    path.unlink()
    if kind == "systemd":
        _run(["systemctl", "--user", "daemon-reload"])
    return True
