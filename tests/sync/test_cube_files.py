"""Cube files end to end on real encrypted profiles and the real MiniLM embedder: export on one
profile, import on another, search finds the memory, versions and sources survive; passphrase
and recipient modes; merge outcomes; another embedding model queues a re-embedding job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memos_desktop.api import MemosAPI, NewMemory, Source
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.engines.base import Embedder
from memos_desktop.store.profile import create_profile, open_profile
from memos_desktop.sync.cube_import import UntrustedSignerError
from memos_desktop.sync.cubefile import CubeFileError, CubePassphraseError
from tests.conftest import PASSPHRASE

FILE_PW = "a cube file passphrase"


def _api(name: str, embedder: Embedder | None, dims: tuple[str, int] | None = None) -> MemosAPI:
    model, dim = dims or ((embedder.model_id, embedder.dim) if embedder else ("none", 8))
    store = create_profile(
        resolve_paths(),
        name,
        Settings(),
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model=model,
        embed_dim=dim,
    )
    return MemosAPI(store, embedder)


@pytest.fixture
def pair(embedder: Embedder) -> Any:
    a, b = _api("a", embedder), _api("b", embedder)
    yield a, b
    a.close()
    b.close()


def _fill(api: MemosAPI) -> str:
    api.add(
        [
            NewMemory(
                "My sister Ingrid lives in Trondheim and keeps bees",
                tags=("family",),
                sources=(Source(kind="conversation", conversation_id="c1", role="user", at=5.0),),
            ),
            NewMemory("I prefer green tea to coffee in the morning", type="preference"),
            NewMemory("The dentist appointment is on the 14th", type="event"),
        ]
    )
    item = api.search("Ingrid bees").hits[0].item
    api.update(item.id, text="My sister Ingrid lives in Bergen and keeps bees", reason="moved")
    return item.id


def test_round_trip_passphrase_search_versions_sources(pair: Any, tmp_path: Path) -> None:
    a, b = pair
    item_id = _fill(a)
    out = tmp_path / "personal.memcube"
    rep = a.export_cube(None, out, passphrase=FILE_PW)
    assert rep.memories == 3 and rep.versions == 4 and out.is_file()
    raw = out.read_bytes()
    for secret in (b"Ingrid", b"Bergen", b"green tea", FILE_PW.encode()):
        assert secret not in raw  # encrypted
    r = b.import_cube(out, passphrase=FILE_PW, name="from-a")
    assert (r.added, r.updated, r.skipped, r.conflicting) == (3, 0, 0, 0)
    assert r.vectors_kept == 3 and r.reembed_queued == 0 and r.trust == "unknown"
    hits = b.search("where does my sister live", cube="from-a").hits
    assert hits[0].item.text == "My sister Ingrid lives in Bergen and keeps bees"
    assert hits[0].vec_rank is not None  # found by its imported vector too
    got = b.get(item_id)
    assert got.sources[0].conversation_id == "c1" and got.sources[0].at == 5.0
    assert got.tags == ("family",)
    history = [(v.version, v.text) for v in b.history(item_id)]
    assert [v for v, _ in history] == [1, 2] and "Trondheim" in history[0][1]
    assert {v.id for v in b.history(item_id)} == {v.id for v in a.history(item_id)}

    # again into the same cube: nothing new
    again = b.import_cube(out, passphrase=FILE_PW, into="from-a")
    assert (again.added, again.updated, again.skipped, again.conflicting) == (0, 0, 3, 0)
    # the same name twice: a clear error that names both ways out
    with pytest.raises(Exception, match="--into"):
        b.import_cube(out, passphrase=FILE_PW, name="from-a")
    with pytest.raises(CubePassphraseError):
        b.import_cube(out, passphrase="not it", name="other")


def test_merge_updated_and_conflicting(pair: Any, tmp_path: Path) -> None:
    a, b = pair
    item_id = _fill(a)
    first = tmp_path / "1.memcube"
    a.export_cube(None, first, passphrase=FILE_PW)
    b.import_cube(first, passphrase=FILE_PW, name="shared")
    tea = a.search("green tea").hits[0].item
    a.update(tea.id, text="I prefer black tea to coffee in the morning")
    a.update(item_id, text="My sister Ingrid lives in Stavanger and keeps bees")
    second = tmp_path / "2.memcube"
    a.export_cube(None, second, passphrase=FILE_PW)
    # b edits the sister memory too: both sides changed it
    b.update(item_id, text="My sister Ingrid lives in Oslo and keeps bees")
    r = b.import_cube(second, passphrase=FILE_PW, into="shared")
    assert (r.added, r.updated, r.skipped, r.conflicting) == (0, 1, 1, 1)
    assert r.conflicts == [item_id]
    assert b.get(item_id).text.endswith("Oslo and keeps bees")  # the local text stays
    texts = {v.text for v in b.history(item_id)}
    assert {"Bergen", "Oslo", "Stavanger"} <= {w for t in texts for w in t.split()}
    assert b.get(tea.id).text.startswith("I prefer black tea")
    assert b.search("black tea", cube="shared").hits[0].item.id == tea.id


def test_recipients_mode_and_trust(embedder: Embedder, tmp_path: Path) -> None:
    a, b, c = _api("a", embedder), _api("b", embedder), _api("c", embedder)
    try:
        _fill(a)
        out = tmp_path / "for-b.memcube"
        a.export_cube(None, out, to=[b.device_identity()])
        assert b.cube_file_mode(out) == "recipients"
        with pytest.raises(CubeFileError, match="not encrypted for this device"):
            c.import_cube(out, name="x")
        with pytest.raises(UntrustedSignerError):
            b.import_cube(out, name="x", require_known=True)
        assert [k.name for k in b.list_cubes()] == ["personal"]
        r = b.import_cube(out, name="x", known=[a.device_identity()], require_known=True)
        assert r.trust == "known" and r.added == 3
        mine = tmp_path / "mine.memcube"
        b.export_cube("x", mine, to=[b.device_identity(), c.device_identity()])
        assert b.import_cube(mine, name="y").trust == "self"
        assert c.import_cube(mine, name="y").trust == "unknown"
    finally:
        for api in (a, b, c):
            api.close()


def test_other_embedding_model_queues_a_durable_reembed(embedder: Embedder, tmp_path: Path) -> None:
    """The file's vectors are of another model: the text comes in at once, findable by full
    text; a queued job (run here in the foreground) embeds it with this device's model."""
    a = _api("a", None, ("some-other-model", 8))
    b = _api("b", embedder)
    try:
        texts = ["The boat is moored at pier seven", "Grandma's recipe uses cardamom"]
        vecs = np.random.default_rng(0).normal(size=(2, 8))
        a.store.memories.add_many(a.cube, [NewMemory(t) for t in texts], vecs)
        out = tmp_path / "other.memcube"
        a.export_cube(None, out, passphrase=FILE_PW)
        assert a.export_cube(None, tmp_path / "x", passphrase=FILE_PW).path.name == "x.memcube"
        r = b.import_cube(out, passphrase=FILE_PW, name="other")
        assert r.added == 2 and r.vectors_kept == 0 and r.reembed_queued == 2
        assert r.reembed_job is not None
        assert b.store.jobs.get(r.reembed_job).status == "queued"
        before = b.search("boat pier", cube="other").hits[0]
        assert before.vec_rank is None and before.fts_rank is not None
        # durable: the job is still there after the profile is closed and opened again
        b.close()
        b = MemosAPI(
            open_profile(
                resolve_paths(), "b", Settings(), passphrase_provider=lambda _p: PASSPHRASE
            ),
            embedder,
        )
        seen: list[tuple[int, int]] = []
        rep = b.run_reembed(progress=lambda d, t: seen.append((d, t)))
        assert rep.jobs == 1 and rep.embedded == 2 and seen[-1] == (2, 2)
        assert b.store.jobs.get(r.reembed_job).status == "done"
        hit = b.search("where is the sailing vessel kept", cube="other").hits[0]
        assert hit.item.text.startswith("The boat") and hit.vec_rank is not None
    finally:
        a.close()
        b.close()


def test_export_refuses_bad_destinations(pair: Any, tmp_path: Path) -> None:
    a, _ = pair
    with pytest.raises(Exception, match="does not exist"):
        a.export_cube(None, tmp_path / "nowhere" / "x.memcube", passphrase=FILE_PW)
    with pytest.raises(Exception, match="passphrase or for recipients"):
        a.export_cube(None, tmp_path / "x.memcube")
    assert not list(tmp_path.glob("*.memcube")) and not list(tmp_path.glob(".*part"))


def test_a_device_paired_for_sync_is_a_known_signer(embedder: Embedder, tmp_path: Path) -> None:
    from memos_desktop.api import sync_ops

    a, b = _api("a", embedder), _api("b", embedder)
    try:
        _fill(a)
        out = tmp_path / "from-a.memcube"
        a.export_cube(None, out, to=[b.device_identity()])
        with pytest.raises(UntrustedSignerError):
            b.import_cube(out, name="x", require_known=True)
        folder = tmp_path / "sync"
        folder.mkdir()
        sync_ops.setup(a, folder)
        sync_ops.setup(b, folder)
        dev_a = a.store.device_id
        sync_ops.pair(b, dev_a, sync_ops.pairing_code(b, dev_a))
        r = b.import_cube(out, name="x", require_known=True)
        assert r.trust == "known" and r.added == 3
    finally:
        a.close()
        b.close()
