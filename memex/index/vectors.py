"""The Chroma half of the index. The only module that imports chromadb.

Every chunk is stored twice: in one global collection (with its text and metadata) and, by id and
vector only, in the partition collection of its labels and level. Chroma's metadata filters cost
time in proportion to the whole collection (about 50 ms at 100k chunks here, against 2-4 ms for an
unfiltered query; see BENCHMARKS.md), so the access filter is applied by choosing where to search:

- one unfiltered query on the global collection, oversampled by the unreadable share, keeping the
  readable classes. The top k readable chunks of an oversampled list are exactly the top k over
  the readable chunks, as long as k of them are in it; if not, we fall through.
- or one query per readable partition (few: partitions are label sets, not users), with a metadata
  filter only inside partitions that mix readable and unreadable access lists;
  whichever a small cost model says is cheaper.
- a caller's extra narrowing (dates, sources), or too many partitions: a filtered global query.

Reached only through `memex.index.Index`, which checks every hit again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memex.access import Access
from memex.documents import Chunk
from memex.errors import ConfigError, ModelError
from memex.index.lexical import access_json
from memex.remote import Endpoint, store_endpoint

COLLECTION = "memex_chunks"
PARTITION_PREFIX = "memex_part_"
MAX_PARTITIONS = 8
MIXED_OVERSAMPLE_SHARE = 0.25
BATCH = 2000


def partition_of(access: Access) -> str:
    key = json.dumps([sorted(access.labels), access.level])
    return PARTITION_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:20]


class VectorStore:
    def __init__(self, client: Any, collection: Any) -> None:
        self.client = client
        self.collection = collection
        self._partitions: dict[str, Any] = {}

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        name: str,
        dimension: int,
        url: str | Endpoint | None = None,
        reset: bool = False,
    ) -> VectorStore:
        """`url`: a Chroma server, as an Endpoint checked by memex.remote (a plain URL is checked
        here with the defaults: no CA file, nothing insecure allowed)."""
        import chromadb

        settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
        server = store_endpoint(url) if isinstance(url, str) else url
        if server is not None and server.tls:
            settings.chroma_server_ssl_verify = server.ca_file or True
        try:
            if server is not None:
                client = chromadb.HttpClient(
                    host=server.host,
                    port=server.port,
                    ssl=server.tls,
                    headers=dict(server.headers),
                    settings=settings,
                )
            else:
                client = chromadb.PersistentClient(str(path / "chroma"), settings=settings)
            if reset:
                for existing in client.list_collections():
                    existing_name = str(getattr(existing, "name", existing))
                    if existing_name == COLLECTION or existing_name.startswith(PARTITION_PREFIX):
                        client.delete_collection(existing_name)
            collection = client.get_or_create_collection(
                COLLECTION,
                embedding_function=None,
                metadata={"hnsw:space": "cosine", "embedder": name, "dimension": dimension},
            )
        except Exception as exc:  # chromadb raises its own and builtin types alike
            where = server.url if server is not None else path
            raise ConfigError(f"cannot open the vector store at {where}: {exc}") from None
        stored = collection.metadata or {}
        if stored.get("embedder") != name or stored.get("dimension") != dimension:
            raise ModelError(
                f"the index was built with embedding model {stored.get('embedder')!r} "
                f"({stored.get('dimension')} dimensions) but {name!r} ({dimension}) is configured; "
                f"run `memex reindex` to rebuild it"
            )
        return cls(client, collection)

    def _partition(self, name: str) -> Any:
        if name not in self._partitions:
            self._partitions[name] = self.client.get_or_create_collection(
                name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        return self._partitions[name]

    # -- writing --
    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, classes: Sequence[int], metadatas: Sequence[dict]
    ) -> None:
        """Partitions first, then the global collection: a chunk in the global collection is
        always complete."""
        groups: dict[str, list[int]] = {}
        for i, chunk in enumerate(chunks):
            groups.setdefault(partition_of(chunk.access), []).append(i)
        for name, rows in groups.items():
            for start in range(0, len(rows), BATCH):
                part = rows[start : start + BATCH]
                self._partition(name).upsert(
                    ids=[chunks[i].chunk_id for i in part],
                    embeddings=vectors[part],
                    metadatas=[{"ac": classes[i]} for i in part],
                )
        for start in range(0, len(chunks), BATCH):
            self.collection.upsert(
                ids=[c.chunk_id for c in chunks[start : start + BATCH]],
                embeddings=vectors[start : start + BATCH],
                documents=[c.text for c in chunks[start : start + BATCH]],
                metadatas=list(metadatas[start : start + BATCH]),
            )

    def delete(self, ids: Sequence[str], partitions: Mapping[str, str]) -> None:
        """`partitions` maps chunk ids to their partition (ids without one are looked up)."""
        missing = [i for i in ids if i not in partitions]
        located = dict(partitions)
        if missing:
            for chunk_id, meta in self._metadata(missing).items():
                located[chunk_id] = partition_of(Access.from_dict(json.loads(meta["access"])))
        by_partition: dict[str, list[str]] = {}
        for chunk_id in ids:
            if chunk_id in located:
                by_partition.setdefault(located[chunk_id], []).append(chunk_id)
        for start in range(0, len(ids), BATCH):
            self.collection.delete(ids=list(ids[start : start + BATCH]))
        for name, members in by_partition.items():
            for start in range(0, len(members), BATCH):
                self._partition(name).delete(ids=members[start : start + BATCH])

    def relabel(self, changes: Mapping[str, tuple[Access, int]]) -> None:
        """Give chunks new access labels (and class ids), moving vectors between partitions."""
        ids = list(changes)
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            got = self.collection.get(ids=batch, include=["embeddings", "metadatas"])
            for chunk_id, vector, meta in zip(got["ids"], got["embeddings"], got["metadatas"], strict=True):
                access, ac = changes[chunk_id]
                old, new = partition_of(Access.from_dict(json.loads(meta["access"]))), partition_of(access)
                self._partition(new).upsert(ids=[chunk_id], embeddings=[vector], metadatas=[{"ac": ac}])
                if old != new:
                    self._partition(old).delete(ids=[chunk_id])
            self.collection.update(
                ids=batch,
                metadatas=[{"ac": changes[i][1], "access": access_json(changes[i][0])} for i in batch],
            )

    # -- reading (for Index only) --
    def ids(self) -> set[str]:
        return set(self.collection.get(include=[])["ids"])

    def texts(self, page: int = 2000) -> Iterator[tuple[str, str]]:
        """(chunk id, text) of every stored chunk, page by page."""
        offset = 0
        while True:
            got = self.collection.get(include=["documents"], limit=page, offset=offset)
            if not got["ids"]:
                return
            yield from zip(got["ids"], got["documents"], strict=True)
            offset += len(got["ids"])

    def existing(self, ids: Sequence[str]) -> set[str]:
        return set(self.collection.get(ids=list(ids), include=[])["ids"])

    def fetch(self, ids: Sequence[str]) -> dict[str, tuple[str, dict]]:
        got = self.collection.get(ids=list(ids), include=["documents", "metadatas"])
        return {
            i: (text, meta)
            for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }

    def _metadata(self, ids: Sequence[str]) -> dict[str, dict]:
        got = self.collection.get(ids=list(ids), include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"], strict=True))

    def query(
        self,
        vector: np.ndarray,
        *,
        wanted: int,
        visible: Mapping[int, Access],
        classes: Mapping[int, Access],
        counts: Mapping[int, int],
        classes_of: Callable[[Sequence[str]], Mapping[str, int]],
        where: Sequence[dict[str, Any]] = (),
    ) -> list[tuple[str, float]]:
        """The `wanted` readable chunks nearest to `vector`, as (chunk id, cosine similarity)."""
        total = sum(counts.values())
        readable = sum(counts.get(ac, 0) for ac in visible)
        if total == 0 or readable == 0:
            return []
        wanted = min(wanted, readable)
        visible_filter = {"ac": {"$in": sorted(visible)}}
        if where:
            return _nearest(self.collection, vector, wanted, {"$and": [visible_filter, *where]})
        partitions: dict[str, tuple[list[int], int]] = {}
        for ac, access in classes.items():
            name = partition_of(access)
            readable_acs, size = partitions.get(name, ([], 0))
            if ac in visible and counts.get(ac, 0):
                readable_acs = [*readable_acs, ac]
            partitions[name] = (readable_acs, size + counts.get(ac, 0))
        useful = {name: value for name, value in partitions.items() if value[0]}
        global_cost = _cost(_oversample_size(wanted, readable, total))
        partition_cost = sum(_partition_cost(wanted, acs, size, counts) for acs, size in useful.values())
        if global_cost <= partition_cost or len(useful) > MAX_PARTITIONS:
            found = _oversampled(self.collection, vector, wanted, readable, total, visible, classes_of)
            if found is not None:
                return found
            if len(useful) > MAX_PARTITIONS:
                return _nearest(self.collection, vector, wanted, visible_filter)
        merged: list[tuple[str, float]] = []
        for name, (acs, size) in useful.items():
            readable_here = sum(counts.get(ac, 0) for ac in acs)
            if readable_here == 0:
                continue
            collection = self._partition(name)
            n = min(wanted, readable_here)
            if readable_here == size:
                merged.extend(_nearest(collection, vector, n, None))
                continue
            if readable_here >= MIXED_OVERSAMPLE_SHARE * size:
                found = _oversampled(collection, vector, n, readable_here, size, set(acs), classes_of)
                if found is not None:
                    merged.extend(found)
                    continue
            merged.extend(_nearest(collection, vector, n, {"ac": {"$in": acs}}))
        merged.sort(key=lambda item: -item[1])
        return merged[:wanted]


def _nearest(collection: Any, vector: np.ndarray, n: int, where: dict | None) -> list[tuple[str, float]]:
    result = collection.query(
        query_embeddings=[vector], n_results=max(1, n), where=where, include=["distances"]
    )
    return [
        (chunk_id, 1.0 - float(d))
        for chunk_id, d in zip(result["ids"][0], result["distances"][0], strict=True)
    ]


# A rough cost model of a Chroma query, in milliseconds (measured on the benchmark machines).
QUERY_MS = 0.8  # fixed cost of one query
RESULT_MS = 0.011  # per result asked for
FILTER_MS_PER_CHUNK = 0.0006  # a metadata filter scans the whole collection


def _cost(n: int, filtered_size: int = 0) -> float:
    return QUERY_MS + RESULT_MS * n + FILTER_MS_PER_CHUNK * filtered_size


def _oversample_size(wanted: int, readable: int, size: int) -> int:
    return min(size, math.ceil(wanted * size / readable * 1.5) + 10)


def _partition_cost(wanted: int, acs: Sequence[int], size: int, counts: Mapping[int, int]) -> float:
    readable = sum(counts.get(ac, 0) for ac in acs)
    n = min(wanted, readable)
    if readable == size:
        return _cost(n)
    if readable >= MIXED_OVERSAMPLE_SHARE * size:
        return _cost(_oversample_size(n, readable, size))
    return _cost(n, filtered_size=size)


def _oversampled(
    collection: Any,
    vector: np.ndarray,
    wanted: int,
    readable: int,
    size: int,
    visible: Mapping[int, Any] | set[int],
    classes_of: Callable[[Sequence[str]], Mapping[str, int]],
) -> list[tuple[str, float]] | None:
    n = _oversample_size(wanted, readable, size)
    found = _nearest(collection, vector, n, None)
    known = classes_of([chunk_id for chunk_id, _ in found])
    kept = [(c, s) for c, s in found if known.get(c) in visible]
    if len(kept) >= wanted or n >= size:
        return kept[:wanted]
    return None
