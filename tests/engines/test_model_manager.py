"""The catalog and the model manager. Downloads go to a local stand-in of the hub (127.0.0.1):
real huggingface_hub metadata calls, real HTTP, real Range resumes; never the network."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from memos_desktop.config import Paths, Settings, load_settings, resolve_paths
from memos_desktop.engines import catalog, loader
from memos_desktop.engines import model_manager as models
from memos_desktop.engines.catalog import ModelEntry
from memos_desktop.engines.model_manager import HubClient, list_models, pull, remove, use, verify
from memos_desktop.errors import (
    DiskFullError,
    InvalidInputError,
    ModelNotFoundError,
    OfflineError,
)
from tests.engines.hub_server import FakeHub, HubFile

DATA = os.urandom(3 * 1024 * 1024 + 123)  # 3 MiB: several read chunks
SHA = hashlib.sha256(DATA).hexdigest()
ENTRY = ModelEntry(
    id="test-embed",
    kind="embedding",
    title="test",
    license="MIT",
    size_bytes=len(DATA),
    ram_bytes=0,
    source="hub",
    repo_id="acme/test-GGUF",
    filename="test-q8_0.gguf",
)


class Recorder:
    """Progress stand-in: records what the manager reports."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.initial = -1
        self.done = 0
        self.closed = False

    def __call__(self, total: int | None, initial: int, desc: str) -> Recorder:
        self.total, self.initial = total, initial
        return self

    def update(self, n: int) -> None:
        self.done += n

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    h = FakeHub(files={"acme/test-GGUF/test-q8_0.gguf": HubFile(DATA)}).start()
    yield h
    h.stop()


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return resolve_paths()


def test_pull_downloads_checks_and_records(paths: Paths, hub: FakeHub) -> None:
    rec = Recorder()
    path = pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint), progress=rec)
    assert path.read_bytes() == DATA
    assert (rec.total, rec.initial, rec.done, rec.closed) == (len(DATA), 0, len(DATA), True)
    manifest = catalog.read_manifest(paths, ENTRY.id)
    assert manifest is not None
    assert manifest["sha256"] == SHA and manifest["sha256_source"] == "hub"
    assert verify(paths, ENTRY.id)
    # Installed: a second pull does not touch the hub.
    n = len(hub.requests)
    assert pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint)) == path
    assert len(hub.requests) == n


def test_a_dropped_connection_resumes_with_a_range_request(paths: Paths, hub: FakeHub) -> None:
    hub.drop_after = [1_000_000]
    rec = Recorder()
    path = pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint), progress=rec)
    assert path.read_bytes() == DATA
    gets = [r for r in hub.requests if r[0] == "GET"]
    assert gets[0][2] is None and gets[1][2] == "bytes=1000000-"
    assert rec.done == len(DATA)  # the bar counts each byte once


def test_an_interrupted_pull_resumes_in_a_later_run(
    paths: Paths, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "RETRIES", 0)
    hub.drop_after = [700_000]
    with pytest.raises(OfflineError, match="resumes where it stopped"):
        pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint), progress=Recorder())
    part = catalog.model_dir(paths, ENTRY.id) / (ENTRY.filename + ".part")
    assert part.stat().st_size == 700_000
    assert catalog.installed_path(paths, ENTRY.id) is None  # not installed while partial

    rec = Recorder()
    path = pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint), progress=rec)
    assert path.read_bytes() == DATA and not part.exists()
    assert hub.requests[-1] == ("GET", hub.requests[-1][1], "bytes=700000-")
    assert (rec.initial, rec.done) == (700_000, len(DATA) - 700_000)


def test_a_sha256_mismatch_deletes_the_file(paths: Paths, hub: FakeHub) -> None:
    hub.files["acme/test-GGUF/test-q8_0.gguf"] = HubFile(DATA, sha256="ab" * 32)
    with pytest.raises(InvalidInputError, match="damaged or not the expected file"):
        pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint), progress=Recorder())
    d = catalog.model_dir(paths, ENTRY.id)
    assert not (d / ENTRY.filename).exists() and not (d / (ENTRY.filename + ".part")).exists()
    assert catalog.read_manifest(paths, ENTRY.id) is None


def test_a_pinned_sha256_that_the_hub_contradicts_is_refused(paths: Paths, hub: FakeHub) -> None:
    pinned = dataclasses.replace(ENTRY, sha256="cd" * 32)
    with pytest.raises(InvalidInputError, match="catalog pins"):
        pull(paths, ENTRY.id, entry=pinned, client=HubClient(hub.endpoint), progress=Recorder())
    assert not [r for r in hub.requests if r[0] == "GET"]  # refused before downloading


def test_a_pinned_sha256_is_checked_against_the_bytes(paths: Paths, hub: FakeHub) -> None:
    hub.files["acme/test-GGUF/test-q8_0.gguf"] = HubFile(DATA, sha256="0" * 63 + "x")  # no LFS sha
    pinned = dataclasses.replace(ENTRY, sha256=SHA)
    pull(paths, ENTRY.id, entry=pinned, client=HubClient(hub.endpoint), progress=Recorder())
    manifest = catalog.read_manifest(paths, ENTRY.id)
    assert manifest is not None and manifest["sha256_source"] == "catalog"


def test_not_enough_disk_space_fails_before_downloading(paths: Paths, hub: FakeHub) -> None:
    hub.files["acme/test-GGUF/test-q8_0.gguf"] = HubFile(DATA, size=10**16)  # 10 PB
    with pytest.raises(DiskFullError, match="not enough free disk space"):
        pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint), progress=Recorder())
    assert not [r for r in hub.requests if r[0] == "GET"]


def test_a_missing_file_on_the_hub_is_not_found(paths: Paths, hub: FakeHub) -> None:
    other = dataclasses.replace(ENTRY, filename="nope.gguf")
    with pytest.raises(ModelNotFoundError, match="not found on the hub"):
        pull(paths, ENTRY.id, entry=other, client=HubClient(hub.endpoint), progress=Recorder())


def test_offline_mode_fails_at_once_with_the_fix(
    paths: Paths, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.monotonic()
    with pytest.raises(OfflineError) as err:
        pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(hub.endpoint), progress=Recorder())
    assert time.monotonic() - t < 1.0
    assert "HF_HUB_OFFLINE" in str(err.value) and err.value.hint
    assert hub.requests == []  # not one request
    with pytest.raises(ModelNotFoundError, match="local_files_only"):
        pull(paths, ENTRY.id, entry=ENTRY, local_files_only=True)


def test_an_unreachable_hub_fails_fast(paths: Paths) -> None:
    import socket

    with socket.socket() as s:  # a port on loopback that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    with pytest.raises(OfflineError, match="cannot reach"):
        pull(paths, ENTRY.id, entry=ENTRY, client=HubClient(f"http://127.0.0.1:{port}"))
    assert time.monotonic() - t < 5.0


def test_list_use_and_rm(paths: Paths, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    infos = {i.entry.id: i for i in list_models(paths, settings)}
    assert infos["gemma3-270m"].active and infos["all-minilm-l6-v2"].active
    assert not infos["qwen2.5-0.5b-instruct"].installed
    assert all(i.entry.ram_bytes > 0 and i.entry.license for i in infos.values())

    with pytest.raises(ModelNotFoundError, match="models pull"):
        use(paths, settings, "bge-small-en-v1.5")
    # Install a catalog model from the local hub under its real catalog id.
    entry = dataclasses.replace(
        catalog.CATALOG["bge-small-en-v1.5"],
        repo_id="acme/test-GGUF",
        filename="test-q8_0.gguf",
        sha256=None,
    )
    pull(paths, entry.id, entry=entry, client=HubClient(hub.endpoint), progress=Recorder())
    monkeypatch.setitem(catalog.CATALOG, entry.id, entry)
    new = use(paths, settings, "bge-small-en-v1.5")
    assert new.models.embedding == "bge-small-en-v1.5" and new.models.chat == "gemma3-270m"
    info = {i.entry.id: i for i in list_models(paths, new)}["bge-small-en-v1.5"]
    assert info.installed and info.active and info.size_on_disk == len(DATA)

    with pytest.raises(InvalidInputError, match="active embedding model"):
        remove(paths, new, "bge-small-en-v1.5")
    removed = remove(paths, new, "bge-small-en-v1.5", force=True)
    assert removed and not catalog.model_dir(paths, "bge-small-en-v1.5").exists()
    assert remove(paths, new, "bge-small-en-v1.5", force=True) == []


def test_catalog_entries_are_complete() -> None:
    ids = [e.id for e in (*catalog.BUILTIN, *catalog.RECOMMENDED)]
    assert len(ids) == len(set(ids))
    for e in catalog.RECOMMENDED:
        assert e.repo_id and e.filename.endswith(".gguf") and e.size_bytes > 0
        assert e.sha256 is None or len(e.sha256) == 64
    assert {e.kind for e in catalog.RECOMMENDED} == {"chat", "embedding"}
    with pytest.raises(ModelNotFoundError, match="known models"):
        catalog.get_entry("gpt-17")


def test_cli_models_list_use_and_offline_pull(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from memos_desktop.cli import main
    from memos_desktop.cli.models import models as models_group

    if "models" not in main.commands:
        monkeypatch.setitem(main.commands, "models", models_group)
    r = CliRunner().invoke(main, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert {"gemma3-270m", "all-minilm-l6-v2", "qwen2.5-0.5b-instruct"} <= {d["id"] for d in data}

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = CliRunner().invoke(main, ["models", "pull", "qwen2.5-0.5b-instruct"])
    assert r.exit_code == OfflineError.exit_code
    assert "HF_HUB_OFFLINE" in r.stderr

    r = CliRunner().invoke(main, ["models", "use", "llama-3.2-1b-instruct"])
    assert r.exit_code == ModelNotFoundError.exit_code and "models pull" in r.stderr

    r = CliRunner().invoke(main, ["models", "use", "all-minilm-l6-v2", "--json"])
    assert r.exit_code == 0, r.output
    assert load_settings(resolve_paths()).models.embedding == "all-minilm-l6-v2"


def test_a_gguf_path_is_a_model_id(tmp_path: Path, paths: Paths) -> None:
    f = tmp_path / "mine.gguf"
    f.write_bytes(b"GGUF")
    r = loader.resolve(paths, str(f))
    assert r.path == f.resolve() and r.kind is None and r.id == "mine"
    with pytest.raises(InvalidInputError, match="chat or an embedding"):
        use(paths, Settings(), str(f))
    assert models.use_kind(Settings(), "chat", str(f)).models.chat == str(f)
