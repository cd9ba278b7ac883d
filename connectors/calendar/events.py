"""An iCalendar file as documents: one per event occurrence, one per recurring series, one per
to-do (VTODO) and journal entry (VJOURNAL), and a failing stand-in for each component that cannot
be read.

Why one document per occurrence: each carries its own date (metadata["timestamp"] = its start),
so "what is on my calendar next Tuesday?" filters to that day's occurrences, and "when did I last
meet the landlord?" finds each meeting with its date in the text. The series document says how an
event repeats ("every week on Tuesday, from ... until ...") and carries the first start.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from connectors.calendar.recurrence import (
    MAX_OCCURRENCES,
    Window,
    localise,
    occurrence_starts,
    recurrence_key,
    wall,
)
from connectors.records import lines, record_document
from connectors.spoken import MONTHS, spoken_day
from memex.documents import Element, SourceDocument, failing_document
from memex.errors import ParseError

PARTSTAT = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
PARTSTAT |= {"NEEDS-ACTION": "not answered", "DELEGATED": "delegated"}
FREQ = {"YEARLY": "year", "MONTHLY": "month", "WEEKLY": "week", "DAILY": "day"}
FREQ |= {"HOURLY": "hour", "MINUTELY": "minute", "SECONDLY": "second"}
# Per file, whatever the number of events: one small file cannot flood the index with occurrences.
MAX_DOCUMENTS = 20_000
BYDAY = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday"}
BYDAY |= {"SA": "Saturday", "SU": "Sunday"}


@dataclass
class Calendar:
    """One file's worth of reading: where it is, its name and zone, what was yielded."""

    path: Path
    name: str | None
    zone: tzinfo  # for floating times and all-day events
    window: Window
    used_ids: set[str] = field(default_factory=set)
    used_uris: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def posix(self) -> str:
        return self.path.as_posix()

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


# Outlook writes recurrence rules with spaces after the commas ("BYDAY=MO, TU, WE"), which
# icalendar refuses, dropping the whole event: the spaces are removed first.
_RULE_LINE = re.compile(rb"^((?:RRULE|EXRULE)[^:\r\n]*:)([^\r\n]*)", re.MULTILINE | re.IGNORECASE)


def _tidy_rules(data: bytes) -> bytes:
    return _RULE_LINE.sub(lambda m: m.group(1) + re.sub(rb"\s*([,;=])\s*", rb"\1", m.group(2)).strip(), data)


def parse_calendar(data: bytes) -> list[Any]:
    """The components of an .ics file (VCALENDARs, or bare VEVENTs), or ParseError."""
    data = _tidy_rules(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = icalendar.Calendar.from_ical(data, multiple=True)
        except Exception as exc:  # icalendar raises ValueError, IndexError, KeyError ... on bad input
            raise ParseError(f"not a valid iCalendar file: {_short(exc)}") from None
    return list(found)


def documents(path: Path, data: bytes, *, window: Window, default_zone: tzinfo) -> Iterator[SourceDocument]:
    """Every document of one .ics file, at most MAX_DOCUMENTS (then a failing stand-in says how
    many were left out); ParseError if it cannot be read at all."""
    yielded = 0
    for doc in _all_documents(path, data, window=window, default_zone=default_zone):
        if yielded == MAX_DOCUMENTS:
            yield failing_document(
                source_id=f"calendar:{path.as_posix()}#truncated",
                uri=path.as_posix(),
                connector="calendar",
                attributes={"connector": "calendar", "kind": "calendar", "path": path.as_posix()},
                reason=f"only the first {MAX_DOCUMENTS:,} events and occurrences of this calendar are indexed",
            )
            return
        yielded += 1
        yield doc


def _all_documents(
    path: Path, data: bytes, *, window: Window, default_zone: tzinfo
) -> Iterator[SourceDocument]:
    components = parse_calendar(data)
    yielded = False
    for top in components:
        name = _text(top.get("X-WR-CALNAME"))
        zone = _zone(_text(top.get("X-WR-TIMEZONE"))) or default_zone
        calendar = Calendar(path, name or None, zone, window)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for doc in _calendar_documents(calendar, top):
                yielded = True
                yield doc
    if not yielded:
        raise ParseError("no events, to-dos or journal entries in this calendar")


def _calendar_documents(calendar: Calendar, top: Any) -> Iterator[SourceDocument]:
    events = [c for c in top.walk() if c.name == "VEVENT"]
    masters: dict[str, Any] = {}
    overrides: dict[str, list[Any]] = {}
    singles: list[tuple[str, Any]] = []
    for n, event in enumerate(events):
        uid = _text(event.get("UID")) or _anonymous_uid(event, n)
        if event.get("RECURRENCE-ID") is not None:
            overrides.setdefault(uid, []).append(event)
        elif uid in masters:
            singles.append((uid, event))  # a second event with the same UID: read it on its own
        else:
            masters[uid] = event
    for uid, event in masters.items():
        yield from _event_documents(calendar, uid, event, overrides.pop(uid, []))
    for uid, event in singles:
        yield from _event_documents(calendar, uid, event, [])
    for uid, orphans in overrides.items():  # moved occurrences whose series is not in the file
        for event in orphans:
            yield from _guard(calendar, uid, event, lambda e=event, u=uid: _single(calendar, u, e, None))
    for n, todo in enumerate(c for c in top.walk() if c.name == "VTODO"):
        uid = _text(todo.get("UID")) or _anonymous_uid(todo, n)
        yield from _guard(calendar, uid, todo, lambda t=todo, u=uid: [_todo(calendar, u, t)])
    for n, entry in enumerate(c for c in top.walk() if c.name == "VJOURNAL"):
        uid = _text(entry.get("UID")) or _anonymous_uid(entry, n)
        yield from _guard(calendar, uid, entry, lambda j=entry, u=uid: _journal(calendar, u, j))


def _guard(calendar: Calendar, uid: str, component: Any, make) -> Iterator[SourceDocument]:
    """The documents `make()` builds, or one failing document naming the component and why."""
    try:
        docs = list(make())
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        calendar.count("problems")
        what = component.name.lower().lstrip("v")
        summary = _text(component.get("SUMMARY"))
        label = f"{what} {summary!r}" if summary else f"{what} {uid}"
        yield failing_document(
            source_id=_unique_id(calendar, f"calendar:{calendar.posix}#{uid}#problem"),
            uri=f"{calendar.posix}#{uid}",
            connector="calendar",
            attributes=_attributes(calendar, component, "event" if what == "event" else what),
            reason=f"{label}: {_short(exc)}",
        )
        return
    yield from docs


def _event_documents(
    calendar: Calendar, uid: str, event: Any, overrides: list[Any]
) -> Iterator[SourceDocument]:
    recurring = event.get("RRULE") is not None or event.get("RDATE") is not None
    if not recurring or event.get("DTSTART") is None:
        yield from _guard(calendar, uid, event, lambda: _single(calendar, uid, event, None))
        for override in overrides:  # RECURRENCE-IDs of an event that does not repeat
            yield from _guard(calendar, uid, override, lambda o=override: _single(calendar, uid, o, None))
        return
    yield from _guard(calendar, uid, event, lambda: _series(calendar, uid, event, overrides))


def _single(calendar: Calendar, uid: str, event: Any, series: Any) -> list[SourceDocument]:
    """A one-off event, or one moved/changed occurrence (RECURRENCE-ID) of a series."""
    if _status(event) == "cancelled":
        calendar.count("cancelled")
        return []
    if event.get("DTSTART") is None and (series is None or series.get("DTSTART") is None):
        return [_undated(calendar, uid, event)]
    start, end, zone = _span(event, calendar.zone, series)
    key = event.get("RECURRENCE-ID")
    rid = recurrence_key(_dt(key), zone) if key is not None else None
    return [_occurrence(calendar, uid, event, series, start, end, zone, rid)]


def _undated(calendar: Calendar, uid: str, event: Any) -> SourceDocument:
    """An event without a start (DTSTART is required, but not every exporter writes one)."""
    summary = _text(event.get("SUMMARY")) or "(no title)"
    elements = [Element(text="When: no date given")]
    elements += lines(
        ("Where", _text(event.get("LOCATION"))),
        ("Organizer", _person(event.get("ORGANIZER"))),
        ("Attendees", [_person(a, with_status=True) for a in _many(event.get("ATTENDEE"))]),
        ("Categories", _categories(event.get("CATEGORIES"))),
        ("Calendar", calendar.name),
    )
    description = _text(event.get("DESCRIPTION"))
    if description:
        elements.append(Element(text=description))
    calendar.count("undated")
    return record_document(
        source_id=_unique_id(calendar, f"calendar:{calendar.posix}#{uid}"),
        uri=_unique_uri(calendar, f"{calendar.posix}#{uid}"),
        title=summary,
        connector="calendar",
        attributes=_attributes(calendar, event, "event", _categories(event.get("CATEGORIES"))),
        elements=elements,
        metadata={"uid": uid, "calendar": calendar.name},
    )


def _series(calendar: Calendar, uid: str, event: Any, overrides: list[Any]) -> list[SourceDocument]:
    if _status(event) == "cancelled":
        calendar.count("cancelled")
        return []
    start, end, zone = _span(event, calendar.zone, None)
    duration = end - start
    first = _dt(event.get("DTSTART"))
    try:
        starts, truncated = occurrence_starts(event, first, zone, calendar.window)
        unexpanded = None
    except ValueError as exc:  # a rule dateutil cannot expand (RSCALE calendars, odd BYxxx)
        starts, truncated, unexpanded = [wall(first, zone)], False, _short(exc)
    replaced: dict[datetime, Any] = {}
    for override in overrides:
        replaced[recurrence_key(_dt(override.get("RECURRENCE-ID")), zone)] = override
    docs = [
        _series_document(calendar, uid, event, start, zone, len(starts), truncated, overrides, unexpanded)
    ]
    for moment in starts:
        if moment in replaced:
            continue
        begin = localise(moment, zone)
        docs.append(_occurrence(calendar, uid, event, event, begin, begin + duration, zone, moment))
    calendar.count("occurrences", len(starts))
    for rid, override in sorted(replaced.items()):
        if _status(override) == "cancelled":
            calendar.count("cancelled")
            continue
        o_start, o_end, o_zone = _span(override, calendar.zone, event)
        docs.append(_occurrence(calendar, uid, override, event, o_start, o_end, o_zone, rid))
        calendar.count("moved")
    return docs


def _occurrence(
    calendar: Calendar,
    uid: str,
    event: Any,
    series: Any,
    start: datetime,
    end: datetime,
    zone: tzinfo,
    rid: datetime | None,
) -> SourceDocument:
    """One occurrence: its own properties, falling back to the series' where it has none."""

    def prop(name: str) -> Any:
        value = event.get(name)
        return value if value is not None or series is None else series.get(name)

    all_day = _is_all_day(event)
    summary = _text(prop("SUMMARY")) or "(no title)"
    when = describe_span(start, end, zone, all_day)
    organizer = _person(prop("ORGANIZER"))
    attendees = [_person(a, with_status=True) for a in _many(prop("ATTENDEE"))]
    categories = _categories(prop("CATEGORIES"))
    elements: list[Element] = []
    elements += lines(
        ("When", when),
        ("Repeats", describe_rule(series) if series is not None else None),
        ("Moved from", _moved_from(rid, start, zone, all_day) if event is not series else None),
        ("Where", _text(prop("LOCATION"))),
        ("Organizer", organizer),
        ("Attendees", attendees),
        ("Status", _status(event) if _status(event) not in ("", "confirmed") else None),
        ("Categories", categories),
        ("Calendar", calendar.name),
        ("Link", _text(prop("URL"))),
    )
    description = _text(prop("DESCRIPTION"))
    if description:
        elements += [Element(text=part) for part in re.split(r"\n\s*\n", description) if part.strip()]
    moment = rid if rid is not None else wall(start, zone)
    source_id = f"calendar:{calendar.posix}#{uid}" + (f"/{moment.isoformat()}" if rid is not None else "")
    uri = _unique_uri(calendar, f"{calendar.posix}#{_short_moment(start, all_day).replace(' ', 'T')}")
    calendar.count("events")
    return record_document(
        source_id=_unique_id(calendar, source_id),
        uri=uri,
        title=f"{summary} ({_short_moment(start, all_day)})",
        connector="calendar",
        attributes=_attributes(calendar, event if series is None else series, "event", categories),
        elements=elements,
        metadata={
            "timestamp": start.timestamp(),
            "end_timestamp": end.timestamp(),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "timezone": _zone_name(zone),
            "all_day": all_day,
            "uid": uid,
            "recurring": series is not None,
            "location": _text(prop("LOCATION")) or None,
            "organizer": organizer or None,
            "attendees": attendees,
            "calendar": calendar.name,
        },
    )


def _series_document(
    calendar: Calendar,
    uid: str,
    event: Any,
    start: datetime,
    zone: tzinfo,
    count: int,
    truncated: bool,
    overrides: list[Any],
    unexpanded: str | None = None,
) -> SourceDocument:
    summary = _text(event.get("SUMMARY")) or "(no title)"
    all_day = _is_all_day(event)
    exceptions = [_short_moment(localise(recurrence_key(v, zone), zone), all_day) for v in _exdates(event)]
    moved = [
        _short_moment(localise(recurrence_key(_dt(o.get("RECURRENCE-ID")), zone), zone), all_day)
        for o in overrides
    ]
    window = f"{calendar.window.start.date().isoformat()} to {calendar.window.end.date().isoformat()}"
    indexed = f"{count} between {window}" + (f" (the first {MAX_OCCURRENCES})" if truncated else "")
    if unexpanded:
        indexed = f"only the first (memex cannot expand this rule: {unexpanded})"
    elements: list[Element] = []
    elements += lines(
        ("Repeats", describe_rule(event)),
        ("First", describe_span(start, start, zone, all_day).split(" to ")[0]),
        ("Where", _text(event.get("LOCATION"))),
        ("Organizer", _person(event.get("ORGANIZER"))),
        ("Cancelled or moved occurrences", sorted(set(exceptions + moved))),
        ("Occurrences indexed", indexed),
        ("Calendar", calendar.name),
    )
    description = _text(event.get("DESCRIPTION"))
    if description:
        elements.append(Element(text=description))
    calendar.count("series")
    return record_document(
        source_id=_unique_id(calendar, f"calendar:{calendar.posix}#{uid}#series"),
        uri=_unique_uri(calendar, f"{calendar.posix}#{uid}"),
        title=f"{summary} (recurring, from {_short_moment(start, all_day)})",
        connector="calendar",
        attributes=_attributes(calendar, event, "series", _categories(event.get("CATEGORIES"))),
        elements=elements,
        metadata={
            "timestamp": start.timestamp(),
            "start": start.isoformat(),
            "timezone": _zone_name(zone),
            "uid": uid,
            "rule": describe_rule(event),
            "occurrences": count,
            "truncated": truncated,
            "calendar": calendar.name,
        },
    )


def _todo(calendar: Calendar, uid: str, todo: Any) -> SourceDocument:
    summary = _text(todo.get("SUMMARY")) or "(no title)"
    status = _status(todo) or "needs-action"
    done = status == "completed" or todo.get("COMPLETED") is not None
    due = _moment(todo.get("DUE"), calendar.zone)
    started = _moment(todo.get("DTSTART"), calendar.zone)
    completed = _moment(todo.get("COMPLETED"), calendar.zone)
    created = _moment(todo.get("CREATED"), calendar.zone) or _moment(todo.get("DTSTAMP"), calendar.zone)
    state = "done" if done else ("cancelled" if status == "cancelled" else "open")
    elements: list[Element] = []
    elements += lines(
        ("Task", f"{state}"),
        ("Due", _short_moment(due, _is_date(todo.get("DUE"))) if due else None),
        ("Starts", _short_moment(started, _is_date(todo.get("DTSTART"))) if started else None),
        ("Completed", _short_moment(completed, False) if completed else None),
        ("Priority", _text(todo.get("PRIORITY")) if _text(todo.get("PRIORITY")) not in ("", "0") else None),
        ("Categories", _categories(todo.get("CATEGORIES"))),
        ("Calendar", calendar.name),
    )
    if _text(todo.get("DESCRIPTION")):
        elements.append(Element(text=_text(todo.get("DESCRIPTION"))))
    moment = due or started or completed or created
    calendar.count("todos")
    attributes = _attributes(calendar, todo, "todo", _categories(todo.get("CATEGORIES")))
    attributes["field.status"] = state
    return record_document(
        source_id=_unique_id(calendar, f"calendar:{calendar.posix}#{uid}"),
        uri=_unique_uri(calendar, f"{calendar.posix}#{uid}"),
        title=f"{summary} (to-do, {state})",
        connector="calendar",
        attributes=attributes,
        elements=elements,
        metadata=_todo_metadata(moment, due, state),
    )


def _todo_metadata(moment: datetime | None, due: datetime | None, state: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"status": state}
    if moment is not None:
        metadata["timestamp"] = moment.timestamp()
    if due is not None:
        metadata["due"] = due.isoformat()
    return metadata


def _journal(calendar: Calendar, uid: str, entry: Any) -> list[SourceDocument]:
    summary = _text(entry.get("SUMMARY")) or "(journal entry)"
    when = _moment(entry.get("DTSTART"), calendar.zone)
    texts = [_text(d) for d in _many(entry.get("DESCRIPTION"))]
    elements: list[Element] = []
    elements += lines(("Date", _short_moment(when, _is_date(entry.get("DTSTART"))) if when else None))
    elements += [Element(text=t) for t in texts if t]
    calendar.count("journal")
    return [
        record_document(
            source_id=_unique_id(calendar, f"calendar:{calendar.posix}#{uid}"),
            uri=_unique_uri(calendar, f"{calendar.posix}#{uid}"),
            title=summary,
            connector="calendar",
            attributes=_attributes(calendar, entry, "journal", _categories(entry.get("CATEGORIES"))),
            elements=elements,
            metadata={"timestamp": when.timestamp()} if when else {},
        )
    ]


# --- values -----------------------------------------------------------------------------------


def _span(event: Any, default_zone: tzinfo, series: Any) -> tuple[datetime, datetime, tzinfo]:
    """Start and end as aware datetimes, and the zone the event is written in. Floating times
    and all-day events are in the calendar's zone."""
    prop = event.get("DTSTART")
    if prop is None and series is not None:
        prop = series.get("DTSTART")
    if prop is None:
        raise ValueError("no start (DTSTART)")
    raw = _dt(prop)
    zone = raw.tzinfo if isinstance(raw, datetime) and raw.tzinfo is not None else default_zone
    start = localise(wall(raw, zone), zone)
    end_prop, duration = event.get("DTEND"), event.get("DURATION")
    if end_prop is not None:
        end_raw = _dt(end_prop)
        end = (
            localise(wall(end_raw, zone), zone)
            if not isinstance(end_raw, datetime) or end_raw.tzinfo is None
            else end_raw
        )
    elif duration is not None and isinstance(duration.dt, timedelta):
        end = start + duration.dt
    elif series is not None and series.get("DTEND") is not None:
        end = start + (_span(series, default_zone, None)[1] - _span(series, default_zone, None)[0])
    else:
        end = start + (timedelta(days=1) if not isinstance(raw, datetime) else timedelta(0))
    if end < start:
        end = start
    return start, end, zone


def _dt(prop: Any) -> date | datetime:
    if isinstance(prop, list) and prop:
        prop = prop[0]  # a property written twice: the first counts
    value = getattr(prop, "dt", None)
    if not isinstance(value, date):
        raise ValueError(f"unreadable date {_text(prop)!r}")
    return value


def _moment(prop: Any, zone: tzinfo) -> datetime | None:
    if prop is None:
        return None
    value = _dt(prop)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return localise(wall(value, zone), zone)


def _is_date(prop: Any) -> bool:
    if isinstance(prop, list) and prop:
        prop = prop[0]
    return prop is not None and not isinstance(getattr(prop, "dt", None), datetime)


def _is_all_day(event: Any) -> bool:
    return _is_date(event.get("DTSTART"))


def _exdates(event: Any) -> list[date | datetime]:
    found = event.get("EXDATE")
    out = []
    for prop in found if isinstance(found, list) else [found] if found is not None else []:
        out += [item.dt for item in getattr(prop, "dts", []) if isinstance(item.dt, date)]
    return out


def describe_span(start: datetime, end: datetime, zone: tzinfo, all_day: bool) -> str:
    """'Tuesday 17 March 2026, 09:30–10:00 (Europe/Lisbon)' in the event's own zone."""
    if all_day:
        last = (end - timedelta(days=1)).date() if end > start else start.date()
        if last <= start.date():
            return f"{_day(start.date())} (all day)"
        return f"{_day(start.date())} to {_day(last)} (all day)"
    start, end = start.astimezone(zone), end.astimezone(zone)
    text = f"{_day(start.date())}, {start:%H:%M}"
    if end.date() == start.date() and end > start:
        text += f"–{end:%H:%M}"
    elif end > start:
        text += f" to {_day(end.date())}, {end:%H:%M}"
    return f"{text} ({_zone_name(zone)})"


def describe_rule(event: Any) -> str | None:
    """'every 2 weeks on Monday and Thursday, until 2026-12-31' (or the rule as written)."""
    rule = event.get("RRULE")
    if isinstance(rule, list):
        rule = rule[0] if rule else None
    if rule is None:
        return "on extra dates (RDATE)" if event.get("RDATE") is not None else None
    fields = {k: v if isinstance(v, list) else [v] for k, v in dict(rule).items()}
    freq = str(fields.get("FREQ", [""])[0]).upper()
    unit = FREQ.get(freq)
    if unit is None:
        return rule.to_ical().decode()
    interval = int(fields.get("INTERVAL", [1])[0] or 1)
    text = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    days = []
    for value in fields.get("BYDAY", []):
        value = str(value)
        prefix, name = value[:-2], BYDAY.get(value[-2:].upper(), value)
        days.append(f"{_ordinal(int(prefix))} {name}" if prefix.lstrip("+-").isdigit() else name)
    if days:
        text += " on " + _join(days)
    if fields.get("BYMONTHDAY"):
        text += " on day " + _join([str(d) for d in fields["BYMONTHDAY"]])
    if fields.get("BYMONTH"):
        text += " in " + _join([_month_name(m) for m in fields["BYMONTH"]])
    if fields.get("COUNT"):
        text += f", {int(fields['COUNT'][0])} times"
    if fields.get("UNTIL"):
        until = fields["UNTIL"][0]
        text += f", until {until.date().isoformat() if isinstance(until, datetime) else until.isoformat()}"
    return text


def _moved_from(rid: datetime | None, start: datetime, zone: tzinfo, all_day: bool) -> str | None:
    """The original time of a moved occurrence (None if it was not moved, only changed)."""
    if rid is None or rid == wall(start, zone):
        return None
    return _short_moment(localise(rid, zone), all_day)


def _month_name(value: Any) -> str:
    text = str(value)
    return MONTHS[int(text) - 1] if text.isdigit() and 1 <= int(text) <= 12 else f"month {text}"


def _ordinal(n: int) -> str:
    if n == -1:
        return "last"
    if n < 0:
        return f"{_ordinal(-n)} to last"
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _day(day: date) -> str:
    return spoken_day(day)


def _short_moment(moment: datetime, all_day: bool) -> str:
    return moment.date().isoformat() if all_day else moment.strftime("%Y-%m-%d %H:%M")


def _zone_name(zone: tzinfo) -> str:
    if zone is UTC:
        return "UTC"
    return getattr(zone, "key", None) or getattr(zone, "zone", None) or str(zone)


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _status(component: Any) -> str:
    return _text(component.get("STATUS")).lower()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _categories(value: Any) -> list[str]:
    out: list[str] = []
    for prop in _many(value):
        for item in getattr(prop, "cats", None) or [prop]:
            text = _text(item)
            if text:
                out.append(text)
    return list(dict.fromkeys(out))


def _person(value: Any, *, with_status: bool = False) -> str:
    if value is None:
        return ""
    address = re.sub(r"(?i)^mailto:", "", _text(value))
    params = getattr(value, "params", {}) or {}
    name = _text(params.get("CN")).strip('"')
    text = f"{name} <{address}>" if name and address else name or address
    status = PARTSTAT.get(_text(params.get("PARTSTAT")).upper())
    return f"{text} ({status})" if with_status and status else text


def _attributes(
    calendar: Calendar, component: Any, kind: str, categories: list[str] | None = None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {"connector": "calendar", "kind": kind, "path": calendar.posix}
    if calendar.name:
        attributes["field.calendar"] = calendar.name
    access_class = _text(component.get("CLASS")).lower()
    if access_class:
        attributes["field.class"] = access_class  # public, private, confidential
    if categories:
        attributes["field.categories"] = categories
    return attributes


def _anonymous_uid(component: Any, n: int) -> str:
    """Events without a UID get one from what they say, so it is stable across runs."""
    digest = hashlib.sha256(component.to_ical()).hexdigest()[:16]
    return f"no-uid-{digest}-{n}"


def _unique_id(calendar: Calendar, source_id: str) -> str:
    candidate, n = source_id, 1
    while candidate in calendar.used_ids:
        n += 1
        candidate = f"{source_id}#{n}"
    calendar.used_ids.add(candidate)
    return candidate


def _unique_uri(calendar: Calendar, uri: str) -> str:
    candidate, n = uri, 1
    while candidate in calendar.used_uris:
        n += 1
        candidate = f"{uri}/{n}"
    calendar.used_uris.add(candidate)
    return candidate


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
