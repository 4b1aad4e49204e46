"""Model management (no profile needed): list, pull, use, remove, verify.

Design rules:
- Only :func:`pull_model` may use the network; everything else looks at local files.
- :func:`use_model` checks the model is there (with the fix when it is not) and saves the
  settings; the caller reloads what uses it.
"""

from __future__ import annotations

from pathlib import Path

from memos_desktop.config import Paths, Settings, save_settings
from memos_desktop.engines import catalog
from memos_desktop.engines import model_manager as manager
from memos_desktop.engines.catalog import Kind, ModelEntry
from memos_desktop.engines.model_manager import (
    ModelInfo,
    ProgressFactory,
    no_progress,
    tqdm_progress,
)
from memos_desktop.engines.openai_http import ServerModel
from memos_desktop.errors import ModelNotFoundError

__all__ = [
    "ModelInfo",
    "ProgressFactory",
    "ServerModel",
    "list_models",
    "model_entry",
    "model_kind",
    "model_notice",
    "no_progress",
    "pull_model",
    "remove_model",
    "server_models",
    "tqdm_progress",
    "use_model",
    "verify_model",
]


def list_models(paths: Paths, settings: Settings) -> list[ModelInfo]:
    """Installed and recommended models with their disk and RAM needs (never the network)."""
    return manager.list_models(paths, settings)


def model_entry(model_id: str) -> ModelEntry:
    """The catalog entry of ``model_id`` (ModelNotFoundError listing the known ones)."""
    return catalog.get_entry(model_id)


def model_kind(paths: Paths, model_id: str) -> Kind | None:
    """``chat`` or ``embedding``; None for a bare file the catalog does not know. Raises with
    the fix when the model is not installed."""
    from memos_desktop.engines import loader  # numpy: not before first use

    return loader.resolve(paths, model_id).kind


def pull_model(
    paths: Paths,
    model_id: str,
    progress: ProgressFactory = no_progress,
    *,
    force: bool = False,
) -> Path:
    """Download a hub model (built-ins are assembled locally); fails fast when offline."""
    return manager.pull(paths, model_id, progress=progress, force=force)


def server_models(settings: Settings) -> list[ServerModel]:
    """The models the ``[openai]`` server lists (EngineError, naming the fix, when it is not
    there). Asks that server only: loopback unless ``allow_remote`` is set."""
    from memos_desktop.engines.openai_compat import client_for

    client = client_for(settings.openai)
    try:
        return client.models()
    finally:
        client.close()


def model_notice(settings: Settings, model_id: str | None = None) -> str:
    """What the status bar says about where the chat model runs: "" for a model in this
    process; for a server model, that activation memory does not apply, and whether prompts
    leave this machine."""
    from memos_desktop.engines.openai_http import is_loopback, root_url

    model = settings.models.chat if model_id is None else model_id
    if not model.startswith("openai:"):
        return ""
    url = root_url(settings.openai.base_url)
    if is_loopback(url):
        where = "local server"
    elif settings.openai.allow_remote:
        where = "leaves this machine"
    else:
        where = "refused: off this machine (allow_remote is off)"
    return f"{where} ({url}) · no activation memory"


def use_model(
    paths: Paths, settings: Settings, model_id: str, *, kind: Kind | None = None
) -> Settings:
    """Make ``model_id`` the active chat or embedding model and save the settings. ``kind``
    is needed for a bare file path (the catalog knows the kind of its own ids); a server
    model (``openai:NAME``) is a chat model unless ``kind`` says otherwise, and must be one
    the server lists."""
    if model_id.startswith("openai:"):
        from memos_desktop.engines.openai_compat import server_name

        name = server_name(model_id)
        served = server_models(settings)
        if name not in {m.name for m in served}:
            raise ModelNotFoundError(
                f"the server at {settings.openai.base_url} does not serve {name!r}",
                hint="it serves: " + (", ".join(m.id for m in served[:8]) or "none"),
            )
        new = manager.use_kind(settings, kind or "chat", model_id)
        save_settings(paths, new)
        return new
    if kind is None:
        new = manager.use(paths, settings, model_id)
    else:
        from memos_desktop.engines import loader  # numpy: not before first use

        loader.resolve(paths, model_id, kind=kind)  # raises, with the fix, when it is not there
        new = manager.use_kind(settings, kind, model_id)
    save_settings(paths, new)
    return new


def remove_model(
    paths: Paths, settings: Settings, model_id: str, *, force: bool = False
) -> list[Path]:
    """Delete a model's files; returns what was deleted (the active one only with ``force``)."""
    return manager.remove(paths, settings, model_id, force=force)


def verify_model(paths: Paths, model_id: str) -> bool:
    """Re-hash a downloaded model against the sha256 recorded when it was pulled."""
    return manager.verify(paths, model_id)
