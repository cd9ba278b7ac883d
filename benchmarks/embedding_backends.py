"""memex ingest with each embedding backend against the embedding model alone (issue 21).

    python benchmarks/embedding_backends.py minilm-l6-v2 [--docs 1000] [--profile]
    python benchmarks/embedding_backends.py minilm-l6-v2-int8

One backend per process, so that each peak RSS is its own. --docs SciFact abstracts (from
../shared/data) are written as .txt files ("title", a blank line, the abstract), ingested into a
fresh MEMEX_HOME with the backend (the parser worker is started before the clock, as in a
daemon; model loading is excluded and reported apart), and then the same --docs texts are embedded
alone by the same backend, in one call (the peer's way: one vector per abstract, cut at 256
tokens, where memex embeds every chunk of it). --profile runs the ingest under cProfile and prints
the functions that took the most time. Prints one JSON line first.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.access.policyfile import parse_policy  # noqa: E402
from memex.api.wiring import Memex  # noqa: E402
from memex.config import Paths  # noqa: E402
from memex.models.choice import configured_embedder  # noqa: E402

POLICY = "labels: []\nusers: {me: {}}\nsources:\n  - {match: {connector: files}}\n"


def write_texts(folder: Path, count: int) -> list[str]:
    corpus = ROOT.parent / "shared" / "data" / "beir_scifact" / "corpus.jsonl"
    folder.mkdir(parents=True)
    texts = []
    with corpus.open() as handle:
        for i, line in enumerate(handle):
            if i == count:
                break
            record = json.loads(line)
            texts.append(f"{record['title']}\n\n{record['text']}\n")
            (folder / f"{record['_id']}.txt").write_text(texts[-1])
    return texts


def _noop() -> list:
    return []


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("embedder", help="minilm-l6-v2, minilm-l6-v2-int8 or a model folder")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    embedder = configured_embedder(args.embedder)
    embedder.embed(["warm up"])
    load = time.perf_counter() - started
    profile = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="memex-backends-") as tmp:
        texts = write_texts(Path(tmp) / "abstracts", args.docs)
        with Memex(
            Paths(Path(tmp) / "home"), policy=parse_policy(POLICY), embedder=embedder, writable=True
        ) as memex:
            memex.pool.run(_noop)
            started = time.perf_counter()
            if args.profile:
                profile.enable()
            report = memex.ingest([str(Path(tmp) / "abstracts")])
            if args.profile:
                profile.disable()
            seconds = time.perf_counter() - started
    rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    started = time.perf_counter()
    embedder.embed(texts)
    alone = time.perf_counter() - started
    result = {
        "embedder": embedder.name,
        "files": args.docs,
        "model_load_seconds": round(load, 1),
        "ingest_seconds": round(seconds, 1),
        "chunks": report.chunks_added,
        "texts_embedded_alone_seconds": round(alone, 1),
        "peak_rss_mb": rss,
        "torch_loaded": "torch" in sys.modules,
        "profiled": args.profile,
    }
    print(json.dumps(result), flush=True)
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
