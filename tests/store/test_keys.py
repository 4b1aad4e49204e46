from __future__ import annotations

import hashlib
import json
from pathlib import Path

import keyring
import keyring.backend
import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.errors import (
    CorruptDatabaseError,
    KeyringUnavailableError,
    PassphraseRequiredError,
    WrongKeyError,
    WrongPassphraseError,
)
from memos_desktop.store import keys
from memos_desktop.store.db import Database
from memos_desktop.store.profile import (
    KEYFILE,
    NEXT_KEYFILE,
    Store,
    change_passphrase,
    create_profile,
    open_profile,
)
from memos_desktop.store.records import NewMemory, SearchFilters
from tests.conftest import PASSPHRASE
from tests.store.conftest import vec


def snapshot(d: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def add_one(store: Store, text: str = "Hana plays the cello") -> str:
    return store.memories.add(store.cubes.list()[0], NewMemory(text=text), vec(1)).item.id


def test_wrong_passphrase_fails_plainly_and_changes_nothing(store: Store, monkeypatch) -> None:
    item_id = add_one(store)
    store.close()
    before = snapshot(store.dir)
    monkeypatch.setenv("MEMOS_DESKTOP_PASSPHRASE", "wrong horse")
    with pytest.raises(WrongPassphraseError, match="wrong passphrase") as ei:
        open_profile(resolve_paths(), "default", Settings())
    assert ei.value.exit_code == 5 and "nothing was changed" in str(ei.value)
    assert snapshot(store.dir) == before
    monkeypatch.setenv("MEMOS_DESKTOP_PASSPHRASE", PASSPHRASE)
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert s.memories.get(item_id).text == "Hana plays the cello"


def test_wrong_raw_key_is_a_clear_error(store: Store) -> None:
    add_one(store)
    store.close()
    with pytest.raises(WrongKeyError, match="key does not open"):
        Database(store.db.path, b"\x01" * 32)


def test_missing_passphrase_without_terminal(store: Store, monkeypatch) -> None:
    store.close()
    monkeypatch.delenv("MEMOS_DESKTOP_PASSPHRASE")
    with pytest.raises(PassphraseRequiredError, match="MEMOS_DESKTOP_PASSPHRASE"):
        open_profile(resolve_paths(), "default", Settings())
    seen = []
    s = open_profile(
        resolve_paths(),
        "default",
        Settings(),
        passphrase_provider=lambda prompt: seen.append(prompt) or PASSPHRASE,
    )
    s.close()
    assert seen and "default" in seen[0]


def test_tampered_database_is_reported_as_damaged_not_wrong_key(store: Store) -> None:
    add_one(store)
    store.db.checkpoint()
    store.close()
    p = store.db.path
    data = bytearray(p.read_bytes())
    for i in range(100, 200):  # inside page 1, after the cipher's header area
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptDatabaseError, match="damaged or was tampered"):
        open_profile(resolve_paths(), "default", Settings())


def test_change_passphrase_rewraps_without_touching_the_db(store: Store, monkeypatch) -> None:
    item_id = add_one(store)
    store.db.checkpoint()
    store.close()
    db_before = hashlib.sha256(store.db.path.read_bytes()).hexdigest()
    with pytest.raises(WrongPassphraseError):
        change_passphrase(resolve_paths(), "default", "not it", "new pass")
    change_passphrase(resolve_paths(), "default", PASSPHRASE, "new pass phrase")
    assert hashlib.sha256(store.db.path.read_bytes()).hexdigest() == db_before
    with pytest.raises(WrongPassphraseError):
        open_profile(resolve_paths(), "default", Settings())
    monkeypatch.setenv("MEMOS_DESKTOP_PASSPHRASE", "new pass phrase")
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert s.memories.get(item_id)
    rec = json.loads((store.dir / KEYFILE).read_text())
    assert rec["kdf"]["name"] == "scrypt" and "sealed_key" in rec
    assert oct((store.dir / KEYFILE).stat().st_mode & 0o777) == "0o600"


def test_rotate_key_reencrypts_and_old_key_no_longer_opens(store: Store) -> None:
    item_id = add_one(store)
    old_key = keys.unwrap_key(keys.read_keyfile(store.dir / KEYFILE), PASSPHRASE)
    store.rotate_key()
    store.close()
    new_key = keys.unwrap_key(keys.read_keyfile(store.dir / KEYFILE), PASSPHRASE)
    assert new_key != old_key
    assert not (store.dir / NEXT_KEYFILE).exists()
    with pytest.raises(WrongKeyError):
        Database(store.db.path, old_key)
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert s.memories.get(item_id).text == "Hana plays the cello"
        assert s.db.integrity_check() == ["ok"]
        assert s.db.conn.pragma("journal_mode") == "wal"


def test_interrupted_rotation_is_finished_at_next_open(store: Store) -> None:
    """Crash after the re-key but before key.json was replaced: the next open recovers."""
    item_id = add_one(store)
    new_key = keys.new_db_key()
    from memos_desktop.store.profile import _key_record

    rec = _key_record("passphrase", store.profile_id, new_key, PASSPHRASE)
    keys.write_json_atomic(store.dir / NEXT_KEYFILE, rec)
    store.db.rekey(new_key)
    store.close()  # "crash": key.json still holds the old key
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert s.memories.get(item_id)
    assert not (store.dir / NEXT_KEYFILE).exists()
    assert keys.unwrap_key(keys.read_keyfile(store.dir / KEYFILE), PASSPHRASE) == new_key


class MemoryKeyring(keyring.backend.KeyringBackend):
    """Stands in for the OS keyring service, which CI machines do not run."""

    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.data.pop((service, username), None)


def test_refused_keyring_backends() -> None:
    assert not keys.keyring_status().usable  # the fail backend set by conftest
    insecure = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})
    keyring.set_keyring(insecure())
    st = keys.keyring_status()
    assert not st.usable and "refused" in st.reason
    keyring.set_keyring(MemoryKeyring())
    assert keys.keyring_status().usable


def test_keyring_profile_roundtrip_and_clear_error_when_entry_missing(monkeypatch) -> None:
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    monkeypatch.delenv("MEMOS_DESKTOP_PASSPHRASE")
    s = create_profile(
        resolve_paths(), "kr", Settings(), method="auto", embed_model="test-embed", embed_dim=384
    )
    item_id = add_one(s)
    s.rotate_key()  # keyring rotation needs no passphrase
    s.close()
    rec = json.loads((s.dir / KEYFILE).read_text())
    assert rec["method"] == "keyring" and "sealed_key" not in rec
    assert len(kr.data) == 1
    with open_profile(resolve_paths(), "kr", Settings()) as s2:
        assert s2.memories.count(SearchFilters()) == 1 and s2.memories.get(item_id)
    kr.data.clear()
    with pytest.raises(KeyringUnavailableError, match="no key for this profile"):
        open_profile(resolve_paths(), "kr", Settings())


def test_database_files_are_owner_only(store: Store) -> None:
    """The profile directory is 0700, and the database, its WAL and shared-memory file 0600."""
    add_one(store)
    assert oct(store.dir.stat().st_mode & 0o777) == "0o700"
    files = [store.db.path, *store.db.path.parent.glob(store.db.path.name + "-*")]
    assert len(files) >= 2  # the WAL exists while the database is open
    for f in files:
        assert oct(f.stat().st_mode & 0o777) == "0o600", f
