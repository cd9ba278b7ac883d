"""Which tables of a database are read, and the plan that says so before a row is read.

Every table a declaration covers (its "*" entry, or every table when there is no declaration) is
read, except:
  - link tables: every column is part of the primary key or a foreign key, and at least two of
    them point at other rows (PlaylistTrack: PlaylistId, TrackId). A row of one says only that two
    rows are linked ("Playlist track record: Music (PlaylistId 1, TrackId 1)"), there are usually
    many of them, and as documents they crowd out everything else; their links are listed in the
    rows they link instead (connectors.database.links).
  - tables of more than MAX_ROWS rows (`-o max_rows=N`).
A table a declaration names is always read; one it sets to `false` never is. `-o tables=A,B`
reads exactly A and B, `-o tables=+A` what is read by default and A, `-o tables=*` every table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.database.declaration import Declaration, TableSpec, is_declaration
from connectors.database.schema import Schema, TableInfo
from memex.errors import ParseError

# A table of more than this many rows is a log, line items or generated data more often than
# something a person asks about row by row, and it is what makes an ingest slow: the embedding
# model reads about 30 rows a second on two cores (BENCHMARKS.md, "Databases in a life archive"),
# so 5,000 rows are already about 3 minutes, and every row is one more passage to compete with
# the mail and documents in every search. Above it a table is read when asked for.
MAX_ROWS = 5_000
COUNT_CAP = 1_000_000  # rows are counted up to this many (a bounded query on any server)
_ID_NAME = re.compile(r"(_id|Id|ID)$")

READ_DECLARED, READ_DEFAULT, READ_ASKED = "declared", "default", "asked for"
SKIP_LINK, SKIP_LARGE, SKIP_NOT_ASKED = "link table", "large", "not asked for"
SKIP_FALSE, SKIP_UNDECLARED = "false in the declaration", "not in the declaration"


@dataclass(frozen=True)
class Selection:
    """What the command line asked for: `tables` and `max_rows` options."""

    names: tuple[str, ...] = ()  # the tables named in -o tables (without "+")
    every: bool = False  # tables=*
    extra: bool = False  # tables=+A,B: what is read by default, and these
    max_rows: int = MAX_ROWS

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Selection:
        max_rows = options.get("max_rows", MAX_ROWS)
        try:
            max_rows = int(str(max_rows).replace(",", "").replace("_", ""))
        except ValueError:
            max_rows = 0
        if max_rows < 1:
            raise ParseError(
                f"option max_rows={options.get('max_rows')!r} is not a number of rows (1 or more)"
            )
        raw = str(options.get("tables") or "").strip()
        if raw == "*":
            return cls(every=True, max_rows=max_rows)
        extra = raw.startswith("+")
        names = tuple(dict.fromkeys(n.strip() for n in raw.lstrip("+").split(",") if n.strip()))
        if raw and not names:
            raise ParseError(
                f"option tables={raw!r} names no table (e.g. -o tables=Album,Track or -o tables=*)"
            )
        return cls(names=names, extra=extra, max_rows=max_rows)

    @property
    def default(self) -> bool:
        return not self.every and not (self.names and not self.extra)


@dataclass(frozen=True)
class TableChoice:
    table: str
    rows: int | None  # None: not counted (a declared query); COUNT_CAP + 1 means "more than COUNT_CAP"
    read: bool
    reason: str  # READ_* or SKIP_*
    link: bool = False  # only keys (is_link_table)
    linked: tuple[str, ...] = ()  # a link table not read: the tables whose rows list its links


@dataclass(frozen=True)
class Plan:
    """What will be read from one database and what will not, and why. `line()` says it."""

    database: str  # a file name or a URL without password
    tables: tuple[TableChoice, ...]
    max_rows: int
    declaration: str | None = None  # the declaration file, if one was used
    unknown: tuple[str, ...] = ()  # names given with -o tables that the database lacks

    @property
    def read(self) -> tuple[TableChoice, ...]:
        return tuple(t for t in self.tables if t.read)

    @property
    def skipped(self) -> tuple[TableChoice, ...]:
        return tuple(t for t in self.tables if not t.read)

    @property
    def rows(self) -> int:
        """Rows of the tables that will be read (those that could be counted)."""
        return sum(min(t.rows, COUNT_CAP) for t in self.read if t.rows is not None)

    def line(self) -> str:
        """One line for a person: what is read, what is skipped, and how to choose."""
        read, skipped = self.read, self.skipped
        what = f"all {len(read)} tables" if not skipped else f"{len(read)} of {len(self.tables)} tables"
        listed = ", ".join(f"{t.table} ({_rows(t.rows)})" for t in read) or "nothing"
        out = f"{self.database}: reading {what} ({self.rows:,} rows): {listed}"
        if skipped:
            out += "; skipping " + ", ".join(f"{t.table} ({self._why(t)})" for t in skipped)
        if self.unknown:
            out += f"; no table {', '.join(self.unknown)} here (asked for with -o tables)"
        if skipped:
            where = f"in {self.declaration}" if self.declaration else "in a declaration file"
            out += (
                "; add a table with -o tables=+NAME, read every table with -o tables=*, "
                f"or choose {where} (README: Databases)"
            )
        return out

    def _why(self, choice: TableChoice) -> str:
        count = f"{_rows(choice.rows, unit=True)}, " if choice.rows is not None else ""
        shown = f"; its links are listed in the {' and '.join(choice.linked)} rows" if choice.linked else ""
        if choice.reason == SKIP_LINK:
            return f"{count}only keys: a link table{shown}"
        if choice.reason == SKIP_LARGE:
            return f"{count}more than {self.max_rows:,} rows, see -o max_rows=N"
        return f"{count}{choice.reason}{shown}"


def _rows(count: int | None, *, unit: bool = False) -> str:
    if count is None:
        return "a query"
    text = f"more than {COUNT_CAP:,}" if count > COUNT_CAP else f"{count:,}"
    return f"{text} row{'' if count == 1 else 's'}" if unit else text


def is_link_table(info: TableInfo) -> bool:
    """Only keys: every column in the primary key or a foreign key, and at least two columns that
    point at rows (declared foreign keys, or, where none are declared, id-named key columns)."""
    keys = set(info.primary_key) | {fk.column for fk in info.foreign_keys}
    names = info.column_names()
    if len(names) < 2 or not set(names) <= keys:
        return False
    pointers = {fk.column for fk in info.foreign_keys} or {n for n in names if _ID_NAME.search(n)}
    return len(pointers) >= 2


def count_rows(schema: Schema, table: str, columns: tuple[str, ...] = ()) -> int:
    """Rows in `table`, counted up to COUNT_CAP + 1 (so a huge table costs a bounded scan); with
    `columns`, the values (not NULL) in those columns of those rows instead."""
    from sqlalchemy import column, func, literal, select
    from sqlalchemy import table as table_clause

    source = table_clause(table, *map(column, columns), schema=schema.schema)
    picked = [source.c[c] for c in columns] or [literal(1)]
    limited = select(*picked).select_from(source).limit(COUNT_CAP + 1).subquery()
    counts = [func.count(limited.c[c]) for c in columns] or [func.count()]
    try:
        with schema.database.engine.connect() as connection:
            return sum(int(n) for n in connection.execute(select(*counts).select_from(limited)).one())
    except Exception as exc:
        raise schema.database.error(f"cannot count the rows of {table}", exc) from None


def choose(
    schema: Schema, declaration: Declaration, selection: Selection, *, name: str
) -> tuple[Plan, list[TableSpec]]:
    """The plan for one database, and the specs of the tables to read, in the database's order
    (declared tables first, in the declaration's order)."""
    declared = {s.name: s for s in declaration.tables}
    candidates = [*declared, *(n for n in schema.table_names if n not in declared)]
    wanted, unknown = _resolve(selection.names, [*candidates, *declaration.skipped])
    if selection.names and not selection.extra and not wanted:
        raise ParseError(
            f"{name}: -o tables={','.join(selection.names)}: no such table "
            f"(tables: {', '.join(candidates) or 'none'})"
        )
    choices: list[TableChoice] = []
    specs: list[TableSpec] = []
    for table in [*candidates, *(n for n in sorted(declaration.skipped) if n not in candidates)]:
        spec = declared.get(table)
        query = spec is not None and spec.query is not None
        rows = None if query else count_rows(schema, table)
        info = None if query else schema.table(table)
        link = info is not None and is_link_table(info)
        linked = _pointed_at(info) if link and info is not None else ()
        if table in declaration.skipped:
            choices.append(TableChoice(table, rows, False, SKIP_FALSE, link))
            continue
        if table in wanted or selection.every:
            reason = READ_ASKED
        elif not selection.default:
            choices.append(TableChoice(table, rows, False, SKIP_NOT_ASKED, link, linked))
            continue
        elif spec is not None:
            reason = READ_DECLARED
        elif declaration.every_table is None:
            choices.append(TableChoice(table, rows, False, SKIP_UNDECLARED, link))
            continue
        elif link:
            choices.append(TableChoice(table, rows, False, SKIP_LINK, link, linked))
            continue
        elif rows is not None and rows > selection.max_rows:
            choices.append(TableChoice(table, rows, False, SKIP_LARGE))
            continue
        else:
            reason = READ_DEFAULT
        choices.append(TableChoice(table, rows, True, reason, link))
        specs.append(spec or _default_spec(declaration, table))
    plan = Plan(
        database=name,
        tables=tuple(choices),
        max_rows=selection.max_rows,
        declaration=declaration.origin if is_declaration(Path(declaration.origin)) else None,
        unknown=unknown,
    )
    return plan, specs


def _pointed_at(info: TableInfo) -> tuple[str, ...]:
    """The tables a link table's foreign keys point at, in its column order."""
    order = info.column_names()
    pointers = sorted(info.foreign_keys, key=lambda fk: order.index(fk.column))
    return tuple(dict.fromkeys(fk.table for fk in pointers if fk.schema is None))


def _resolve(names: tuple[str, ...], tables: list[str]) -> tuple[set[str], tuple[str, ...]]:
    """The tables `names` mean (exactly, else ignoring case, as SQL does), and the names that
    match none."""
    by_lower = {t.lower(): t for t in reversed(tables)}
    found, unknown = set(), []
    for name in names:
        table = name if name in tables else by_lower.get(name.lower())
        if table is None:
            unknown.append(name)
        else:
            found.add(table)
    return found, tuple(unknown)


def _default_spec(declaration: Declaration, table: str) -> TableSpec:
    every = declaration.every_table
    if every is None:
        return TableSpec(table)
    return TableSpec(table, follow=every.follow, restricted=every.restricted)
