from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from learning_machines.curation import annotate_dates, resolve_date, resolve_dates

# Thursday 12 March 2026, afternoon.
NOW = datetime(2026, 3, 12, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yesterday", date(2026, 3, 11)),
        ("today", date(2026, 3, 12)),
        ("tonight", date(2026, 3, 12)),
        ("tomorrow", date(2026, 3, 13)),
        ("the day before yesterday", date(2026, 3, 10)),
        ("the day after tomorrow", date(2026, 3, 14)),
        ("last night", date(2026, 3, 11)),
        ("last Tuesday", date(2026, 3, 10)),
        ("last Thursday", date(2026, 3, 5)),  # on a Thursday: a week ago, never today
        ("next Friday", date(2026, 3, 13)),
        ("next Thursday", date(2026, 3, 19)),
        ("this Monday", date(2026, 3, 9)),
        ("3 days ago", date(2026, 3, 9)),
        ("two weeks ago", date(2026, 2, 26)),
        ("a month ago", date(2026, 2, 12)),
        ("a couple of days ago", date(2026, 3, 10)),
        ("5 years ago", date(2021, 3, 12)),
        ("in 2 weeks", date(2026, 3, 26)),
        ("in three days", date(2026, 3, 15)),
        ("two days from now", date(2026, 3, 14)),
        ("in March", date(2026, 3, 1)),
        ("last March", date(2025, 3, 1)),
        ("next March", date(2027, 3, 1)),
        ("last January", date(2026, 1, 1)),
        ("next December", date(2026, 12, 1)),
        ("last week", date(2026, 3, 2)),
        ("next month", date(2026, 4, 1)),
        ("last year", date(2025, 1, 1)),
        ("last weekend", date(2026, 3, 7)),
    ],
)
def test_resolves_against_the_turn_time(text: str, expected: date) -> None:
    assert resolve_date(text, now=NOW) == expected
    assert resolve_date(f"I said it {text}, really", now=NOW) == expected


def test_month_end_arithmetic_clamps_the_day() -> None:
    assert resolve_date("a month ago", now=date(2026, 3, 31)) == date(2026, 2, 28)


def test_the_turn_time_zone_decides_what_today_is() -> None:
    late = datetime(2026, 3, 12, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert resolve_date("yesterday", now=late) == date(2026, 3, 11)
    assert resolve_date("yesterday", now=late.astimezone(UTC)) == date(2026, 3, 12)


def test_finds_every_expression_with_spans_and_granularity() -> None:
    text = "Moved to Berlin last Tuesday; the new job starts next month."
    found = resolve_dates(text, now=NOW)
    assert [(r.text, r.date, r.granularity) for r in found] == [
        ("last Tuesday", date(2026, 3, 10), "day"),
        ("next month", date(2026, 4, 1), "month"),
    ]
    assert text[found[0].start : found[0].end] == "last Tuesday"
    assert found[0].as_datetime(NOW) == datetime(2026, 3, 10, tzinfo=UTC)


def test_text_without_relative_dates() -> None:
    assert resolve_dates("The user likes tea. On Tuesday they swim.", now=NOW) == []
    assert resolve_date("nothing here", now=NOW) is None


def test_annotate_keeps_the_words_and_adds_the_date() -> None:
    assert (
        annotate_dates("I moved last Tuesday and start next month.", now=NOW)
        == "I moved last Tuesday (2026-03-10) and start next month (2026-04)."
    )
