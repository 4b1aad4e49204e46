"""A store seeded with near-duplicates, contradictions, a stale memory and a long conversation,
consolidated by a real `memos-desktop daemon run-once` process: fewer duplicates, no fact lost
(every merged or superseded memory is archived, linked to the one kept, with a version in its
history saying why), look-alikes that differ in a number kept apart, a summary with sources."""

from __future__ import annotations

import time
from typing import Any

from memos_desktop.store.profile import Store
from memos_desktop.store.records import MemoryItem, NewMemory, SearchFilters
from tests.daemon.conftest import cli

DAY = 86400.0
DUPLICATES = [
    ("I love green tea in the morning", "I really love green tea in the morning"),
    ("My dog is called Rex", "My dog is named Rex"),
]
CONFLICTS = [("I live in Porto", "I live in Lisbon"), ("I work as a nurse", "I work as a teacher")]
LOOKALIKES = ["Room 12 has the projector", "Room 14 has the projector"]
KEPT_ALONE = ["My sister Lena lives in Lisbon", "I am allergic to peanuts"]


def seed(store: Store, embedder: Any) -> dict[str, MemoryItem]:
    cube = store.cubes.list()[0]
    now = time.time()
    news: list[NewMemory] = []
    for i, (old, new) in enumerate([*DUPLICATES, *CONFLICTS]):
        news.append(NewMemory(old, created_at=now - 30 * DAY + i, valid_from=now - 30 * DAY + i))
        news.append(NewMemory(new, created_at=now - 2 * DAY + i, valid_from=now - 2 * DAY + i))
    news += [NewMemory(t) for t in [*LOOKALIKES, *KEPT_ALONE]]
    # stale: unused for a year, unimportant; the pinned one of the same age stays
    news.append(NewMemory("I once parked on level 3", importance=0.1, created_at=now - 400 * DAY))
    news.append(
        NewMemory(
            "My PIN hint is the old flat", importance=0.1, pinned=True, created_at=now - 400 * DAY
        )
    )
    vecs = embedder.embed([n.text for n in news])
    added = store.memories.add_many(cube, news, vecs, embed_model=embedder.model_id, dedupe=False)
    # A year passes for the two old ones: nothing wrote or retrieved them since.
    with store.db.write() as w:
        w.execute(
            "UPDATE memory_items SET updated_at = created_at WHERE created_at < ?",
            (now - 300 * DAY,),
        )
    return {r.item.text: r.item for r in added}


def all_items(store: Store) -> dict[str, MemoryItem]:
    f = SearchFilters(statuses=("active", "archived", "deleted"))
    return {m.text: m for m in store.memories.list(f, limit=1000)}


def test_run_once_merges_duplicates_resolves_conflicts_and_loses_nothing(
    profile: Store, embedder: Any
) -> None:
    from memos_desktop.api import open_api
    from memos_desktop.config import Settings, resolve_paths

    seeded = seed(profile, embedder)
    # a long conversation (8 messages) for the summary job, through the API as a front end
    api = open_api(resolve_paths(), Settings(), embedder_factory=lambda: embedder)
    turns = [
        ("I just adopted a cat named Miso", "Congratulations!"),
        ("Miso is two years old", "A young cat then."),
        ("I bought her a red collar", "Nice."),
        ("She sleeps on my desk", "Cats love warm places."),
    ]
    convo = [
        {"role": r, "content": c} for u, a in turns for r, c in (("user", u), ("assistant", a))
    ]
    api.add(convo)
    api.close()
    active_before = profile.memories.count(SearchFilters(statuses=("active",)))

    r = cli("daemon", "run-once")
    assert r.returncode == 0, r.stderr
    assert "merged 2 duplicates" in r.stdout and "resolved 2 conflicts" in r.stdout
    assert "summarised 1 session" in r.stdout and "archived 1 stale memory" in r.stdout

    items = all_items(profile)
    assert set(seeded) <= set(items)  # nothing purged
    for old, new in [*DUPLICATES, *CONFLICTS]:
        pair = [items[old], items[new]]
        active = [m for m in pair if m.status == "active"]
        archived = [m for m in pair if m.status == "archived"]
        assert len(active) == 1 and len(archived) == 1, (old, new)
        assert archived[0].superseded_by == active[0].id
        last = profile.memories.history(archived[0].id)[-1]
        assert last.change == "supersede" and "daemon" in last.reason
    assert items["I really love green tea in the morning"].status == "active"  # more words kept
    assert items["I live in Lisbon"].status == "active"  # the newer value
    assert items["I work as a teacher"].status == "active"
    for text in [*LOOKALIKES, *KEPT_ALONE, "My PIN hint is the old flat"]:
        assert items[text].status == "active", text
    stale = items["I once parked on level 3"]
    assert stale.status == "archived" and stale.superseded_by is None
    assert "not used for" in profile.memories.history(stale.id)[-1].reason

    summaries = [m for m in items.values() if m.type == "summary"]
    assert len(summaries) == 1
    s = summaries[0]
    assert s.key.startswith("summary:") and "Miso" in s.text
    assert len([src for src in s.sources if src.kind == "conversation"]) == 8
    assert profile.memories.count(SearchFilters(statuses=("active",))) < active_before + 1

    # a second run finds nothing more to merge or resolve (the jobs are idempotent)
    again = cli("daemon", "run-once")
    assert again.returncode == 0
    assert "merged" not in again.stdout and "resolved" not in again.stdout
