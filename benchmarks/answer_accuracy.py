"""Answer accuracy per model on the question sets in benchmarks/answers/ (see its README).

For each set: a throwaway MEMEX_HOME with the set's policy, its targets ingested once (real
embedder), then `memex eval --answers SET.jsonl --json` once per model. Each run gives the figures
with the grounding check on and off (one generation, scored both ways). Results go to
benchmarks/results/answers-SET-MODEL.json and a table on stdout.

    python benchmarks/answer_accuracy.py                       # every set, every installed model
    python benchmarks/answer_accuracy.py --sets kestrel --models qwen2.5-1.5b --limit 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "benchmarks" / "answers"
RESULTS = ROOT / "benchmarks" / "results"


def memex(home: Path, *args: str, timeout: float = 7200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEMEX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "memex"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def prepare(name: str, base: Path) -> Path:
    setup = yaml.safe_load((SETS / f"{name}.setup.yaml").read_text())
    home = base / name
    if (home / "ready").is_file():
        return home
    policy = setup["policy"]
    policy_arg = str(ROOT / policy) if "/" in policy else policy
    done = memex(home, "init", "--policy", policy_arg, "--force")
    assert done.returncode == 0, done.stderr
    start = time.perf_counter()
    targets = [str((ROOT / t).resolve()) for t in setup["targets"]]
    done = memex(home, "ingest", *targets, "--json")
    if done.returncode not in (0, 2):
        raise SystemExit(f"ingest of {name} failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    print(
        f"{name}: ingested {report.get('indexed')} sources in {time.perf_counter() - start:.0f} s",
        file=sys.stderr,
    )
    (home / "ready").write_text("")
    return home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="*", default=["kestrel", "personal", "shared"])
    parser.add_argument("--models", nargs="*", default=["qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m"])
    parser.add_argument("--limit", type=int)
    parser.add_argument("--homes", type=Path, default=Path("/tmp/memex-answer-bench"))
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for name in args.sets:
        setup = yaml.safe_load((SETS / f"{name}.setup.yaml").read_text())
        home = prepare(name, args.homes)
        for model in args.models:
            command = ["eval", "--answers", str(SETS / f"{name}.jsonl"), "--model", model, "--json"]
            if setup.get("as"):
                command += ["--as", setup["as"]]
            if args.limit:
                command += ["--limit", str(args.limit)]
            done = memex(home, *command)
            if done.returncode != 0:
                print(
                    f"{name} / {model}: failed: {done.stdout[-500:]} {done.stderr[-1500:]}", file=sys.stderr
                )
                continue
            result = json.loads(done.stdout)
            (RESULTS / f"answers-{name}-{model}.json").write_text(json.dumps(result, indent=1))
            summary = result["summary"]
            rows.append((name, model, summary))
            print(f"{name} / {model}: {json.dumps(summary)}", file=sys.stderr)
    print(
        "| set | model | check | accuracy | citation | abstention | unsupported shown | s/answer (p50) | first word p50 | RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, model, s in rows:
        for check in ("checked", "unchecked"):
            m = s[check]
            print(
                f"| {name} ({s['questions']}) | {model} | {'on' if check == 'checked' else 'off'} | "
                f"{m['accuracy']} | {m['citation_accuracy']} | {m['abstention_accuracy']} | "
                f"{m['unsupported_shown_rate']} | {s['seconds_per_answer']['p50']} | "
                f"{s['first_word_seconds_p50']} | {s['peak_rss_mb']} |"
            )


if __name__ == "__main__":
    main()
