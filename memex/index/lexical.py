"""The SQLite half of the index: access classes, the chunk table, and the FTS5 (BM25) index.

Reached only through `memex.index.Index`, which applies the access filter."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memex.access import Access
from memex.documents import Chunk
from memex.store import sqlite

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    """a an and are as at be but by can did do does for from had has have how i if in into is it
    its me my of on or our so than that the their them then there these they this to was we were
    what when where which who whom why will with would you your""".split()
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (
    ac INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    access TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    ac INTEGER NOT NULL REFERENCES classes(ac),
    source_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    date REAL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source_id, ordinal);
CREATE INDEX IF NOT EXISTS chunks_ac ON chunks(ac);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    heading, body, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


def m001_schema(db) -> None:
    sqlite.script(db, SCHEMA)


def m002_records(db) -> None:
    """Which chunks are records (a document's metadata says `record`: a database row, a restricted
    value), which rank by their words (memex.index.RECORD_SHARE)."""
    db.execute("ALTER TABLE chunks ADD COLUMN record INTEGER NOT NULL DEFAULT 0")
    # Before the flag, the database connector's (db:...) were the only records.
    db.execute("UPDATE chunks SET record = 1 WHERE source_id LIKE 'db:%'")


MIGRATIONS = [m001_schema, m002_records]


def _has_migrations(db) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'migrations'").fetchone() is not None


# A chunk's first line is its context (document title > section): it weighs more in BM25.
# Chosen on SciFact (benchmarks/tune_fusion.py): weight 3 gave +0.005 nDCG@10 in hybrid search.
HEADING_WEIGHT = 3.0


def fts_phrase(text: str) -> str | None:
    """The whole query as one FTS5 phrase (for a one-word query: the chunks holding that word,
    which a person typing one word expects before those that are merely about it)."""
    words = _WORD.findall(text.lower())[:64]
    return '"' + " ".join(words) + '"' if words else None


def fts_query(text: str) -> str:
    """A safe FTS5 expression: the query's words (minus stopwords), any of them."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
    if not words:
        words = _WORD.findall(text.lower())
    unique = list(dict.fromkeys(words))[:64]
    return " OR ".join(f'"{w}"' for w in unique)


def access_json(access: Access) -> str:
    return json.dumps(access.to_dict())


def access_from_json(text: str) -> Access:
    return Access.from_dict(json.loads(text))


class LexicalStore:
    def __init__(self, path: Path, *, reset: bool = False) -> None:
        self.db = sqlite.connect(path)
        if reset:
            self.db.executescript(
                "DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS classes;"
                "DROP TABLE IF EXISTS migrations;"
            )
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(fts)")]
        # An index written before headings had their own column: its text is refilled by Index.
        self.needs_text = columns == ["text"]
        if self.needs_text:
            self.db.execute("DROP TABLE fts")
            self.db.execute("DELETE FROM migrations WHERE name = 'm001_schema'") if _has_migrations(
                self.db
            ) else None
        sqlite.migrate(self.db, MIGRATIONS)
        self._classes: dict[int, Access] | None = None
        self._counts: dict[int, int] | None = None
        self._data_version: int | None = None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self):
        with sqlite.transaction(self.db):
            yield
        self.invalidate()

    # -- access classes --
    def class_id(self, access: Access) -> int:
        key = json.dumps(access.key())
        row = self.db.execute("SELECT ac FROM classes WHERE key = ?", (key,)).fetchone()
        if row:
            return int(row[0])
        cursor = self.db.execute("INSERT INTO classes(key, access) VALUES (?, ?)", (key, access_json(access)))
        self.invalidate()
        assert cursor.lastrowid is not None  # an INSERT has one
        return int(cursor.lastrowid)

    def classes(self) -> dict[int, Access]:
        self._refresh_if_changed()
        if self._classes is None:
            self._classes = {
                ac: access_from_json(text) for ac, text in self.db.execute("SELECT ac, access FROM classes")
            }
        return self._classes

    def class_counts(self) -> dict[int, int]:
        self._refresh_if_changed()
        if self._counts is None:
            self._counts = dict(self.db.execute("SELECT ac, COUNT(*) FROM chunks GROUP BY ac"))
        return self._counts

    def classes_of(self, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = self.db.execute(
            "SELECT chunk_id, ac FROM chunks WHERE chunk_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )
        return dict(rows)

    # -- writing (inside a transaction) --
    def add(self, chunk: Chunk, ac: int, date: float | None) -> None:
        self.delete([chunk.chunk_id])
        cursor = self.db.execute(
            "INSERT INTO chunks(chunk_id, ac, source_id, ordinal, date, record) VALUES (?,?,?,?,?,?)",
            (
                chunk.chunk_id,
                ac,
                chunk.source_id,
                chunk.ordinal,
                date,
                int(bool(chunk.metadata.get("record"))),
            ),
        )
        assert cursor.lastrowid is not None  # an INSERT has one
        self._index_text(cursor.lastrowid, chunk.text)

    def _index_text(self, rowid: int, text: str) -> None:
        heading, _, body = text.partition("\n")
        self.db.execute("INSERT INTO fts(rowid, heading, body) VALUES (?, ?, ?)", (rowid, heading, body))

    def refill(self, texts: Iterable[tuple[str, str]]) -> None:
        """Index the text of stored chunks again (after a schema change): (chunk id, text)."""
        with self.transaction():
            for chunk_id, text in texts:
                row = self.db.execute("SELECT rowid FROM chunks WHERE chunk_id = ?", (chunk_id,)).fetchone()
                if row:
                    self._index_text(row[0], text)
        self.needs_text = False

    def delete(self, ids: Iterable[str]) -> int:
        removed = 0
        for chunk_id in ids:
            row = self.db.execute("SELECT rowid FROM chunks WHERE chunk_id = ?", (chunk_id,)).fetchone()
            if row:
                self.db.execute("DELETE FROM fts WHERE rowid = ?", row)
                self.db.execute("DELETE FROM chunks WHERE rowid = ?", row)
                removed += 1
        return removed

    def set_classes(self, pairs: Iterable[tuple[int, str]]) -> None:
        self.db.executemany("UPDATE chunks SET ac = ? WHERE chunk_id = ?", list(pairs))

    # -- reading (the caller passes the classes the principal may read) --
    def chunk_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT chunk_id FROM chunks")}

    def search(
        self, query: str, visible: Iterable[int], where: tuple[str, list[Any]], depth: int
    ) -> list[tuple[str, float]]:
        """BM25 over any of the query's words."""
        expression = fts_query(query)
        return self._match(expression, visible, where, depth) if expression else []

    def phrase_search(
        self, query: str, visible: Iterable[int], where: tuple[str, list[Any]], depth: int
    ) -> list[tuple[str, float]]:
        """Chunks holding the whole query as a phrase."""
        phrase = fts_phrase(query)
        return self._match(phrase, visible, where, depth) if phrase else []

    def record_words(self, query: str, ids: Iterable[str]) -> tuple[dict[str, int], int]:
        """How many of the query's words (as searched: stopwords aside, stemmed; not single
        letters) each record among `ids` holds, and how many words the query has."""
        records = [
            row[0]
            for row in self.db.execute(
                "SELECT chunk_id FROM chunks WHERE record = 1 AND chunk_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(ids)),),
            )
        ]
        # A letter alone (the s of "Simpson's", an initial) is in too many records to count.
        words = [w for w in fts_query(query).split(" OR ") if len(w.strip('"')) > 1]
        held = dict.fromkeys(records, 0)
        for word in words if records else []:
            rows = self.db.execute(
                "SELECT c.chunk_id FROM fts JOIN chunks c ON c.rowid = fts.rowid "
                "WHERE fts MATCH ? AND c.chunk_id IN (SELECT value FROM json_each(?))",
                (word, json.dumps(records)),
            )
            for (chunk_id,) in rows:
                held[chunk_id] += 1
        return held, len(words)

    def _match(
        self, expression: str, visible: Iterable[int], where: tuple[str, list[Any]], depth: int
    ) -> list[tuple[str, float]]:
        extra_sql, extra_args = where
        rows = self.db.execute(
            "SELECT c.chunk_id, bm25(fts, ?, 1.0) AS s FROM fts JOIN chunks c ON c.rowid = fts.rowid "
            "WHERE fts MATCH ? AND c.ac IN (SELECT value FROM json_each(?))"
            f"{extra_sql} ORDER BY s LIMIT ?",
            (HEADING_WEIGHT, expression, json.dumps(sorted(visible)), *extra_args, depth),
        )
        return [(chunk_id, -float(score)) for chunk_id, score in rows]

    def listing(self, visible: Iterable[int], where: tuple[str, list[Any]], limit: int) -> list[str]:
        extra_sql, extra_args = where
        rows = self.db.execute(
            "SELECT c.chunk_id FROM chunks c WHERE c.ac IN (SELECT value FROM json_each(?))"
            f"{extra_sql} ORDER BY c.source_id, c.ordinal LIMIT ?",
            (json.dumps(sorted(visible)), *extra_args, limit),
        )
        return [row[0] for row in rows]

    def source_ids(self, visible: Iterable[int]) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT source_id FROM chunks WHERE ac IN (SELECT value FROM json_each(?)) ORDER BY source_id",
            (json.dumps(sorted(visible)),),
        )
        return [row[0] for row in rows]

    def invalidate(self) -> None:
        self._classes = None
        self._counts = None

    def _refresh_if_changed(self) -> None:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self.invalidate()


def counts_by(
    visible: Mapping[int, Access], counts: Mapping[int, int]
) -> tuple[int, dict[str, int], dict[str, int]]:
    """Chunks, and chunks by label and by level, over the given classes."""
    by_label: dict[str, int] = {}
    by_level: dict[str, int] = {}
    total = 0
    for ac, access in visible.items():
        n = counts.get(ac, 0)
        total += n
        for label in access.labels or {"(none)"}:
            by_label[label] = by_label.get(label, 0) + n
        by_level[access.level] = by_level.get(access.level, 0) + n
    return total, by_label, by_level
