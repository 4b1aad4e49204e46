"""Device identity: made once, kept in the encrypted database, same short code on both sides."""

from __future__ import annotations

import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import create_profile, open_profile
from memos_desktop.sync.identity import IdentityError, PublicIdentity, load_identity, short_code
from tests.conftest import PASSPHRASE


def _profile(name: str):  # type: ignore[no-untyped-def]
    return create_profile(
        resolve_paths(),
        name,
        Settings(),
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model="test-embed",
        embed_dim=8,
    )


def test_identity_is_stable_and_stays_out_of_files() -> None:
    s = _profile("a")
    ident = load_identity(s.db)
    s.close()
    s = open_profile(resolve_paths(), "a", Settings(), passphrase_provider=lambda _p: PASSPHRASE)
    again = load_identity(s.db)
    assert str(again.public) == str(ident.public)
    raw = ident.signing_key.private_bytes_raw()
    pdir = s.dir
    s.close()
    for f in pdir.rglob("*"):
        if f.is_file():
            assert raw not in f.read_bytes(), f


def test_public_identity_round_trip_signature_and_code() -> None:
    a, b = _profile("a"), _profile("b")
    ia, ib = load_identity(a.db), load_identity(b.db)
    assert ia.device_id != ib.device_id
    pa = PublicIdentity.parse(str(ia.public))
    assert pa == ia.public
    sig = ia.sign(b"changeset")
    pa.verify(sig, b"changeset")
    with pytest.raises(IdentityError):
        pa.verify(sig, b"changesex")
    with pytest.raises(IdentityError):
        ib.public.verify(sig, b"changeset")
    assert short_code(ia.public, ib.public) == short_code(ib.public, ia.public)
    assert short_code(ia.public, ib.public) != short_code(ia.public, ia.public)
    for bad in ["", "memos-device:1:x", str(ia.public)[:-3], "memos-device:1:a:b:c", "x" * 600]:
        with pytest.raises(IdentityError):
            PublicIdentity.parse(bad)
    a.close()
    b.close()
