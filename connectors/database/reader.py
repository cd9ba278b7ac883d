"""Reading a table in batches (a server-side cursor where the database has one) and turning each
row into documents: the row's ordinary document, and one per restricted column that has a value.
Memory stays bounded by the batch size and the size of the foreign-key name caches."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any
from urllib.parse import quote

from connectors.database.connection import Database
from connectors.database.links import LinkLookup
from connectors.database.render import (
    BINARY,
    column_elements,
    format_value,
    key_text,
    row_elements,
    row_name,
    row_title,
    timestamp_of,
)
from connectors.database.schema import Follow, TablePlan
from memex.documents import Element, SourceDocument
from memex.errors import ParseError

log = logging.getLogger("memex.connectors.database")

CONNECTOR = "database"
FIELD_VALUE_MAX_CHARS = 200  # longer values are text, not something a rule matches on
LOOKUP_CHUNK = 500  # values per IN (...) when naming referenced rows
NAME_CACHE_ROWS = 50_000  # per followed foreign key


class TableReader:
    def __init__(
        self, database: Database, plan: TablePlan, *, schema: str | None, digest: str, batch_rows: int
    ):
        self.database = database
        self.plan = plan
        self.schema = schema
        self.digest = digest
        self.batch_rows = batch_rows
        self.names = {f.column: _NameCache(database, f, schema) for f in plan.follows}
        self.links = [LinkLookup(database, link, schema) for link in plan.links]
        self._hashed_ids: set[str] = set()  # only for tables without a key
        shape = (digest, plan, plan.links) if plan.links else (digest, plan)
        self._shape = hashlib.sha256(repr(shape).encode()).hexdigest()[:16]
        self._prefix = f"db:{database.name}/{_quote(plan.table)}/"
        self._field_columns = plan.field_columns()

    def documents(self) -> Iterator[SourceDocument]:
        plan = self.plan
        if plan.skipped_binary:
            log.warning(
                "%s: %s.%s: binary column(s), not indexed",
                self.database.name,
                plan.table,
                ",".join(plan.skipped_binary),
            )
        try:
            engine = self.database.engine
            with engine.connect() as connection, engine.connect() as lookups:
                result = connection.execution_options(yield_per=self.batch_rows).execute(self._select())
                for rows in result.partitions():
                    batch = [dict(zip(plan.select, row, strict=True)) for row in rows]
                    names = {column: cache.lookup(batch, lookups) for column, cache in self.names.items()}
                    linked = [
                        (found.link, found.lookup((raw[found.link.ref] for raw in batch), lookups))
                        for found in self.links
                    ]
                    for raw in batch:
                        lines = tuple(
                            f"{link.heading}: {names_of[raw[link.ref]]}"
                            for link, names_of in linked
                            if raw[link.ref] in names_of
                        )
                        yield from self._documents(raw, names, lines)
        except ParseError:
            raise
        except Exception as exc:  # the driver's errors: a dropped connection, a failing query
            raise self.database.error(f"reading {plan.table} failed", exc) from None

    def _select(self) -> Any:
        from sqlalchemy import column, select, table, text

        plan = self.plan
        if plan.query is not None:
            source = (
                text(plan.query.replace(":", r"\:")).columns(*map(column, plan.select)).subquery("memex_q")
            )
            return select(*(source.c[name] for name in plan.select))
        source = table(plan.table, *map(column, plan.select), schema=self.schema)
        statement = select(*(source.c[name] for name in plan.select))
        return statement.order_by(*(source.c[name] for name in plan.key)) if plan.key else statement

    def _documents(
        self, raw: dict[str, Any], names: Mapping[str, Mapping[Any, str]], linked: tuple[str, ...] = ()
    ) -> Iterator[SourceDocument]:
        plan, database = self.plan, self.database
        values: dict[str, str | None] = {}
        binary: list[str] = []
        for name, value in raw.items():
            text = format_value(value)
            if text is BINARY:
                binary.append(name)
                text = None
            values[name] = text
        row_names = {c: names[c][raw[c]] for c in names if raw.get(c) is not None and raw[c] in names[c]}
        key_label = key_text(plan, values) if plan.key else ""
        row_id = self._row_id(values)
        base_id = f"{self._prefix}{row_id}"
        key_label = key_label or f"row {row_id.lstrip('#')[:8]}"
        title = row_title(plan, values, row_names, key_label)
        who = row_name(plan, values, row_names) or key_label
        attributes: dict[str, Any] = {"connector": CONNECTOR, "database": database.name, "table": plan.table}
        if database.path is not None:
            attributes["path"] = database.path.as_posix()
        for name in self._field_columns:
            value = values.get(name)
            if value is not None and len(value) <= FIELD_VALUE_MAX_CHARS:
                attributes[f"field.{name}"] = value
        for follow in plan.follows:
            name = row_names.get(follow.column)
            if name is not None and follow.shown_as != follow.column and len(name) <= FIELD_VALUE_MAX_CHARS:
                attributes[f"field.{follow.shown_as}"] = name
        # A record: ranks by its words more than by its meaning (memex.index.RECORD_SHARE).
        metadata: dict[str, Any] = {"database": database.name, "table": plan.table, "record": True}
        if plan.key:
            metadata["key"] = key_label
        if plan.updated_at:
            timestamp = timestamp_of(raw.get(plan.updated_at))
            if timestamp is not None:
                metadata["timestamp"] = timestamp
        skipped = [*plan.skipped_binary, *binary]
        if skipped:
            metadata["not_indexed"] = sorted(skipped)
        shown = {c: values[c] for c in plan.select if c not in plan.separate}
        # A row's links are in the fingerprint only where it has some, so rows without keep theirs.
        more = (linked,) if linked else ()
        if plan.updated_at:
            fingerprint = self._fingerprint(
                "u", values.get(plan.updated_at), sorted(row_names.items()), *more
            )
        else:
            fingerprint = self._fingerprint("h", sorted(shown.items()), sorted(row_names.items()), *more)
        yield SourceDocument(
            source_id=base_id,
            uri=base_id,
            title=title,
            connector=CONNECTOR,
            attributes={**attributes, "kind": "row"},
            parse=(parse := partial(row_elements, plan, shown, row_names, key_label, linked)),
            read_bytes=partial(_content, title, parse),
            fingerprint=fingerprint,
            metadata=metadata,
            isolated=False,  # rows are already-parsed values
        )
        for column in plan.separate:
            value = values.get(column)
            if value is None:
                continue
            column_id = f"{base_id}#{_quote(column)}"
            yield SourceDocument(
                source_id=column_id,
                uri=column_id,
                title=f"{title} ({column})",
                connector=CONNECTOR,
                attributes={**attributes, "kind": "column", "column": column},
                parse=(parse := partial(column_elements, plan, column, value, key_label, who)),
                read_bytes=partial(_content, f"{title} ({column})", parse),
                fingerprint=self._fingerprint("c", column, value, title, key_label),
                metadata={**metadata, "column": column},
                isolated=False,
            )

    def _row_id(self, values: Mapping[str, str | None]) -> str:
        plan = self.plan
        if plan.key and all(values.get(k) is not None for k in plan.key):
            return ",".join(_quote(values[k] or "") for k in plan.key)
        # No key (or a NULL in it): the row is known by its content; a changed row is a new one.
        digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:16]
        row_id, n = f"#{digest}", 1
        while row_id in self._hashed_ids:
            n += 1
            row_id = f"#{digest}~{n}"
        self._hashed_ids.add(row_id)
        return row_id

    def _fingerprint(self, kind: str, *parts: Any) -> str:
        data = repr((self._shape, parts)).encode("utf-8", "surrogatepass")
        return f"{kind}:{hashlib.sha256(data).hexdigest()[:32]}"


class _NameCache:
    """The names of the rows one foreign key points at, fetched per batch (only the ones not yet
    known) and kept up to NAME_CACHE_ROWS, least recently used first out."""

    def __init__(self, database: Database, follow: Follow, schema: str | None) -> None:
        self.database = database
        self.follow = follow
        self.schema = schema
        self.known: OrderedDict[Any, str | None] = OrderedDict()

    def lookup(self, batch: list[dict[str, Any]], connection: Any) -> dict[Any, str]:
        wanted = {row[self.follow.column] for row in batch if row.get(self.follow.column) is not None}
        missing = [v for v in wanted if v not in self.known]
        for start in range(0, len(missing), LOOKUP_CHUNK):
            self._fetch(missing[start : start + LOOKUP_CHUNK], connection)
        out = {}
        for value in wanted:
            name = self.known.get(value)
            self.known.move_to_end(value)
            if name:
                out[value] = name
        while len(self.known) > max(NAME_CACHE_ROWS, len(wanted)):
            self.known.popitem(last=False)
        return out

    def _fetch(self, values: list[Any], connection: Any) -> None:
        from sqlalchemy import column, select, table

        follow = self.follow
        columns = (follow.ref_column, *follow.label_columns)
        source = table(
            follow.table, *map(column, dict.fromkeys(columns)), schema=follow.schema or self.schema
        )
        statement = select(*(source.c[c] for c in dict.fromkeys(columns))).where(
            source.c[follow.ref_column].in_(values)
        )
        try:
            rows = connection.execute(statement).all()
        except Exception as exc:
            raise self.database.error(
                f"naming the rows of {follow.table} that {follow.column} points at", exc
            ) from None
        found: dict[Any, str | None] = {}
        for row in rows:
            mapping = dict(zip(dict.fromkeys(columns), row, strict=True))
            parts = [format_value(mapping[c]) for c in follow.label_columns]
            found[mapping[follow.ref_column]] = " ".join(p for p in parts if p and p is not BINARY) or None
        for value in values:
            self.known[value] = found.get(value)


def _content(title: str, parse: Callable[[], list[Element]]) -> bytes:
    """What the content hash covers: the title is in every chunk's text, so it counts too."""
    return "\n".join([title, *(e.text for e in parse())]).encode("utf-8", "surrogatepass")


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.~@:()'")


def _quote(part: str) -> str:
    """Percent-encodes what would break an id ("/", ",", "#", "%"...); most keys need nothing."""
    return part if _SAFE.issuperset(part) else quote(part, safe=" -_.~@:()'")
