"""What the ranking must do for a person, with the real MiniLM embedder (not the weights)."""

from __future__ import annotations

import datetime as dt

from memos_desktop.api import MemosAPI
from memos_desktop.store.records import NewMemory

DAY = 86400.0


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def texts(res) -> list[str]:
    return [h.item.text for h in res.hits]


def test_a_preference_is_found_for_a_request_that_shares_no_word_with_it(api: MemosAPI) -> None:
    filler = [
        NewMemory(text=t, type="event")
        for t in (
            "Went to the dentist on Tuesday, no cavities.",
            "The printer at work jammed again during the quarterly review.",
            "Watched the football with my brother, great match on Friday.",
            "Booked the car in for its MOT next month.",
            "Read half of a novel about lighthouse keepers on the train.",
            "Friday dinner plans fell through, everyone was too tired.",
            "My friend opened a bakery near the station on Friday.",
            "Lunch meeting with the new manager ran long on Friday.",
        )
    ]
    api.add(
        [
            *filler,
            NewMemory(text="I am vegetarian and I can't stand spicy food.", type="preference"),
        ]
    )
    res = api.search("recommend a restaurant for Friday", top_k=5)
    # "Friday" matches four events by word; the diet matches none of the words, but it is what
    # the request needs.
    assert "I am vegetarian and I can't stand spicy food." in texts(res)


def test_a_time_phrase_narrows_results(api: MemosAPI) -> None:
    asked = ts("2026-06-20T10:00")
    api.add(
        [
            NewMemory(
                text="Bought a new rain jacket.", type="event", created_at=ts("2026-06-16T09:00")
            ),
            NewMemory(
                text="Bought a secondhand bike.", type="event", created_at=ts("2026-03-02T09:00")
            ),
            NewMemory(
                text="Bought concert tickets for the autumn.",
                type="event",
                created_at=ts("2025-11-20T09:00"),
            ),
        ]
    )
    everything = api.search("what did I buy", top_k=3, now=asked)
    assert len(everything.hits) == 3
    last_week = api.search("what did I buy last week", top_k=3, now=asked)
    assert texts(last_week)[0] == "Bought a new rain jacket."
    in_march = api.search("what did I buy in March", top_k=3, now=asked)
    assert texts(in_march)[0] == "Bought a secondhand bike."


def test_an_ended_state_gives_way_to_the_current_one_and_answers_the_past(api: MemosAPI) -> None:
    moved = ts("2026-02-01T00:00")
    api.add(
        [
            NewMemory(
                text="I live in Lisbon.",
                type="fact",
                created_at=ts("2024-05-01T00:00"),
                valid_from=ts("2024-05-01T00:00"),
                valid_to=moved,
            ),
            NewMemory(text="I live in Porto.", type="fact", created_at=moved, valid_from=moved),
        ]
    )
    now = ts("2026-06-01T00:00")
    assert texts(api.search("Where do I live now?", top_k=2, now=now))[0] == "I live in Porto."
    assert texts(api.search("Where did I live before?", top_k=2, now=now))[0] == "I live in Lisbon."
