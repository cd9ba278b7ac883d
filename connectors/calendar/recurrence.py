"""Recurring events: RRULE, RDATE and EXDATE expanded over a window, in the event's own time zone.

Occurrences are computed in the wall time of the event's zone and only then given that zone, so
a weekly 09:30 meeting stays at 09:30 across daylight-saving changes. UNTIL, EXDATE and
RECURRENCE-ID values given in another zone (often UTC) are converted to that wall time first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rrulestr

MAX_OCCURRENCES = 5000  # per event and window: a FREQ=MINUTELY rule cannot flood the index
# Rules with a COUNT are counted from DTSTART, so they cannot start at the window: at most this
# many of their periods are stepped through before it.
MAX_PERIODS_BEFORE = 1_000_000
PERIOD = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}


@dataclass(frozen=True)
class Window:
    """Recurring events are expanded for occurrences starting in [start, end)."""

    start: datetime
    end: datetime


def wall(value: date | datetime, zone: tzinfo) -> datetime:
    """A DTSTART-like value as a naive wall time in `zone` (a date is its midnight)."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    if value.tzinfo is not None:
        value = value.astimezone(zone)
    return value.replace(tzinfo=None)


def localise(moment: datetime, zone: tzinfo) -> datetime:
    """A naive wall time in `zone` as an aware datetime (zoneinfo picks the offset of that day)."""
    return moment.replace(tzinfo=zone)


def occurrence_starts(
    component: Any, start: date | datetime, zone: tzinfo, window: Window
) -> tuple[list[datetime], bool]:
    """Naive wall-time starts of `component`'s occurrences in the window (RRULE and RDATE, less
    EXDATE), sorted, and whether MAX_OCCURRENCES cut them short. Raises ValueError for a rule
    dateutil cannot read."""
    all_day = not isinstance(start, datetime)
    first = wall(start, zone)
    low, high = wall(window.start, zone), wall(window.end, zone)
    starts: set[datetime] = set()
    truncated = False
    rules = component.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        fields = dict(rule)
        until = fields.pop("UNTIL", None)
        text = _rule_text(fields)
        recurrence = rrulestr(text, dtstart=_expansion_start(first, low, fields), forceset=False, cache=False)
        if until:
            limit = until[0] if isinstance(until, list) else until
            end = wall(limit, zone)
            if not isinstance(limit, datetime) or all_day:
                end = datetime.combine(end.date(), time(23, 59, 59))
            recurrence = recurrence.replace(until=end)
        for n, moment in enumerate(recurrence.xafter(low, inc=True)):
            if moment >= high:
                break
            if n >= MAX_OCCURRENCES:
                truncated = True
                break
            starts.add(moment)
    if low <= first < high:
        starts.add(first)  # DTSTART is always the first instance, even off the rule
    for moment, _ in _dates(component, "RDATE", zone):
        if low <= moment < high:
            starts.add(moment)
    excluded = list(_dates(component, "EXDATE", zone))
    # An EXDATE given as a date (or any EXDATE of an all-day event) removes that whole day.
    days = {moment.date() for moment, is_date in excluded if is_date or all_day}
    moments = {moment for moment, is_date in excluded if not is_date}
    starts = {s for s in starts if s not in moments and s.date() not in days}
    return sorted(starts), truncated


def _expansion_start(first: datetime, low: datetime, fields: dict[str, Any]) -> datetime:
    """Where to start stepping through a rule: DTSTART, or for a rule of fixed-length periods
    without a COUNT, the last start on its grid (DTSTART plus whole INTERVALs) before the window,
    which gives the same occurrences in the window. A FREQ=SECONDLY rule from 1970 then costs
    nothing; a COUNT rule that would step through more than MAX_PERIODS_BEFORE periods before
    the window is refused (ValueError)."""
    freq = str(_first(fields.get("FREQ")) or "").upper()
    period = PERIOD.get(freq)
    if period is None or first >= low:
        return first  # monthly and yearly rules: a few thousand periods since year 1
    try:
        interval = max(1, int(_first(fields.get("INTERVAL")) or 1))
    except (TypeError, ValueError):
        return first
    periods = (low - first) // (period * interval)
    if fields.get("COUNT") is None:
        return first + periods * period * interval
    if periods > MAX_PERIODS_BEFORE:
        raise ValueError(f"a {freq} rule with a COUNT that starts {periods:,} periods before the window")
    return first


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _rule_text(fields: dict[str, Any]) -> str:
    parts = []
    for key, values in fields.items():
        values = values if isinstance(values, list) else [values]
        parts.append(f"{key}={','.join(_rule_value(v) for v in values)}")
    return "RRULE:" + ";".join(parts)


def _rule_value(value: Any) -> str:
    to_ical = getattr(value, "to_ical", None)
    if to_ical is not None:
        out = to_ical()
        return out.decode() if isinstance(out, bytes) else str(out)
    return str(value)


def _dates(component: Any, name: str, zone: tzinfo) -> Iterator[tuple[datetime, bool]]:
    """RDATE/EXDATE values as (wall time, given as a date), from one property or several lines
    of it; a PERIOD gives its start."""
    found = component.get(name)
    for prop in found if isinstance(found, list) else [found] if found is not None else []:
        for item in getattr(prop, "dts", []):
            value = item.dt
            if isinstance(value, tuple):  # a PERIOD: (start, end or duration)
                value = value[0]
            if isinstance(value, date):
                yield wall(value, zone), not isinstance(value, datetime)


def recurrence_key(value: date | datetime, zone: tzinfo) -> datetime:
    """A RECURRENCE-ID (or an occurrence's original start) as the wall time it replaces."""
    return wall(value, zone)
