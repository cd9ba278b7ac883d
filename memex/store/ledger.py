"""The ledger (SQLite, WAL): what was ingested, from where, with which hash and labels, as which
chunk ids. It is the source of truth: the index can be rebuilt from it and the sources.

A source being (re)written is marked `pending` before the index is touched and `indexed` after, so
a crash in between is found and repaired by the next run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memex.access import Access
from memex.store import sqlite

INDEXED, PENDING, FAILED = "indexed", "pending", "failed"


def m001_initial(db: sqlite3.Connection) -> None:
    sqlite.script(
        db,
        """
        CREATE TABLE sources (
            source_id TEXT PRIMARY KEY,
            root TEXT NOT NULL,
            connector TEXT NOT NULL,
            uri TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            fingerprint TEXT,
            content_hash TEXT,
            status TEXT NOT NULL,
            error TEXT,
            access TEXT,
            rules TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            acl TEXT,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL
        );
        CREATE INDEX sources_root ON sources(root);
        CREATE INDEX sources_status ON sources(status);
        CREATE TABLE chunks (
            chunk_id TEXT PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES sources(source_id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL
        );
        CREATE INDEX chunks_source ON chunks(source_id);
        CREATE TABLE roots (
            root TEXT PRIMARY KEY,
            connector TEXT NOT NULL,
            last_ingest REAL
        );
        """,
    )


def m002_path_indexes(db: sqlite3.Connection) -> None:
    """Find the sources at or under a path (a watcher's changed file or folder) without a scan:
    by citation (files) and by the `path` attribute (mail, chats, databases found in folders)."""
    sqlite.script(
        db,
        """
        CREATE INDEX sources_uri ON sources(uri);
        CREATE INDEX sources_path ON sources(json_extract(attributes, '$.path'));
        """,
    )


def m003_state(db: sqlite3.Connection) -> None:
    """Small facts about the whole ledger, e.g. which source rules the stored labels follow."""
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS: list[sqlite.Migration] = [m001_initial, m002_path_indexes, m003_state]


@dataclass(frozen=True)
class SourceRecord:
    source_id: str
    root: str
    connector: str
    uri: str
    title: str
    fingerprint: str | None
    content_hash: str | None
    status: str
    error: str | None
    access: Access | None
    rules: tuple[str, ...]
    attributes: dict[str, Any]
    acl: frozenset[str] | None
    chunk_count: int
    updated_at: float


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite.connect(path, migrations=MIGRATIONS, foreign_keys=True)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> AbstractContextManager[None]:
        return sqlite.transaction(self.db)

    # -- reading --
    def get(self, source_id: str) -> SourceRecord | None:
        row = self.db.execute("SELECT * FROM sources WHERE source_id = ?", (source_id,)).fetchone()
        return _record(row) if row else None

    def records(self, *, status: str | None = None) -> list[SourceRecord]:
        query, args = "SELECT * FROM sources", ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        return [_record(row) for row in self.db.execute(query + " ORDER BY source_id", args)]

    def chunk_ids(self, source_id: str) -> list[str]:
        rows = self.db.execute(
            "SELECT chunk_id FROM chunks WHERE source_id = ? ORDER BY ordinal", (source_id,)
        )
        return [row[0] for row in rows]

    def all_chunk_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT chunk_id FROM chunks")}

    def committed_chunk_ids(self) -> set[str]:
        rows = self.db.execute(
            "SELECT c.chunk_id FROM chunks c JOIN sources s USING (source_id) WHERE s.status = ?",
            (INDEXED,),
        )
        return {row[0] for row in rows}

    def sources_within(self, root: str) -> set[str]:
        """Sources last ingested under `root` or under a folder inside it."""
        rows = self.db.execute(
            "SELECT source_id FROM sources WHERE root = ? OR substr(root, 1, ?) = ?",
            (root, len(root) + 1, root.rstrip("/") + "/"),
        )
        return {row[0] for row in rows}

    def find(self, target: str) -> list[str]:
        """Source ids a `memex forget` target names: a source id, a URI, a root, a folder, or a
        file that holds several sources (an mbox: its messages' URIs are FILE#id)."""
        prefix = target.rstrip("/") + "/"
        inside = target + "#"
        rows = self.db.execute(
            "SELECT source_id FROM sources WHERE source_id = ? OR uri = ? OR root = ? "
            "OR substr(uri, 1, ?) = ? OR substr(root, 1, ?) = ? OR substr(uri, 1, ?) = ?",
            (target, target, target, len(prefix), prefix, len(prefix), prefix, len(inside), inside),
        )
        return [row[0] for row in rows]

    def at_path(self, path: str) -> set[str]:
        """Sources read from the file or folder `path`: cited as it, inside it or as a part of it
        (`FILE#id`), or with it as their `path` attribute or inside it. Index lookups only."""
        path = path.rstrip("/") or "/"
        out: set[str] = set()
        for column in ("uri", "json_extract(attributes, '$.path')"):
            rows = self.db.execute(
                f"SELECT source_id FROM sources WHERE {column} = ? "
                f"OR ({column} >= ? AND {column} < ?) OR ({column} >= ? AND {column} < ?)",
                (path, path + "/", path + "0", path + "#", path + "$"),
            )
            out.update(row[0] for row in rows)
        return out

    def origins(self, source_ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """What the policy's rules match of each source, as stored: (attributes JSON, access
        list JSON or None). Sources the ledger does not know are left out."""
        rows = self.db.execute(
            "SELECT source_id, attributes, acl FROM sources "
            "WHERE source_id IN (SELECT value FROM json_each(?)) AND status != ?",
            (json.dumps(sorted(set(source_ids))), FAILED),
        )
        return {row[0]: (row[1] or "{}", row[2]) for row in rows}

    def state(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def with_uri(self, uri: str) -> list[str]:
        """Source ids whose citation is exactly `uri` (a chat window, a mail message)."""
        return [row[0] for row in self.db.execute("SELECT source_id FROM sources WHERE uri = ?", (uri,))]

    def inside(self, container: str, *, limit: int = 2000) -> list[str]:
        """Source ids read from one file: cited inside it (`container#...`: the messages of an
        mbox) or read from it under ids of their own (a database's rows, `db:NAME/TABLE/KEY`)."""
        prefix = container + "#"
        rows = self.db.execute(
            "SELECT source_id FROM sources WHERE uri >= ? AND uri < ? "
            "UNION SELECT source_id FROM sources WHERE json_extract(attributes, '$.path') = ? "
            "LIMIT ?",
            (prefix, prefix + "\U0010ffff", container, limit),
        )
        return [row[0] for row in rows]

    def roots(self) -> list[tuple[str, str, float | None]]:
        return list(self.db.execute("SELECT root, connector, last_ingest FROM roots ORDER BY root"))

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM sources GROUP BY status"))

    # -- writing --
    def begin(
        self,
        *,
        source_id: str,
        root: str,
        connector: str,
        uri: str,
        title: str,
        fingerprint: str | None,
        content_hash: str,
        access: Access,
        rules: Iterable[str],
        attributes: dict[str, Any],
        acl: frozenset[str] | None,
        chunk_ids: list[str],
    ) -> None:
        """Record the new state of a source as pending, with its new chunk ids."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO sources (source_id, root, connector, uri, title, fingerprint,"
                " content_hash, status, error, access, rules, attributes, acl, chunk_count, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,NULL,?,?,?,?,?,?)",
                (
                    source_id,
                    root,
                    connector,
                    uri,
                    title,
                    fingerprint,
                    content_hash,
                    PENDING,
                    json.dumps(access.to_dict()),
                    json.dumps(list(rules)),
                    json.dumps(attributes, default=str, sort_keys=True),
                    None if acl is None else json.dumps(sorted(acl)),
                    len(chunk_ids),
                    time.time(),
                ),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO chunks (chunk_id, source_id, ordinal) VALUES (?,?,?)",
                [(chunk_id, source_id, i) for i, chunk_id in enumerate(chunk_ids)],
            )

    def commit(self, source_id: str, *, keep: Iterable[str]) -> None:
        """Mark the source indexed and drop any chunk rows not in `keep`."""
        keep = set(keep)
        with self.transaction():
            stale = [c for c in self.chunk_ids(source_id) if c not in keep]
            self.db.executemany("DELETE FROM chunks WHERE chunk_id = ?", [(c,) for c in stale])
            self.db.execute(
                "UPDATE sources SET status = ?, updated_at = ? WHERE source_id = ?",
                (INDEXED, time.time(), source_id),
            )

    def touch(self, source_id: str, *, fingerprint: str | None, root: str) -> None:
        """The content did not change (same hash); remember the new fingerprint and root."""
        self.db.execute(
            "UPDATE sources SET fingerprint = ?, root = ? WHERE source_id = ?",
            (fingerprint, root, source_id),
        )

    def record_failure(
        self,
        *,
        source_id: str,
        root: str,
        connector: str,
        uri: str,
        fingerprint: str | None,
        error: str,
    ) -> None:
        """A source that could not be indexed. It keeps no chunks (the caller removes them)."""
        with self.transaction():
            self.db.execute("DELETE FROM chunks WHERE source_id = ?", (source_id,))
            self.db.execute(
                "INSERT OR REPLACE INTO sources (source_id, root, connector, uri, fingerprint, status,"
                " error, chunk_count, updated_at) VALUES (?,?,?,?,?,?,?,0,?)",
                (source_id, root, connector, uri, fingerprint, FAILED, error, time.time()),
            )

    def set_access(self, source_id: str, access: Access, rules: Iterable[str]) -> None:
        self.db.execute(
            "UPDATE sources SET access = ?, rules = ? WHERE source_id = ?",
            (json.dumps(access.to_dict()), json.dumps(list(rules)), source_id),
        )

    def set_origin(self, source_id: str, *, acl: frozenset[str] | None, attributes: dict[str, Any]) -> None:
        """The connector now gives an unchanged source another access list or attributes (a
        member joined a private channel): remember them, so `relabel` starts from these."""
        self.db.execute(
            "UPDATE sources SET acl = ?, attributes = ? WHERE source_id = ?",
            (
                None if acl is None else json.dumps(sorted(acl)),
                json.dumps(attributes, default=str, sort_keys=True),
                source_id,
            ),
        )

    def remove(self, source_id: str) -> list[str]:
        """Forget a source; returns the chunk ids it had."""
        with self.transaction():
            ids = self.chunk_ids(source_id)
            self.db.execute("DELETE FROM sources WHERE source_id = ?", (source_id,))
        return ids

    def clear_sources(self) -> None:
        """Forget every source (the roots stay), before a rebuild."""
        with self.transaction():
            self.db.execute("DELETE FROM chunks")
            self.db.execute("DELETE FROM sources")

    def mark_root(self, root: str, connector: str) -> None:
        self.db.execute(
            "INSERT INTO roots (root, connector, last_ingest) VALUES (?,?,?) "
            "ON CONFLICT(root) DO UPDATE SET connector = excluded.connector, last_ingest = excluded.last_ingest",
            (root, connector, time.time()),
        )

    def drop_root(self, root: str) -> None:
        self.db.execute("DELETE FROM roots WHERE root = ?", (root,))


def _record(data: sqlite3.Row) -> SourceRecord:
    access = Access.from_dict(json.loads(data["access"])) if data["access"] else None
    return SourceRecord(
        source_id=data["source_id"],
        root=data["root"],
        connector=data["connector"],
        uri=data["uri"],
        title=data["title"] or "",
        fingerprint=data["fingerprint"],
        content_hash=data["content_hash"],
        status=data["status"],
        error=data["error"],
        access=access,
        rules=tuple(json.loads(data["rules"] or "[]")),
        attributes=json.loads(data["attributes"] or "{}"),
        acl=None if data["acl"] is None else frozenset(json.loads(data["acl"])),
        chunk_count=data["chunk_count"],
        updated_at=data["updated_at"],
    )
