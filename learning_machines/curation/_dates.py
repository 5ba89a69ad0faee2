"""Relative dates in conversation ("last Tuesday", "3 days ago") resolved against a turn's time.

Pure functions, no I/O. The turn's time (``now``) is the reference: "yesterday" said in a turn on
2026-03-10 is 2026-03-09, whenever the turn is processed. Conventions, chosen to be predictable:

- ``last <weekday>``: the most recent such day strictly before today (on a Tuesday, "last
  Tuesday" is a week ago). ``next <weekday>``: the first such day strictly after today.
  ``this <weekday>``: that day in the current Monday–Sunday week. A bare ``on <weekday>`` is
  left alone (it is as often past as future).
- ``last/this/next week|month|year``: the first day of that period.
- ``in <Month>`` / ``this <Month>``: that month of the turn's year; ``last <Month>``: the most
  recent one strictly before the current month; ``next <Month>``: the first one after it.
- ``N days|weeks|months|years ago`` and ``in N …`` / ``N … from now``, with digits or number words
  ("two weeks ago", "a month ago", "a couple of days ago").
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

__all__ = ["ResolvedDate", "annotate_dates", "resolve_date", "resolve_dates"]

Granularity = Literal["day", "week", "month", "year"]

_WEEKDAYS = {name: i for i, name in enumerate(calendar.day_name)}
_WEEKDAYS_LOWER = {name.lower(): i for name, i in _WEEKDAYS.items()}
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "a couple of": 2, "a couple": 2, "couple of": 2,
}  # fmt: skip

_NUM = (
    r"(?P<num>\d{1,3}|a couple of|a couple|couple of|an|a|"
    + "|".join(k for k in _NUMBERS if " " not in k and k not in ("a", "an"))
    + ")"
)
_UNIT = r"(?P<unit>day|week|month|year)s?"
_WD = r"(?P<wd>" + "|".join(_WEEKDAYS_LOWER) + r")"
_MON = r"(?P<mon>" + "|".join(_MONTHS) + r")"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ago", re.compile(rf"\b{_NUM}\s+{_UNIT}\s+ago\b", re.I)),
    ("from_now", re.compile(rf"\b(?:in\s+)?{_NUM}\s+{_UNIT}\s+from\s+(?:now|today)\b", re.I)),
    ("in_n", re.compile(rf"\bin\s+{_NUM}\s+{_UNIT}\b", re.I)),
    ("day_before", re.compile(r"\bthe\s+day\s+before\s+yesterday\b", re.I)),
    ("day_after", re.compile(r"\bthe\s+day\s+after\s+tomorrow\b", re.I)),
    ("last_night", re.compile(r"\blast\s+night\b", re.I)),
    ("rel_wd", re.compile(rf"\b(?P<rel>last|this|next|coming|past)\s+{_WD}\b", re.I)),
    ("rel_period", re.compile(r"\b(?P<rel>last|this|next)\s+(?P<period>week|month|year)\b", re.I)),
    ("rel_mon", re.compile(rf"\b(?P<rel>last|this|next|in)\s+{_MON}\b", re.I)),
    ("weekend", re.compile(r"\b(?P<rel>last|this|next)\s+weekend\b", re.I)),
    ("yesterday", re.compile(r"\byesterday\b", re.I)),
    ("tomorrow", re.compile(r"\btomorrow\b", re.I)),
    ("today", re.compile(r"\b(?:today|tonight|this\s+(?:morning|afternoon|evening))\b", re.I)),
]


@dataclass(frozen=True, kw_only=True)
class ResolvedDate:
    """A relative date expression found in a text, and the calendar date it means."""

    text: str
    """The expression as written (``"last Tuesday"``)."""
    start: int
    """Its start offset in the text."""
    end: int
    """Its end offset in the text."""
    date: date
    """The day it resolves to (the first day, for a week, month or year)."""
    granularity: Granularity
    """How precise it is: ``"day"``, ``"week"``, ``"month"`` or ``"year"``."""

    def as_datetime(self, like: datetime) -> datetime:
        """Midnight of :attr:`date` in the time zone of ``like`` (for ``valid_from``)."""
        return datetime.combine(self.date, time(0), tzinfo=like.tzinfo)


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    day = min(d.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


def _number(raw: str) -> int:
    raw = " ".join(raw.lower().split())
    return int(raw) if raw.isdigit() else _NUMBERS[raw]


def _shift(today: date, n: int, unit: str) -> tuple[date, Granularity]:
    if unit == "day":
        return today + timedelta(days=n), "day"
    if unit == "week":
        return today + timedelta(weeks=n), "day"
    if unit == "month":
        return _add_months(today, n), "day"
    return _add_months(today, 12 * n), "day"


def _resolve(kind: str, m: re.Match[str], today: date) -> tuple[date, Granularity]:
    g = m.groupdict()
    if kind == "ago":
        return _shift(today, -_number(g["num"]), g["unit"].lower())
    if kind in ("from_now", "in_n"):
        return _shift(today, _number(g["num"]), g["unit"].lower())
    if kind == "day_before":
        return today - timedelta(days=2), "day"
    if kind == "day_after":
        return today + timedelta(days=2), "day"
    if kind in ("last_night", "yesterday"):
        return today - timedelta(days=1), "day"
    if kind == "tomorrow":
        return today + timedelta(days=1), "day"
    if kind == "today":
        return today, "day"
    rel = g.get("rel", "").lower()
    if kind == "rel_wd":
        target = _WEEKDAYS_LOWER[g["wd"].lower()]
        if rel in ("last", "past"):
            back = (today.weekday() - target) % 7 or 7
            return today - timedelta(days=back), "day"
        if rel in ("next", "coming"):
            ahead = (target - today.weekday()) % 7 or 7
            return today + timedelta(days=ahead), "day"
        return today + timedelta(days=target - today.weekday()), "day"
    if kind == "weekend":
        saturday = today + timedelta(days=5 - today.weekday())
        offset = {"last": -7, "this": 0, "next": 7}[rel]
        if rel == "last" and today.weekday() >= 5:
            offset = -7
        return saturday + timedelta(days=offset), "day"
    if kind == "rel_period":
        period = g["period"].lower()
        step = {"last": -1, "this": 0, "next": 1}[rel]
        if period == "week":
            monday = today - timedelta(days=today.weekday())
            return monday + timedelta(weeks=step), "week"
        if period == "month":
            return _add_months(today.replace(day=1), step), "month"
        return date(today.year + step, 1, 1), "year"
    # rel_mon
    month = _MONTHS[g["mon"].lower()]
    year = today.year
    if rel == "last":
        year = today.year if month < today.month else today.year - 1
    elif rel == "next":
        year = today.year if month > today.month else today.year + 1
    return date(year, month, 1), "month"


def resolve_dates(text: str, *, now: datetime | date) -> list[ResolvedDate]:
    """Every relative date expression in ``text``, resolved against ``now``, in text order.

    ``now`` is the turn's time; its own calendar day (in its own time zone) is "today".
    Overlapping matches keep the earliest, longest one ("in two weeks" is one expression).

    >>> from datetime import date
    >>> [r.date.isoformat() for r in resolve_dates("I moved last Tuesday", now=date(2026, 3, 12))]
    ['2026-03-10']
    """
    today = now.date() if isinstance(now, datetime) else now
    found: list[ResolvedDate] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            day, granularity = _resolve(kind, m, today)
            taken.append((m.start(), m.end()))
            found.append(
                ResolvedDate(
                    text=m.group(0), start=m.start(), end=m.end(), date=day,
                    granularity=granularity,
                )
            )  # fmt: skip
    return sorted(found, key=lambda r: r.start)


def resolve_date(expression: str, *, now: datetime | date) -> date | None:
    """Return the date of the first relative expression in ``expression``, or ``None`` if none."""
    found = resolve_dates(expression, now=now)
    return found[0].date if found else None


def annotate_dates(text: str, *, now: datetime | date) -> str:
    """``text`` with each relative date followed by its resolved date, for storing a learning.

    ``"moved last Tuesday"`` said on 2026-03-12 becomes ``"moved last Tuesday (2026-03-10)"``, so
    the learning stays true when read months later. Month and year granularity print
    ``2026-03`` and ``2026``.
    """
    out: list[str] = []
    cursor = 0
    for r in resolve_dates(text, now=now):
        if r.granularity == "month":
            label = r.date.strftime("%Y-%m")
        elif r.granularity == "year":
            label = str(r.date.year)
        elif r.granularity == "week":
            label = f"week of {r.date.isoformat()}"
        else:
            label = r.date.isoformat()
        out.append(text[cursor : r.end])
        out.append(f" ({label})")
        cursor = r.end
    out.append(text[cursor:])
    return "".join(out)
