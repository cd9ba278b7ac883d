"""The index: dense vectors in Chroma, a lexical BM25 index in SQLite FTS5, and the only way to
read either.

This is the only module that imports chromadb. Reading goes through `Index.search(query, *,
principal, ...)` (and `Index.count(*, principal)` for status figures): the access filter is built
here from the principal, ANDed with whatever narrowing the caller asks for, applied inside both the
vector query and the lexical query, and every hit is checked again with `access.allowed` before it
leaves.

Access classes: every distinct (labels, level, ACL) combination gets a small integer `ac`. A chunk
stores its `ac` (for filtering) and its full access labels (for the second check). A principal's
filter is the set of classes `access.allowed` accepts, so the rule is written once.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from memex.access import Access, Principal, allowed
from memex.documents import Chunk, Hit
from memex.embeddings import Embedder
from memex.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

COLLECTION = "memex_chunks"
RRF_K = 60
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
    text, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Narrowing:
    """What a caller may add to a search. It can only ever remove chunks from what the
    principal may read."""

    source_ids: frozenset[str] | None = None
    without_labels: frozenset[str] = frozenset()
    date_from: float | None = None  # epoch seconds, inclusive
    date_to: float | None = None  # epoch seconds, exclusive

    def chroma_where(self) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        if self.source_ids is not None:
            clauses.append({"source_id": {"$in": sorted(self.source_ids)}})
        if self.date_from is not None:
            clauses.append({"date": {"$gte": self.date_from}})
        if self.date_to is not None:
            clauses.append({"date": {"$lt": self.date_to}})
        return clauses

    def sql_where(self) -> tuple[str, list[Any]]:
        parts, args = [], []
        if self.source_ids is not None:
            parts.append("c.source_id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(sorted(self.source_ids)))
        if self.date_from is not None:
            parts.append("c.date >= ?")
            args.append(self.date_from)
        if self.date_to is not None:
            parts.append("c.date < ?")
            args.append(self.date_to)
        return "".join(f" AND {p}" for p in parts), args


NO_NARROWING = Narrowing()


class Index:
    """Open with `Index.open(path, embedder=...)` (embedded store) or `url=` (a Chroma server)."""

    def __init__(self, collection: Any, lexical: sqlite3.Connection, embedder: Embedder) -> None:
        self._collection = collection
        self._db = lexical
        self.embedder = embedder
        self._class_cache: dict[int, Access] | None = None
        self._count_cache: dict[int, int] | None = None
        self._data_version: int | None = None

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, *, embedder: Embedder, url: str | None = None, reset: bool = False) -> Index:
        """Open (creating if needed). `reset=True` empties the index first (for a rebuild)."""
        import chromadb

        path.mkdir(parents=True, exist_ok=True)
        settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
        try:
            if url:
                host, port = _host_port(url)
                client = chromadb.HttpClient(host=host, port=port, settings=settings)
            else:
                client = chromadb.PersistentClient(str(path / "chroma"), settings=settings)
            if reset and COLLECTION in [c.name for c in client.list_collections()]:
                client.delete_collection(COLLECTION)
            collection = client.get_or_create_collection(
                COLLECTION,
                embedding_function=None,
                metadata={"hnsw:space": "cosine", "embedder": embedder.name, "dimension": embedder.dimension},
            )
        except Exception as exc:  # chromadb raises its own and builtin types alike
            where = url or path
            raise ConfigError(f"cannot open the vector store at {where}: {exc}") from None
        stored = collection.metadata or {}
        if stored.get("embedder") not in (None, embedder.name) or stored.get("dimension") not in (
            None,
            embedder.dimension,
        ):
            raise ModelError(
                f"the index was built with embedding model {stored.get('embedder')!r} "
                f"({stored.get('dimension')} dimensions) but {embedder.name!r} "
                f"({embedder.dimension}) is configured; run `memex reindex` to rebuild it"
            )
        db = sqlite3.connect(path / "lexical.sqlite", isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if reset:
            db.executescript(
                "DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS classes;"
            )
        db.executescript(SCHEMA)
        return cls(collection, db, embedder)

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Add or replace chunks (idempotent: ids are deterministic)."""
        if not chunks:
            return
        classes = [self._class_id(chunk.access) for chunk in chunks]
        self._collection.upsert(
            ids=[c.chunk_id for c in chunks],
            embeddings=np.asarray(vectors, dtype=np.float32),
            documents=[c.text for c in chunks],
            metadatas=[_chroma_metadata(c, ac) for c, ac in zip(chunks, classes, strict=True)],
        )
        with self._transaction():
            for chunk, ac in zip(chunks, classes, strict=True):
                self._delete_lexical([chunk.chunk_id])
                cursor = self._db.execute(
                    "INSERT INTO chunks(chunk_id, ac, source_id, ordinal, date) VALUES (?,?,?,?,?)",
                    (chunk.chunk_id, ac, chunk.source_id, chunk.ordinal, _date_of(chunk.metadata)),
                )
                self._db.execute("INSERT INTO fts(rowid, text) VALUES (?, ?)", (cursor.lastrowid, chunk.text))
        self._invalidate()

    def delete(self, chunk_ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return 0
        for start in range(0, len(ids), 5000):
            self._collection.delete(ids=ids[start : start + 5000])
        with self._transaction():
            removed = self._delete_lexical(ids)
        self._invalidate()
        return removed

    def relabel(self, changes: Mapping[str, Access]) -> int:
        """Change the access labels of stored chunks in place (no re-embedding)."""
        if not changes:
            return 0
        ids = list(changes)
        classes = {chunk_id: self._class_id(access) for chunk_id, access in changes.items()}
        for start in range(0, len(ids), 1000):
            batch = ids[start : start + 1000]
            self._collection.update(
                ids=batch,
                metadatas=[{"ac": classes[i], "access": _access_json(changes[i])} for i in batch],
            )
        with self._transaction():
            self._db.executemany(
                "UPDATE chunks SET ac = ? WHERE chunk_id = ?", [(classes[i], i) for i in ids]
            )
        self._invalidate()
        return len(ids)

    def chunk_ids(self) -> set[str]:
        """Every stored chunk id (for reconciling with the ledger; carries no text)."""
        lexical = {row[0] for row in self._db.execute("SELECT chunk_id FROM chunks")}
        dense = set(self._collection.get(include=[])["ids"])
        return lexical | dense

    def existing(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are fully stored (in both halves of the index)."""
        ids = list(ids)
        if not ids:
            return set()
        lexical = set(self._classes_of(ids))
        dense = set(self._collection.get(ids=ids, include=[])["ids"])
        return lexical & dense

    # -- reading: the choke point ----------------------------------------------------------
    def search(
        self,
        query: str | None,
        *,
        principal: Principal,
        k: int = 10,
        narrowing: Narrowing = NO_NARROWING,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """The chunks `principal` may read that best match `query`, best first.

        With `query=None`, the readable chunks selected by `narrowing` (e.g. one source), in
        document order: used to show a source.
        """
        if mode not in ("hybrid", "dense", "lexical"):
            raise ValueError(f"unknown search mode {mode!r}")
        visible = self._visible_classes(principal, narrowing)
        if not visible:
            return []
        if query is None:
            ids = self._listing(visible, narrowing, limit=k)
            return self._release(ids, {}, principal, visible)
        depth = max(k * 4, 40)
        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        if mode in ("hybrid", "dense"):
            dense = self._dense(query, visible, narrowing, depth)
        if mode in ("hybrid", "lexical"):
            lexical = self._lexical(query, visible, narrowing, depth)
        ranked = _fuse(dense, lexical, k)
        scores = {chunk_id: score for chunk_id, score in ranked}
        details = {
            "dense": dict(dense),
            "lexical": dict(lexical),
        }
        hits = self._release([chunk_id for chunk_id, _ in ranked], scores, principal, visible)
        return [
            replace(
                hit,
                metadata={
                    **hit.metadata,
                    "similarity": details["dense"].get(hit.chunk_id),
                    "bm25": details["lexical"].get(hit.chunk_id),
                },
            )
            for hit in hits
        ]

    def count(self, *, principal: Principal) -> dict[str, Any]:
        """Counts of what `principal` may read: chunks and sources, by label and level."""
        visible = self._visible_classes(principal, NO_NARROWING)
        counts = self._class_counts()
        by_label: dict[str, int] = {}
        by_level: dict[str, int] = {}
        chunks = 0
        for ac, access in visible.items():
            n = counts.get(ac, 0)
            chunks += n
            for label in access.labels or {"(none)"}:
                by_label[label] = by_label.get(label, 0) + n
            by_level[access.level] = by_level.get(access.level, 0) + n
        sources = 0
        if visible:
            sources = self._db.execute(
                "SELECT COUNT(DISTINCT source_id) FROM chunks WHERE ac IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(visible)),),
            ).fetchone()[0]
        return {"chunks": chunks, "sources": sources, "by_label": by_label, "by_level": by_level}

    def readable_source_ids(self, *, principal: Principal) -> list[str]:
        """The sources of which `principal` may read at least one chunk."""
        visible = self._visible_classes(principal, NO_NARROWING)
        if not visible:
            return []
        rows = self._db.execute(
            "SELECT DISTINCT source_id FROM chunks WHERE ac IN (SELECT value FROM json_each(?)) ORDER BY source_id",
            (json.dumps(sorted(visible)),),
        )
        return [row[0] for row in rows]

    # -- internals -------------------------------------------------------------------------
    def _visible_classes(self, principal: Principal, narrowing: Narrowing) -> dict[int, Access]:
        return {
            ac: access
            for ac, access in self._classes().items()
            if allowed(principal=principal, access=access) and not (access.labels & narrowing.without_labels)
        }

    def _dense(
        self, query: str, visible: Mapping[int, Access], narrowing: Narrowing, depth: int
    ) -> list[tuple[str, float]]:
        counts = self._class_counts()
        total = sum(counts.values())
        readable = sum(counts.get(ac, 0) for ac in visible)
        if total == 0 or readable == 0:
            return []
        vector = self.embedder.embed_query(query)
        wanted = min(depth, readable)
        extra = narrowing.chroma_where()
        if not extra and readable * 50 >= total:
            # Most of the store is readable: one unfiltered query, oversampled by the unreadable
            # share, is far cheaper in Chroma than a metadata filter (see BENCHMARKS.md). The
            # class of each candidate is checked here; if too few survive, fall through.
            n = min(total, math.ceil(wanted * total / readable * 1.5) + 10)
            found = self._chroma_query(vector, n, where=None)
            classes = self._classes_of([chunk_id for chunk_id, _ in found])
            kept = [(c, s) for c, s in found if classes.get(c) in visible]
            if len(kept) >= wanted or n >= total:
                return kept[:wanted]
        where: dict[str, Any] = {"ac": {"$in": sorted(visible)}}
        if extra:
            where = {"$and": [where, *extra]}
        return self._chroma_query(vector, wanted, where=where)

    def _chroma_query(self, vector: np.ndarray, n: int, *, where: dict | None) -> list[tuple[str, float]]:
        result = self._collection.query(
            query_embeddings=[vector], n_results=max(1, n), where=where, include=["distances"]
        )
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(chunk_id, 1.0 - float(d)) for chunk_id, d in zip(ids, distances, strict=True)]

    def _lexical(
        self, query: str, visible: Mapping[int, Access], narrowing: Narrowing, depth: int
    ) -> list[tuple[str, float]]:
        expression = fts_query(query)
        if not expression:
            return []
        extra_sql, extra_args = narrowing.sql_where()
        rows = self._db.execute(
            "SELECT c.chunk_id, bm25(fts) AS s FROM fts JOIN chunks c ON c.rowid = fts.rowid "
            "WHERE fts MATCH ? AND c.ac IN (SELECT value FROM json_each(?))"
            f"{extra_sql} ORDER BY s LIMIT ?",
            (expression, json.dumps(sorted(visible)), *extra_args, depth),
        )
        return [(chunk_id, -float(score)) for chunk_id, score in rows]

    def _listing(self, visible: Mapping[int, Access], narrowing: Narrowing, *, limit: int) -> list[str]:
        extra_sql, extra_args = narrowing.sql_where()
        rows = self._db.execute(
            "SELECT c.chunk_id FROM chunks c WHERE c.ac IN (SELECT value FROM json_each(?))"
            f"{extra_sql} ORDER BY c.source_id, c.ordinal LIMIT ?",
            (json.dumps(sorted(visible)), *extra_args, limit),
        )
        return [row[0] for row in rows]

    def _release(
        self,
        ids: Sequence[str],
        scores: Mapping[str, float],
        principal: Principal,
        visible: Mapping[int, Access],
    ) -> list[Hit]:
        """Fetch the chunks and check each one again before it leaves the index."""
        if not ids:
            return []
        got = self._collection.get(ids=list(ids), include=["documents", "metadatas"])
        by_id = {
            chunk_id: (text, meta)
            for chunk_id, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        hits = []
        for chunk_id in ids:
            if chunk_id not in by_id:
                continue
            text, meta = by_id[chunk_id]
            access = _access_from_json(meta["access"])
            if meta.get("ac") not in visible or not allowed(principal=principal, access=access):
                log.error("access check refused chunk %s for %s after filtering", chunk_id, principal.name)
                continue
            hits.append(
                Hit(
                    chunk_id=chunk_id,
                    source_id=meta["source_id"],
                    uri=meta["uri"],
                    title=meta.get("title", ""),
                    section=meta.get("section", ""),
                    page=meta.get("page"),
                    text=text,
                    score=scores.get(chunk_id, 0.0),
                    access=access,
                    metadata=json.loads(meta.get("extra", "{}")),
                )
            )
        return hits

    def _classes(self) -> dict[int, Access]:
        self._refresh_if_changed()
        if self._class_cache is None:
            self._class_cache = {
                ac: _access_from_json(text) for ac, text in self._db.execute("SELECT ac, access FROM classes")
            }
        return self._class_cache

    def _class_counts(self) -> dict[int, int]:
        self._refresh_if_changed()
        if self._count_cache is None:
            self._count_cache = dict(self._db.execute("SELECT ac, COUNT(*) FROM chunks GROUP BY ac"))
        return self._count_cache

    def _classes_of(self, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = self._db.execute(
            "SELECT chunk_id, ac FROM chunks WHERE chunk_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )
        return dict(rows)

    def _class_id(self, access: Access) -> int:
        key = json.dumps(access.key())
        row = self._db.execute("SELECT ac FROM classes WHERE key = ?", (key,)).fetchone()
        if row:
            return int(row[0])
        cursor = self._db.execute(
            "INSERT INTO classes(key, access) VALUES (?, ?)", (key, _access_json(access))
        )
        self._invalidate()
        return int(cursor.lastrowid)

    def _delete_lexical(self, ids: Sequence[str]) -> int:
        removed = 0
        for chunk_id in ids:
            row = self._db.execute("SELECT rowid FROM chunks WHERE chunk_id = ?", (chunk_id,)).fetchone()
            if row:
                self._db.execute("DELETE FROM fts WHERE rowid = ?", row)
                self._db.execute("DELETE FROM chunks WHERE rowid = ?", row)
                removed += 1
        return removed

    def _transaction(self):
        return _Transaction(self._db)

    def _invalidate(self) -> None:
        self._class_cache = None
        self._count_cache = None

    def _refresh_if_changed(self) -> None:
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._invalidate()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def fts_query(text: str) -> str:
    """A safe FTS5 expression: the query's words (minus stopwords), any of them."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
    if not words:
        words = _WORD.findall(text.lower())
    unique = list(dict.fromkeys(words))[:64]
    return " OR ".join(f'"{w}"' for w in unique)


def _fuse(
    dense: Sequence[tuple[str, float]], lexical: Sequence[tuple[str, float]], k: int
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion."""
    scores: dict[str, float] = {}
    for ranking in (dense, lexical):
        for rank, (chunk_id, _) in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


def _chroma_metadata(chunk: Chunk, ac: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "ac": ac,
        "access": _access_json(chunk.access),
        "source_id": chunk.source_id,
        "uri": chunk.uri,
        "title": chunk.title,
        "section": chunk.section,
        "ordinal": chunk.ordinal,
        "extra": json.dumps(dict(chunk.metadata), default=str),
    }
    if chunk.page is not None:
        meta["page"] = chunk.page
    date = _date_of(chunk.metadata)
    if date is not None:
        meta["date"] = date
    return meta


def _date_of(metadata: Mapping[str, Any]) -> float | None:
    value = metadata.get("timestamp")
    return float(value) if isinstance(value, int | float) else None


def _access_json(access: Access) -> str:
    return json.dumps(access.to_dict())


def _access_from_json(text: str) -> Access:
    return Access.from_dict(json.loads(text))


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if not parsed.hostname:
        raise ConfigError(f"store URL {url!r} should look like http://host:8000")
    return parsed.hostname, parsed.port or 8000
