"""Calendars: iCalendar (.ics) files from any calendar app, with their events, recurring events
expanded over a window, to-dos and journal entries (see `events` and `recurrence`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.calendar.events import documents
from connectors.calendar.recurrence import Window
from memex.connector import Connector, isolated
from memex.documents import SourceDocument, failing_document
from memex.errors import ParseError

YEARS_BACK = 2.0
YEARS_AHEAD = 1.0
MAX_BYTES = 64 * 1024 * 1024


class CalendarConnector(Connector):
    """An .ics file (also found inside any folder).

    Options: years_back (default 2) and years_ahead (1): recurring events are expanded for
    occurrences in that window around today (one-off events are always read, whatever their
    date); expand_from / expand_until (YYYY-MM-DD) set the window exactly; timezone (an IANA
    name) for floating times and all-day events when the calendar names none (X-WR-TIMEZONE);
    default: the local zone.
    """

    name = "calendar"
    file_suffixes = frozenset({".ics", ".ical", ".icalendar"})

    def load(self) -> Iterator[SourceDocument]:
        path = Path(self.target).expanduser().resolve()
        try:
            zone = option_zone(self.options)
            window = option_window(self.options, zone)
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise ParseError(f"calendar file too large ({size // 2**20} MiB; memex reads up to 64 MiB)")
            # Parsed and expanded in a worker, under the file parsers' time and memory limits.
            yield from isolated(partial(read_calendar, path, window, zone))
        except (ParseError, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            yield failing_document(
                source_id=f"calendar:{path.as_posix()}",
                uri=path.as_posix(),
                connector="calendar",
                attributes={"connector": "calendar", "kind": "calendar", "path": path.as_posix()},
                reason=reason,
            )


def read_calendar(path: Path, window: Window, zone: tzinfo) -> list[SourceDocument]:
    return list(documents(path, path.read_bytes(), window=window, default_zone=zone))


def option_zone(options: dict) -> tzinfo:
    name = options.get("timezone")
    if name:
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"option timezone={name!r} is not a known time zone (e.g. Europe/Lisbon)"
            ) from None
    return local_zone()


def local_zone() -> tzinfo:
    """The local zone, by name where one can be found (TZ, /etc/localtime)."""
    names = [os.environ.get("TZ", "").lstrip(":")]
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:
        names.append(target.split("/zoneinfo/", 1)[1])
    for name in filter(None, names):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def option_window(options: dict, zone: tzinfo, now: datetime | None = None) -> Window:
    now = now or datetime.now(zone)

    def years(name: str, default: float) -> float:
        value = options.get(name, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"option {name}={value!r} is not a number of years") from None
        if not 0 <= number <= 100:
            raise ValueError(f"option {name}={value!r} must be between 0 and 100")
        return number

    def day(name: str, default: datetime) -> datetime:
        value = options.get(name)
        if not value:
            return default
        try:
            return datetime.fromisoformat(str(value)).replace(tzinfo=zone)
        except ValueError:
            raise ValueError(f"option {name}={value!r} is not a date (YYYY-MM-DD)") from None

    start = day("expand_from", now - timedelta(days=365.25 * years("years_back", YEARS_BACK)))
    end = day("expand_until", now + timedelta(days=365.25 * years("years_ahead", YEARS_AHEAD)))
    if end <= start:
        raise ValueError("the expansion window ends before it starts (expand_from/expand_until)")
    return Window(start, end)
