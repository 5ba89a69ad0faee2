"""Dates and periods read from a query (learning_machines.stores._query_dates)."""

from __future__ import annotations

from datetime import date

import pytest

from learning_machines.stores._query_dates import MAX_PERIODS, Period, query_periods


def spans(query: str) -> list[tuple[str, str, bool]]:
    return [(str(p.start), str(p.end), p.any_year) for p in query_periods(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("What movie did Joanna watch on 1 May, 2022?", [("2022-05-01", "2022-05-01", False)]),
        ("Who did Maria have dinner with on May 3, 2023?", [("2023-05-03", "2023-05-03", False)]),
        ("What book did Tim finish on 8th December, 2023?", [("2023-12-08", "2023-12-08", False)]),
        ("the forest picture shared on December 1,2023", [("2023-12-01", "2023-12-01", False)]),
        ("What did they give him on Aug 15th?", [("2000-08-15", "2000-08-15", True)]),
        ("What happened to John's job in August 2023?", [("2023-08-01", "2023-08-31", False)]),
        ("Which outdoor spot did Joanna visit in May?", [("2000-05-01", "2000-05-31", True)]),
        (
            "Which tournament did Nate win in the beginning of November 2022?",
            [("2022-11-01", "2022-11-10", False)],
        ),
        ("late March 2023", [("2023-03-21", "2023-03-31", False)]),
        ("the second week of November", [("2000-11-08", "2000-11-14", True)]),
        ("the last week of February 2023", [("2023-02-22", "2023-02-28", False)]),
        ("the first half of September 2022", [("2022-09-01", "2022-09-15", False)]),
        ("What state did Joanna visit in summer 2021?", [("2021-06-01", "2021-08-31", False)]),
        ("winter 2022", [("2022-12-01", "2023-02-28", False)]),
        (
            "Which career-high performances did John achieve in 2023?",
            [("2023-01-01", "2023-12-31", False)],
        ),
        (
            "Where was John between August 11 and August 15 2023?",
            [("2023-08-11", "2023-08-15", False)],
        ),
        (
            "Where was Tim in the week before 16 November 2023?",
            [("2023-11-09", "2023-11-16", False)],
        ),
        (
            "the puppy she got two weeks before August 11, 2023",
            [("2023-07-28", "2023-08-11", False)],
        ),
        ("What did Maria do before April 10, 2023?", [("2023-03-27", "2023-04-10", False)]),
        (
            "Did we talk in March 2023 or in June 2023?",
            [("2023-03-01", "2023-03-31", False), ("2023-06-01", "2023-06-30", False)],
        ),
        (
            "What did I hear from Ann in March 2023 and in June 2023?",
            [("2023-03-01", "2023-03-31", False), ("2023-06-01", "2023-06-30", False)],
        ),
        ("from 3 May to 9 May 2023", [("2023-05-03", "2023-05-09", False)]),
        (
            "between 9 May and 3 May 2023",  # backwards: two days, not a range
            [("2000-05-09", "2000-05-09", True), ("2023-05-03", "2023-05-03", False)],
        ),
    ],
)
def test_a_named_date_or_period_is_read(query, expected):
    assert spans(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "May I ask what you did yesterday?",
        "You may want to march on.",
        "What did I say about my sister?",
        "When did I start running?",  # relative, not a calendar date
        "I have 2 cats and 31 plants",
        "What happened on 31 February 2023?",  # no such day
        "",
    ],
)
def test_no_period_where_the_query_names_no_calendar_date(query):
    assert query_periods(query) == ()


def test_the_month_as_a_word_counts_only_where_it_reads_as_the_month():
    assert spans("What did I tell you in may?") == [("2000-05-01", "2000-05-31", True)]
    assert spans("Did Ann say anything in March?") == [("2000-03-01", "2000-03-31", True)]
    assert query_periods("Ann may come") == ()


def test_a_period_without_a_year_holds_in_every_year_and_across_new_year():
    dec = Period(start=date(2000, 12, 30), end=date(2000, 12, 31), any_year=True)
    assert dec.holds(date(2019, 12, 31))
    assert not dec.holds(date(2020, 1, 2))
    assert dec.holds(date(2020, 1, 2), after_days=3)  # told a few days later
    assert dec.holds(date(2020, 12, 29), before_days=1)
    feb29 = Period(start=date(2000, 2, 29), end=date(2000, 2, 29), any_year=True)
    assert feb29.holds(date(2023, 2, 28))  # no 29 February that year: the last day instead


def test_a_dated_period_holds_its_days_and_the_margins_asked_for():
    may = query_periods("in May 2022")[0]
    assert may.holds(date(2022, 5, 31))
    assert not may.holds(date(2023, 5, 15))  # a named year is that year only
    assert not may.holds(date(2022, 6, 2))
    assert may.holds(date(2022, 6, 2), after_days=3)
    assert may.holds(date(2022, 4, 30), before_days=1)


def test_hostile_queries_are_read_without_error():
    long = "in May 2023 before " * 50_000 + "x"  # 950,000 characters, a message's limit is 1M
    periods = query_periods(long)
    assert len(periods) == MAX_PERIODS
    assert query_periods("x" * 5_000 + " in May 2023") == ()  # past the part that is read
    assert query_periods("9" * 10_000) == ()
    assert query_periods("on 99 May 2023 and 0 June 2023") == ()
    assert spans("on 1 MAY 2023") == [("2023-05-01", "2023-05-01", False)]


def test_a_period_without_a_year_is_placed_in_a_given_year():
    (nov,) = query_periods("the second week of November")
    assert nov.in_year(2023) == Period(start=date(2023, 11, 8), end=date(2023, 11, 14))
    (feb,) = query_periods("on 29 February")
    assert feb.in_year(2023).start == date(2023, 2, 28)  # no 29th that year
    (named,) = query_periods("in May 2022")
    assert named.in_year(2030) == named  # a named year stays


def test_the_first_and_last_years_a_date_can_hold_do_not_break_a_period():
    (december,) = query_periods("in December")
    assert december.holds(date(9999, 12, 31), after_days=4)
    assert december.in_year(10_000).end == date(9999, 12, 31)
    assert not december.holds(date(1, 1, 1), before_days=1)
    (january,) = query_periods("on 1 January")
    assert january.holds(date(1, 1, 1), before_days=1)
