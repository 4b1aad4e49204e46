"""This device's identity keys, kept in the encrypted database (``meta``), never in a file.

The private keys are device-local: ``meta`` is not in the change log, so they never travel with
a sync changeset, and they sit inside the sqlite3mc-encrypted database like every memory. The
crypto that uses them lives in :mod:`memos_desktop.sync.identity`; this module only stores
and reads bytes.
"""

from __future__ import annotations

import base64

from memos_desktop.store.db import Database

SIGNING_KEY = "device_ed25519_private"
AGREEMENT_KEY = "device_x25519_private"


def read_secret(db: Database, name: str) -> bytes | None:
    value = db.scalar("SELECT value FROM meta WHERE key = ?", (name,))
    return None if value is None else base64.b64decode(str(value))


def write_secret_once(db: Database, name: str, raw: bytes) -> bytes:
    """Store ``raw`` under ``name`` unless a value is already there; return the stored value.

    Two processes creating the identity at once agree: the first writer wins and the second
    reads the first one's key (``INSERT OR IGNORE`` inside one write transaction)."""
    with db.write() as c:
        c.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            (name, base64.b64encode(raw).decode("ascii")),
        )
        row = c.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchall()
    return base64.b64decode(str(row[0][0]))
