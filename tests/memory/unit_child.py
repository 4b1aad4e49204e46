"""A child process for the all-or-none tests (run with ``python -m``): it performs one chat turn
or runs the pending consolidation jobs on the profile "default", on real parts, and with
``--die-after-first-write`` it SIGKILLs itself right after the first of that unit's writes
returns (the first message of the turn; the first reconciled memory of the job).

usage: python -m tests.memory.unit_child chat|consolidate MODEL SHA_CACHE [--die-after-first-write]
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from pathlib import Path
from typing import Any

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.engines.base import SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.memory.consolidate import run_pending
from memos_desktop.memory.reconcile import Reconciler
from memos_desktop.store.conversations import ConversationRepo
from memos_desktop.store.profile import open_profile
from tests.memory.scripted import ScriptedExtractor
from tests.model_fixtures import TINY


def die_after_first_call(cls: type, name: str) -> None:
    """After the first call of ``cls.name`` returns (its write committed, if it commits on its
    own), the process is killed: no cleanup, no rollback, no atexit."""
    real = getattr(cls, name)

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        print("first write returned", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        return out

    setattr(cls, name, wrapper)


def main() -> None:
    mode, model, sha_cache = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    die = "--die-after-first-write" in sys.argv[4:]
    store = open_profile(resolve_paths(), "default", Settings())
    engine = LlamaCppEngine(model, TINY, sha_cache_file=sha_cache)
    if mode == "chat":
        from memos_desktop.api import MemosAPI

        if die:
            die_after_first_call(ConversationRepo, "add_message")
        api = MemosAPI(store, None, engine_factory=lambda: engine)
        turn = api.chat("I keep bees on the roof", sampling=SamplingParams.greedy(max_tokens=8))
        print("answer", "".join(turn).replace("\n", " "), flush=True)
        api.close()
    elif mode == "consolidate":
        if die:
            die_after_first_call(Reconciler, "apply")
        report = run_pending(store, ScriptedExtractor(engine), None, lease_s=1.0)
        print("report", report, flush=True)
        engine.close()
        store.close()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
