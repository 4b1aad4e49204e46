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

__all__ = [
    "ModelInfo",
    "ProgressFactory",
    "list_models",
    "model_entry",
    "model_kind",
    "no_progress",
    "pull_model",
    "remove_model",
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


def use_model(
    paths: Paths, settings: Settings, model_id: str, *, kind: Kind | None = None
) -> Settings:
    """Make ``model_id`` the active chat or embedding model and save the settings. ``kind``
    is needed for a bare file path (the catalog knows the kind of its own ids)."""
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
