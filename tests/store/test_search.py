from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.memory.search import HybridSearch, SearchParams
from memos_desktop.store.profile import Store, open_profile
from memos_desktop.store.records import NewMemory, SearchFilters
from memos_desktop.store.search import fts_query
from tests.store.conftest import DIM, near, vec


@pytest.fixture(params=["sqlite-vec", "resident"])
def store(request: pytest.FixtureRequest, store: Store) -> Iterator[Store]:
    """Every search test runs on both KNN paths: vec0 in SQLite and the resident index."""
    store.searcher.resident = request.param == "resident"
    yield store


# For tests of which rows the indexes see (random vectors, unrelated to the query): the
# relevance floor would hide them, and is tested on its own below.
NO_FLOOR = SearchParams(relevance_floor=0.0)


def hybrid(store: Store) -> HybridSearch:
    """The memory layer's ranking over this store's candidates."""
    return HybridSearch(store.searcher, store.memories)


def cube(store: Store):
    return store.cubes.list()[0]


def texts(hits):
    return [h.item.text for h in hits]


def seed(store: Store):
    c = cube(store)
    data = [
        ("Alice adopted a dog named Rex", "fact", 1, ("pets",)),
        ("Alice is allergic to peanuts", "fact", 2, ("health",)),
        ("Alice prefers short answers", "preference", 3, ()),
        ("Bob went hiking in the Alps last summer", "event", 4, ("travel",)),
        ("The weather was rainy on Tuesday", "episode", 5, ()),
    ]
    store.memories.add_many(
        c,
        [NewMemory(text=t, type=ty, tags=tags) for t, ty, _, tags in data],  # type: ignore[arg-type]
        [vec(s) for *_, s, _ in data],
    )
    return c


def test_fts_query_is_safe_and_drops_stopwords() -> None:
    assert fts_query('what is "Alice\'s" dog* called?') == '"alice" OR "s" OR "dog" OR "called"'
    assert fts_query("the of and") is None


def test_lexical_and_vector_hits_fuse(store: Store) -> None:
    c = seed(store)
    # word match only
    hits = hybrid(store).search("peanuts", None, None, SearchFilters(cube_ids=(c.id,)))
    assert texts(hits) == ["Alice is allergic to peanuts"]
    assert hits[0].fts_rank == 0 and hits[0].vec_rank is None
    # vector match only: query vector near "hiking" memory, words match nothing
    hits = hybrid(store).search(
        "mountains", near(vec(4), 0.1, 9), DIM, SearchFilters(cube_ids=(c.id,)), top_k=3
    )
    assert texts(hits)[0] == "Bob went hiking in the Alps last summer"
    assert hits[0].fts_rank is None and hits[0].vec_rank == 0
    # both agree -> top with both ranks
    hits = hybrid(store).search(
        "Alice dog", near(vec(1), 0.1, 8), DIM, SearchFilters(cube_ids=(c.id,))
    )
    assert texts(hits)[0] == "Alice adopted a dog named Rex"
    assert hits[0].fts_rank == 0 and hits[0].vec_rank == 0
    assert hits[0].score > hits[1].score


def test_filters_push_down(store: Store) -> None:
    c = seed(store)
    q = near(vec(1), 0.1, 7)
    f = SearchFilters(cube_ids=(c.id,), types=("preference",))
    assert texts(hybrid(store).search("Alice", q, DIM, f)) == ["Alice prefers short answers"]
    f = SearchFilters(cube_ids=(c.id,), tags=("health",))
    assert texts(hybrid(store).search("Alice", q, DIM, f)) == ["Alice is allergic to peanuts"]
    forgotten = store.memories.list(SearchFilters(types=("preference",)))[0]
    store.memories.forget(forgotten.id)
    f = SearchFilters(cube_ids=(c.id,))
    assert "Alice prefers short answers" not in texts(
        hybrid(store).search("Alice answers", q, DIM, f)
    )
    f = SearchFilters(cube_ids=(c.id,), statuses=("deleted",))
    assert texts(hybrid(store).search("Alice answers", q, DIM, f)) == [
        "Alice prefers short answers"
    ]


def test_tag_filter_finds_rare_items_beyond_first_knn_page(store: Store) -> None:
    c = cube(store)
    n = 600
    store.memories.add_many(
        c,
        [
            NewMemory(text=f"filler memory {i}", tags=("rare",) if i == 599 else ())
            for i in range(n)
        ],
        [vec(1000 + i) for i in range(n)],
    )
    f = SearchFilters(cube_ids=(c.id,), tags=("rare",))
    hits = hybrid(store).search("zzz", vec(1), DIM, f, params=NO_FLOOR)
    assert texts(hits) == ["filler memory 599"]


def test_time_range_and_validity_filters(store: Store) -> None:
    c = cube(store)
    store.memories.add_many(
        c,
        [
            NewMemory(text="lived in Rome", created_at=100.0, valid_from=0.0, valid_to=500.0),
            NewMemory(text="lives in Berlin", created_at=600.0, valid_from=500.0),
        ],
        [vec(1), vec(2)],
    )
    base = SearchFilters(cube_ids=(c.id,))
    q = vec(3)
    assert texts(
        hybrid(store).search("lives", q, DIM, SearchFilters(**{**base.__dict__, "since": 500.0}))
    ) == ["lives in Berlin"]
    assert texts(
        hybrid(store).search("lived", q, DIM, SearchFilters(**{**base.__dict__, "until": 500.0}))
    ) == ["lived in Rome"]
    at = SearchFilters(**{**base.__dict__, "valid_at": 250.0})
    assert texts(hybrid(store).search("Rome Berlin", q, DIM, at)) == ["lived in Rome"]


def test_near_duplicates_are_collapsed(store: Store) -> None:
    c = cube(store)
    v = vec(42)
    store.memories.add_many(
        c,
        [
            NewMemory(text="Gina's birthday is May 3"),
            NewMemory(text="Gina's birthday is on May 3"),
            NewMemory(text="Gina likes jazz"),
        ],
        [v, near(v, 0.05, 1), vec(43)],
    )
    f = SearchFilters(cube_ids=(c.id,))
    hits = hybrid(store).search("Gina birthday", v, DIM, f)
    assert len([h for h in hits if "birthday" in h.item.text]) == 1
    off = SearchParams(dedupe_similarity=1.01)
    hits = hybrid(store).search("Gina birthday", v, DIM, f, params=off)
    assert len([h for h in hits if "birthday" in h.item.text]) == 2


def test_recency_and_importance_boosts_break_ties(store: Store) -> None:
    c = cube(store)
    now = time.time()
    store.memories.add_many(
        c,
        [
            NewMemory(text="note alpha one", created_at=now - 400 * 86400, importance=0.5),
            NewMemory(text="note alpha two", created_at=now, importance=0.5),
        ],
        [vec(1), vec(1)],
    )
    f = SearchFilters(cube_ids=(c.id,))
    no_dedupe = SearchParams(dedupe_similarity=1.01)
    hits = hybrid(store).search("alpha", None, None, f, params=no_dedupe, now=now)
    assert hits[0].item.created_at == now  # newer wins the tie
    hits = hybrid(store).search(
        "alpha",
        None,
        None,
        f,
        params=SearchParams(dedupe_similarity=1.01, recency_weight=0.0),
        now=now,
    )
    assert hits[0].score == hits[1].score
    imp = store.memories.list(f, order="created_at ASC")[0]
    store.memories.update(imp.id, importance=1.0)
    hits = hybrid(store).search("alpha", None, None, f, params=no_dedupe, now=now)
    assert hits[0].item.id == imp.id  # importance outweighs a 400-day age gap at defaults


def test_cube_partition_isolates(store: Store) -> None:
    c1 = cube(store)
    other = store.cubes.create(
        store.users.list()[0], "work", embed_model="test-embed", embed_dim=DIM
    )
    store.memories.add(c1, NewMemory(text="home secret"), vec(1))
    store.memories.add(other, NewMemory(text="work secret"), vec(1), dedupe=True)
    hits = hybrid(store).search("secret", vec(1), DIM, SearchFilters(cube_ids=(other.id,)))
    assert texts(hits) == ["work secret"]


def test_resident_index_sees_writes_from_another_process_connection(store: Store) -> None:
    c = cube(store)
    store.searcher.resident = True
    store.memories.add(c, NewMemory(text="first"), vec(1))
    f = SearchFilters(cube_ids=(c.id,))
    assert texts(hybrid(store).search("zzz", vec(2), DIM, f, params=NO_FLOOR)) == ["first"]
    other = open_profile(resolve_paths(), "default", Settings())
    try:
        added = other.memories.add(c, NewMemory(text="second"), vec(2)).item
        assert texts(hybrid(store).search("zzz", vec(2), DIM, f, params=NO_FLOOR))[0] == "second"
        other.memories.forget(added.id)
        assert texts(hybrid(store).search("zzz", vec(2), DIM, f, params=NO_FLOOR)) == ["first"]
        other.memories.purge([store.memories.list(f)[0].id])
        assert hybrid(store).search("zzz", vec(2), DIM, f, params=NO_FLOOR) == []
    finally:
        other.close()


def test_context_is_searchable_but_not_the_memory(store: Store) -> None:
    c = cube(store)
    store.memories.add_many(
        c,
        [
            NewMemory(
                text="Melanie: Yes, it was wonderful!",
                context="Caroline: Did you enjoy the pottery class?",
            ),
            NewMemory(text="Jon: the weather is fine"),
        ],
        [vec(1), vec(2)],
    )
    hits = hybrid(store).search("pottery class", None, None, SearchFilters(cube_ids=(c.id,)))
    assert texts(hits) == ["Melanie: Yes, it was wonderful!"]
    assert hits[0].item.context.startswith("Caroline")
    # with the context weighted 0 in BM25, a context-only match scores nothing
    ranked = store.searcher.fts("pottery", SearchFilters(cube_ids=(c.id,)), 5, context_weight=0.0)
    assert [round(score, 6) for _, score in ranked] == [0.0]
    ranked = store.searcher.fts("pottery", SearchFilters(cube_ids=(c.id,)), 5, context_weight=0.6)
    assert ranked[0][1] < 0  # FTS5's bm25 is negative: lower is better


def test_relevance_floor_hides_what_is_far_weaker_than_the_best_match(store: Store) -> None:
    c = cube(store)
    home = vec(1)
    store.memories.add_many(
        c,
        [
            NewMemory(text="lives in Porto"),
            NewMemory(text="is vegan"),
            NewMemory(text="owns a dog"),
        ],
        [near(home, 0.3, 2), vec(3), vec(4)],
    )
    f = SearchFilters(cube_ids=(c.id,))
    # Meaning alone: only the similar one passes the floor (the others are ~orthogonal).
    assert texts(hybrid(store).search("where is home", home, DIM, f)) == ["lives in Porto"]
    # A word match always counts, however far the vectors are.
    assert "is vegan" in texts(hybrid(store).search("vegan food", home, DIM, f))
    # The floor is a setting: off, every candidate comes back.
    assert len(hybrid(store).search("where is home", home, DIM, f, params=NO_FLOOR)) == 3
    high = SearchParams(relevance_floor=1.0)
    # The floor is relative to the best match: at 1.0 only the best one is left.
    assert texts(hybrid(store).search("where is home", home, DIM, f, params=high)) == [
        "lives in Porto"
    ]


def test_one_shared_word_is_not_enough_for_a_question(store: Store) -> None:
    c = cube(store)
    q = vec(1)
    store.memories.add_many(
        c,
        [NewMemory(text="the dog park closes early"), NewMemory(text="my dog is called Rex")],
        [vec(7), near(q, 0.3, 8)],
    )
    f = SearchFilters(cube_ids=(c.id,))
    # A question: "park" alone, in a memory about something else, does not make it relevant.
    hits = hybrid(store).search("what is the name of my dog at the park", q, DIM, f)
    assert texts(hits) == ["my dog is called Rex"]
    # A keyword lookup finds every memory with the word.
    assert "the dog park closes early" in texts(hybrid(store).search("park", q, DIM, f))
    assert set(texts(hybrid(store).search("dog", q, DIM, f))) == {
        "the dog park closes early",
        "my dog is called Rex",
    }


def test_vectors_of_reads_the_stored_vectors(store: Store) -> None:
    c = cube(store)
    added = store.memories.add_many(
        c, [NewMemory(text=f"note {i}") for i in range(5)], [vec(50 + i) for i in range(5)]
    )
    rowids = [r.item.rowid for r in added]
    got = store.searcher.vectors_of([*rowids, 999_999], DIM)
    assert set(got) == set(rowids)  # an unknown rowid has none
    for i, r in enumerate(rowids):
        assert float(np.dot(got[r], vec(50 + i))) > 0.9999


def test_the_preference_channel_reuses_the_main_scan_and_finds_the_same(store: Store) -> None:
    """The nearest preferences come from the main KNN's list when it holds enough of them (no
    second scan), and from a second, type-filtered scan when it does not; both give what the
    scan alone gives."""
    c = cube(store)
    topic = vec("topic")
    items, vecs = [], []
    for i in range(60):  # a crowd near the query, one in five a preference
        kind = "preference" if i % 5 == 0 else "fact"
        items.append(NewMemory(text=f"near {kind} {i}", type=kind))
        vecs.append(near(topic, 0.6, i))
    for i in range(3):  # preferences far from the query: not in the main list
        items.append(NewMemory(text=f"far preference {i}", type="preference"))
        vecs.append(vec(1000 + i))
    store.memories.add_many(c, items, np.stack(vecs))
    h = hybrid(store)
    f = SearchFilters(cube_ids=(c.id,))
    params = SearchParams(preference_slots=3)
    scans: list[SearchFilters] = []
    real = store.searcher.candidates

    def counting(*a, **kw):  # type: ignore[no-untyped-def]
        scans.append(a[3])
        return real(*a, **kw)

    store.searcher.candidates = counting  # type: ignore[method-assign]
    q = near(topic, 0.3, 99)
    alone = h.preference_channel(q, DIM, f, params)
    assert len(scans) == 1 and scans[0].types == ("preference", "instruction")
    main = real("", q, DIM, f, 40, lexical=False).dense
    scans.clear()
    assert h.preference_channel(q, DIM, f, params, main) == alone
    assert scans == []  # the main list had three preferences: no second scan
    assert all(store.memories.get_many([r])[r].type == "preference" for r, _ in alone)

    only_facts = [(r, d) for r, d in main if store.memories.get_many([r])[r].type == "fact"]
    assert h.preference_channel(q, DIM, f, params, only_facts[:10]) == alone
    assert len(scans) == 1  # too few preferences in the list: the type-filtered scan ran


def test_bm25_ranks_first_and_filters_after_yet_misses_nothing(store: Store) -> None:
    """BM25 ranks the best matches before the filters; when the filters drop most of them
    (another cube holds the best matches, the wanted type is rare) the filtered query still
    finds every memory that passes, in score order."""
    a = cube(store)
    b = store.cubes.create(store.users.list()[0], "other", embed_model=a.embed_model, embed_dim=DIM)
    store.memories.add_many(
        a, [NewMemory(text=f"garden garden note {i}") for i in range(300)], None, dedupe=False
    )
    few = [f"a garden plan for the balcony, number {i}" for i in range(5)]
    store.memories.add_many(b, [NewMemory(text=t) for t in few], None, dedupe=False)
    store.memories.add_many(a, [NewMemory(text="garden shed", type="event")], None, dedupe=False)

    got = store.searcher.fts("garden", SearchFilters(cube_ids=(b.id,)), 10)
    assert len(got) == 5
    items = store.memories.get_many([r for r, _ in got])
    assert {items[r].text for r, _ in got} == set(few)
    assert [s for _, s in got] == sorted(s for _, s in got)
    ev = store.searcher.fts("garden", SearchFilters(cube_ids=(a.id,), types=("event",)), 10)
    assert [store.memories.get_many([r])[r].text for r, _ in ev] == ["garden shed"]
    # when the best matches pass, they are the filtered query's best
    top = store.searcher.fts("garden", SearchFilters(cube_ids=(a.id,)), 10)
    assert len(top) == 10 and [s for _, s in top] == sorted(s for _, s in top)
