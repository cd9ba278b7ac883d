"""Rows as readable text: what the table means, column names with their values, and the names of
the rows foreign keys point at. Pure functions of a plan and the values read."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from connectors.database.schema import TablePlan
from memex.documents import Element

BINARY = object()  # format_value's answer for bytes: never indexed


def format_value(value: Any) -> Any:
    """A value as text, None for NULL or empty, BINARY for bytes."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return BINARY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = str(value).strip()
    return text or None


def key_text(plan: TablePlan, values: Mapping[str, str | None]) -> str:
    """ "employee_id 100", "PlaylistId 1, TrackId 3402"."""
    return ", ".join(f"{column} {values.get(column) or 'NULL'}" for column in plan.key)


def row_title(
    plan: TablePlan, values: Mapping[str, str | None], names: Mapping[str, str], key_label: str
) -> str:
    """ "Employee record: Steven King"; a row with no name of its own is named after the first row
    it points at ("Sales deal: Museu Natural de Lisboa (deal_id 5)"), else by its key."""
    if any(values.get(c) for c in plan.title):
        return f"{plan.meaning}: {row_name(plan, values, names)}"
    pointed = row_name(plan, values, names)
    if pointed:
        return f"{plan.meaning}: {pointed} ({key_label})"
    return f"{plan.meaning} {key_label}"


def row_elements(
    plan: TablePlan,
    values: Mapping[str, str | None],
    names: Mapping[str, str],
    key_label: str,
    linked: tuple[str, ...] = (),
) -> list[Element]:
    """The ordinary document of a row. `values` holds only columns that may be shown; `names`
    the labels of followed foreign keys, by column; `linked` the lines of folded link tables
    ("Playlist via PlaylistTrack: Grunge, Music")."""
    where = f"table {plan.table}, {key_label}" if plan.key else f"table {plan.table}"
    lines = [Element(f"{plan.meaning} ({where})")]
    follows = {f.column: f for f in plan.follows}
    for column in plan.text:
        value = values.get(column)
        if value is None:
            continue
        follow = follows.get(column)
        name = names.get(column) if follow else None
        if follow and name:
            if follow.shown_as != column:
                lines.append(Element(f"{follow.shown_as}: {name} ({column} {value})"))
            else:
                lines.append(Element(f"{column}: {name} ({follow.ref_column} {value})"))
        else:
            lines.append(Element(f"{column}: {value}"))
    lines.extend(Element(line) for line in linked)
    return lines


def column_elements(plan: TablePlan, column: str, value: str, key_label: str, who: str) -> list[Element]:
    """The document of one restricted column of a row: which row, and the value, said with the
    row's name ("Dev Okafor, salary_eur: 87250") so that the line stands on its own as evidence."""
    where = f"table {plan.table}, {key_label}" if plan.key else f"table {plan.table}"
    return [
        Element(f"{plan.meaning} ({where}), restricted column {column}"),
        Element(f"{who}, {column}: {value}"),
    ]


def row_name(plan: TablePlan, values: Mapping[str, str | None], names: Mapping[str, str]) -> str | None:
    """What names a row: its title columns, else the first row it points at."""
    name = " ".join(v for v in (values.get(c) for c in plan.title) if v)
    if name:
        return name
    return next((names[f.column] for f in plan.follows if names.get(f.column)), None)


def timestamp_of(value: Any) -> float | None:
    """Epoch seconds of an updated-at value, when it is a date, a time stamp or an ISO string."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 10**11:
        return float(value)
    if isinstance(value, str):
        try:
            return timestamp_of(dt.datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None
