"""The watcher daemon: time from a file being saved to being searchable, and its memory.

    python benchmarks/watch_latency.py [--samples 40] [--background 500] [--storm 2000] [--fake]

A background daemon (`memex daemon start`, the real embedding model unless --fake) watches a
folder of --background small files. Then:
1. Latency: --samples times, a file is saved (in turn: a new file, an editor's atomic save of an
   existing file (temporary file + rename), an in-place rewrite), holding a word no other file
   has; the clock starts when the save returns and stops when a search through the daemon's
   socket (as `memex search` from another terminal does) finds that file. p50/p95/max.
2. Memory (RSS): the daemon alone and with its parser processes, idle after the first
   reconcile, and peak during a storm of --storm files written at once (an unzip), sampled every
   0.1 s until they are all searchable; also how long the storm took to be indexed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex import config  # noqa: E402
from memex.daemon import process as daemon_process  # noqa: E402
from memex.daemon import rpc  # noqa: E402

POLICY = 'labels: []\nusers: {me: {os_users: ["*"]}}\nsources:\n  - {match: {connector: files}}\n'
WORDS = "falcon sensor lisbon harrier outage budget nordlys office travel handbook".split()


def rss_tree_mb(pid: int) -> tuple[float, float]:
    """(the process's RSS, the proportional set size (PSS) of it and its children), in MB. The
    parser processes are forked from a server and share most pages with it: PSS counts a shared
    page once, where summing RSS would count it in every process."""
    total = sum(_kb(p, "smaps_rollup", "Pss:") for p in [pid, *_children(pid)])
    return _kb(pid, "status", "VmRSS:") / 1024, total / 1024


def _kb(pid: int, name: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                text = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
                kids = [int(k) for k in text]
                out += kids
                todo += kids
        except OSError:
            continue
    return out


def searchable(paths: config.Paths, word: str, uri: str) -> bool:
    reply = rpc.call(paths.socket, "search", {"query": word, "k": 5, "mode": "lexical"})
    return reply is not None and "result" in reply and any(h["source"] == uri for h in reply["result"])


def wait_idle(paths: config.Paths, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = daemon_process.status(paths)
        if (
            info.get("counts", {}).get("reconciles", 0) >= 1
            and not info.get("busy")
            and not info.get("queue")
        ):
            return
        time.sleep(0.2)
    raise SystemExit("the daemon did not become idle")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--background", type=int, default=500)
    parser.add_argument("--storm", type=int, default=2000)
    parser.add_argument("--fake", action="store_true", help="hashing embedder instead of the real model")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="memex-watch-bench-"))
    home, folder = work / "home", work / "docs"
    os.environ["MEMEX_HOME"] = str(home)
    if args.fake:
        os.environ[daemon_process.TEST_MODELS_ENV] = str(home)
    home.mkdir()
    (home / "policy.yaml").write_text(POLICY)
    folder.mkdir()
    for n in range(args.background):
        (folder / f"note-{n:05d}.txt").write_text(
            f"Note {n} about the {WORDS[n % len(WORDS)]} project.\n" * 5
        )
    paths = config.Paths(home)

    started = time.monotonic()
    pid = daemon_process.start(paths, folders=[str(folder)])
    wait_idle(paths)
    first = time.monotonic() - started
    time.sleep(2)
    idle_own, idle_tree = rss_tree_mb(pid)
    print(
        f"daemon up and {args.background} files indexed in {first:.1f} s; idle RSS {idle_own:.0f} MB "
        f"({idle_tree:.0f} MB with parser processes, PSS)",
        flush=True,
    )

    latencies: dict[str, list[float]] = {"new": [], "atomic": [], "in-place": []}
    try:
        for n in range(args.samples):
            kind = ("new", "atomic", "in-place")[n % 3]
            word = f"zq{n:04d}marker"
            text = f"Sample {n}: the {word} appears only here.\n" * 3
            if kind == "new":
                path = folder / f"sample-{n:04d}.txt"
                path.write_text(text)
            elif kind == "atomic":
                path = folder / f"note-{n:05d}.txt"
                temporary = path.with_name(f".{path.name}.swp")
                temporary.write_text(text)
                os.replace(temporary, path)
            else:
                path = folder / f"note-{n:05d}.txt"
                with open(path, "w") as handle:
                    handle.write(text)
            saved = time.monotonic()
            while not searchable(paths, word, path.as_posix()):
                if time.monotonic() - saved > 120:
                    raise SystemExit(f"{path} was not searchable within 120 s")
                time.sleep(0.01)
            latencies[kind].append(time.monotonic() - saved)
            time.sleep(0.3)
        every = [v for values in latencies.values() for v in values]
        print(
            f"save to searchable, {len(every)} saves: p50 {statistics.median(every) * 1000:.0f} ms, "
            f"p95 {percentile(every, 95) * 1000:.0f} ms, max {max(every) * 1000:.0f} ms",
            flush=True,
        )
        for kind, values in latencies.items():
            print(
                f"  {kind}: p50 {statistics.median(values) * 1000:.0f} ms, "
                f"p95 {percentile(values, 95) * 1000:.0f} ms ({len(values)})"
            )

        # The storm: thousands of files at once, memory sampled until all are searchable.
        peak = [idle_own, idle_tree]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                own, tree = rss_tree_mb(pid)
                peak[0], peak[1] = max(peak[0], own), max(peak[1], tree)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        batches = daemon_process.status(paths)["counts"]["batches"]
        storm = folder / "unzipped"
        storm.mkdir()
        started = time.monotonic()
        for n in range(args.storm):
            (storm / f"page-{n:05d}.txt").write_text(
                f"Page {n}: storm{n}page about the {WORDS[n % 10]}.\n" * 5
            )
        written = time.monotonic() - started
        last = (storm / f"page-{args.storm - 1:05d}.txt").as_posix()
        while not searchable(paths, f"storm{args.storm - 1}page", last):
            time.sleep(0.05)
        wait_idle(paths)
        storm_seconds = time.monotonic() - started
        stop.set()
        sampler.join()
        status = daemon_process.status(paths)
        print(
            f"storm of {args.storm} files (written in {written:.1f} s): all indexed {storm_seconds:.1f} s "
            f"after the first was written; peak RSS {peak[0]:.0f} MB ({peak[1]:.0f} MB with parser "
            f"processes, PSS); {status['counts']['batches'] - batches} batches",
            flush=True,
        )
        time.sleep(3)
        after_own, after_tree = rss_tree_mb(pid)
        print(f"idle again: RSS {after_own:.0f} MB ({after_tree:.0f} MB with parser processes, PSS)")
        print(json.dumps({
            "model": "hashing (fake)" if args.fake else "real",
            "first_index_seconds": round(first, 1),
            "latency_ms": {
                "p50": round(statistics.median(every) * 1000), "p95": round(percentile(every, 95) * 1000),
                "max": round(max(every) * 1000),
                **{k: round(statistics.median(v) * 1000) for k, v in latencies.items()},
            },
            "rss_mb": {
                "idle": round(idle_own), "idle_with_parsers": round(idle_tree),
                "storm_peak": round(peak[0]), "storm_peak_with_parsers": round(peak[1]),
                "idle_after_storm": round(after_own),
            },
            "storm": {"files": args.storm, "seconds": round(storm_seconds, 1)},
        }))  # fmt: skip
    finally:
        daemon_process.stop(paths, force=True)


if __name__ == "__main__":
    main()
