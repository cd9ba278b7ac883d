"""Time expressions in questions, as a table: the question, then the first and last day covered
(inclusive; None for an open side), relative to a fixed now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memex.answer.timeparse import find_dates

LISBON = ZoneInfo("Europe/Lisbon")
NOW = datetime(2026, 3, 11, 15, 30, tzinfo=LISBON)  # a Wednesday

CASES = [
    ("what is on my calendar next Tuesday?", "2026-03-17", "2026-03-17"),
    ("what did I do last week?", "2026-03-02", "2026-03-08"),
    ("what's planned this week", "2026-03-09", "2026-03-15"),
    ("next week", "2026-03-16", "2026-03-22"),
    ("which photos did I take in Lisbon in March 2024?", "2024-03-01", "2024-03-31"),
    ("mail from yesterday", "2026-03-10", "2026-03-10"),
    ("anything due today?", "2026-03-11", "2026-03-11"),
    ("what is due tomorrow", "2026-03-12", "2026-03-12"),
    ("the day before yesterday", "2026-03-09", "2026-03-09"),
    ("what did I spend this month", "2026-03-01", "2026-03-31"),
    ("last month", "2026-02-01", "2026-02-28"),
    ("what happened in 2019?", "2019-01-01", "2019-12-31"),
    ("notes since May", "2025-05-01", None),  # May is still to come: last May
    ("since February", "2026-02-01", None),
    ("since 2024-03-05", "2024-03-05", None),
    ("photos from May", "2025-05-01", "2025-05-31"),  # from: of that month, in the past
    ("from March 2024 onwards", "2024-03-01", None),
    ("before 2020", None, "2019-12-31"),
    ("after March 2024", "2024-04-01", None),
    ("until June", None, "2026-06-30"),
    ("in May", "2026-05-01", "2026-05-31"),
    ("between March and May 2024", "2024-03-01", "2024-05-31"),
    ("between November and February 2025", "2024-11-01", "2025-02-28"),
    ("from 2019 to 2021", "2019-01-01", "2021-12-31"),
    ("on 2024-03-05", "2024-03-05", "2024-03-05"),
    ("on 5 March 2024", "2024-03-05", "2024-03-05"),
    ("the 1st of April", "2026-04-01", "2026-04-01"),
    ("March 5, 2024", "2024-03-05", "2024-03-05"),
    ("3 days ago", "2026-03-08", "2026-03-08"),
    ("two weeks ago", "2026-02-23", "2026-03-01"),
    ("a year ago", "2025-01-01", "2025-12-31"),
    ("in the past 7 days", "2026-03-05", "2026-03-11"),
    ("over the last 2 weeks", "2026-02-26", "2026-03-11"),
    ("the past month", "2026-02-12", "2026-03-11"),
    ("the next 3 days", "2026-03-11", "2026-03-13"),
    ("last Tuesday", "2026-03-10", "2026-03-10"),
    ("last Wednesday", "2026-03-04", "2026-03-04"),
    ("next Wednesday", "2026-03-18", "2026-03-18"),
    ("this Friday", "2026-03-13", "2026-03-13"),
    ("this weekend", "2026-03-14", "2026-03-15"),
    ("last weekend", "2026-03-07", "2026-03-08"),
    ("last year", "2025-01-01", "2025-12-31"),
    ("March 2024 or March 2025", "2024-03-01", "2025-03-31"),  # several: the span of them all
    # nothing clearly about time: no range, nothing filtered
    ("when did I last meet the landlord?", None, None),
    ("what may I bring on Tuesday", None, None),
    ("the 2019 budget", None, None),
    ("Falcon 2 sensor specs", None, None),
    ("invalid 2024-02-30", None, None),
    ("Feb 29, 2023", None, None),
    ("room 2024-03-05a", None, None),
]


@pytest.mark.parametrize(("question", "first", "last"), CASES)
def test_time_expressions(question, first, last):
    found = find_dates(question, NOW)
    if first is None and last is None:
        assert found is None
        return
    assert found is not None
    got_first = found.start.date().isoformat() if found.start else None
    got_last = (found.end - timedelta(microseconds=1)).date().isoformat() if found.end else None
    assert (got_first, got_last) == (first, last)
    for bound in (found.start, found.end):
        assert bound is None or (bound.tzinfo is LISBON and (bound.hour, bound.minute) == (0, 0))


def test_ranges_are_local_midnights_across_a_daylight_saving_change():
    # Lisbon moves to summer time on 29 March 2026: the month still ends at local midnight.
    found = find_dates("in March 2026", NOW)
    assert found.start.isoformat() == "2026-03-01T00:00:00+00:00"
    assert found.end.isoformat() == "2026-04-01T00:00:00+01:00"
    assert found.date_to - found.date_from == 31 * 86400 - 3600


def test_the_range_says_what_it_was_read_from():
    found = find_dates("What did I do last week?", NOW)
    assert found.to_json() == {
        "from": "2026-03-02T00:00:00+00:00",
        "to": "2026-03-09T00:00:00+00:00",
        "phrase": "last week",
    }
    assert found.describe() == "2026-03-02 to 2026-03-08 (last week)"
    assert find_dates("notes since May", NOW).describe() == "from 2025-05-01 on (since may)"
    assert find_dates("before 2020", NOW).describe() == "until 2019-12-31 (before 2020)"


def test_now_must_know_its_time_zone():
    with pytest.raises(ValueError, match="timezone-aware"):
        find_dates("last week", datetime(2026, 3, 11))
    utc = find_dates("yesterday", datetime(2026, 3, 11, 0, 30, tzinfo=UTC))
    assert utc.start == datetime(2026, 3, 10, tzinfo=UTC)
