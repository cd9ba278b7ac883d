"""What the database holds (tables, columns, keys, foreign keys) and, against it, a plan per table:
which columns are read, which form the text, which go into documents of their own, which are
never read. Every inconsistency between a declaration and the database is found here, before a
single row is read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from connectors.database.connection import Database
from connectors.database.declaration import EXCLUDE, SEPARATE, Declaration, TableSpec
from memex.errors import ParseError

_NAME_COLUMN = re.compile(r"(name|title)$", re.IGNORECASE)
_LABEL_COLUMNS = (
    re.compile(r"(description|label|subject)$", re.IGNORECASE),
    re.compile(r"^(city|email|code)$", re.IGNORECASE),
)
_ID_SUFFIX = re.compile(r"(_id|_ID|Id|ID|_fk|_key)$")


@dataclass(frozen=True)
class Column:
    name: str
    binary: bool = False
    textual: bool = True


@dataclass(frozen=True)
class ForeignKey:
    column: str
    table: str
    ref_column: str
    schema: str | None = None  # the referenced table's schema, where it is another one


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...]

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Follow:
    """A foreign key followed one level: the referenced row's name is shown instead of its id."""

    column: str
    table: str
    ref_column: str
    label_columns: tuple[str, ...]
    shown_as: str  # the name the label is shown (and matched as field.NAME) under
    schema: str | None = None  # None: the declaration's schema


@dataclass(frozen=True)
class Link:
    """A link table seen from one of the tables it links (PlaylistTrack from Track)."""

    table: str  # the link table: PlaylistTrack
    own: str  # its column that points at this table's rows: TrackId
    ref: str  # the column of this table it points at: TrackId
    other: str  # its column that points at the linked rows: PlaylistId
    other_table: str  # Playlist
    other_ref: str  # PlaylistId
    labels: tuple[str, ...]  # what names a linked row: (Name,)

    @property
    def heading(self) -> str:
        return f"{self.other_table} via {self.table}"


@dataclass(frozen=True)
class TablePlan:
    table: str
    meaning: str
    query: str | None  # None: read the table itself
    select: tuple[str, ...]  # every column read (never an excluded or binary one)
    key: tuple[str, ...]  # () when the table has no key: rows are identified by a hash
    title: tuple[str, ...]
    text: tuple[str, ...]  # the ordinary document's columns, in order
    separate: tuple[str, ...]  # restricted columns, each in a document of its own
    updated_at: str | None
    follows: tuple[Follow, ...]
    skipped_binary: tuple[str, ...]
    excluded: tuple[str, ...]
    # Link tables folded into this table's rows (connectors.database.links); kept out of repr so
    # that a table without any keeps the shape (and the fingerprints) it had before links.
    links: tuple[Link, ...] = field(default=(), repr=False)

    def field_columns(self) -> tuple[str, ...]:
        """Columns whose values become `field.NAME` attributes (never a restricted one)."""
        return tuple(c for c in self.select if c not in self.separate)


class Schema:
    """Reflects only the tables it is asked about, once each."""

    def __init__(self, database: Database, schema: str | None) -> None:
        from sqlalchemy import inspect

        self.database = database
        self.schema = schema
        self._inspector = inspect(database.engine)
        self._tables: dict[tuple[str | None, str], TableInfo] = {}
        try:
            self.table_names = [
                n for n in self._inspector.get_table_names(schema=schema) if not n.startswith("sqlite_")
            ]
            self.view_names = list(self._inspector.get_view_names(schema=schema))
        except Exception as exc:
            raise database.error("cannot list the tables", exc) from None

    def has(self, table: str, schema: str | None = None) -> bool:
        if schema is not None and schema != self.schema:
            try:
                return bool(self._inspector.has_table(table, schema=schema))
            except Exception as exc:
                raise self.database.error(f"cannot look for table {schema}.{table}", exc) from None
        return table in self.table_names or table in self.view_names

    def table(self, name: str, schema: str | None = None) -> TableInfo:
        schema = schema or self.schema
        if (schema, name) not in self._tables:
            try:
                self._tables[schema, name] = self._reflect(name, schema)
            except ParseError:
                raise
            except Exception as exc:
                raise self.database.error(f"cannot read the structure of table {name}", exc) from None
        return self._tables[schema, name]

    def _reflect(self, name: str, schema: str | None) -> TableInfo:
        inspector = self._inspector
        columns = tuple(_column(c["name"], c["type"]) for c in inspector.get_columns(name, schema=schema))
        primary_key: tuple[str, ...] = ()
        foreign_keys: list[ForeignKey] = []
        if name in self.table_names or schema != self.schema:
            primary_key = tuple(
                inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or ()
            )
            for fk in inspector.get_foreign_keys(name, schema=schema):
                constrained, referred = fk.get("constrained_columns") or [], fk.get("referred_columns") or []
                if len(constrained) == 1 and fk.get("referred_table"):
                    # SQLite lets a foreign key omit the column: it means the primary key.
                    ref = referred[0] if referred else ""
                    # No schema named: the default one (PostgreSQL leaves out what is on the search path).
                    other = fk.get("referred_schema") or (inspector.default_schema_name if schema else None)
                    other = other if other and other != schema else None
                    foreign_keys.append(ForeignKey(constrained[0], fk["referred_table"], ref, other))
        return TableInfo(name, columns, primary_key, tuple(foreign_keys))

    def query_columns(self, table: str, query: str) -> tuple[Column, ...]:
        """The columns a declared query returns, found by running it for no rows."""
        try:
            with self.database.engine.connect() as connection:
                result = connection.exec_driver_sql(f"SELECT * FROM ({query}) AS memex_q WHERE 1 = 0")
                names = list(result.keys())
        except Exception as exc:
            raise self.database.error(f"the query declared for {table} failed", exc) from None
        return tuple(Column(n) for n in names)


def check_declaration(schema: Schema, declaration: Declaration) -> None:
    """Raises ParseError for a table the declaration names that the database lacks, before any
    row is read."""
    origin, database = declaration.origin, schema.database
    for name in sorted(declaration.skipped):
        if not schema.has(name):
            raise ParseError(f"{origin}: tables.{name}: {database.display} has no table {name}")
    for spec in declaration.tables:
        if spec.query is None and not schema.has(spec.name):
            raise ParseError(
                f"{origin}: tables.{spec.name}: {database.display} has no table {spec.name} "
                f"(tables: {', '.join(schema.table_names) or 'none'})"
            )


def plan_table(schema: Schema, declaration: Declaration, spec: TableSpec) -> TablePlan:
    """How one table is read. Raises ParseError for anything the declaration says of it that the
    database contradicts."""
    where = f"{declaration.origin}: tables.{spec.name}"
    if spec.query is not None:
        columns = schema.query_columns(spec.name, spec.query)
        base = schema.table(spec.name) if schema.has(spec.name) else None
        primary_key = ()
        foreign_keys = base.foreign_keys if base else ()
    else:
        info = schema.table(spec.name)
        columns, primary_key, foreign_keys = info.columns, info.primary_key, info.foreign_keys
    names = [c.name for c in columns]

    def check(declared: tuple[str, ...] | None, what: str) -> None:
        for column in declared or ():
            if column not in names:
                raise ParseError(
                    f"{where}.{what}: {spec.name} has no column {column} (columns: {', '.join(names)})"
                )

    for what in ("key", "title", "text"):
        check(getattr(spec, what), what)
    check((spec.updated_at,) if spec.updated_at else None, "updated_at")
    check(tuple(c for c, _ in spec.restricted if not any(ch in c for ch in "*?[")), "restricted")

    actions = {c.name: declaration.action(spec, c.name) for c in columns}
    excluded = tuple(n for n in names if actions[n] == EXCLUDE)
    binary = tuple(c.name for c in columns if c.binary and actions[c.name] != EXCLUDE)
    readable = [n for n in names if n not in excluded and n not in binary]
    separate = tuple(n for n in readable if actions[n] == SEPARATE)
    ordinary = [n for n in readable if n not in separate]
    key = spec.key or tuple(primary_key)
    updated_at = (spec.updated_at,) if spec.updated_at else ()
    for what, declared in (("key", key), ("title", spec.title or ()), ("updated_at", updated_at)):
        for column in declared:
            if column not in ordinary:
                reason = "binary" if column in binary else f"restricted ({actions[column]})"
                raise ParseError(f"{where}.{what}: column {column} is {reason}, so it cannot be used here")
    title = (
        tuple(spec.title)
        if spec.title
        else label_columns([c for c in columns if c.name in ordinary], exclude=key)
    )
    # The updated-at column is bookkeeping: in the text only where the declaration asks for it.
    text = tuple(spec.text) if spec.text else tuple(c for c in ordinary if c != spec.updated_at)
    for column in text:
        if column not in ordinary:
            raise ParseError(
                f"{where}.text: column {column} is restricted or binary; it is never in the text"
            )
    follows = _follows(schema, declaration, spec, foreign_keys, ordinary, names, where)
    return TablePlan(
        table=spec.name,
        meaning=spec.meaning or meaning_of(spec.name),
        query=spec.query,
        select=tuple(readable),
        key=tuple(key),
        title=title,
        text=text,
        separate=separate,
        updated_at=spec.updated_at,
        follows=follows,
        skipped_binary=binary,
        excluded=excluded,
    )


def _follows(
    schema: Schema,
    declaration: Declaration,
    spec: TableSpec,
    foreign_keys: tuple[ForeignKey, ...],
    ordinary: list[str],
    names: list[str],
    where: str,
) -> tuple[Follow, ...]:
    declared = {fk.column: fk for fk in foreign_keys}
    setting = declaration.follow if spec.follow is None else spec.follow
    if setting is False:
        return ()
    if setting is True:
        wanted: list[tuple[str, str | None]] = [(c, None) for c in declared]
    else:
        wanted = list(setting)
    out = []
    for column, target in wanted:
        if column not in names:
            raise ParseError(f"{where}.follow: {spec.name} has no column {column}")
        if column not in ordinary:
            continue  # a restricted column is never shown, so neither is what it points at
        if target is None:
            if column not in declared:
                raise ParseError(
                    f"{where}.follow: {column} is not a declared foreign key; "
                    f"say what it points at ({column}: table or table.column)"
                )
            fk = declared[column]
        else:
            table, _, ref = target.partition(".")
            fk = ForeignKey(column, table, ref)
        if not schema.has(fk.table, fk.schema):
            raise ParseError(f"{where}.follow: {column} points at {fk.table}, which the database lacks")
        referenced = schema.table(fk.table, fk.schema)
        ref_column = fk.ref_column or (referenced.primary_key[0] if len(referenced.primary_key) == 1 else "")
        if ref_column not in referenced.column_names():
            raise ParseError(
                f"{where}.follow: {column} points at {fk.table}.{ref_column or '?'}, which does not exist"
            )
        labels = label_columns_of(declaration, referenced, ref_column)
        if not labels:
            continue  # nothing names the referenced rows: show the id alone
        out.append(Follow(column, fk.table, ref_column, labels, shown_as(column, names), fk.schema))
    return tuple(sorted(out, key=lambda f: names.index(f.column)))  # in the table's column order


def label_columns_of(declaration: Declaration, table: TableInfo, ref_column: str) -> tuple[str, ...]:
    """What names a row of a referenced table: its declared title, else name/title columns; never a
    restricted or binary column."""
    spec = declaration.spec(table.name) or TableSpec(
        table.name, restricted=declaration.every_table.restricted if declaration.every_table else ()
    )
    usable = [
        c
        for c in table.columns
        if not c.binary and declaration.action(spec, c.name) not in (EXCLUDE, SEPARATE)
    ]
    usable_names = {c.name for c in usable}
    if spec.title:
        return tuple(c for c in spec.title if c in usable_names) if set(spec.title) <= usable_names else ()
    return label_columns(usable, exclude=(ref_column, *table.primary_key))


def label_columns(columns: list[Column], *, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The columns that name a row: a first and last name, else the first ...name or ...title
    column, else a ...description, ...label or ...subject one, else a city, email or code one;
    else none (the row is named by its key)."""
    candidates = [c for c in columns if c.textual and not c.binary and c.name not in exclude]
    by_lower = {c.name.lower().replace("_", ""): c.name for c in candidates}
    if "firstname" in by_lower and "lastname" in by_lower:
        return (by_lower["firstname"], by_lower["lastname"])
    for pattern in (_NAME_COLUMN, *_LABEL_COLUMNS):
        for column in candidates:
            if pattern.search(column.name):
                return (column.name,)
    return ()


def shown_as(column: str, names: list[str]) -> str:
    """department_id -> department; a column without an id suffix keeps its name."""
    stripped = _ID_SUFFIX.sub("", column).rstrip("_")
    if stripped and stripped != column and stripped not in names:
        return stripped
    return column


def meaning_of(table: str) -> str:
    """employees -> "Employee record", InvoiceLine -> "Invoice line record"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", table).replace("_", " ").split()
    if not words:
        return "Record"
    words[-1] = _singular(words[-1])
    phrase = " ".join(words).lower()
    return f"{phrase[0].upper()}{phrase[1:]} record"


def _singular(word: str) -> str:
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 4:
        return word[:-3] + ("Y" if word[-3].isupper() else "y")
    if lower.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def _column(name: str, type_: Any) -> Column:
    from sqlalchemy import types

    binary = isinstance(type_, types._Binary) or type(type_).__name__.upper() in {"BLOB", "BYTEA", "RAW"}
    textual = isinstance(type_, types.String | types.NullType) or type(type_).__name__.upper() in {
        "TEXT",
        "NVARCHAR",
        "VARCHAR",
        "CHAR",
        "CITEXT",
    }
    return Column(name=name, binary=binary, textual=textual)
