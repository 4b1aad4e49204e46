"""Time phrases in questions (memory/timeq.py) against a fixed moment of asking."""

from __future__ import annotations

import datetime as dt

import pytest

from memos_desktop.memory.timeq import parse

NOW = dt.datetime(2026, 10, 15, 12, tzinfo=dt.UTC).timestamp()


def day(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("question", "inside", "outside"),
    [
        ("What did I buy last week?", "2026-10-10", "2026-09-20"),
        ("Where did I travel in May 2025?", "2025-05-20", "2025-07-01"),
        ("what did I do in March", "2026-03-10", "2025-03-10"),
        ("Where did I go on holiday this summer?", "2026-07-20", "2025-07-20"),
        ("what did I do two weeks ago", "2026-10-01", "2026-10-14"),
        ("What did I eat yesterday", "2026-10-14T13:00", "2026-10-10"),
        ("where did I work in 2024", "2024-06-01", "2025-06-01"),
        ("What did I do last Saturday", "2026-10-10T15:00", "2026-10-03T15:00"),
    ],
)
def test_a_time_phrase_becomes_a_window(question: str, inside: str, outside: str) -> None:
    tq = parse(question, NOW)
    assert tq.window is not None and tq.tense == "past"
    a, z = tq.window
    assert a <= day(inside) < z
    assert not a <= day(outside) < z


@pytest.mark.parametrize(
    ("question", "tense"),
    [
        ("Where do I live now?", "present"),
        ("Am I still vegetarian?", "present"),
        ("Who was I married to?", "past"),
        ("Where did I work before Quanta?", "past"),
    ],
)
def test_tense(question: str, tense: str) -> None:
    assert parse(question, NOW).tense == tense
    assert parse(question, NOW).window is None


@pytest.mark.parametrize(
    "request_",
    ["Recommend a restaurant for this weekend", "Plan my Christmas dinner", "may I ask a thing"],
)
def test_a_request_about_what_is_coming_sets_no_window(request_: str) -> None:
    assert parse(request_, NOW).window is None
