"""The memory OS with real parts: encrypted store, MiniLM embeddings, llama.cpp models."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.engines.base import SamplingParams
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory.reader import FineReader, windows
from memos_desktop.store.conversations import ConversationRepo
from memos_desktop.store.jobs import JobRepo
from memos_desktop.store.records import NewMemory, SearchFilters

GREEDY = SamplingParams.greedy(max_tokens=8)


def say(api: MemosAPI, text: str, conv: str | None = None, **kw) -> object:
    turn = api.chat(text, conv, sampling=GREEDY, **kw)
    answer = "".join(turn)
    assert turn.done and answer == turn.answer
    return turn


def test_fact_from_one_conversation_reaches_the_prompt_of_a_later_one(api: MemosAPI) -> None:
    first = say(api, "I'm allergic to peanuts, so please keep that in mind.")
    say(api, "Also, my daughter Mira starts school in September.", first.conversation_id)
    later = say(api, "Which nuts should I avoid when baking?")
    assert later.conversation_id != first.conversation_id
    texts = [u.text for u in later.used]
    assert any("peanuts" in t for t in texts), texts
    peanut = next(u for u in later.used if "peanuts" in u.text)
    assert peanut.origin == "retrieved" and peanut.score > 0
    assert peanut.sources and peanut.sources[0]["conversation_id"] == first.conversation_id
    # the answer records which memories it used
    msgs = ConversationRepo(api.store.db).messages(later.conversation_id)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert any("peanuts" in u["text"] for u in msgs[1].meta["used"])
    # and the exchange is queued for fine extraction by the daemon
    assert JobRepo(api.store.db).counts().get("queued") == 3


def test_temporary_chat_writes_nothing(api: MemosAPI) -> None:
    before = api.store.db.scalar(
        "SELECT (SELECT count(*) FROM memory_items) + "
        "(SELECT count(*) FROM messages) + (SELECT count(*) FROM jobs) + "
        "(SELECT count(*) FROM activation_states) + "
        "(SELECT count(*) FROM conversations)"
    )
    turn = say(api, "My locker code is 1234", temporary=True)
    assert turn.conversation_id is None
    after = api.store.db.scalar(
        "SELECT (SELECT count(*) FROM memory_items) + "
        "(SELECT count(*) FROM messages) + (SELECT count(*) FROM jobs) + "
        "(SELECT count(*) FROM activation_states) + "
        "(SELECT count(*) FROM conversations)"
    )
    assert before == after == 0


def test_stable_prefix_is_restored_from_activation_memory(api: MemosAPI) -> None:
    api.add(NewMemory(text="The user's name is Noor", layer="user", pinned=True))
    first = say(api, "hello")
    assert not first.kv_restored
    second = say(api, "hello again", first.conversation_id)
    assert second.kv_restored and second.prefix_tokens == first.prefix_tokens
    assert second.stats is not None and second.stats.prefix_tokens_reused >= second.prefix_tokens
    # a new pinned memory changes the prefix: the old state is not used for it
    api.add(NewMemory(text="Noor prefers metric units", layer="user", pinned=True))
    third = say(api, "and now?", first.conversation_id)
    assert not third.kv_restored


def test_duplicate_statement_does_not_create_a_duplicate_memory(api: MemosAPI) -> None:
    plan1, a = api.remember("Karim works as a nurse in Leeds")
    plan2, b = api.remember("karim works as a nurse in leeds")
    plan3, c = api.remember("Karim works as a nurse in Leeds.")
    assert plan1.action == "add"
    assert plan2.action == "noop" and b.id == a.id
    assert plan3.action == "noop" and c.id == a.id
    plan4, d = api.remember("Karim works as a nurse in York")  # a different fact: not merged
    assert plan4.action != "noop" and d.id != a.id
    assert api.store.memories.count(SearchFilters(cube_ids=(api.cube.id,))) == 2


def test_correction_supersedes_and_history_shows_both(api: MemosAPI) -> None:
    _, old = api.remember(NewMemory(text="I live in Paris", key="home_city"))
    api.remember("I like to cook Thai food")
    new, target = api.correct("I moved to Berlin in May")
    assert target is not None and target.id == old.id
    assert target.status == "archived" and target.superseded_by == new.id
    assert target.valid_to is not None
    assert api.get(new.id).supersedes == old.id
    history = api.history(old.id)
    assert [v.change for v in history] == ["create", "supersede"]
    assert "Berlin" in history[-1].reason
    hits = api.search("where do I live").hits
    assert hits[0].item.id == new.id  # the archived fact no longer answers
    assert old.id not in [h.item.id for h in hits]


def test_extraction_failure_keeps_the_raw_memory(api: MemosAPI) -> None:
    """The tiny random model cannot extract anything sensible: nothing is lost."""
    turn = say(api, "My passport expires on 3 March 2027.")
    raw = api.list(SearchFilters(types=("episode",)))
    assert len(raw) == 1 and "passport" in raw[0].text
    msgs = ConversationRepo(api.store.db).messages(turn.conversation_id)
    items = FineReader(api.engine, "Sam").extract(msgs, today=msgs[-1].created_at)
    for it in items:  # whatever survives the grounding check cites the conversation
        assert it.sources and it.sources[0].conversation_id == turn.conversation_id
    assert "passport" in api.list(SearchFilters(types=("episode",)))[0].text


def test_windows_overlap_and_cover_everything(api: MemosAPI) -> None:
    conv = ConversationRepo(api.store.db).create(api.user.id, api.cube.id)
    repo = ConversationRepo(api.store.db)
    msgs = [
        repo.add_message(
            conv.id, "user" if i % 2 == 0 else "assistant", f"message number {i} " + "word " * 30
        )
        for i in range(20)
    ]
    size = api.engine.count_tokens(msgs[0].content) + 8
    ws = windows(msgs, api.engine.count_tokens, max_tokens=5 * size, overlap_messages=2)
    assert len(ws) > 3
    covered = [m.id for w in ws for m in w.messages]
    assert set(covered) == {m.id for m in msgs}
    for a, b in itertools.pairwise(ws):
        assert a.messages[-2:] == b.messages[:2]
        assert sum(api.engine.count_tokens(m.content) + 8 for m in b.messages) <= 5 * size
    # a window too small for the overlap keeps what fits and never exceeds the budget
    ws = windows(msgs, api.engine.count_tokens, max_tokens=size + 1, overlap_messages=2)
    assert [len(w.messages) for w in ws] == [1] * 20


def test_users_have_separate_cubes(api: MemosAPI, tmp_path: Path) -> None:
    api.remember("Lars keeps bees")
    api.create_user("guest")
    api.switch_user("guest")
    assert api.search("bees").hits == []
    api.switch_user("me")
    assert api.search("bees").hits


def test_consolidation_job_runs_and_never_loses_the_raw_memory(api: MemosAPI) -> None:
    say(api, "I started a new job at the bakery on Monday.")
    assert api.store.jobs.counts() == {"queued": 1}
    report = api.consolidate()
    assert report.done == 1 and report.failed == 0
    assert api.store.jobs.counts() == {"done": 1}
    raw = api.list(SearchFilters(types=("episode",)))
    assert len(raw) == 1 and "bakery" in raw[0].text
    # a job whose conversation is gone fails, is kept with its error, and is retried later
    api.store.jobs.enqueue("extract", {"conversation_id": "gone", "cube_id": "nope"})
    report = api.consolidate()
    assert report.failed == 1
    row = api.store.db.query_one("SELECT status, last_error FROM jobs WHERE payload LIKE '%gone%'")
    assert row is not None and row[0] == "queued" and "no cube" in row[1]


def test_fine_search_only_adds_to_the_fast_result(api: MemosAPI) -> None:
    api.remember("Nadia keeps three hens in her garden")
    api.remember("The boiler service is booked for Thursday")
    fast = api.search("who keeps hens?")
    fine = api.search("who keeps hens?", mode="fine")
    assert fast.mode == "hybrid" and fine.mode == "hybrid+fine"
    assert fine.hits and fine.hits[0].item.id == fast.hits[0].item.id
    assert "hens" in fine.hits[0].item.text
    for q in fine.rewrites:  # whatever the tiny model wrote is a distinct, short query
        assert q and q.casefold() != "who keeps hens?"
    with pytest.raises(InvalidInputError, match="unknown search mode"):
        api.search("hens", mode="deep")


def test_fine_search_falls_back_to_fast_when_the_model_fails(api: MemosAPI) -> None:
    from memos_desktop.memory.retrieve import fine_search

    api.remember("Omar's bike is blue")

    class Broken:
        def complete_json(self, *a: object, **k: object) -> dict:
            raise RuntimeError("model crashed")

    hits, queries = fine_search(
        "what colour is the bike?", lambda q, k: api.search(q, top_k=k).hits, Broken(), 5
    )  # type: ignore[arg-type]
    assert queries == [] and [h.item.text for h in hits][:1] == ["Omar's bike is blue"]


def test_add_a_conversation_with_its_times(api: MemosAPI) -> None:
    may = 1_683_500_000.0  # 8 May 2023
    results = api.add(
        [
            {"role": "user", "content": "I joined a pottery class last week", "time": may},
            {"role": "assistant", "content": "How lovely! How was it?", "time": may + 5},
            {"role": "user", "content": "Great, I made a bowl for my sister Lena", "time": may + 9},
        ]
    )
    # per exchange: the raw episode, then what the reader took from it
    assert [(r.created, r.item.type) for r in results] == [
        (True, "episode"),
        (True, "event"),
        (True, "episode"),
        (True, "fact"),
    ]
    first = results[0].item
    assert first.type == "episode" and first.created_at == may
    assert [s.role for s in first.sources] == ["user", "assistant"]
    event = results[1].item
    assert event.text == "I joined a pottery class last week" and event.created_at == may
    assert [s.role for s in event.sources] == ["user"]
    # the memory read from the exchange ranks above the raw episode it came from
    ids = [h.item.id for h in api.search("pottery class").hits]
    assert ids.index(event.id) < ids.index(first.id)
    assert api.store.jobs.counts() == {"queued": 1}
    with pytest.raises(InvalidInputError, match="needs a role"):
        api.add([{"role": "narrator", "content": "once upon a time"}])
    assert len(api.store.conversations.list(api.user.id)) == 1  # the refused one left nothing
