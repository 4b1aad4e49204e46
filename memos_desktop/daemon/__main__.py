"""``python -m memos_desktop.daemon run [--profile NAME] [--once] [--passphrase-fd N]``: the
daemon in the foreground (``memos-desktop daemon start`` spawns this; the service units run it).

The passphrase of a passphrase profile arrives on a pipe (``--passphrase-fd``), never on the
command line, in the environment of a child or in a file."""

from __future__ import annotations

import argparse
import os
import sys

from memos_desktop.config import load_settings, resolve_paths, take_env_secrets
from memos_desktop.errors import MemosError


def read_fd(fd: int) -> str:
    chunks = []
    while True:
        b = os.read(fd, 4096)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks).decode("utf-8").rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    # One BLAS thread: the daemon works in the background, at low priority, on one core at
    # most (its merge job's matrix products otherwise take both cores of a small machine).
    # Set before numpy is imported (config and errors do not import it).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    take_env_secrets()
    p = argparse.ArgumentParser(prog="memos-desktop-daemon")
    p.add_argument("command", choices=["run"])
    p.add_argument("--profile", default=os.environ.get("MEMOS_DESKTOP_PROFILE"))
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument("--passphrase-fd", type=int, default=None)
    args = p.parse_args(argv)
    paths = resolve_paths()
    try:
        settings = load_settings(paths)
        passphrase = read_fd(args.passphrase_fd) if args.passphrase_fd is not None else None
        from memos_desktop.daemon.worker import serve

        return serve(
            paths, settings, args.profile or settings.profile, passphrase=passphrase, once=args.once
        )
    except MemosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
