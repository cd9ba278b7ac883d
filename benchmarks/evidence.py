"""How often the evidence sentences memex shows under an answer contain the gold evidence.

    python benchmarks/evidence.py [--home /tmp/scifact-home] [--limit N]

SciFact's dev claims come with the abstract and the indices of the sentences that support or
contradict them (claims_dev_with_evidence.jsonl). For each such claim, memex retrieves as
`memex ask` does (relevant hits, k=5), then picks the evidence sentences (3) from the cited chunks
exactly as the CLI shows them. A claim counts as covered when a shown sentence is a gold one
(the gold sentence's words are at least 80 % inside it). Reported: coverage when the gold abstract
is among the cited chunks, and overall. The corpus joins each abstract's sentences with single
spaces, so gold sentences are recovered by splitting at sentence ends; that split is
approximate, which only lowers the figure.

Reuses the index built by benchmarks/tune_fusion.py (same --home), building it if needed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.access.policyfile import parse_policy  # noqa: E402
from memex.answer.pipeline import best_sentences, relevant  # noqa: E402
from memex.api.wiring import Memex  # noqa: E402
from memex.config import Paths  # noqa: E402
from memex.eval.retrieval import EVAL_POLICY  # noqa: E402
from memex.models.embeddings import SentenceTransformerEmbedder  # noqa: E402

SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
WORD = re.compile(r"\w+")


def covered(shown: str, gold: str) -> bool:
    gold_words = WORD.findall(gold.lower())
    shown_words = set(WORD.findall(shown.lower()))
    return bool(gold_words) and sum(w in shown_words for w in gold_words) / len(gold_words) >= 0.8


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "beir_scifact")
    parser.add_argument("--home", type=Path, default=Path("/tmp/scifact-home"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    corpus = {}
    with (args.dataset / "corpus.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            corpus[str(record["_id"])] = record["text"]
    claims = []
    with (args.dataset / "claims_dev_with_evidence.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("evidence_doc_id") and record.get("evidence_sentence_idx"):
                claims.append(record)
    claims = claims[: args.limit] if args.limit else claims
    policy = parse_policy(EVAL_POLICY, origin="memex-eval")
    principal = policy.principal("evaluator")
    found = cited = total = 0
    with Memex(
        Paths(args.home), policy=policy, embedder=SentenceTransformerEmbedder(), writable=True
    ) as memex:
        if memex.index.count(principal=principal)["chunks"] == 0:
            memex.ingest([str(args.dataset.resolve())])
        for claim in claims:
            doc = str(claim["evidence_doc_id"])
            sentences = SPLIT.split(corpus[doc])
            gold = [sentences[i] for i in claim["evidence_sentence_idx"] if i < len(sentences)]
            if not gold:
                continue
            total += 1
            hits = relevant(memex.index.search(claim["claim"], principal=principal, k=5))
            if not any(h.source_id == f"beir:{doc}" for h in hits):
                continue
            cited += 1
            shown = best_sentences(claim["claim"], hits, memex.embedder)
            if any(covered(item.sentence, g) for item in shown for g in gold):
                found += 1
    result = {
        "claims": total,
        "gold_abstract_cited": cited,
        "evidence_shown_when_cited": round(found / cited, 3) if cited else 0.0,
        "evidence_shown_overall": round(found / total, 3) if total else 0.0,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"claims with gold evidence: {total}")
        print(f"gold abstract among the cited chunks: {cited} ({cited / total:.1%})")
        print(
            f"a gold sentence among the 3 evidence sentences shown, when cited: {result['evidence_shown_when_cited']:.1%}"
        )
        print(f"... over all claims: {result['evidence_shown_overall']:.1%}")


if __name__ == "__main__":
    main()
