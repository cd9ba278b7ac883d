"""Search latency with the access filter vs without, on the synthetic access corpus.

    python benchmarks/search_latency.py --chunks 10000 100000 [--queries 200]

For each corpus size it builds an index (18 access classes, 13 users; see tests/canary_corpus.py),
then times hybrid searches (k=10) for every user, and the same searches with no access filter at
all (a bare Chroma query plus a bare FTS5 query, fused and fetched). It prints p50/p95 per user and
the ratio to the unfiltered p50 measured in the same run. `--mode` picks hybrid (the default
search), dense (vectors only) and/or lexical (BM25 only). Embeddings come from a 384-dimension
hashing embedder (the size of all-MiniLM-L6-v2's vectors) so that only the search is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.index import Index, fuse  # noqa: E402
from memex.index.lexical import fts_query  # noqa: E402
from memex.models.embeddings import HashingEmbedder  # noqa: E402
from tests import canary_corpus  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def unfiltered_search(index: Index, query: str, mode: str, k: int = 10) -> None:
    """What a search costs with no access control at all: the baseline."""
    depth = max(k * 4, 40)
    dense, rows = [], []
    collection = index._vectors.collection
    if mode in ("hybrid", "dense"):
        vector = index.embedder.embed_query(query)
        result = collection.query(query_embeddings=[vector], n_results=depth, include=["distances"])
        dense = list(zip(result["ids"][0], result["distances"][0], strict=True))
    if mode in ("hybrid", "lexical"):
        rows = index._lexical.db.execute(
            "SELECT c.chunk_id, bm25(fts) AS s FROM fts JOIN chunks c ON c.rowid = fts.rowid "
            "WHERE fts MATCH ? ORDER BY s LIMIT ?",
            (fts_query(query), depth),
        ).fetchall()
    ranked = fuse(dense, rows, [], k)
    collection.get(ids=[c for c, _ in ranked], include=["documents", "metadatas"])


def run(n: int, queries: int, modes: list[str]) -> list[dict]:
    """One index per corpus size, every mode timed on it."""
    items = canary_corpus.build(n)
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.open(Path(tmp), embedder=HashingEmbedder(384))
        started = time.perf_counter()
        for start in range(0, len(items), 2000):
            batch = [i.chunk for i in items[start : start + 2000]]
            index.upsert(batch, index.embedder.embed([c.text for c in batch]))
        build_seconds = time.perf_counter() - started
        results = [measure(index, items, queries, mode, build_seconds) for mode in modes]
        index.close()
    return results


def measure(index: Index, items: list, queries: int, mode: str, build_seconds: float) -> dict:
    policy = canary_corpus.policy()
    sample = [items[i].query for i in range(0, len(items), max(1, len(items) // queries))][:queries]
    principals = {}
    shares = {}
    for user in canary_corpus.USERS:
        principal = policy.principal(user)
        visible = sum(1 for i in items if _allowed(principal, i))
        shares[user] = visible / len(items)
        if visible:
            principals[user] = principal
    searches = {"(no filter)": lambda q: unfiltered_search(index, q, mode)}
    for user, principal in principals.items():
        searches[user] = lambda q, p=principal: index.search(q, principal=p, k=10, mode=mode)
    for q in sample[:20]:  # warm up every path
        for search in searches.values():
            search(q)
    timings: dict[str, list[float]] = {name: [] for name in searches}
    for q in sample:  # interleaved, so every path sees the same machine state
        for name, search in searches.items():
            t = time.perf_counter()
            search(q)
            timings[name].append(time.perf_counter() - t)
    base = statistics.median(timings["(no filter)"])
    rows = []
    for user, values in timings.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        rows.append(
            {
                "user": user,
                "readable_share": shares.get(user, 1.0),
                "p50_ms": round(p50 * 1000, 2),
                "p95_ms": round(p95 * 1000, 2),
                "p50_ratio": round(p50 / base, 2),
            }
        )
    return {
        "chunks": len(items),
        "mode": mode,
        "build_seconds": round(build_seconds, 1),
        "queries": len(sample),
        "rows": rows,
    }


def _allowed(principal, item) -> bool:
    from memex.access import allowed

    return allowed(principal=principal, access=item.chunk.access)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--mode", nargs="+", default=["hybrid", "dense"], choices=["hybrid", "dense", "lexical"]
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [result for n in args.chunks for result in run(n, args.queries, args.mode)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        print(
            f"\n{result['mode']}: {result['chunks']} chunks (built in {result['build_seconds']} s), "
            f"{result['queries']} queries, k=10"
        )
        print(f"{'user':20} {'readable':>9} {'p50 ms':>8} {'p95 ms':>8} {'p50/unfiltered':>15}")
        for row in result["rows"]:
            print(
                f"{row['user']:20} {row['readable_share']:9.1%} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} "
                f"{row['p50_ratio']:15.2f}"
            )


if __name__ == "__main__":
    main()
