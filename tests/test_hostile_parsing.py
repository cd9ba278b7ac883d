"""Small hostile files must not hurt the main process: whatever a connector parses while it lists
documents runs under the file parsers' time and memory limits or is bounded by construction; a
file yields a bounded number of documents; hashing streams; big files are refused by size."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.calendar import CalendarConnector, events
from connectors.calendar.recurrence import MAX_OCCURRENCES, Window, occurrence_starts
from connectors.fileparse import capped, parse_file
from connectors.files import file_document
from connectors.notes import NotesConnector, read_note
from memex.documents import Element
from memex.errors import ParseError
from memex.ingest import sandbox
from memex.ingest.plugins import connectors
from tests.conftest import parse_all

UTC = ZoneInfo("UTC")
WINDOW = Window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block runs longer than `seconds`."""

    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def short_limits():
    """Connectors' own parsing under a 3-second limit (the settings' parse_timeout)."""
    sandbox.set_limits(sandbox.Limits(timeout=3, memory_mb=1024))
    yield
    sandbox.set_limits(sandbox.Limits())


def ics(*vevents: str) -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + "".join(vevents) + "END:VCALENDAR\r\n"


def vevent(uid: str, start: str, rule: str) -> str:
    return f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{start}\r\nRRULE:{rule}\r\nSUMMARY:tick\r\nEND:VEVENT\r\n"


# --- calendars ------------------------------------------------------------------------------


def test_a_secondly_rule_from_1970_starts_at_the_window_not_in_1970():
    """201 bytes used to cost hours: every second since 1970 was stepped through first."""
    import icalendar

    (event,) = icalendar.Calendar.from_ical(ics(vevent("s", "19700101T000000Z", "FREQ=SECONDLY"))).walk(
        "VEVENT"
    )
    started = time.monotonic()
    with deadline(20):
        starts, truncated = occurrence_starts(event, datetime(1970, 1, 1, tzinfo=UTC), UTC, WINDOW)
    assert time.monotonic() - started < 2
    assert truncated and len(starts) == MAX_OCCURRENCES
    assert starts[0] == datetime(2024, 1, 1) and starts[-1] == datetime(2024, 1, 1, 1, 23, 19)


@pytest.mark.parametrize(
    ("rule", "start"),
    [
        ("FREQ=MINUTELY;INTERVAL=7", "20231231T235957Z"),
        ("FREQ=DAILY;INTERVAL=3;BYHOUR=9,17", "19900102T090000Z"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", "20000103T103000Z"),
        ("FREQ=HOURLY;INTERVAL=5;BYDAY=SA", "19991231T230000Z"),
        ("FREQ=SECONDLY;INTERVAL=86399", "19700101T000001Z"),
    ],
)
def test_starting_at_the_window_gives_the_occurrences_of_the_whole_rule(rule, start):
    import icalendar
    from dateutil.rrule import rrulestr

    (event,) = icalendar.Calendar.from_ical(ics(vevent("r", start, rule))).walk("VEVENT")
    dtstart = datetime.strptime(start, "%Y%m%dT%H%M%SZ")
    starts, _ = occurrence_starts(event, dtstart.replace(tzinfo=UTC), UTC, WINDOW)
    whole = rrulestr("RRULE:" + rule, dtstart=dtstart).xafter(datetime(2024, 1, 1), count=50, inc=True)
    assert starts[:50] == list(whole)


def test_a_counted_rule_far_before_the_window_is_refused_not_stepped_through():
    path_text = ics(vevent("c", "19700101T000000Z", "FREQ=SECONDLY;COUNT=2000000000"))
    with deadline(20):
        docs = list(events.documents(Path("/x.ics"), path_text.encode(), window=WINDOW, default_zone=UTC))
    series = docs[0].elements()
    assert len(docs) == 2  # the series, and its first occurrence
    assert (
        Element(
            "Occurrences indexed: only the first (memex cannot expand this rule: a SECONDLY rule with a "
            "COUNT that starts 1,704,067,200 periods before the window)"
        )
        in series
    )


def test_one_file_yields_a_bounded_number_of_documents(monkeypatch):
    """The cap is per file: many capped events do not add up without bound."""
    monkeypatch.setattr(events, "MAX_DOCUMENTS", 1000)
    data = ics(*(vevent(f"m{i}", "20240101T000000Z", "FREQ=MINUTELY") for i in range(3))).encode()
    docs = list(events.documents(Path("/cal.ics"), data, window=WINDOW, default_zone=UTC))
    assert len(docs) == 1001
    with pytest.raises(ParseError, match="only the first 1,000 events and occurrences of this calendar"):
        docs[-1].elements()


@pytest.mark.slow
def test_400_minutely_events_in_59_kb_give_20_001_documents(tmp_path):
    path = tmp_path / "minutely.ics"
    path.write_text(ics(*(vevent(f"m{i}@x", "20250101T000000Z", "FREQ=MINUTELY") for i in range(400))))
    with deadline(120):
        docs = list(CalendarConnector(str(path)).load())
    assert len(docs) == events.MAX_DOCUMENTS + 1 == 20_001


def test_a_calendar_that_hangs_its_parser_is_refused_within_the_time_limit(tmp_path, short_limits):
    """Whatever a rule does (this one never matches: February 30th, every second), the file is
    read in a worker that is killed at the limit, and the run goes on."""
    path = tmp_path / "never.ics"
    path.write_text(ics(vevent("n", "20240101T000000Z", "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30")))
    started = time.monotonic()
    with deadline(30):
        good, bad = parse_all(CalendarConnector(str(path), expand_from="2024-03-01"))
    assert good == []
    assert bad == {path.as_posix(): "refused: parsing took longer than 3 s"}
    assert time.monotonic() - started < 15


# --- notes ----------------------------------------------------------------------------------


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    return "---\n" + "\n".join(lines) + "\ntitle: Bomb\n---\n# Bomb\n\nbody text\n"


def test_aliases_in_front_matter_are_not_expanded():
    with deadline(20):
        note = read_note(alias_bomb(7), "bomb")
    assert note["front"] == {}
    assert note["problem"].startswith("front matter is not valid YAML (aliases (*name) are not read")
    assert "body text" in [e.text for e in note["elements"]]


def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    (root / ".obsidian").mkdir(parents=True)
    (root / "plain.md").write_text("---\ntags: [a]\n---\n# Plain\n\nsafe text\n")
    return root


def test_an_alias_bomb_note_is_read_bounded_and_the_rest_of_the_vault_too(tmp_path):
    root = vault(tmp_path)
    (root / "bomb.md").write_text(alias_bomb(9))  # 10**9 leaves once walked
    with deadline(60):
        good, bad = parse_all(NotesConnector(str(root), others=connectors()))
    assert bad == {}
    assert sorted(d.title for d in good) == ["Bomb", "Plain"]
    bomb = next(d for d in good if d.title == "Bomb")
    assert bomb.metadata["front_matter"] == {}


def test_a_note_that_hangs_its_regexes_is_refused_within_the_time_limit(tmp_path, short_limits):
    root = vault(tmp_path)
    (root / "brackets.md").write_text("[[" * 200_000 + "\n")
    with deadline(40):
        good, bad = parse_all(NotesConnector(str(root), others=connectors()))
    assert [d.title for d in good] == ["Plain"]
    assert bad == {(root / "brackets.md").as_posix(): "refused: parsing took longer than 3 s"}


# --- big files ------------------------------------------------------------------------------


def test_files_are_hashed_by_streaming_never_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "data.txt"
    path.write_bytes(b"x" * 3_000_000)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read whole to hash it"))
    doc = file_document(path)
    import hashlib

    assert doc.content_hash() == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_a_file_over_max_file_mb_is_refused_and_the_file_beside_it_is_indexed(fake_memex, kestrel):
    folder = kestrel / "handbook" / "drop"
    folder.mkdir()
    (folder / "small.txt").write_text("the harbour crane is inspected every March")
    with open(folder / "huge.csv", "wb") as handle:  # sparse: 3 MB on paper, nothing on disk
        handle.truncate(3 * 1024 * 1024)
    fake_memex.settings = dataclasses.replace(fake_memex.settings, max_file_mb=2)
    report = fake_memex.ingest([str(folder)])
    assert [os.path.basename(u) for u in report.indexed] == ["small.txt"]
    (failure,) = report.failures
    assert (os.path.basename(failure.uri), failure.kind) == ("huge.csv", "failed")
    assert failure.reason == "refused: the file is 3 MB, more than max_file_mb = 2 (config.toml)"


def test_what_a_parser_returns_is_capped(tmp_path, monkeypatch):
    """A one-line CSV of any size sends at most MAX_TEXT_CHARS back to the main process."""
    from connectors import fileparse

    monkeypatch.setattr(fileparse, "MAX_TEXT_CHARS", 1000)
    path = tmp_path / "one-line.csv"
    path.write_text("a," * 50_000 + "\n")
    elements = parse_file(path)
    assert sum(len(e.text) for e in elements[:-1]) == 1000
    assert elements[-1].text == "[memex: only the first 1,000 characters of this file are indexed]"
    assert capped([Element("abc"), Element("de")], 5) == [Element("abc"), Element("de")]


def test_a_chat_export_file_too_big_to_parse_whole_is_refused_and_the_rest_goes_on(tmp_path, monkeypatch):
    """Chat exports are parsed in the main process, so each file's size is bounded (the cap made
    small here): the chat is refused with its reason, the file beside it is indexed."""
    from connectors.chat import archive
    from tests.conftest import memex_with_fakes

    folder = tmp_path / "chats"
    folder.mkdir()
    lines = "".join(f"12/03/2026, 10:{m:02d} - Ana: the crane inspection is due {m}\n" for m in range(60))
    (folder / "WhatsApp Chat with Ana.txt").write_text(lines)
    (folder / "small.txt").write_text("the harbour crane is inspected every March")
    monkeypatch.setattr(archive, "MAX_CHAT_FILE_MB", 0.002)  # 2,000 bytes
    memex = memex_with_fakes(tmp_path / "home")
    try:
        report = memex.ingest([str(folder)])
    finally:
        memex.close()
    assert [os.path.basename(u) for u in report.indexed] == ["small.txt"]
    (failure,) = report.failures
    assert "more than the 0.002 MB one file of a chat export may have" in failure.reason, failure.reason
    with pytest.raises(ParseError, match="export the chat in parts"):
        archive.read_capped(folder / "WhatsApp Chat with Ana.txt")
