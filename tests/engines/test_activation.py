"""Activation memory with the tiny model: save a prefix's KV state, store it encrypted, restore it
in a fresh process, and refuse every state whose key does not match."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memos_desktop.engines.base import ChatMessage, KVState, SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.store.activation import ActivationRepo
from memos_desktop.store.profile import Store
from tests.engines.conftest import TINY

PREFIX = [
    ChatMessage(
        "system",
        "You are a careful assistant. Core memories: the user is Ada; "
        "she lives in Lyon; she likes green tea and long walks.",
    )
]
CHAT = [*PREFIX, ChatMessage("user", "Where do I live?")]
GREEDY = SamplingParams.greedy(24)

# Runs in a fresh interpreter: opens the encrypted profile, finds the state by its key,
# restores it and answers. Prints JSON on stdout.
CHILD = r"""
import json, sys
from pathlib import Path
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.engines.base import ChatMessage, KVState, SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings
from memos_desktop.store.activation import ActivationRepo
from memos_desktop.store.profile import open_profile

model, sha_cache, system, user = sys.argv[1:5]
engine = LlamaCppEngine(Path(model), LlamaCppSettings(n_ctx=1024, n_threads=1, n_threads_batch=1),
                        sha_cache_file=Path(sha_cache))
prefix = [ChatMessage("system", system)]
with open_profile(resolve_paths(), "default", Settings()) as store:
    rec = ActivationRepo(store.db).get(engine.model_sha256, engine.adapter_id,
                                       engine.prefix_sha256(prefix), engine.settings_key)
restored = rec is not None and engine.restore_prefix_state(KVState.from_record(rec), prefix)
chunks = list(engine.chat_stream([*prefix, ChatMessage("user", user)], SamplingParams.greedy(24)))
print(json.dumps({"restored": restored, "text": "".join(c.text for c in chunks),
                  "reused": chunks[-1].stats.prefix_tokens_reused}))
"""


def test_state_round_trip_in_a_fresh_process(
    tiny: LlamaCppEngine, store: Store, tiny_path: Path, sha_cache: Path
) -> None:
    cold = tiny.chat(CHAT, GREEDY)
    state = tiny.save_prefix_state(PREFIX)
    assert state.n_tokens == len(state.token_ids) > 10
    assert state.key == (tiny.model_sha256, "", tiny.prefix_sha256(PREFIX), tiny.settings_key)
    ActivationRepo(store.db).put(state)
    store.db.checkpoint()
    # Encrypted at rest: no slice of the state bytes appears in the database file.
    raw = store.db.path.read_bytes()
    assert state.state[len(state.state) // 2 : len(state.state) // 2 + 64] not in raw
    store.close()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(tiny_path),
            str(sha_cache),
            PREFIX[0].content,
            CHAT[1].content,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    child = json.loads(out.stdout)
    assert child["restored"] is True
    assert child["reused"] == state.n_tokens  # the prefix was not prefilled again
    assert child["text"] == cold


def test_restore_then_chat_matches_cold_and_reuses_prefix(
    tiny: LlamaCppEngine, tiny_path: Path, sha_cache: Path
) -> None:
    cold = tiny.chat(CHAT, GREEDY)
    state = tiny.save_prefix_state(PREFIX)
    fresh = LlamaCppEngine(tiny_path, TINY, sha_cache_file=sha_cache)
    try:
        assert fresh.restore_prefix_state(state, PREFIX)
        chunks = list(fresh.chat_stream(CHAT, GREEDY))
        stats = chunks[-1].stats
        assert stats is not None and stats.prefix_tokens_reused == state.n_tokens
        assert "".join(c.text for c in chunks) == cold
        # The same state restores again after a conversation moved the cache on.
        fresh.chat([*CHAT, ChatMessage("assistant", "Lyon."), ChatMessage("user", "Sure?")])
        assert fresh.restore_prefix_state(state) and fresh.chat(CHAT, GREEDY) == cold
    finally:
        fresh.close()


@pytest.mark.parametrize("field", ["model_sha256", "adapter_id", "prefix_sha256", "settings_key"])
def test_any_key_mismatch_is_refused(tiny: LlamaCppEngine, field: str) -> None:
    state = tiny.save_prefix_state(PREFIX)
    bad = dataclasses.replace(state, **{field: "x" * 8})  # type: ignore[arg-type]
    before = tiny.chat(CHAT, GREEDY)
    # prefix_sha256 can only be checked against a prefix the caller names.
    assert tiny.restore_prefix_state(bad, PREFIX) is False
    assert tiny.chat(CHAT, GREEDY) == before  # nothing was restored, nothing changed


def test_state_from_other_settings_is_refused(
    tiny: LlamaCppEngine, tiny_path: Path, sha_cache: Path
) -> None:
    state = tiny.save_prefix_state(PREFIX)
    other = LlamaCppEngine(
        tiny_path, dataclasses.replace(TINY, n_ctx=512), sha_cache_file=sha_cache
    )
    try:
        assert other.settings_key != tiny.settings_key
        assert other.restore_prefix_state(state) is False
    finally:
        other.close()


def test_state_from_other_model_is_refused(
    tiny: LlamaCppEngine, tiny_other_path: Path, sha_cache: Path
) -> None:
    state = tiny.save_prefix_state(PREFIX)
    other = LlamaCppEngine(tiny_other_path, TINY, sha_cache_file=sha_cache)
    try:
        assert other.restore_prefix_state(state, PREFIX) is False
    finally:
        other.close()


def test_damaged_state_bytes_are_refused(tiny: LlamaCppEngine) -> None:
    state = tiny.save_prefix_state(PREFIX)
    cold = tiny.chat(CHAT, GREEDY)
    for bad in (
        dataclasses.replace(state, state=state.state[: len(state.state) // 2]),
        dataclasses.replace(state, token_ids=state.token_ids[:-1]),
        dataclasses.replace(state, token_ids=(10**9,) * state.n_tokens),
    ):
        assert tiny.restore_prefix_state(bad) is False
    assert tiny.chat(CHAT, GREEDY) == cold  # still usable, and correct


def test_state_under_an_adapter_is_keyed_on_it(
    tiny: LlamaCppEngine, tiny_adapters: tuple[Path, Path]
) -> None:
    tiny.load_adapter("a", tiny_adapters[0])
    tiny.set_adapter("a")
    with_a = tiny.save_prefix_state(PREFIX)
    assert with_a.adapter_id == "a"
    tiny.set_adapter(None)
    assert tiny.restore_prefix_state(with_a) is False
    tiny.set_adapter("a", scale=0.5)
    assert tiny.restore_prefix_state(with_a) is False  # another scale is another adapter
    tiny.set_adapter("a")
    assert tiny.restore_prefix_state(with_a) is True


def test_kv_state_from_record_round_trips(tiny: LlamaCppEngine, store: Store) -> None:
    state = tiny.save_prefix_state(PREFIX)
    repo = ActivationRepo(store.db)
    repo.put(state)
    rec = repo.get(*state.key)
    assert rec is not None
    assert KVState.from_record(rec) == state
