"""Ingest throughput against the embedding model's own throughput, and unchanged re-ingest speed.

    python benchmarks/ingest_throughput.py [--docs 1000] [--rounds 3] [--tree 10000]

1. A folder of --docs Markdown files (SciFact abstracts, one per file, from ../shared/data) is
   ingested with the real embedding model into a fresh MEMEX_HOME. The same chunk texts are then
   embedded alone, in batches, by the same model. Ratio = embedding-only time / ingest time
   (1.0 would mean parsing, chunking, storing and bookkeeping cost nothing; goal >= 0.9).
2. A tree of --tree small files is ingested (hashing embedder: only bookkeeping is timed) and then
   ingested again unchanged: files per second of the second run (goal >= 2,000/s).
3. Peak memory (RSS) of the ingest process and of its parser workers.
Model loading is excluded from both sides of the ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.access.policyfile import parse_policy  # noqa: E402
from memex.api.wiring import Memex  # noqa: E402
from memex.config import Paths  # noqa: E402
from memex.ingest.chunking import chunk_elements  # noqa: E402
from memex.models.embeddings import HashingEmbedder, SentenceTransformerEmbedder  # noqa: E402

POLICY = "labels: []\nusers: {me: {}}\nsources:\n  - {match: {connector: files}}\n"


def write_abstracts(folder: Path, count: int) -> None:
    corpus = ROOT.parent / "shared" / "data" / "beir_scifact" / "corpus.jsonl"
    folder.mkdir(parents=True)
    with corpus.open() as handle:
        for i, line in enumerate(handle):
            if i == count:
                break
            record = json.loads(line)
            (folder / f"{record['_id']}.md").write_text(f"# {record['title']}\n\n{record['text']}\n")


def write_tree(folder: Path, count: int) -> None:
    for i in range(count):
        sub = folder / f"d{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"note-{i:05d}.txt").write_text(f"Note {i}: a small file about topic {i % 97}.\n")


def ingest_ratio(count: int, rounds: int) -> dict:
    """Alternating rounds (ingest into a fresh home, then the same chunk texts embedded alone), so
    that load from elsewhere falls on both sides alike; medians over the rounds. The parser
    worker is started before the clock, as a running daemon has it."""
    from connectors.fileparse import parse_file

    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up the model"])
    policy = parse_policy(POLICY)
    ingest, alone = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "abstracts"
        write_abstracts(folder, count)
        texts = []
        for path in sorted(folder.glob("*.md")):
            texts += [p.text for p in chunk_elements(parse_file(path), title=path.name)]
        for n in range(rounds):
            home = Path(tmp) / f"home-{n}"
            with Memex(Paths(home), policy=policy, embedder=embedder, writable=True) as memex:
                memex.pool.run(_noop)
                started = time.perf_counter()
                report = memex.ingest([str(folder)])
                ingest.append(time.perf_counter() - started)
            started = time.perf_counter()
            embedder.embed(texts)
            alone.append(time.perf_counter() - started)
    wall_ingest, wall_alone = statistics.median(ingest), statistics.median(alone)
    return {
        "files": count,
        "chunks": report.chunks_added,
        "rounds": rounds,
        "ingest_seconds": round(wall_ingest, 1),
        "embedding_only_seconds": round(wall_alone, 1),
        "ingest_chunks_per_second": round(report.chunks_added / wall_ingest, 1),
        "embedding_chunks_per_second": round(len(texts) / wall_alone, 1),
        "ratio": round(wall_alone / wall_ingest, 3),
        "rounds_ratio": [round(a / i, 3) for i, a in zip(ingest, alone, strict=True)],
    }


def unchanged_reingest(count: int) -> dict:
    policy = parse_policy(POLICY)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tree"
        write_tree(folder, count)
        with Memex(
            Paths(Path(tmp) / "home"), policy=policy, embedder=HashingEmbedder(), writable=True
        ) as memex:
            first = memex.ingest([str(folder)])
            started = time.perf_counter()
            second = memex.ingest([str(folder)])
            seconds = time.perf_counter() - started
        shutil.rmtree(folder)
    assert second.unchanged == count and second.chunks_added == 0, second.to_json()
    return {
        "files": count,
        "first_ingest_seconds": round(first.seconds, 1),
        "reingest_seconds": round(seconds, 2),
        "files_per_second": round(count / seconds),
    }


def _noop() -> list:
    return []


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--tree", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = {
        "ingest_vs_embedding": ingest_ratio(args.docs, args.rounds),
        "unchanged_reingest": unchanged_reingest(args.tree),
    }
    result["peak_rss_mb"] = {
        "ingest_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "parser_workers": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
