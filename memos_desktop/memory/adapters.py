"""Parametric-memory policy: which adapter a rollback falls back to.

The store keeps adapters and their statuses; deciding what replaces a rejected adapter is
memory policy, kept here so the trainer, the daemon and the front ends share one rule.
"""

from __future__ import annotations

from memos_desktop.errors import NotFoundError
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Adapter


def rollback(store: Store, user_id: str | None, base_model_sha256: str) -> Adapter | None:
    """Reject the active adapter and re-activate its parent, when it still exists and was not
    rejected itself; otherwise the base model alone serves. One transaction. Returns the adapter
    now active, or None."""
    repo = store.adapters
    with store.unit_of_work():
        current = repo.active(user_id, base_model_sha256)
        if current is None:
            raise NotFoundError(
                "there is no active adapter to roll back",
                hint="nothing to do: the base model is in use",
            )
        parent = repo.find(current.parent_id) if current.parent_id else None
        if parent is not None and parent.status == "rejected":
            parent = None  # a rejected adapter never comes back by itself
        repo.reject(current.id, reactivate=parent.id if parent else None)
    return repo.get(parent.id) if parent else None
