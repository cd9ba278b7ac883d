"""Link tables folded into the rows they link: a link table that is not read on its own
(connectors.database.selection) still says something, so each row of a table it points at lists
the rows it is linked to ("Playlist via PlaylistTrack: Grunge, Music"), as a foreign key's row is
named (follow). Only where the table is followed (the default), only through names that may be
shown (never a restricted column), and at most LINKS_SHOWN names per row and link table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from connectors.database.connection import Database
from connectors.database.declaration import EXCLUDE, SEPARATE, Declaration, TableSpec
from connectors.database.render import BINARY, format_value
from connectors.database.schema import Link, Schema, TablePlan, label_columns_of
from connectors.database.selection import SKIP_LINK, SKIP_NOT_ASKED, Plan

LINKS_SHOWN = 20  # names listed per row and link table; the rest are counted
LOOKUP_CHUNK = 500  # keys per IN (...)


def fold(
    schema: Schema, declaration: Declaration, plan: Plan, specs: list[TableSpec], tables: list[TablePlan]
) -> tuple[Plan, list[TablePlan]]:
    """The table plans (of `specs`) with the links of the link tables not read, and the plan saying
    where each link table's links are listed. Not those a declaration says nothing of or sets to
    false: it chose what is read."""
    link_tables = [c.table for c in plan.skipped if c.reason in (SKIP_LINK, SKIP_NOT_ASKED) and c.link]
    if not link_tables:
        return plan, tables
    shown: dict[str, list[str]] = {t: [] for t in link_tables}
    out = []
    for spec, table in zip(specs, tables, strict=True):
        followed = declaration.follow if spec.follow is None else spec.follow
        links = _links_to(schema, declaration, table, link_tables) if followed is True else ()
        for link in links:
            shown[link.table].append(table.table)
        out.append(replace(table, links=links) if links else table)
    # In the link table's column order (as choose() gave them), those that do list its links.
    choices = tuple(
        replace(c, linked=tuple(t for t in c.linked if t in shown[c.table])) if c.table in shown else c
        for c in plan.tables
    )
    return replace(plan, tables=choices), out


def _links_to(
    schema: Schema, declaration: Declaration, table: TablePlan, link_tables: list[str]
) -> tuple[Link, ...]:
    if table.query is not None:
        return ()
    every = declaration.every_table
    info = schema.table(table.table)
    found = []
    for name in link_tables:
        link = schema.table(name)
        link_spec = declaration.spec(name) or TableSpec(name, restricted=every.restricted if every else ())
        if any(declaration.action(link_spec, c) in (EXCLUDE, SEPARATE) for c in link.column_names()):
            continue  # a restricted key: the link table says nothing outside its own rows
        for own in link.foreign_keys:
            if own.table != table.table or own.schema is not None:
                continue
            ref = own.ref_column or (info.primary_key[0] if len(info.primary_key) == 1 else "")
            if ref not in table.select or ref in table.separate:
                continue
            for other in link.foreign_keys:
                if other is own or other.schema is not None or not schema.has(other.table):
                    continue
                target = schema.table(other.table)
                other_ref = other.ref_column or (
                    target.primary_key[0] if len(target.primary_key) == 1 else ""
                )
                labels = label_columns_of(declaration, target, other_ref) if other_ref else ()
                if labels:
                    found.append(Link(name, own.column, ref, other.column, other.table, other_ref, labels))
    return tuple(found)


class LinkLookup:
    """The names of the rows linked to a batch of rows, one query per LOOKUP_CHUNK keys."""

    def __init__(self, database: Database, link: Link, schema: str | None) -> None:
        self.database = database
        self.link = link
        self.schema = schema

    def lookup(self, keys: Iterable[Any], connection: Any) -> dict[Any, str]:
        """key -> "Grunge, Music" (or "..., and 3,270 more"), for the keys that have links."""
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        names: dict[Any, dict[str, None]] = {}  # distinct names, in order
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            for key, name in self._fetch(wanted[start : start + LOOKUP_CHUNK], connection):
                if name:
                    names.setdefault(key, {})[name] = None
        out = {}
        for key, found in names.items():
            listed = list(found)[:LINKS_SHOWN]
            more = len(found) - len(listed)
            out[key] = ", ".join(listed) + (f", and {more:,} more" if more else "")
        return out

    def _fetch(self, keys: list[Any], connection: Any) -> Iterable[tuple[Any, str | None]]:
        from sqlalchemy import column, select, table

        link = self.link
        pairs = table(link.table, column(link.own), column(link.other), schema=self.schema)
        other_columns = dict.fromkeys((link.other_ref, *link.labels))
        other = table(link.other_table, *map(column, other_columns), schema=self.schema)
        statement = (
            select(pairs.c[link.own], *(other.c[c] for c in link.labels))
            .join_from(pairs, other, pairs.c[link.other] == other.c[link.other_ref])
            .where(pairs.c[link.own].in_(keys))
            .order_by(pairs.c[link.own], *(other.c[c] for c in link.labels))
        )
        try:
            rows = connection.execute(statement).all()
        except Exception as exc:
            raise self.database.error(
                f"listing the {link.other_table} rows linked in {link.table}", exc
            ) from None
        for key, *labels in rows:
            parts = [format_value(v) for v in labels]
            yield key, " ".join(p for p in parts if p and p is not BINARY) or None
