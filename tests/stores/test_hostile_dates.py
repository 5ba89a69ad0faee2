"""Dates a model may write never poison a shared namespace (fuzzed with hypothesis).

An entity event dated ``0476-09-04`` was stored on SQLite but could never be read back, and on
PostgreSQL ``9999-12-31T23:59:59-23:59`` became year 10000; after either, every read of the
shared namespace failed for every user. Whatever the date text, it is stored so that it reads
back, or kept as text without a time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learning_machines.db import Db
from learning_machines.db._sqlite_rows import dec_time, enc_time
from learning_machines.stores import EntityMemoryConfig, EntityMemoryStore
from learning_machines.stores._shared import parse_when
from tests.stores.conftest import NOW, bind_store, ctx

_MONTHS = ["January", "Feb", "sept", "December", "Mai", "13"]


_offsets = st.one_of(
    st.sampled_from(["", "Z", "+00:00", "-23:59", "+23:59", "+14:00"]),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
)
_times = st.sampled_from(["", "T00:00:00", "T23:59:59", "T12:30", " 23:59:59.999999", "T24:00"])
_years = st.one_of(st.integers(0, 12_000), st.sampled_from([1, 476, 999, 1000, 9999, 10000]))

#: Date text as models write it: ISO with odd years, times and offsets, prose, and junk.
MODEL_DATES = st.one_of(
    st.builds(
        lambda y, pad, mo, d, t, off: (
            (f"{y:04d}" if pad else str(y)) + f"-{mo:02d}-{d:02d}{t}{off}"
        ),
        _years,
        st.booleans(),
        st.integers(1, 12),
        st.integers(1, 31),
        _times,
        _offsets,
    ),
    st.builds(
        lambda d, m, y, comma: f"{d} {m}{',' if comma else ''} {y}",
        st.integers(0, 32),
        st.sampled_from(_MONTHS),
        _years,
        st.booleans(),
    ),
    st.builds(lambda m, d: f"{m} {d}", st.sampled_from(_MONTHS), st.integers(0, 31)),
    st.sampled_from(["yesterday", "Q3 2024", "early 2020s", "", "  ", "0000-00-00", "2024-02-30"]),
    st.text(max_size=30),
)

NASTY_DATES = [
    "0476-09-04",
    "476-09-04",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31",
    "10000-01-01",
    "0000-01-01",
    "4 September 476",
    "Sept 4",
    "2024-02-29T25:00",
    "\x00",
    "2024-01-15\x00",
]


@settings(max_examples=2000, deadline=None)
@given(MODEL_DATES)
def test_parse_when_never_raises_and_gives_a_storable_utc_time(text: str) -> None:
    when = parse_when(text, now=NOW)
    if when is None:
        return
    assert when.utcoffset() == timedelta(0)
    assert dec_time(enc_time(when)) == when  # SQLite's text form reads back
    assert 1 <= when.year <= 9999


def _write_events(db: Db, dates: list[str]) -> None:
    alice = bind_store(EntityMemoryStore(EntityMemoryConfig(namespace="team")), db)

    async def write() -> None:
        for i, date in enumerate(dates):
            await alice.apply_write(
                {"op": "event", "entity": "Rome", "event": f"event {i}", "date": date},
                **ctx("alice"),
            )

    asyncio.run(write())


def _read_as_bob(db: Db) -> Any:
    bob = bind_store(EntityMemoryStore(EntityMemoryConfig(namespace="team")), db)

    async def read() -> tuple[Any, Any]:
        timeline = await bob.alookup("Rome", question="events", **ctx("bob"))
        recalled = await bob.arecall(**ctx("bob", message="what happened in Rome?"))
        return timeline, recalled

    return asyncio.run(read())


def _check_events(timeline: Any) -> list[Any]:
    [view] = timeline.entities
    for event in view.events:
        if event.valid_from is not None:
            assert event.valid_from.utcoffset() == timedelta(0)
            assert event.content["date"] == event.valid_from.date().isoformat()
    return list(view.events)


@pytest.mark.parametrize("date", NASTY_DATES)
def test_a_model_made_date_never_breaks_reads_of_a_shared_namespace(db: Db, date: str) -> None:
    _write_events(db, ["2024-01-15", date])
    timeline, recalled = _read_as_bob(db)
    events = _check_events(timeline)
    assert len(events) == 2
    assert recalled is not None
    assert [v.entity.content["name"] for v in recalled.entities] == ["Rome"]
    kept = next(e for e in events if e.content["event"] == "event 1")
    if kept.valid_from is None:
        # Not a time we can store: the text the model wrote is kept (NUL removed).
        assert (kept.content["date"] or "") == date.strip().replace("\x00", "")


def test_0476_reads_back_as_a_date_on_every_backend(db: Db) -> None:
    _write_events(db, ["0476-09-04"])
    timeline, _ = _read_as_bob(db)
    [event] = _check_events(timeline)
    assert event.valid_from == datetime(476, 9, 4, tzinfo=UTC)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(dates=st.lists(MODEL_DATES, min_size=1, max_size=6))
def test_fuzzed_model_dates_are_stored_and_read_back_by_another_user(
    db: Db, dates: list[str]
) -> None:
    _write_events(db, dates)
    timeline, _ = _read_as_bob(db)
    _check_events(timeline)
