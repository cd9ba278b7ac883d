"""`memex ask` end to end against llama.cpp alone on the same prompt.

    python benchmarks/ask_overhead.py [--rounds 3]

The example archive (examples/kestrel) is ingested with the real embedding model under the
company policy. Each question is then asked through `Memex.ask` with the bundled GGUF model
(retrieval with the access filter, prompt building, generation, output rules, evidence), and the
exact messages memex sent to the model are replayed to the same, already loaded llama.cpp model
with the same sampling parameters and seed, so both generate the same tokens. Overhead = ask time
/ llama.cpp time - 1 (goal <= 5%), per question and in total. Both are timed in the same process,
alternating, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.access.policyfile import load_policy  # noqa: E402
from memex.api.reads import Reads  # noqa: E402
from memex.api.wiring import Memex  # noqa: E402
from memex.config import POLICIES, Paths  # noqa: E402
from memex.models.llm import LlamaCppModel  # noqa: E402

SEED = 1234
QUESTIONS = [
    ("erin", "Who offered to acquire the company?"),
    ("alice", "What caused the harrier outage in March?"),
    ("pat", "Where is the assembly point if there is a fire alarm?"),
    ("frank", "What did Erin say about the contingency after the harrier outage?"),
    ("sam", "Which discounts need approval?"),
]


class SeededModel(LlamaCppModel):
    """The in-process model with a fixed seed, remembering what it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[list[dict]] = []

    def sampling(self, messages, max_tokens: int) -> dict:
        return dict(
            messages=list(messages), max_tokens=max_tokens, temperature=0.2, top_p=0.9,
            repeat_penalty=1.15, seed=SEED, stream=True,
        )  # fmt: skip

    def stream(self, messages, *, max_tokens: int):
        self.sent.append([dict(m) for m in messages])
        self.max_tokens = max_tokens
        self.raw = ""
        self._load().reset()  # no prompt prefix cached from the last call, on either side
        for event in self._load().create_chat_completion(**self.sampling(messages, max_tokens)):
            piece = event["choices"][0]["delta"].get("content")
            if piece:
                self.raw += piece
                yield piece

    def alone(self, messages) -> tuple[float, str]:
        self._load().reset()
        started = time.perf_counter()
        pieces = [
            event["choices"][0]["delta"].get("content") or ""
            for event in self._load().create_chat_completion(**self.sampling(messages, self.max_tokens))
        ]
        return time.perf_counter() - started, "".join(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="memex-ask-bench-"))
    try:
        archive = work / "kestrel"
        shutil.copytree(ROOT / "examples" / "kestrel", archive)
        model = SeededModel()
        policy = load_policy(POLICIES / "company.yaml")
        with Memex(Paths(work / "home"), policy=policy, model=model, writable=True) as memex:
            memex.ingest([str(archive)])
            Reads(memex).ask("warm up", principal=policy.principal("alice"))  # loads both models
            rows = []
            for _ in range(args.rounds):
                for user, question in QUESTIONS:
                    started = time.perf_counter()
                    answer = Reads(memex).ask(question, principal=policy.principal(user))
                    asked = time.perf_counter() - started
                    alone, text = model.alone(model.sent[-1])
                    rows.append({"question": question, "ask_s": asked, "llama_s": alone,
                                 "same_text": text == model.raw, "cited": len(answer.citations)})  # fmt: skip
        total_ask = sum(r["ask_s"] for r in rows)
        total_llama = sum(r["llama_s"] for r in rows)
        result = {
            "asks": len(rows),
            "same_generation": sum(r["same_text"] for r in rows),
            "answers_with_citations": sum(r["cited"] > 0 for r in rows),
            "ask_seconds": round(total_ask, 2),
            "llama_cpp_seconds": round(total_llama, 2),
            "overhead": round(total_ask / total_llama - 1, 4),
            "median_overhead": round(statistics.median(r["ask_s"] / r["llama_s"] - 1 for r in rows), 4),
            "median_ask_ms": round(1000 * statistics.median(r["ask_s"] for r in rows)),
            "median_llama_ms": round(1000 * statistics.median(r["llama_s"] for r in rows)),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
