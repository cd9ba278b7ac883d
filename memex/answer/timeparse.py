"""Time expressions in a question ("next Tuesday", "last week", "in March 2024", "since May",
"before 2020") as a date range relative to a given `now`.

Pure: no I/O and no clock of its own (the caller passes a timezone-aware `now`; tests inject
one). Conservative: words that are not clearly about time give no range, and then nothing is
filtered. A bare weekday ("on Tuesday"), a bare month ("May") and a bare number ("the 2019
budget") are not read as dates; "next Tuesday", "in May", "in 2019" and "2019-05-04" are.
English only.

Ranges are half-open [start, end) at midnight in `now`'s time zone; an open side is None ("since
May" has no end, "before 2020" no start). Several expressions in one question give the smallest
range that covers them all. Conventions: weeks start on Monday; "last week" is the previous
calendar week, "past week" and "last 7 days" are rolling windows that end with today; "next
Tuesday" is the first Tuesday after today, "last Tuesday" the latest one before today, "this
Tuesday" the one of this week; a month without a year is this year's, except after
since/after/from, where a month still to come is last year's; "N weeks ago" is that calendar week.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

MONTH_NAMES = [
    ("january", "jan"),
    ("february", "feb"),
    ("march", "mar"),
    ("april", "apr"),
    ("may",),
    ("june", "jun"),
    ("july", "jul"),
    ("august", "aug"),
    ("september", "sept", "sep"),
    ("october", "oct"),
    ("november", "nov"),
    ("december", "dec"),
]
MONTHS = {name: n for n, names in enumerate(MONTH_NAMES, start=1) for name in names}
WEEKDAYS = {
    name: n
    for n, names in enumerate(
        [
            ("monday",),
            ("tuesday", "tues"),
            ("wednesday",),
            ("thursday", "thurs"),
            ("friday",),
            ("saturday",),
            ("sunday",),
        ]
    )
    for name in names
}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
NUMBERS |= {"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "few": 3}
NUMBERS |= {"couple of": 2, "a couple of": 2, "a few": 3}

Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class DateRange:
    """[start, end) as timezone-aware datetimes; None is an open side."""

    start: datetime | None
    end: datetime | None
    phrase: str  # the words of the question it was read from

    @property
    def date_from(self) -> float | None:
        """Epoch seconds (inclusive), as `memex.index.Narrowing.date_from` wants."""
        return self.start.timestamp() if self.start else None

    @property
    def date_to(self) -> float | None:
        """Epoch seconds (exclusive)."""
        return self.end.timestamp() if self.end else None

    def describe(self) -> str:
        """'2024-03-01 to 2024-03-31 (in march 2024)': the days it covers, inclusive."""
        first = self.start.date().isoformat() if self.start else None
        last = (self.end - timedelta(microseconds=1)).date().isoformat() if self.end else None
        if first and last:
            span = first if first == last else f"{first} to {last}"
        elif first:
            span = f"from {first} on"
        else:
            span = f"until {last}"
        return f"{span} ({self.phrase})"

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "phrase": self.phrase,
        }


# --- calendar arithmetic --------------------------------------------------------------------


def _at(day: date, now: datetime) -> datetime:
    return datetime.combine(day, time(), tzinfo=now.tzinfo)


def _days(first: date, count: int, now: datetime) -> Span:
    return _at(first, now), _at(first + timedelta(days=count), now)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    years, index = divmod(month - 1 + months, 12)
    return year + years, index + 1


def _month(year: int, month: int, now: datetime) -> Span:
    return _at(date(year, month, 1), now), _at(date(*_add_months(year, month, 1), 1), now)


def _year(year: int, now: datetime) -> Span:
    return _at(date(year, 1, 1), now), _at(date(year + 1, 1, 1), now)


def _same_day(year: int, month: int, day: int) -> date:
    """`day` of that month, or its last day ("a month before 31 March" is 28/29 February)."""
    while True:
        try:
            return date(year, month, day)
        except ValueError:
            day -= 1


def _period(unit: str, offset: int, now: datetime) -> Span:
    """The calendar day, week, month or year `offset` periods from the current one."""
    today = now.date()
    if unit == "day":
        return _days(today + timedelta(days=offset), 1, now)
    if unit == "week":
        return _days(today - timedelta(days=today.weekday()) + timedelta(weeks=offset), 7, now)
    if unit == "month":
        return _month(*_add_months(today.year, today.month, offset), now)
    return _year(today.year + offset, now)


def _shifted(today: date, unit: str, count: int) -> date:
    if unit == "day":
        return today + timedelta(days=count)
    if unit == "week":
        return today + timedelta(weeks=count)
    months = count if unit == "month" else 12 * count
    return _same_day(*_add_months(today.year, today.month, months), today.day)


def _rolling(unit: str, count: int, now: datetime) -> Span:
    """The last `count` units, ending with today ("past 3 weeks": 21 days up to today)."""
    today = now.date()
    return _at(_shifted(today, unit, -count) + timedelta(days=1), now), _at(today + timedelta(days=1), now)


def _upcoming(unit: str, count: int, now: datetime) -> Span:
    """The next `count` units, starting today ("next 3 days": today and the 2 days after)."""
    today = now.date()
    return _at(today, now), _at(_shifted(today, unit, count), now)


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --- the expressions ------------------------------------------------------------------------

_W = r"(?<![\w-])"  # the start of a word, not inside a date like 2024-03-05 or a name
_E = r"(?![\w-])"
_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_MONTH2 = _MONTH.replace("?P<month>", "?P<month2>")
_WEEKDAY = r"(?P<weekday>" + "|".join(sorted(WEEKDAYS, key=len, reverse=True)) + r")"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_YEAR2 = _YEAR.replace("?P<year>", "?P<year2>")
_COUNT = r"(?P<count>\d{1,3}|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_ORDINAL = r"(?:st|nd|rd|th)?"
# Words that make a month or a year a time expression: "in May", "since 2019".
_PREPOSITION = r"(?P<prep>in|during|throughout|of|from|since|before|after|until|till|by|early|late|mid)"


def _count(text: str) -> int:
    return int(text) if text.isdigit() else NUMBERS[text]


def _iso(m: re.Match[str], now: datetime) -> Span | None:
    day = _valid(int(m["year"]), int(m["m"]), int(m["d"]))
    return _days(day, 1, now) if day else None


def _day_of_month(m: re.Match[str], now: datetime) -> Span | None:
    day = _valid(int(m["year"]) if m["year"] else now.year, MONTHS[m["month"]], int(m["day"]))
    return _days(day, 1, now) if day else None


def _month_year(m: re.Match[str], now: datetime) -> Span:
    return _month(int(m["year"]), MONTHS[m["month"]], now)


def _month_range(m: re.Match[str], now: datetime) -> Span | None:
    """between March and May 2024 / from Jan 2023 to March 2024."""
    year2 = int(m["year2"]) if m["year2"] else now.year
    month1, month2 = MONTHS[m["month"]], MONTHS[m["month2"]]
    year1 = int(m["year"]) if m["year"] else (year2 if month1 <= month2 else year2 - 1)
    start, end = _month(year1, month1, now)[0], _month(year2, month2, now)[1]
    return (start, end) if start < end else None


def _year_range(m: re.Match[str], now: datetime) -> Span | None:
    start, end = _year(int(m["year"]), now)[0], _year(int(m["year2"]), now)[1]
    return (start, end) if start < end else None


def _bare_month(m: re.Match[str], now: datetime) -> Span:
    month, year = MONTHS[m["month"]], now.year
    if m["prep"] in ("since", "after", "from") and month > now.month:
        year -= 1  # "since May", asked in March: last May
    return _month(year, month, now)


def _weekday(m: re.Match[str], now: datetime) -> Span:
    target, today = WEEKDAYS[m["weekday"]], now.date()
    if m["which"] == "next":
        return _days(today + timedelta(days=(target - today.weekday()) % 7 or 7), 1, now)
    if m["which"] == "last":
        return _days(today - timedelta(days=(today.weekday() - target) % 7 or 7), 1, now)
    return _days(today - timedelta(days=today.weekday() - target), 1, now)


def _weekend(m: re.Match[str], now: datetime) -> Span:
    offset = {"last": -1, "past": -1, "previous": -1, "next": 1, "coming": 1}.get(m["which"], 0)
    today = now.date()
    return _days(today - timedelta(days=today.weekday()) + timedelta(days=5, weeks=offset), 2, now)


def _relative_period(m: re.Match[str], now: datetime) -> Span:
    if m["which"] == "past":
        return _rolling(m["unit"], 1, now)
    return _period(m["unit"], {"this": 0, "current": 0, "next": 1, "coming": 1}.get(m["which"], -1), now)


Reader = Callable[[re.Match[str], datetime], "Span | None"]
# Each rule names one span of time. Earlier rules win where matches overlap.
RULES: list[tuple[re.Pattern[str], Reader]] = [
    (re.compile(_W + r"(?P<year>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)" + _E), _iso),
    (
        re.compile(
            _W
            + r"(?:between|from) "
            + _MONTH
            + r"(?: "
            + _YEAR
            + r")? (?:and|to|until|till|through|-) "
            + _MONTH2
            + r"(?: "
            + _YEAR2
            + r")?"
            + _E
        ),
        _month_range,
    ),
    (
        re.compile(_W + r"(?:between|from) " + _YEAR + r" (?:and|to|until|till|through|-) " + _YEAR2 + _E),
        _year_range,
    ),
    (
        re.compile(
            _W + r"(?P<day>\d{1,2})" + _ORDINAL + r"(?: of)? " + _MONTH + r"(?:,? " + _YEAR + r")?" + _E
        ),
        _day_of_month,
    ),
    (
        re.compile(_W + _MONTH + r" (?P<day>\d{1,2})" + _ORDINAL + r"(?:,? " + _YEAR + r")?" + _E),
        _day_of_month,
    ),
    (re.compile(_W + _MONTH + r",? " + _YEAR + _E), _month_year),
    (re.compile(_W + r"(?:the )?(?P<which>next|last|this|coming|past|previous) weekend" + _E), _weekend),
    (re.compile(_W + r"(?P<which>this|the) weekend" + _E), _weekend),
    (re.compile(_W + r"(?P<which>next|last|this) " + _WEEKDAY + _E), _weekday),
    (re.compile(_W + r"(?:the )?day before yesterday" + _E), lambda m, now: _period("day", -2, now)),
    (re.compile(_W + r"(?:the )?day after tomorrow" + _E), lambda m, now: _period("day", 2, now)),
    (
        re.compile(_W + r"(?:today|tonight|this (?:morning|afternoon|evening))" + _E),
        lambda m, now: _period("day", 0, now),
    ),
    (re.compile(_W + r"(?:yesterday|last night)" + _E), lambda m, now: _period("day", -1, now)),
    (re.compile(_W + r"tomorrow" + _E), lambda m, now: _period("day", 1, now)),
    (
        re.compile(_W + r"(?:the )?(?:last|past|previous) " + _COUNT + r" " + _UNIT + _E),
        lambda m, now: _rolling(m["unit"], _count(m["count"]), now),
    ),
    (
        re.compile(_W + r"(?:the )?(?:next|coming|following) " + _COUNT + r" " + _UNIT + _E),
        lambda m, now: _upcoming(m["unit"], _count(m["count"]), now),
    ),
    (
        re.compile(_W + _COUNT + r" " + _UNIT + r" ago" + _E),
        lambda m, now: _period(m["unit"], -_count(m["count"]), now),
    ),
    (
        re.compile(
            _W + r"(?P<which>this|current|last|next|previous|past|coming) (?P<unit>week|month|year)" + _E
        ),
        _relative_period,
    ),
    (
        re.compile(_W + _PREPOSITION + r" (?:the year )?" + _YEAR + _E),
        lambda m, now: _year(int(m["year"]), now),
    ),
    (re.compile(_W + _PREPOSITION + r" " + _MONTH + _E), _bare_month),
]

# What the words before an expression do to it.
_AFTER = ("after",)
_SINCE = ("since",)  # "mail from May" is mail of May, not since May
_UNTIL = ("until", "till", "through", "by")  # up to and including
_BEFORE = ("before",)


@dataclass(frozen=True)
class _Found:
    start: int  # where the expression starts (after its preposition, if it has one)
    end: int
    span: Span
    preposition: str


def _expressions(text: str, now: datetime) -> list[_Found]:
    found: list[_Found] = []
    taken: list[tuple[int, int]] = []
    for pattern, read in RULES:
        for match in pattern.finditer(text):
            begin, end = match.span()
            if any(begin < b and end > a for a, b in taken):
                continue
            span = read(match, now)
            if span is None:
                continue
            taken.append((begin, end))
            groups = match.groupdict()
            if groups.get("prep"):
                preposition, begin = groups["prep"], match.end("prep") + 1
            else:
                words = text[:begin].split()
                preposition = (
                    " ".join(words[-2:]) if words[-2:] == ["up", "to"] else (words[-1] if words else "")
                )
            found.append(_Found(begin, end, span, preposition))
    return sorted(found, key=lambda f: f.start)


def find_dates(text: str, now: datetime) -> DateRange | None:
    """The date range `text` speaks of, relative to `now` (timezone-aware), or None."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("find_dates needs a timezone-aware `now`")
    lowered = " ".join(re.sub(r"[?!;\"()]|[.,](?=\s|$)", " ", text.lower()).split())
    found = _expressions(lowered, now)
    if not found:
        return None
    starts: list[datetime | None] = []
    ends: list[datetime | None] = []
    for item in found:
        start, end = item.span
        if item.preposition in _AFTER:
            starts.append(end), ends.append(None)
        elif item.preposition in _SINCE or lowered[item.end :].startswith((" on", " onward")):
            starts.append(start), ends.append(None)
        elif item.preposition in _UNTIL or item.preposition == "up to":
            starts.append(None), ends.append(end)
        elif item.preposition in _BEFORE:
            starts.append(None), ends.append(start)
        else:
            starts.append(start), ends.append(end)
    start = None if None in starts else min(s for s in starts if s is not None)
    end = None if None in ends else max(e for e in ends if e is not None)
    if start is None and end is None:
        return None
    first, last = found[0], found[-1]
    head = lowered[: first.start].split()
    begin = first.start - (len(head[-1]) + 1 if head and head[-1] in _WORDS_BEFORE else 0)
    return DateRange(start, end, lowered[begin : last.end].strip())


_WORDS_BEFORE = {*_AFTER, *_SINCE, *_UNTIL, *_BEFORE, "in", "on", "during", "of", "throughout", "between"}
