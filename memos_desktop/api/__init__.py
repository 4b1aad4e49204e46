"""The one door: every front end (CLI, TUI, later the daemon and the MCP server) imports
``memos_desktop.api`` (plus ``config`` and ``errors``) and nothing below it.

Rooms:
- ``session``: the one session factory (open and unlock a profile, build its embedder and
  engine), and the start state the TUI reads before its first paint.
- ``facade`` (``MemosAPI``), with ``memories`` and ``conversations``: the domain calls on one
  open profile; the API owns its thread safety (``base``: one re-entrant lock).
- ``profiles``: create, key method, passphrase change, key rotation, doctor.
- ``model_ops``: list, pull, use, remove, verify models.
- ``types``: the dataclasses and constants front ends need.

Names are loaded when first used (PEP 562), so ``import memos_desktop.api`` stays cheap and
the terminal app paints before numpy, the store and the model code are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memos_desktop.api.facade import MemosAPI
    from memos_desktop.api.mcp_ops import (
        McpGrant,
        McpService,
        check_mcp_client,
        clear_mcp_log,
        grant_mcp_client,
        mcp_audit_log,
        mcp_grants,
        revoke_mcp_client,
    )
    from memos_desktop.api.memories import SearchResult
    from memos_desktop.api.model_ops import (
        ModelInfo,
        ProgressFactory,
        ServerModel,
        list_models,
        model_entry,
        model_kind,
        model_notice,
        no_progress,
        pull_model,
        remove_model,
        server_models,
        tqdm_progress,
        use_model,
        verify_model,
    )
    from memos_desktop.api.profiles import (
        CreatedProfile,
        accept_loss,
        backup,
        change_passphrase,
        create_profile,
        doctor,
        engine_report,
        key_method,
        keyring_choice,
        list_backups,
        restore_backup,
        rotate_key,
    )
    from memos_desktop.api.session import (
        KEYFILE,
        EmbedderFactory,
        EngineFactory,
        PassphraseProvider,
        Session,
        StartState,
        default_embedder_factory,
        default_engine_factory,
        open_api,
        open_session,
        start_state,
    )
    from memos_desktop.api.types import (
        MEMORY_LAYERS,
        MEMORY_STATUSES,
        MEMORY_TYPES,
        Conversation,
        Cube,
        Kind,
        MemoryItem,
        MemoryLayer,
        MemoryStatus,
        MemoryType,
        MemoryVersion,
        Message,
        ModelEntry,
        NewMemory,
        SearchFilters,
        SearchHit,
        Source,
        User,
        human_size,
    )
    from memos_desktop.engines.base import (
        CancelToken,
        ChatEngine,
        ChatMessage,
        Embedder,
        GenerationStats,
        SamplingParams,
    )
    from memos_desktop.memory.chat import ChatTurn
    from memos_desktop.memory.consolidate import RunReport
    from memos_desktop.memory.ingest import embed_text
    from memos_desktop.memory.reconcile import Plan
    from memos_desktop.memory.scheduler import UsedMemory
    from memos_desktop.store.backup import BackupInfo
    from memos_desktop.store.memories import AddResult
    from memos_desktop.store.recovery import AcceptPlan, RestorePlan

# name -> the module it is loaded from
_EXPORTS: dict[str, str] = {
    "MemosAPI": "memos_desktop.api.facade",
    "SearchResult": "memos_desktop.api.memories",
    **dict.fromkeys(
        [
            "McpGrant",
            "McpService",
            "check_mcp_client",
            "clear_mcp_log",
            "grant_mcp_client",
            "mcp_audit_log",
            "mcp_grants",
            "revoke_mcp_client",
        ],
        "memos_desktop.api.mcp_ops",
    ),
    **dict.fromkeys(
        [
            "ModelInfo",
            "ProgressFactory",
            "ServerModel",
            "model_notice",
            "server_models",
            "list_backups",
            "list_models",
            "model_entry",
            "model_kind",
            "no_progress",
            "pull_model",
            "remove_model",
            "restore_backup",
            "tqdm_progress",
            "use_model",
            "verify_model",
        ],
        "memos_desktop.api.model_ops",
    ),
    **dict.fromkeys(
        [
            "CreatedProfile",
            "accept_loss",
            "backup",
            "accept_loss",
            "backup",
            "change_passphrase",
            "create_profile",
            "doctor",
            "engine_report",
            "key_method",
            "keyring_choice",
            "list_backups",
            "restore_backup",
            "rotate_key",
        ],
        "memos_desktop.api.profiles",
    ),
    **dict.fromkeys(
        [
            "KEYFILE",
            "EmbedderFactory",
            "EngineFactory",
            "PassphraseProvider",
            "Session",
            "StartState",
            "default_embedder_factory",
            "default_engine_factory",
            "open_api",
            "open_session",
            "start_state",
        ],
        "memos_desktop.api.session",
    ),
    **dict.fromkeys(
        [
            "MEMORY_LAYERS",
            "MEMORY_STATUSES",
            "MEMORY_TYPES",
            "Conversation",
            "Cube",
            "Kind",
            "MemoryItem",
            "MemoryLayer",
            "MemoryStatus",
            "MemoryType",
            "MemoryVersion",
            "Message",
            "ModelEntry",
            "NewMemory",
            "SearchFilters",
            "SearchHit",
            "Source",
            "User",
            "human_size",
        ],
        "memos_desktop.api.types",
    ),
    **dict.fromkeys(
        [
            "CancelToken",
            "ChatEngine",
            "ChatMessage",
            "Embedder",
            "GenerationStats",
            "SamplingParams",
        ],
        "memos_desktop.engines.base",
    ),
    "ChatTurn": "memos_desktop.memory.chat",
    "RunReport": "memos_desktop.memory.consolidate",
    "embed_text": "memos_desktop.memory.ingest",
    "Plan": "memos_desktop.memory.reconcile",
    "UsedMemory": "memos_desktop.memory.scheduler",
    "AddResult": "memos_desktop.store.memories",
    "BackupInfo": "memos_desktop.store.backup",
    "AcceptPlan": "memos_desktop.store.recovery",
    "RestorePlan": "memos_desktop.store.recovery",
}

__all__ = [
    "KEYFILE",
    "MEMORY_LAYERS",
    "MEMORY_STATUSES",
    "MEMORY_TYPES",
    "AcceptPlan",
    "AddResult",
    "BackupInfo",
    "CancelToken",
    "ChatEngine",
    "ChatMessage",
    "ChatTurn",
    "Conversation",
    "CreatedProfile",
    "Cube",
    "Embedder",
    "EmbedderFactory",
    "EngineFactory",
    "GenerationStats",
    "Kind",
    "McpGrant",
    "McpService",
    "MemoryItem",
    "MemoryLayer",
    "MemoryStatus",
    "MemoryType",
    "MemoryVersion",
    "MemosAPI",
    "Message",
    "ModelEntry",
    "ModelInfo",
    "NewMemory",
    "PassphraseProvider",
    "Plan",
    "ProgressFactory",
    "RestorePlan",
    "RunReport",
    "SamplingParams",
    "SearchFilters",
    "SearchHit",
    "SearchResult",
    "ServerModel",
    "Session",
    "Source",
    "StartState",
    "UsedMemory",
    "User",
    "accept_loss",
    "backup",
    "change_passphrase",
    "check_mcp_client",
    "clear_mcp_log",
    "create_profile",
    "default_embedder_factory",
    "default_engine_factory",
    "doctor",
    "embed_text",
    "engine_report",
    "grant_mcp_client",
    "human_size",
    "key_method",
    "keyring_choice",
    "list_backups",
    "list_models",
    "mcp_audit_log",
    "mcp_grants",
    "model_entry",
    "model_kind",
    "model_notice",
    "no_progress",
    "open_api",
    "open_session",
    "pull_model",
    "remove_model",
    "restore_backup",
    "revoke_mcp_client",
    "rotate_key",
    "server_models",
    "start_state",
    "tqdm_progress",
    "use_model",
    "verify_model",
]  # the names of _EXPORTS (a test checks)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
