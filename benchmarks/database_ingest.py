"""How fast the database connector reads rows, and what a full ingest of a database costs.

    python benchmarks/database_ingest.py [--synthetic-rows 200000] [--postgres] [--ingest chinook]

1. The connector alone (rows read, rendered and fingerprinted; documents not kept) on the shared
   sample databases, and on a synthetic table of N rows with a foreign key: rows/s; and the peak
   memory the connector allocates while streaming 10k and 50k rows of it (tracemalloc).
2. With --postgres: the same on a throwaway PostgreSQL server loaded with the HR sample (and
   Chinook), started on loopback as in the tests.
3. With --ingest NAME: `memex ingest` of that sample through the whole pipeline with the hashing
   embedder (so the connector, chunking, the index and the ledger are timed, not the model):
   first ingest, unchanged re-ingest, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.database import DatabaseConnector  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SAMPLES = {
    "chinook": DATA / "sql_chinook" / "Chinook_Sqlite.sqlite",
    "northwind": DATA / "sql_northwind" / "northwind.sqlite",
    "hr": DATA / "sql_oracle_hr" / "hr.sqlite",
}


def read_all(target: str) -> tuple[int, int, float]:
    """(rows, documents, seconds) for one load, rendering each document and then dropping it."""
    started = time.perf_counter()
    rows = documents = 0
    for doc in DatabaseConnector(target, tables="*").load():  # every table, as before selection
        documents += 1
        rows += doc.attributes["kind"] == "row"
        doc.elements()  # render, as ingest does for a new row
    return rows, documents, time.perf_counter() - started


def peak_while_streaming(target: str, documents: int) -> float:
    """MiB the connector had allocated at most while yielding the first `documents` documents."""
    tracemalloc.start()
    for n, doc in enumerate(DatabaseConnector(target, tables="*").load(), start=1):
        doc.elements()
        if n == documents:
            break
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def report(name: str, target: str) -> None:
    rows, documents, seconds = read_all(target)
    print(f"| {name} | {rows:,} | {documents:,} | {seconds:.2f} | {rows / seconds:,.0f} |", flush=True)


def synthetic(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO owners VALUES (?, ?)", [(i, f"Owner {i}") for i in range(1000)])
        db.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id), "
            "kind TEXT, body TEXT, amount REAL, at TEXT)"
        )
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    i,
                    i % 1000,
                    f"kind {i % 7}",
                    f"event number {i} " + "lorem ipsum " * 10,
                    i * 1.5,
                    "2026-01-01",
                )
                for i in range(rows)
            ),
        )


def ingest(name: str) -> None:
    from memex.access.policyfile import parse_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder

    policy = parse_policy(
        "version: 1\nlabels: [data]\nlevels: [internal]\nroles: {reader: {labels: [data]}}\n"
        "users: {me: {roles: [reader]}}\nsources:\n  - {name: db, match: {connector: database}, labels: [data]}\n",
        origin="benchmark",
    )
    with tempfile.TemporaryDirectory() as home:
        memex = Memex(Paths(Path(home)), policy=policy, embedder=HashingEmbedder(), writable=True)
        started = time.perf_counter()
        first = memex.ingest([str(SAMPLES[name])], options={"tables": "*"})
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = memex.ingest([str(SAMPLES[name])], options={"tables": "*"})
        again_s = time.perf_counter() - started
        memex.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"ingest {name}: {len(first.indexed):,} documents, {first.chunks_added:,} chunks in {first_s:.1f} s "
        f"({len(first.indexed) / first_s:,.0f} documents/s); unchanged re-ingest {again_s:.1f} s "
        f"({again.unchanged:,} unchanged, {again.chunks_added} chunks added); peak RSS {peak_mb:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic-rows", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--ingest", choices=sorted(SAMPLES), action="append", default=[])
    args = parser.parse_args()
    read_all(str(SAMPLES["hr"]))  # imports out of the way
    print("| source | rows | documents | seconds | rows/s |")
    print("|---|---|---|---|---|")
    for name, path in SAMPLES.items():
        report(f"{name} (SQLite)", str(path))
    with tempfile.TemporaryDirectory() as scratch:
        if args.synthetic_rows:
            path = Path(scratch) / "synthetic.sqlite"
            synthetic(path, args.synthetic_rows)
            report(f"synthetic {args.synthetic_rows:,} rows (SQLite)", str(path))
            sizes = sorted({min(10_000, args.synthetic_rows), min(50_000, args.synthetic_rows)})
            peaks = ", ".join(f"{n:,} rows: {peak_while_streaming(str(path), n):.1f} MiB" for n in sizes)
            print(f"\nconnector peak allocation while streaming the synthetic table: {peaks}")
    if args.postgres:
        from tests.postgres import copy_sqlite, running_postgres

        with running_postgres() as server:
            os.environ["PGPASSWORD"] = server.password
            for name in ("hr", "chinook"):
                copy_sqlite(SAMPLES[name], server, name)
                report(f"{name} (PostgreSQL)", server.url(name))
    for name in args.ingest:
        ingest(name)


if __name__ == "__main__":
    main()
