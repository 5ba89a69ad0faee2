"""Dates and periods a query names ("on 1 May, 2022", "in January", "the week before 16 June").

Pure functions, no I/O. Episodic ranking uses them to favour turns said within the period a
question names (:attr:`EpisodeRanking.date_boost`): "What did I tell you about the move in
March?" is about what was said in March, whatever words the answer uses.

Only explicit calendar dates are read; relative ones ("last week", "yesterday") depend on when
the question is asked and are left to the time boost of "when" questions. (Relative dates in
what is *learned* are resolved against the turn's time by ``curation/_dates.py``.)
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date, timedelta

__all__ = ["MAX_PERIODS", "MAX_QUERY_CHARS", "Period", "moved_day", "query_periods"]

_MONTH_NUMBERS = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
# Longest names first, so that "sept" is not read as "sep" + "t".
_MONTH = "|".join(sorted(_MONTH_NUMBERS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"
# "1 May, 2022", "8th December 2023"
_DAY_MONTH = re.compile(rf"\b{_DAY}\s+(?:of\s+)?({_MONTH})\b\.?(?:,?\s*{_YEAR}\b)?", re.I)
# "May 3, 2023", "Aug 15th", "December 1,2023"
_MONTH_DAY = re.compile(rf"\b({_MONTH})\.?\s+{_DAY}\b(?:,?\s*{_YEAR}\b)?", re.I)
# "early March 2023", "the second week of November", "January 2024", "in May"
_PART = (
    r"(early|late|mid|beginning\s+of|start\s+of|end\s+of|middle\s+of|"
    r"first\s+half\s+of|second\s+half\s+of|(?:first|second|third|fourth|last)\s+week\s+of)"
)
_MONTH_YEAR = re.compile(
    rf"\b(?:{_PART}\s+(?:the\s+)?)?({_MONTH})\b(?:,?\s*(?:of\s+)?{_YEAR}\b)?", re.I
)
_SEASON = re.compile(rf"\b(spring|summer|fall|autumn|winter)\s+(?:of\s+)?{_YEAR}\b", re.I)
_YEAR_ALONE = re.compile(rf"\b{_YEAR}\b")
# A month name that is also an English word counts only next to a date, a year or a preposition.
_WORD_MONTHS = frozenset({"may", "march", "mar", "jan", "dec", "sept", "aug", "jun", "jul"})
_MONTH_PREPOSITIONS = frozenset({"in", "of", "during", "since", "until", "through", "by"})
_BEFORE = re.compile(
    r"\b(?:(a|one|two|three|the)\s+)?(day|days|week|weeks|weekend|month|sunday|monday|tuesday|"
    r"wednesday|thursday|friday|saturday)?\s*(before|prior\s+to)\s*$",
    re.I,
)
_NUMBERS = {"a": 1, "one": 1, "the": 1, "two": 2, "three": 3}
_SPAN_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "weekend": 7, "month": 31}
_SEASON_MONTHS = {"spring": (3, 5), "summer": (6, 8), "fall": (9, 11), "autumn": (9, 11)}
#: The start of a query read for dates.
MAX_QUERY_CHARS = 2000
#: The most periods returned for one query.
MAX_PERIODS = 8
# When the query names no year, dates are placed in a leap year so that 29 February exists.
_ANY_YEAR = 2000


@dataclass(frozen=True, kw_only=True)
class Period:
    """Days a query names, first and last included."""

    start: date
    """The first day."""
    end: date
    """The last day."""
    any_year: bool = False
    """The query named no year: the same days of every year (``start``/``end`` lie in 2000)."""

    def holds(self, day: date, *, before_days: int = 0, after_days: int = 0) -> bool:
        """Tell whether ``day`` lies in the period, widened by the margins given.

        ``before_days`` widen it before its start and ``after_days`` after its end. Things are
        told after they happen, so a turn said a few days after the period still speaks of it;
        a day of margin on both sides absorbs time zones.
        """
        if not self.any_year:
            return moved_day(self.start, -before_days) <= day <= moved_day(self.end, after_days)
        return any(
            moved_day(p.start, -before_days) <= day <= moved_day(p.end, after_days)
            for p in (self.in_year(y) for y in (day.year - 1, day.year, day.year + 1))
        )

    def in_year(self, year: int) -> Period:
        """The same days in ``year`` (the period itself when the query named a year).

        A year outside what ``date`` can hold is brought to its nearest end (1 or 9999).
        """
        if not self.any_year:
            return self
        span = self.end.year - self.start.year
        year = min(max(year, MINYEAR), MAXYEAR - span)
        return Period(start=_in_year(self.start, year), end=_in_year(self.end, year + span))


def moved_day(day: date, days: int) -> date:
    """``day`` moved by ``days``, stopping at the first and last day ``date`` can hold."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def _in_year(day: date, year: int) -> date:
    last = calendar.monthrange(year, day.month)[1]
    return date(year, day.month, min(day.day, last))


def query_periods(query: str) -> tuple[Period, ...]:
    """The calendar periods ``query`` names, in the order it names them (none: ``()``).

    Reads days ("on 1 May, 2022", "May 3", "between August 11 and August 15 2023"), months
    ("in January 2024", "early March", "the second week of November"), seasons of a year
    ("summer 2021") and years ("in 2023"). "before <date>" reads as the span before it ("the
    week before 16 June": 9-16 June; plain "before": the two weeks before). A date that does
    not exist (31 February) is ignored.

    Only the first :data:`MAX_QUERY_CHARS` characters are read, and at most
    :data:`MAX_PERIODS` periods are returned: a message may be long (a pasted document), and
    reading every date in it would cost time in the turn without telling what it asks about.
    """
    query = query[:MAX_QUERY_CHARS]
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, int, Period]] = []

    def free(m: re.Match[str]) -> bool:
        return all(m.end() <= a or m.start() >= b for a, b in taken)

    def keep(m: re.Match[str], period: Period | None) -> None:
        taken.append((m.start(), m.end()))
        if period is not None:
            found.append((m.start(), m.end(), period))

    for pattern, day_group, month_group, year_group in (
        (_DAY_MONTH, 1, 2, 3),
        (_MONTH_DAY, 2, 1, 3),
    ):
        for m in pattern.finditer(query):
            if free(m):
                day = _date(m.group(year_group), m.group(month_group), m.group(day_group))
                keep(m, _before(query[: m.start()], day) if day else None)
    for m in _SEASON.finditer(query):
        if free(m):
            keep(m, _season(m.group(1).casefold(), int(m.group(2))))
    for m in _MONTH_YEAR.finditer(query):
        if free(m) and _is_month(query, m):
            keep(m, _month(m.group(2), m.group(3), m.group(1)))
    for m in _YEAR_ALONE.finditer(query):
        if free(m):
            year = int(m.group(1))
            keep(m, Period(start=date(year, 1, 1), end=date(year, 12, 31)))
    found.sort(key=lambda f: f[0])
    return tuple(_join_ranges(query, found)[:MAX_PERIODS])


def _date(year: str | None, month: str, day: str) -> Period | None:
    number = _MONTH_NUMBERS[month.casefold().rstrip(".")]
    try:
        when = date(int(year) if year else _ANY_YEAR, number, int(day))
    except ValueError:
        return None
    return Period(start=when, end=when, any_year=year is None)


def _before(prefix: str, day: Period) -> Period:
    m = _BEFORE.search(prefix)
    if not m:
        return day
    count = _NUMBERS.get((m.group(1) or "").casefold(), 1)
    unit = (m.group(2) or "").casefold()
    span = count * _SPAN_DAYS.get(unit, 7) if unit else 14
    return Period(start=day.start - timedelta(days=span), end=day.end, any_year=day.any_year)


def _is_month(query: str, m: re.Match[str]) -> bool:
    word = m.group(2)
    if word.casefold() not in _WORD_MONTHS or m.group(1) or m.group(3):
        return True
    before = query[: m.start(2)].split()
    if before and before[-1].casefold() in _MONTH_PREPOSITIONS:
        return True
    # "May" with a capital letter mid-sentence is the month; first in a sentence, a verb
    return word[0].isupper() and bool(before) and not before[-1].endswith((".", "?", "!"))


def _month(name: str, year: str | None, part: str | None) -> Period:
    number = _MONTH_NUMBERS[name.casefold()]
    y = int(year) if year else _ANY_YEAR
    last = calendar.monthrange(y, number)[1]
    first_day, last_day = _part_days(" ".join((part or "").casefold().split()), last)
    return Period(
        start=date(y, number, first_day), end=date(y, number, last_day), any_year=year is None
    )


def _part_days(part: str, last: int) -> tuple[int, int]:
    if part in {"early", "beginning of", "start of"}:
        return 1, 10
    if part in {"mid", "middle of"}:
        return 11, 20
    if part in {"late", "end of"}:
        return 21, last
    if part == "first half of":
        return 1, 15
    if part == "second half of":
        return 16, last
    if part.endswith("week of"):
        week = {"first": 0, "second": 1, "third": 2, "fourth": 3}.get(part.split()[0])
        if week is None:  # the last week
            return last - 6, last
        return 1 + 7 * week, 7 + 7 * week
    return 1, last


def _season(name: str, year: int) -> Period:
    if name == "winter":  # the winter that starts in December of that year
        return Period(start=date(year, 12, 1), end=date(year + 1, 2, 28))
    first, last = _SEASON_MONTHS[name]
    return Period(
        start=date(year, first, 1), end=date(year, last, calendar.monthrange(year, last)[1])
    )


_RANGE_OPEN = re.compile(r"\b(between|from)\s*$", re.I)
_RANGE_JOIN = re.compile(r"^\s*(and|to|until|through|-|–)\s*$", re.I)


def _join_ranges(query: str, found: list[tuple[int, int, Period]]) -> list[Period]:
    """``between X and Y`` / ``from X to Y``: one period from X to Y (X takes Y's year)."""
    out: list[Period] = []
    i = 0
    while i < len(found):
        start, end, first = found[i]
        if i + 1 < len(found):
            next_start, _, second = found[i + 1]
            joined = _range(first, second)
            if (
                joined
                and _RANGE_OPEN.search(query[:start])
                and _RANGE_JOIN.match(query[end:next_start])
            ):
                out.append(joined)
                i += 2
                continue
        out.append(first)
        i += 1
    return out


def _range(first: Period, second: Period) -> Period | None:
    if first.any_year and not second.any_year:
        year = second.start.year
        first = Period(start=_in_year(first.start, year), end=_in_year(first.end, year))
    if first.any_year != second.any_year or second.end < first.start:
        return None
    return Period(start=first.start, end=second.end, any_year=first.any_year)
