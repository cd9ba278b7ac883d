"""A throwaway PostgreSQL server for tests: initdb in a temp dir, listening on loopback on a free
port and on a unix socket in that dir, stopped and deleted afterwards. PostgreSQL refuses to run
as root, so as root it runs as the `postgres` user (runuser)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    socket_dir: Path
    user: str  # a login role with a password, for tests
    password: str

    def url(self, database: str, *, user: str | None = None) -> str:
        return f"postgresql+psycopg://{user or self.user}@{self.host}:{self.port}/{database}"

    def admin(self, database: str = "postgres"):
        """A psycopg connection as the superuser, over the socket (autocommit)."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=database, autocommit=True
        )


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_postgres(password: str = "memex-test-pw") -> Iterator[Server]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="memex-pg-"))
    if as_root:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        os.chown(base, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    started = False
    try:
        subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run([*prefix, "mkdir", str(sockets)], check=True)
        port = _free_port()
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off -c shared_buffers=16MB -c max_connections=20"
        )
        result = subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"],
            capture_output=True, timeout=90,
        )  # fmt: skip
        started = result.returncode == 0
        if not started:
            output = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(
                f"PostgreSQL did not start: {result.stderr.decode(errors='replace')}\n{output}"
            )
        server = Server("127.0.0.1", port, sockets, "memex", password)
        with server.admin() as connection:
            connection.execute(f"CREATE ROLE memex LOGIN PASSWORD '{password}'")
        yield server
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def copy_sqlite(sqlite_path: Path, server: Server, database: str) -> dict[str, int]:
    """Create `database` owned by the test role and copy every table of a SQLite file into it
    (columns, keys, foreign keys, rows). Returns the row count per table."""
    from sqlalchemy import MetaData, create_engine, insert, select

    with server.admin() as connection:
        connection.execute(f'CREATE DATABASE "{database}" OWNER memex')
    source = create_engine(f"sqlite:///{sqlite_path}")
    target = create_engine(
        server.url(database).replace("memex@", f"memex:{server.password}@"),
        connect_args={"connect_timeout": 10},
    )
    metadata = MetaData()
    metadata.reflect(source)
    for table in metadata.tables.values():
        for column in table.columns:
            column.type = column.type.as_generic()  # NVARCHAR(40) -> VARCHAR(40), DATETIME -> TIMESTAMP
        for constraint in list(table.constraints):
            if type(constraint).__name__ == "CheckConstraint":
                table.constraints.discard(constraint)
    counts = {}
    try:
        metadata.create_all(target)
        with source.connect() as read, target.begin() as write:
            for table in metadata.sorted_tables:
                rows = [
                    dict(r._mapping) for r in read.execute(select(table).order_by(*table.primary_key.columns))
                ]
                if rows:
                    write.execute(insert(table), rows)
                counts[table.name] = len(rows)
    finally:
        source.dispose()
        target.dispose()
    return counts
