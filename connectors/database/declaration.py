"""Database source declarations: what to read from one database, and how to treat its columns.

A declaration is a YAML file named `NAME.database.yaml`:

    name: kestrel                      # the `database` attribute; ids are db:kestrel/<table>/<key>
    url: sqlite:///kestrel.sqlite      # relative to this file; or postgresql+psycopg://user@host/db
    password_env: KESTREL_DB_PASSWORD  # the password, if any, comes from this environment variable
    tables:
      "*": {}                          # every other table, with the defaults
      employees:
        meaning: Employee record       # what a row is (default: from the table name)
        key: employee_id               # default: the declared primary key (else a row hash)
        title: [first_name, last_name] # what names a row (default: name/title columns)
        text: [first_name, last_name, job_title, department_id]   # default: every column
        updated_at: updated_at         # fingerprint; else a hash of the row
        follow: true                   # name the rows its foreign keys point at: true, false,
                                       # [columns], or {column: table or table.column}
        restricted: {salary_eur: separate, home_address: exclude}
      audit_log: false                 # not read
    restricted: {"*iban*": separate}   # for every table; merged over the built-in list

This module is pure: it reads and checks the file's shape. Whether the tables and columns exist is
checked against the database (connectors.database.schema) before anything is read.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memex.errors import ParseError

DECLARATION_SUFFIXES = (".database.yaml", ".database.yml")
DEFAULT_BATCH_ROWS = 1000
SEPARATE, EXCLUDE, KEEP = "separate", "exclude", "keep"
ACTIONS = (SEPARATE, EXCLUDE, KEEP)

# Columns whose names say they hold pay, identity or secrets, unless a declaration says otherwise.
# "separate": the value goes into a document of its own (attribute `column`) that a policy rule
# can label; "exclude": never read at all. Matched case-insensitively.
BUILTIN_RESTRICTED: tuple[tuple[str, str], ...] = (
    *((p, EXCLUDE) for p in ("*password*", "*passwd*", "*pwd_hash*", "*secret*", "*api_key*", "*apikey*")),
    *((p, EXCLUDE) for p in ("*access_token*", "*refresh_token*", "*private_key*")),
    *(
        (p, SEPARATE)
        for p in (
            "*salary*",
            "*wage*",
            "*commission*",
            "*bonus*",
            "*birth*",
            "*ssn",
            "*social_security*",
            "*national_id*",
            "*passport*",
            "*iban*",
            "*bank_account*",
            "*credit_card*",
            "*card_number*",
            "*home*address*",
            "*home*phone*",
        )
    ),
)

_TOP_KEYS = {"name", "url", "schema", "password_env", "batch_rows", "follow", "restricted", "tables"}
_TABLE_KEYS = {"meaning", "query", "key", "title", "text", "updated_at", "follow", "restricted"}


@dataclass(frozen=True)
class TableSpec:
    """What the declaration says about one table (or, for "*", about every other table)."""

    name: str
    meaning: str | None = None
    query: str | None = None
    key: tuple[str, ...] | None = None
    title: tuple[str, ...] | None = None
    text: tuple[str, ...] | None = None
    updated_at: str | None = None
    # None: the declaration's default; True/False; or (column, target) pairs, target "table" or
    # "table.column", or None for "the foreign key the database declares for this column".
    follow: bool | tuple[tuple[str, str | None], ...] | None = None
    restricted: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Declaration:
    origin: str  # the declaration file, or a description of the defaults used
    url: str
    name: str | None = None
    schema: str | None = None
    password_env: str | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    follow: bool = True
    restricted: tuple[tuple[str, str], ...] = ()
    tables: tuple[TableSpec, ...] = ()
    every_table: TableSpec | None = field(default_factory=lambda: TableSpec("*"))
    skipped: frozenset[str] = frozenset()

    def digest(self) -> str:
        """Changes whenever anything that shapes a row's documents changes."""
        data = asdict(self)
        data.pop("origin")
        data["skipped"] = sorted(self.skipped)
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def spec(self, table: str) -> TableSpec | None:
        for spec in self.tables:
            if spec.name == table:
                return spec
        return None

    def action(self, table: TableSpec, column: str) -> str:
        """separate, exclude or keep: the table's own entries first, then the declaration's, then
        the built-in list. Within each, an exact name beats a glob."""
        for rules in (table.restricted, self.restricted, BUILTIN_RESTRICTED):
            found = _lookup(rules, column)
            if found:
                return found
        return KEEP


def _lookup(rules: tuple[tuple[str, str], ...], column: str) -> str | None:
    lowered = column.lower()
    for pattern, action in rules:
        if not _is_glob(pattern) and pattern.lower() == lowered:
            return action
    for pattern, action in rules:
        if _is_glob(pattern) and fnmatch.fnmatchcase(lowered, pattern.lower()):
            return action
    return None


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def is_declaration(path: Path) -> bool:
    return path.name.lower().endswith(DECLARATION_SUFFIXES)


def load_declaration(path: Path) -> Declaration:
    """Read and check a declaration file. Raises ParseError naming the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ParseError(f"{path}: cannot read the declaration: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ParseError(f"{path}: not valid YAML: {exc}") from None
    return parse_declaration(data, origin=str(path))


def default_declaration(url: str, *, origin: str) -> Declaration:
    """Every table, declared keys and foreign keys, the built-in restricted columns."""
    return Declaration(origin=origin, url=url)


def parse_declaration(data: Any, *, origin: str) -> Declaration:
    reader = _Reader(origin)
    top = reader.mapping(data, "", _TOP_KEYS)
    url = reader.text(top.get("url"), "url", required=True)
    name = reader.text(top.get("name"), "name")
    if name is not None and ("/" in name or not name.strip()):
        reader.fail("name", f"{name!r} cannot be used: it names the database in ids (no '/')")
    batch_rows = top.get("batch_rows", DEFAULT_BATCH_ROWS)
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or not 1 <= batch_rows <= 1_000_000:
        reader.fail("batch_rows", f"{batch_rows!r} is not a number of rows between 1 and 1000000")
    follow = top.get("follow", True)
    if not isinstance(follow, bool):
        reader.fail("follow", "must be true or false")
    tables: list[TableSpec] = []
    every: TableSpec | None = None
    skipped: set[str] = set()
    raw_tables = top.get("tables", {"*": {}})
    for table_name, raw in reader.mapping(raw_tables, "tables", None).items():
        where = f"tables.{table_name}"
        if raw is False:
            skipped.add(str(table_name))
            continue
        spec = _table(reader, str(table_name), {} if raw is None else raw, where)
        if table_name == "*":
            if spec.meaning or spec.query or spec.key or spec.title or spec.text or spec.updated_at:
                reader.fail(where, "'*' takes only follow and restricted (name a table for the rest)")
            every = spec
        else:
            tables.append(spec)
    if not tables and every is None:
        reader.fail("tables", "declares no table to read")
    return Declaration(
        origin=origin,
        url=url,
        name=name,
        schema=reader.text(top.get("schema"), "schema"),
        password_env=reader.text(top.get("password_env"), "password_env"),
        batch_rows=batch_rows,
        follow=follow,
        restricted=_restricted(reader, top.get("restricted"), "restricted"),
        tables=tuple(tables),
        every_table=every,
        skipped=frozenset(skipped),
    )


def _table(reader: _Reader, name: str, raw: Any, where: str) -> TableSpec:
    data = reader.mapping(raw, where, _TABLE_KEYS)
    follow = data.get("follow")
    if isinstance(follow, Mapping):
        for column, target in follow.items():
            if not isinstance(target, str) or not target or target.count(".") > 1:
                reader.fail(f"{where}.follow.{column}", "expected a table or table.column it points at")
        follow = tuple((str(c), t) for c, t in follow.items())
    elif follow is not None and not isinstance(follow, bool):
        follow = tuple((c, None) for c in reader.names(follow, f"{where}.follow") or ())
    return TableSpec(
        name=name,
        meaning=reader.text(data.get("meaning"), f"{where}.meaning"),
        query=reader.text(data.get("query"), f"{where}.query"),
        key=reader.names(data.get("key"), f"{where}.key"),
        title=reader.names(data.get("title"), f"{where}.title"),
        text=reader.names(data.get("text"), f"{where}.text"),
        updated_at=reader.text(data.get("updated_at"), f"{where}.updated_at"),
        follow=follow,
        restricted=_restricted(reader, data.get("restricted"), f"{where}.restricted"),
    )


def _restricted(reader: _Reader, raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    out = []
    for column, action in reader.mapping(raw or {}, where, None).items():
        if action not in ACTIONS:
            reader.fail(f"{where}.{column}", f"{action!r} is not one of {', '.join(ACTIONS)}")
        out.append((str(column), action))
    return tuple(out)


class _Reader:
    """Shape checks with messages that name the file and the field."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, message: str) -> None:
        raise ParseError(f"{self.origin}: {where}: {message}" if where else f"{self.origin}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str] | None) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, "expected a mapping (key: value)")
        if allowed is not None:
            unknown = sorted(str(k) for k in value if k not in allowed)
            if unknown:
                self.fail(where, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")
        return value

    def text(self, value: Any, where: str, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(where, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(where, "expected a non-empty string")
        return value.strip()

    def names(self, value: Any, where: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(where, "expected a column name or a list of column names")
        return tuple(value)
