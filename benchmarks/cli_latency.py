"""What a person waits for at the terminal: `memex search` and `memex ask` from the command line,
each a new process as typed, with memex in the background (the default) and without it
(--no-daemon: every command loads the models and opens the store itself); and a search answered
while a long ingest runs.

    python benchmarks/cli_latency.py [--calls 20] [--ask-calls 20] [--notes 6000]

The example archive is ingested into a fresh MEMEX_HOME with the real bundled models; the model
that answers is the default of `memex models`. Prints p50/p95 per command and way, and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEMEX = str(Path(sys.executable).with_name("memex"))
QUESTIONS = [
    "How many vacation days do employees get?",
    "Where is the Lisbon office?",
    "Who handles parental leave requests?",
    "What is the Falcon 2 sensor?",
]


def run(*args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([MEMEX, *args], capture_output=True, text=True, env=env, timeout=900)
    return time.perf_counter() - started, done


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def timed(label: str, calls: int, args_for, env: dict[str, str]) -> dict[str, float]:
    times = []
    for n in range(calls):
        took, done = run(*args_for(n), env=env)
        if done.returncode != 0:
            raise SystemExit(f"{label} failed: {done.stderr}")
        times.append(took)
    result = {
        "p50": round(statistics.median(times), 2),
        "p95": round(percentile(times, 0.95), 2),
        "calls": calls,
    }
    print(f"{label}: p50 {result['p50']} s, p95 {result['p95']} s ({calls} calls)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--ask-calls", type=int, default=20)
    parser.add_argument("--notes", type=int, default=6000, help="files in the long ingest")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="memex-cli-latency-"))
    home = base / "home"
    env = {**os.environ, "MEMEX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("MEMEX_NO_DAEMON", None)
    one_shot = {**env, "MEMEX_NO_DAEMON": "1"}
    results: dict[str, dict] = {}
    try:
        archive = base / "kestrel"
        shutil.copytree(ROOT / "examples" / "kestrel", archive)
        took, done = run("--no-daemon", "ingest", str(archive), "--json", env=env)
        print(f"ingested the example archive in {took:.1f} s (one process)", flush=True)

        def search(n: int) -> list[str]:
            return ["search", QUESTIONS[n % len(QUESTIONS)], "--json"]

        def ask(n: int) -> list[str]:
            return ["ask", QUESTIONS[n % len(QUESTIONS)], "--json"]

        results["search, no daemon"] = timed("search, no daemon", args.calls, search, one_shot)
        results["ask, no daemon"] = timed("ask, no daemon", args.ask_calls, ask, one_shot)
        took, _ = run("status", "--json", env=env)
        results["first command (starts memex)"] = {"seconds": round(took, 2)}
        print(f"first command, starting memex in the background: {took:.1f} s", flush=True)
        results["search, daemon"] = timed("search, daemon", args.calls, search, env)
        results["ask, daemon"] = timed("ask, daemon", args.ask_calls, ask, env)

        notes = base / "notes"
        for i in range(args.notes):
            folder = notes / f"part{i // 500}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"note{i}.txt").write_text(
                f"Meeting note {i}: the budget review of project {i} moved.\n"
            )
        ingest = subprocess.Popen(
            [MEMEX, "ingest", str(notes), "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(5)
        during = []
        while ingest.poll() is None and len(during) < args.calls:
            took, done = run(*search(len(during)), env=env)
            if done.returncode != 0:
                raise SystemExit(f"search during ingest failed: {done.stderr}")
            during.append(took)
        out, _ = ingest.communicate()
        report = json.loads(out)
        results["search during an ingest"] = {
            "p50": round(statistics.median(during), 2) if during else None,
            "calls": len(during),
            "ingest_sources": report["indexed"],
            "ingest_seconds": report["seconds"],
        }
        print(
            f"search during an ingest of {report['indexed']} files ({report['seconds']:.0f} s): "
            f"p50 {results['search during an ingest']['p50']} s ({len(during)} calls, all answered)",
            flush=True,
        )
    finally:
        subprocess.run([MEMEX, "daemon", "stop"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
