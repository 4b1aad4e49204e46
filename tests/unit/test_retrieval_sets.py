"""The retrieval evaluation sets in bench/data/ (read by bench/retrieval_sets.py) are whole and
consistent: ids unique, every gold id a memory of the same person, dev and test disjoint, the
sizes the sets promise, times that make sense (every memory said before the question is asked).
A broken set gives wrong figures without any error, so these checks fail loudly instead."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from memos_desktop.store.records import MEMORY_TYPES

DATA = Path(__file__).resolve().parents[2] / "bench" / "data"
SETS = ("preferences", "changes")
MIN_QUERIES = {"preferences": 150, "changes": 100}
DEV = {"p01", "p02", "p03", "p04"}
# Words too common to count as shared between a request and what it needs.
STOP = set(
    "the and for you your with what that this have has had was were are not but can could "
    "should would will just about into from our out any some get got give tell make help me "
    "my an to of in on at is it be do does did how when where who which why there their them "
    "they he she his her we us up so or if as by all one new now these those than then been".split()
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def when(s: str) -> dt.datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s), f"not an ISO UTC time: {s!r}"
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def words(s: str) -> set[str]:
    return {t for t in re.findall(r"[^\W_]+", s.lower()) if len(t) >= 3 and t not in STOP}


@pytest.fixture(params=SETS)
def dataset(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load(request.param)


def test_ids_unique_and_gold_resolves(dataset: tuple[str, dict[str, Any]]) -> None:
    name, d = dataset
    persons = d["persons"]
    assert len({p["id"] for p in persons}) == len(persons)
    mem_ids: list[str] = []
    query_ids: list[str] = []
    for p in persons:
        own = {m["id"] for m in p["memories"]}
        assert len(own) == len(p["memories"]), f"{p['id']}: duplicate memory id"
        assert all(i.startswith(p["id"] + "-") for i in own), p["id"]
        # The store keeps one item per content hash: two equal texts would become one memory.
        texts = [" ".join(m["text"].casefold().split()) for m in p["memories"]]
        assert len(set(texts)) == len(texts), f"{p['id']}: two memories with the same text"
        mem_ids += own
        for q in p["queries"]:
            query_ids.append(q["id"])
            assert q["text"].strip(), q["id"]
            assert q["gold"], f"{q['id']}: no gold"
            assert len(set(q["gold"])) == len(q["gold"]), f"{q['id']}: gold listed twice"
            missing = set(q["gold"]) - own
            assert not missing, f"{q['id']}: gold {sorted(missing)} not among {p['id']}'s memories"
            assert q["kind"] in d["query_kinds"], f"{q['id']}: unknown kind {q['kind']!r}"
    assert len(set(mem_ids)) == len(mem_ids), f"{name}: a memory id is used twice"
    assert len(set(query_ids)) == len(query_ids), f"{name}: a query id is used twice"


def test_sizes(dataset: tuple[str, dict[str, Any]]) -> None:
    name, d = dataset
    persons = d["persons"]
    assert len(persons) >= 8
    assert sum(len(p["queries"]) for p in persons) >= MIN_QUERIES[name]
    if name == "preferences":
        for p in persons:
            assert 40 <= len(p["memories"]) <= 80, p["id"]
    for p in persons:
        assert len(p["queries"]) >= 10, p["id"]
        assert len(p["memories"]) >= 30, p["id"]


def test_splits_disjoint_dev_is_persons_1_to_4(dataset: tuple[str, dict[str, Any]]) -> None:
    _, d = dataset
    split = {p["id"]: p["split"] for p in d["persons"]}
    assert set(split.values()) == {"dev", "test"}
    for pid, s in split.items():
        assert s == ("dev" if pid.rsplit("-", 1)[1] in DEV else "test"), pid
    dev = [p for p in d["persons"] if p["split"] == "dev"]
    test = [p for p in d["persons"] if p["split"] == "test"]
    assert len(dev) >= 4 and len(test) >= 4
    dev_mem = {m["id"] for p in dev for m in p["memories"]}
    test_mem = {m["id"] for p in test for m in p["memories"]}
    assert not dev_mem & test_mem
    dev_q = {q["id"] for p in dev for q in p["queries"]}
    test_q = {q["id"] for p in test for q in p["queries"]}
    assert not dev_q & test_q
    # Every query kind is measured in both halves.
    for part in (dev, test):
        assert {q["kind"] for p in part for q in p["queries"]} == set(d["query_kinds"])


def test_times_make_sense(dataset: tuple[str, dict[str, Any]]) -> None:
    name, d = dataset
    for p in d["persons"]:
        last_said = max(when(m["created_at"]) for m in p["memories"])
        for m in p["memories"]:
            assert m["type"] in MEMORY_TYPES, m["id"]
            created = when(m["created_at"])
            start = when(m["valid_from"]) if m.get("valid_from") else None
            end = when(m["valid_to"]) if m.get("valid_to") else None
            if start is not None:
                # Said about something that had begun by then (same day counts).
                assert start.date() <= created.date(), m["id"]
            if start is not None and end is not None:
                assert start < end, m["id"]
        for q in p["queries"]:
            # The person's memories all exist when the question is asked: no memory from the
            # question's future is in the store, so "now" is asked_at.
            assert when(q["asked_at"]) > last_said, q["id"]
        if name == "changes":
            first_said = min(when(m["created_at"]) for m in p["memories"])
            assert (last_said - first_said).days >= 600, f"{p['id']}: under two years"


def test_current_questions_point_at_facts_that_still_hold() -> None:
    d = load("changes")
    for p in d["persons"]:
        mem = {m["id"]: m for m in p["memories"]}
        for q in p["queries"]:
            assert set(q["gold"]) <= set(mem), f"{q['id']}: unknown gold"
            if q["kind"] == "current":
                ended = [g for g in q["gold"] if mem[g].get("valid_to")]
                assert not ended, f"{q['id']}: gold {ended} has ended (valid_to set)"
            if q["kind"] == "past":
                # A question about before a change needs something that is no longer true, or
                # the event that ended it.
                assert any(mem[g].get("valid_to") or mem[g]["type"] == "event" for g in q["gold"])


def test_preference_requests_share_few_words_with_what_they_need() -> None:
    d = load("preferences")
    shares = []
    for p in d["persons"]:
        mem = {m["id"]: m for m in p["memories"]}
        for q in p["queries"]:
            qw = words(q["text"])
            gw = set().union(*(words(mem[g]["text"]) for g in q["gold"]))
            assert q["text"].casefold() not in " ".join(
                mem[g]["text"].casefold() for g in q["gold"]
            )
            shares.append(len(qw & gw) / len(qw) if qw else 0.0)
    assert sum(shares) / len(shares) < 0.15
    assert sum(1 for s in shares if s == 0.0) / len(shares) > 0.5
