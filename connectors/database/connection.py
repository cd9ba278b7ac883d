"""Opening a database from a SQLAlchemy URL: SQLite files read-only, servers with the password from
an environment variable, and errors a person can act on (never showing a password)."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from memex.errors import ParseError

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SUFFIXES = frozenset({".sqlite", ".sqlite3", ".db", ".db3"})
# URL schemes (before any "+driver") that name a database a SQLAlchemy dialect reads.
BACKENDS = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle"})
_SCHEME = re.compile(r"^([a-z][a-z0-9]*)(\+[a-z0-9_]+)?://", re.IGNORECASE)
CONNECT_TIMEOUT_S = 10


def is_sqlite_file(path: Path) -> bool:
    """A file with a database suffix that starts with SQLite's header (not just the suffix)."""
    if path.suffix.lower() not in SQLITE_SUFFIXES:
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def is_database_url(target: str) -> bool:
    match = _SCHEME.match(target)
    return bool(match) and match.group(1).lower() in BACKENDS


@dataclass
class Database:
    """An open database: an engine, and how to describe it without credentials."""

    engine: Any  # sqlalchemy.Engine
    display: str  # the URL without password, for messages
    name: str  # the `database` attribute and the id prefix
    path: Path | None  # the file, for SQLite
    password: str | None = None

    def close(self) -> None:
        self.engine.dispose()

    def error(self, what: str, exc: BaseException) -> ParseError:
        """A ParseError for `what` failing, with the driver's reason (credentials removed)."""
        return ParseError(f"{self.display}: {what}: {self.reason(exc)}")

    def reason(self, exc: BaseException) -> str:
        return _reason(exc, self.password)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


def open_database(
    url: str, *, name: str | None, password_env: str | None, base: Path | None, origin: str
) -> Database:
    """Connect (and check the connection works). Raises ParseError saying what to do."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ParseError(f"{origin}: {url!r} is not a database URL ({exc})") from None
    if parsed.password is not None:
        raise ParseError(
            f"{origin}: the database URL carries a password; memex never takes passwords in URLs "
            "(they would be stored and shown). Put it in an environment variable and name that "
            "variable with `password_env:` in a declaration (or use PGPASSWORD for PostgreSQL)."
        )
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ParseError(
                f"{origin}: the environment variable {password_env} (password_env) is not set; "
                "export it with the database password"
            )
    display = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    path = None
    if backend == "sqlite":
        path = _sqlite_path(parsed.database, base, origin)
        display = sqlite_url(path)
        # A new connection each time: the reader runs a lookup beside an open cursor.
        engine = create_engine("sqlite://", creator=lambda: _sqlite_connect(path), poolclass=NullPool)
        default_name = path.stem
    else:
        if password is not None:
            parsed = parsed.set(password=password)
        connect_args: dict[str, Any] = {}
        if backend == "postgresql":
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=False)
        except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
            raise ParseError(
                f"{origin}: no database driver for {parsed.drivername} ({exc}); install it with pip, "
                "e.g. psycopg[binary] for postgresql+psycopg://"
            ) from None
        default_name = parsed.database or parsed.host or backend
        if backend == "postgresql":
            event.listen(engine, "connect", _read_only_postgres)
    database = Database(
        engine=engine, display=display, name=name or default_name, path=path, password=password
    )
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1").fetchall()
    except Exception as exc:  # a driver's own errors: unreachable, refused, bad credentials...
        engine.dispose()
        raise ParseError(
            f"cannot open {display}: {_reason(exc, password)}{_hint(exc, password_env)}"
        ) from None
    return database


def _sqlite_path(database: str | None, base: Path | None, origin: str) -> Path:
    if not database or database == ":memory:":
        raise ParseError(f"{origin}: a sqlite URL must name a database file (sqlite:///path/to/file)")
    path = Path(database).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    path = path.resolve()
    if not path.is_file():
        raise ParseError(f"{origin}: no database file {path}")
    return path


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """Read-only, and text that is not valid UTF-8 is read with replacement characters instead of
    failing the whole table."""
    connection = sqlite3.connect(f"file:{quote(path.as_posix())}?mode=ro", uri=True, check_same_thread=False)
    connection.text_factory = lambda raw: raw.decode("utf-8", "replace")
    return connection


def _read_only_postgres(dbapi_connection: Any, _record: Any) -> None:
    """memex only reads: every session is read-only, whatever a declared query tries."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


def _reason(exc: BaseException, password: str | None) -> str:
    """The driver's message: its first lines, without SQLAlchemy's boilerplate or the password."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip() or type(inner).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("[SQL:", "(Background on this error"))]
    message = " ".join(lines[:2]) or type(inner).__name__
    if password:
        message = message.replace(password, "***")
    return message


def _hint(exc: BaseException, password_env: str | None) -> str:
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "password authentication failed" in text or "no password supplied" in text:
        where = f"the environment variable {password_env}" if password_env else "PGPASSWORD or ~/.pgpass"
        return f"; check the user name and the password in {where}"
    if "connection refused" in text or "timeout" in text or "could not translate host" in text:
        return "; is the server running and reachable at that address?"
    if "does not exist" in text:
        return "; check the database name in the URL"
    return ""
