"""Time in questions: "last week", "in May", "two years ago", "this summer" become a time window,
and the tense of a question ("where do I live" / "where did I live") says whether states that
have ended are wanted.

Design rules:
- English phrases only, resolved against the moment of asking (``now``, UTC dates). The windows
  are generous (a "last week" question may be about something said ten days ago): search boosts
  what falls inside them, it never filters the rest away.
- Anchors that need a search of their own ("before I moved") are not resolved; their tense still
  counts.
- Pure functions, no model: cheap enough for every search.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

DAY = 86400.0
MONTHS = {
    name: i
    for i, names in enumerate(
        [
            (),
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
SEASONS = {"spring": (3, 6), "summer": (6, 9), "autumn": (9, 12), "fall": (9, 12)}
WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_NUM = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "couple of": 2,
    "few": 3,
}
_UNIT = {"day": 1.0, "week": 7.0, "month": 30.5, "year": 365.25}
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_NUM_RE = r"\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|couple of|few"

_PAST = re.compile(
    r"\b(did|was|were|had|used to|before|previous(ly)?|former(ly)?|ago|old|first|originally|"
    r"back (then|when|in)|any ?more|no longer|last|earlier|once)\b"
)
_PRESENT = re.compile(
    r"\b(now|currently|current|still|these days|at the moment|nowadays|today|"
    r"do|does|am|is|are|have|has)\b"
)


_INTRINSICALLY_PAST = re.compile(r"\b(ago|yesterday|recently|lately|the other day)\b")


@dataclass(frozen=True)
class TimeQuery:
    """What a question says about time: a window ``[start, end)`` (epoch seconds) or None, and
    its tense: "past" (ended states are wanted), "present" (they are not) or None."""

    window: tuple[float, float] | None = None
    tense: str | None = None


def _ts(d: dt.date | dt.datetime) -> float:
    if isinstance(d, dt.datetime):
        return d.replace(tzinfo=dt.UTC).timestamp()
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()


def _month_start(year: int, month: int) -> dt.date:
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    return dt.date(year, month, 1)


def _month_window(year: int, month: int, pad_days: float = 3.0) -> tuple[float, float]:
    a = _ts(_month_start(year, month)) - pad_days * DAY
    b = _ts(_month_start(year, month + 1)) + pad_days * DAY
    return a, b


def _window(q: str, now: float) -> tuple[float, float] | None:
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    t0 = _ts(today)
    if re.search(r"\byesterday\b", q):
        return t0 - 1.5 * DAY, t0 + 0.5 * DAY
    if re.search(r"\b(today|this morning|tonight|this evening)\b", q):
        return t0 - 0.5 * DAY, now + DAY
    m = re.search(rf"\b({_NUM_RE})\s+(day|week|month|year)s?\s+ago\b", q)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else _NUM[m.group(1)]
        unit = _UNIT[m.group(2)] * DAY
        centre = now - n * unit
        half = max(unit * 0.75, 1.5 * DAY)
        return centre - half, centre + half
    m = re.search(rf"\b(last|past|previous)\s+({_NUM_RE})\s+(day|week|month|year)s?\b", q)
    if m:
        n = int(m.group(2)) if m.group(2).isdigit() else _NUM[m.group(2)]
        return now - n * _UNIT[m.group(3)] * DAY - DAY, now + DAY
    m = re.search(r"\b(last|this|past)\s+(week|weekend|month|year)\b", q)
    if m:
        which, period = m.groups()
        if period == "week":
            return (now - 14 * DAY, now + DAY) if which == "last" else (now - 8 * DAY, now + DAY)
        if period == "weekend":
            sat = today - dt.timedelta(days=(today.weekday() - 5) % 7)
            if which == "last" and sat == today:
                sat -= dt.timedelta(days=7)
            return _ts(sat) - 0.5 * DAY, _ts(sat) + 2.5 * DAY
        if period == "month":
            if which == "last":
                return _month_window(today.year, today.month - 1)
            return _ts(_month_start(today.year, today.month)) - 3 * DAY, now + DAY
        if which == "last":
            return _ts(dt.date(today.year - 1, 1, 1)), _ts(dt.date(today.year, 1, 1))
        return _ts(dt.date(today.year, 1, 1)), now + DAY
    m = re.search(r"\b(last|this|past)\s+(spring|summer|autumn|fall|winter)\b", q)
    if m:
        which, season = m.groups()
        if season == "winter":
            # December-February; "this winter" is the coming or current one from September on
            this_dec = today.year if today.month >= 9 else today.year - 1
            winter = today.month >= 9 or today.month <= 2
            y = this_dec - 1 if which == "last" and winter else this_dec
            return _ts(dt.date(y, 12, 1)), _ts(dt.date(y + 1, 3, 1))
        a, b = SEASONS[season]
        y = today.year
        if which == "last" and today.month < b:
            y -= 1  # the last one that is over
        return _ts(dt.date(y, a, 1)), _ts(_month_start(y, b))
    m = re.search(rf"\b(?:in|during|since|of|from)?\s*\b({_MONTH_RE})\b\.?(?:\s+(\d{{4}}))?", q)
    if m and not (m.group(1) == "may" and not m.group(2) and not _may_is_month(q)):
        month = MONTHS[m.group(1)]
        if m.group(2):
            year = int(m.group(2))
        else:
            year = today.year if month <= today.month else today.year - 1
        return _month_window(year, month)
    m = re.search(r"\b(?:in|during|since|of)\s+((?:19|20)\d{2})\b", q)
    if m:
        y = int(m.group(1))
        return _ts(dt.date(y, 1, 1)) - 3 * DAY, _ts(dt.date(y + 1, 1, 1)) + 3 * DAY
    m = re.search(r"\b(?:last|on)\s+(" + "|".join(WEEKDAYS) + r")\b", q)
    if m:
        back = (today.weekday() - WEEKDAYS[m.group(1)]) % 7 or 7
        d = today - dt.timedelta(days=back)
        return _ts(d) - 0.5 * DAY, _ts(d) + 1.5 * DAY
    if re.search(r"\bchristmas\b", q):
        y = today.year if today.month == 12 and today.day >= 20 else today.year - 1
        return _ts(dt.date(y, 12, 15)), _ts(dt.date(y + 1, 1, 2))
    if re.search(r"\b(recently|lately|the other day)\b", q):
        return now - 30 * DAY, now + DAY
    return None


def _may_is_month(q: str) -> bool:
    """ "may" is a month only where a month fits: "in May", "May 3", "since May"."""
    return bool(
        re.search(r"\b(in|since|during|of|from|until|by|early|late|mid|last|this)\s+may\b", q)
        or re.search(r"\bmay\s+\d{1,2}(st|nd|rd|th)?\b", q)
    )


def parse(query: str, now: float) -> TimeQuery:
    q = " ".join(query.casefold().replace("’", "'").split())
    window = _window(q, now)
    tense: str | None = None
    if _PAST.search(q):
        tense = "past"
    elif _PRESENT.search(q):
        tense = "present"
    if window is not None and tense != "past" and not _INTRINSICALLY_PAST.search(q):
        # "a restaurant for this weekend", "plans for the summer": a request about what is
        # coming, not a question about what was said then.
        window = None
    return TimeQuery(window, tense)
