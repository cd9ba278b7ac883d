"""What resolving a follow-up costs, per model: the time the model takes to rewrite it into a
standalone question, and how often its rewrite passes the check (else the rule is used).

    python benchmarks/followup_latency.py [--models qwen2.5-1.5b qwen2.5-0.5b smollm2-135m]

Each model rewrites the same follow-ups after the same earlier turns (real questions and answers
about the example archive). The rule alone costs well under a millisecond; it is timed too.
Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.answer.followup import Exchange, _by_model, by_rule  # noqa: E402
from memex.models import catalogue  # noqa: E402
from memex.models.llm import LlamaCppModel  # noqa: E402

TURNS = [
    (
        [
            (
                "What caused the Harrier outage in March?",
                "An expired TLS certificate on the ingest gateway [1].",
            )
        ],
        "who fixed it?",
    ),
    (
        [
            (
                "What is the parental leave top-up?",
                "Kestrel tops up the allowance to 100% of salary for 120 days [1].",
            )
        ],
        "who handles the requests?",
    ),
    (
        [("Where is the assembly point if there is a fire alarm?", "In the car park across the street [1].")],
        "and in the Lisbon office?",
    ),
    (
        [("Which discounts need approval?", "Discounts above 15% need the CEO's approval [1].")],
        "what about 10%?",
    ),
    (
        [
            ("Who offered to acquire the company?", "Nordlys made an offer in February [1]."),
            ("How much did they offer?", "The offer was 4.2 million euros [1]."),
        ],
        "when does it expire?",
    ),
    (
        [("When does the Lisbon office open?", "It opens at nine [1].")],
        "is it open on Saturdays?",
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[m.name for m in catalogue.CATALOGUE])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    cases = [([Exchange(q, q, a) for q, a in turns], question) for turns, question in TURNS]
    started = time.perf_counter()
    for history, question in cases:
        by_rule(question, history[-1].standalone)
    rule_ms = (time.perf_counter() - started) * 1000 / len(cases)
    print(json.dumps({"model": "(rule only)", "ms_per_follow_up": round(rule_ms, 3)}))
    for name in args.models:
        try:
            chosen = catalogue.resolve(name)
        except Exception as exc:  # not installed: say so and go on
            print(json.dumps({"model": name, "skipped": str(exc)}))
            continue
        model = LlamaCppModel(chosen.path, name=chosen.name, sampling=chosen.sampling, threads=args.threads)
        model.complete([{"role": "user", "content": "warm up"}], max_tokens=4)
        seconds, accepted, shown = [], 0, []
        for history, question in cases:
            start = time.perf_counter()
            rewritten = _by_model(question, history, model)
            seconds.append(time.perf_counter() - start)
            accepted += rewritten is not None
            shown.append(
                {"follow_up": question, "model": rewritten, "rule": by_rule(question, history[-1].standalone)}
            )
        print(
            json.dumps(
                {
                    "model": chosen.name,
                    "follow_ups": len(cases),
                    "seconds_median": round(statistics.median(seconds), 2),
                    "seconds_max": round(max(seconds), 2),
                    "model_rewrite_accepted": accepted,
                    "rewrites": shown,
                }
            )
        )
        del model


if __name__ == "__main__":
    main()
