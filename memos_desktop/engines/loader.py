"""Build the chat engine the settings name: resolve the model in the catalog (never download),
pick the back end for its format and platform, and apply the engine settings."""

from __future__ import annotations

from memos_desktop.config import Paths, Settings
from memos_desktop.engines.base import ChatEngine
from memos_desktop.engines.catalog import resolve
from memos_desktop.engines.select import select_engine


def load_chat_engine(paths: Paths, settings: Settings) -> ChatEngine:
    model = resolve(paths, settings.models.chat, kind="chat")
    sha_cache = paths.cache_dir / "model-sha256.json"
    if select_engine(model.path) == "mlx":
        from memos_desktop.engines.mlx import MlxEngine

        return MlxEngine(model.path, model_id=model.id, sha_cache_file=sha_cache)
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
        ),
        model_id=model.id,
        sha_cache_file=sha_cache,
    )
