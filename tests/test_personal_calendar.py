"""Calendars (.ics): every file of the icalendar project's examples is read or refused with a
reason; events' times with their time zones; recurring events expanded with EXDATE, moved and
cancelled occurrences (RECURRENCE-ID) respected; the expansion window and its options."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.calendar import CalendarConnector, option_window
from tests.conftest import ROOT, data_dir, parse_all

EXAMPLE = ROOT / "examples" / "personal" / "calendar" / "maya.ics"
WIDE = {"expand_from": "1990-01-01", "expand_until": "2030-01-01", "timezone": "UTC"}


def read(path: Path, **options) -> tuple[list, dict[str, str]]:
    """(documents that parse, {source uri: reason} for those that fail)."""
    return parse_all(CalendarConnector(str(path), **options))


def events(docs: list) -> dict[str, dict]:
    return {d.metadata["start"]: d for d in docs if d.attributes["kind"] == "event"}


def test_every_shared_calendar_is_read_or_refused_with_a_reason():
    files = sorted(data_dir("calendar_ics").rglob("*.ics"))
    assert len(files) == 198
    kinds: Counter[str] = Counter()
    refused: dict[str, str] = {}
    problems = 0
    for path in files:
        good, bad = read(path, **WIDE)
        for doc in good:
            kinds[doc.attributes["kind"]] += 1
        problems += len([uri for uri in bad if "#" in uri])
        assert all(bad.values()), path
        if not good:
            refused[path.relative_to(files[0].parents[2]).as_posix()] = next(iter(bad.values()))
    reasons = Counter(
        "nothing"
        if r == "no events, to-dos or journal entries in this calendar"
        else "invalid"
        if r.startswith("not a valid iCalendar file: ")
        else "component"
        for r in refused.values()
    )
    # 151 files give documents; 47 are refused: 36 hold no event, to-do or journal entry (time
    # zones, free/busy, availability, empty calendars), 6 are not iCalendar at all (fuzzed), and
    # in 5 the only event is broken (e.g. DTSTART:INVALID-DATE); 6 broken components in all.
    # (issue_165_missing_event.ics, Outlook's "BYDAY=MO, TU, ..." rule, is read: 14 standups.)
    assert len(files) - len(refused) == 151
    assert reasons == {"nothing": 36, "invalid": 6, "component": 5}
    assert problems == 6
    tests = "src/icalendar/tests/calendars"
    assert refused[f"{tests}/broken_dtstart.ics"] == (
        "event test-123: Cannot access 'dt' on broken property 'DTSTART' (expected 'vDDDTypes'): "
        "Expected datetime, date, or time. Got: 'INVALID-DATE'"
    )
    assert refused[f"{tests}/parsing_error_in_UTC_offset.ics"] == (
        "not a valid iCalendar file: Offset must be less than 24 hours, was +5744"
    )
    assert kinds == {"event": 4732, "series": 37, "todo": 6, "journal": 5}


def test_a_weekly_event_in_new_york_with_exdates_and_until_in_utc():
    path = (
        data_dir("calendar_ics")
        / "icalendar/src/icalendar/tests/events/issue_112_missing_tzinfo_on_exdate.ics"
    )
    good, bad = read(path, **WIDE)
    assert bad == {}
    # FREQ=WEEKLY;BYDAY=FR,SA from Saturday 7 September 2013 12:00 New York time, UNTIL
    # 2013-10-25T03:59:59Z (still 24 October in New York), less 11 and 12 October.
    assert sorted(events(good)) == [
        f"2013-{day}T12:00:00-04:00"
        for day in (
            "09-07",
            "09-13",
            "09-14",
            "09-20",
            "09-21",
            "09-27",
            "09-28",
            "10-04",
            "10-05",
            "10-18",
            "10-19",
        )
    ]
    one = events(good)["2013-09-13T12:00:00-04:00"]
    assert one.metadata["end"] == "2013-09-13T17:00:00-04:00"
    assert one.metadata["timestamp"] == datetime(2013, 9, 13, 16, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert one.metadata["timezone"] == "America/New_York"
    assert [e.text for e in one.elements()] == [
        "When: Friday 13 September 2013, 12:00–17:00 (America/New_York)",
        "Repeats: every week on Friday and Saturday, until 2013-10-25",
        "Where: 12th and Market Streets (weather permitting)",
        "The Fieldhouse and Hard Rock Cafe are working with PhillyRising to provide live entertainment"
        " on Friday and Saturday afternoons throughout the Summer.",
    ]
    assert one.title == "Market East Live! (2013-09-13 12:00)"
    (series,) = [d for d in good if d.attributes["kind"] == "series"]
    assert "Cancelled or moved occurrences: 2013-10-11 12:00, 2013-10-12 12:00" in [
        e.text for e in series.elements()
    ]


def test_floating_times_take_the_calendars_zone_so_utc_exdates_match_or_not():
    path = data_dir("calendar_ics") / "icalendar/src/icalendar/tests/events/event_with_recurrence.ics"
    # DAILY;COUNT=100 from 1996-04-01 01:00 (floating), EXDATE 2, 3 and 4 April at 01:00Z.
    in_utc, _ = read(path, **WIDE)
    starts = sorted(events(in_utc))
    assert len(starts) == 97
    assert starts[:2] == ["1996-04-01T01:00:00+00:00", "1996-04-05T01:00:00+00:00"]
    # In Lisbon (UTC+1 in summer 1996) 01:00 local is 00:00Z: the UTC EXDATEs name other moments.
    in_lisbon, _ = read(path, **(WIDE | {"timezone": "Europe/Lisbon"}))
    assert len(events(in_lisbon)) == 100


def test_the_example_calendar_exdate_moved_and_cancelled_occurrences_and_daylight_saving():
    good, bad = read(EXAMPLE, expand_from="2026-01-01", expand_until="2027-01-01")
    assert bad == {}
    climbing = sorted(
        (d.metadata["start"], d.title)
        for d in good
        if d.metadata.get("uid", "").startswith("climbing") and d.attributes["kind"] == "event"
    )
    assert climbing == [
        ("2026-03-03T18:30:00+00:00", "Climbing with Inês (2026-03-03 18:30)"),
        ("2026-03-10T18:30:00+00:00", "Climbing with Inês (2026-03-10 18:30)"),
        ("2026-03-17T18:30:00+00:00", "Climbing with Inês (2026-03-17 18:30)"),
        # 24 March: EXDATE. Summer time from 29 March: still 18:30 in Lisbon, now UTC+1.
        ("2026-03-31T18:30:00+01:00", "Climbing with Inês (2026-03-31 18:30)"),
        # 7 April moved to Thursday 9 April 19:00 (RECURRENCE-ID with a new DTSTART)
        ("2026-04-09T19:00:00+01:00", "Climbing with Inês (moved to Thursday) (2026-04-09 19:00)"),
        # 14 April: RECURRENCE-ID with STATUS:CANCELLED
        ("2026-04-21T18:30:00+01:00", "Climbing with Inês (2026-04-21 18:30)"),
        ("2026-04-28T18:30:00+01:00", "Climbing with Inês (2026-04-28 18:30)"),
    ]
    moved = next(d for d in good if d.metadata.get("start") == "2026-04-09T19:00:00+01:00")
    assert (
        moved.source_id == f"calendar:{EXAMPLE.as_posix()}#climbing-weekly@maya.example/2026-04-07T18:30:00"
    )
    assert moved.uri == f"{EXAMPLE.as_posix()}#2026-04-09T19:00"
    assert "Moved from: 2026-04-07 18:30" in [e.text for e in moved.elements()]
    landlord = next(d for d in good if d.metadata.get("uid") == "landlord-2026-02@maya.example")
    assert [e.text for e in landlord.elements()] == [
        "When: Thursday 12 February 2026, 10:00–10:30 (Europe/Lisbon)",
        "Where: Rua da Rosa 41, Lisbon",
        "Organizer: Maya Ferreira <maya@maya.example>",
        "Attendees: Joaquim Almeida <joaquim.almeida@example.pt> (accepted)",
        "Calendar: Maya",
        "He wants 6% more from May. Ask about fixing the bathroom window first.",
    ]
    assert landlord.attributes == {
        "connector": "calendar",
        "kind": "event",
        "path": EXAMPLE.as_posix(),
        "field.calendar": "Maya",
    }
    dentist = next(d for d in good if d.metadata.get("uid") == "dentist-2026-03@maya.example")
    assert dentist.attributes["field.class"] == "private"
    birthday = sorted(
        d.metadata["start"] for d in good if d.metadata.get("uid") == "birthday-ines@maya.example"
    )
    assert birthday == ["2026-05-21T00:00:00+01:00", "2026-05-21T00:00:00+01:00"]  # the series and 2026
    (todo,) = [d for d in good if d.attributes["kind"] == "todo"]
    assert [e.text for e in todo.elements()] == ["Task: open", "Due: 2026-03-20", "Calendar: Maya"]
    assert todo.metadata["timestamp"] == datetime(2026, 3, 20, tzinfo=ZoneInfo("Europe/Lisbon")).timestamp()


def test_the_window_options():
    zone = ZoneInfo("Europe/Lisbon")
    now = datetime(2026, 3, 11, 12, 0, tzinfo=zone)
    window = option_window({}, zone, now)
    assert (window.start.date().isoformat(), window.end.date().isoformat()) == ("2024-03-11", "2027-03-11")
    window = option_window({"years_back": "0.5", "years_ahead": "0"}, zone, now)
    assert (window.start.date().isoformat(), window.end.date().isoformat()) == ("2025-09-09", "2026-03-11")
    with pytest.raises(ValueError, match="option years_back='lots' is not a number of years"):
        option_window({"years_back": "lots"}, zone, now)
    with pytest.raises(ValueError, match="ends before it starts"):
        option_window({"expand_from": "2027-01-01", "expand_until": "2026-01-01"}, zone, now)
    # A bad option is reported against the file, not raised through ingest.
    good, bad = read(EXAMPLE, timezone="Mars/Olympus")
    assert good == [] and bad == {
        EXAMPLE.as_posix(): "option timezone='Mars/Olympus' is not a known time zone (e.g. Europe/Lisbon)"
    }
    # Birthdays repeat every year, for ever: only the window's occurrences are documents.
    good, _ = read(EXAMPLE, expand_from="2026-01-01", expand_until="2030-01-01")
    assert len([d for d in good if d.metadata.get("uid") == "birthday-ines@maya.example"]) == 1 + 4


def test_a_runaway_rule_is_capped(tmp_path):
    path = tmp_path / "minutely.ics"
    path.write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:m\nDTSTART:20260101T000000Z\n"
        "RRULE:FREQ=MINUTELY\nSUMMARY:tick\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    good, _ = read(path, **WIDE)
    assert len(good) == 1 + 5000
    (series,) = [d for d in good if d.attributes["kind"] == "series"]
    assert series.metadata["truncated"] is True


def test_outlook_spaces_in_a_recurrence_rule_are_read_not_dropped(tmp_path):
    """Outlook writes `BYDAY=MO, TU, WE, TH, FR`; icalendar alone refuses it and drops the event."""
    path = tmp_path / "outlook.ics"
    path.write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:standup\nDTSTART:20260302T090000Z\n"
        "DTEND:20260302T091500Z\nRRULE:FREQ=WEEKLY; BYDAY=MO, TU, WE, TH, FR ;UNTIL=20260313T235959Z\n"
        "SUMMARY:Standup\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    good, bad = read(path, **WIDE)
    assert bad == {}
    starts = sorted(d.metadata["start"][:10] for d in good if d.attributes["kind"] == "event")
    assert starts == [f"2026-03-{d:02d}" for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]
