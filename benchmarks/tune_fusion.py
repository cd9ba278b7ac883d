"""Choose fusion parameters by measurement on a BEIR set (default: SciFact test).

    python benchmarks/tune_fusion.py [--dataset ../shared/data/beir_scifact] [--home /tmp/scifact-home]

Builds (once; reused from --home) an index of the corpus through the real pipeline with the default
embedding model, fetches each question's dense and lexical candidate lists once, then scores fusion
variants offline: reciprocal rank fusion with several k and weights, at chunk level and at document
level, and a convex combination of normalised scores.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.access.policyfile import parse_policy  # noqa: E402
from memex.api.wiring import Memex  # noqa: E402
from memex.config import Paths  # noqa: E402
from memex.eval.retrieval import EVAL_POLICY, load_questions, score  # noqa: E402
from memex.index import NO_NARROWING  # noqa: E402
from memex.models.embeddings import SentenceTransformerEmbedder  # noqa: E402

Ranking = Sequence[tuple[str, float]]


def candidates(memex: Memex, query: str, principal, depth: int) -> tuple[Ranking, Ranking, dict[str, str]]:
    index = memex.index
    visible = index._visible_classes(principal, NO_NARROWING)
    dense = index._vectors.query(
        index.embedder.embed_query(query),
        wanted=depth,
        visible=visible,
        classes=index._lexical.classes(),
        counts=index._lexical.class_counts(),
        classes_of=index._lexical.classes_of,
    )
    lexical = index._lexical.search(query, visible, NO_NARROWING.sql_where(), depth)
    ids = list({c for c, _ in dense} | {c for c, _ in lexical})
    docs = {}
    for start in range(0, len(ids), 500):
        for chunk_id, (_, meta) in index._vectors.fetch(ids[start : start + 500]).items():
            docs[chunk_id] = meta["source_id"].removeprefix("beir:")
    return dense, lexical, docs


def rrf_chunks(k: int, w_dense: float, w_lexical: float) -> Callable:
    def fuse(dense: Ranking, lexical: Ranking, docs: dict[str, str]) -> list[str]:
        scores: dict[str, float] = {}
        for weight, ranking in ((w_dense, dense), (w_lexical, lexical)):
            for rank, (chunk_id, _) in enumerate(ranking):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (k + rank + 1)
        ordered = sorted(scores, key=lambda c: -scores[c])
        return list(dict.fromkeys(docs[c] for c in ordered))

    return fuse


def rrf_docs(k: int, w_dense: float, w_lexical: float) -> Callable:
    def fuse(dense: Ranking, lexical: Ranking, docs: dict[str, str]) -> list[str]:
        scores: dict[str, float] = {}
        for weight, ranking in ((w_dense, dense), (w_lexical, lexical)):
            ranked_docs = list(dict.fromkeys(docs[c] for c, _ in ranking))
            for rank, doc in enumerate(ranked_docs):
                scores[doc] = scores.get(doc, 0.0) + weight / (k + rank + 1)
        return sorted(scores, key=lambda d: -scores[d])

    return fuse


def convex(alpha: float) -> Callable:
    def fuse(dense: Ranking, lexical: Ranking, docs: dict[str, str]) -> list[str]:
        def normalised(ranking: Ranking) -> dict[str, float]:
            best: dict[str, float] = {}
            for chunk_id, value in ranking:
                doc = docs[chunk_id]
                best[doc] = max(best.get(doc, float("-inf")), value)
            if not best:
                return {}
            low, high = min(best.values()), max(best.values())
            return {d: (v - low) / (high - low or 1.0) for d, v in best.items()}

        d, lx = normalised(dense), normalised(lexical)
        scores = {doc: alpha * d.get(doc, 0.0) + (1 - alpha) * lx.get(doc, 0.0) for doc in set(d) | set(lx)}
        return sorted(scores, key=lambda doc: -scores[doc])

    return fuse


def convex_chunks(alpha: float, normalise: str = "minmax") -> Callable:
    def fuse(dense: Ranking, lexical: Ranking, docs: dict[str, str]) -> list[str]:
        def scaled(ranking: Ranking) -> dict[str, float]:
            values = [v for _, v in ranking]
            if not values:
                return {}
            if normalise == "z":
                mean = sum(values) / len(values)
                sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
                return {c: (v - mean) / sd for c, v in ranking}
            low, high = min(values), max(values)
            return {c: (v - low) / (high - low or 1.0) for c, v in ranking}

        d, lx = scaled(dense), scaled(lexical)
        floor_d = min(d.values(), default=0.0)
        floor_l = min(lx.values(), default=0.0)
        scores = {c: alpha * d.get(c, floor_d) + (1 - alpha) * lx.get(c, floor_l) for c in set(d) | set(lx)}
        ordered = sorted(scores, key=lambda c: -scores[c])
        return list(dict.fromkeys(docs[c] for c in ordered))

    return fuse


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "beir_scifact")
    parser.add_argument("--home", type=Path, default=Path("/tmp/scifact-home"))
    parser.add_argument("--depth", type=int, default=200)
    args = parser.parse_args()
    policy = parse_policy(EVAL_POLICY, origin="memex-eval")
    questions = load_questions(args.dataset)
    with Memex(
        Paths(args.home), policy=policy, embedder=SentenceTransformerEmbedder(), writable=True
    ) as memex:
        if memex.index.count(principal=policy.principal("evaluator"))["chunks"] == 0:
            report = memex.ingest([str(args.dataset.resolve())])
            print(
                f"built: {len(report.indexed)} documents, {report.chunks_added} chunks, {report.seconds:.0f} s"
            )
        principal = policy.principal("evaluator")
        lists = {
            qid: candidates(memex, text, principal, args.depth) for qid, text in questions.queries.items()
        }
    variants: dict[str, Callable] = {
        "dense only": lambda d, lx, docs: list(dict.fromkeys(docs[c] for c, _ in d))
    }
    variants["lexical only"] = lambda d, lx, docs: list(dict.fromkeys(docs[c] for c, _ in lx))
    for k in (10, 30, 60, 100):
        variants[f"rrf chunks k={k}"] = rrf_chunks(k, 1.0, 1.0)
        variants[f"rrf docs k={k}"] = rrf_docs(k, 1.0, 1.0)
    for w in (0.7, 0.8, 1.2, 1.5):
        variants[f"rrf docs k=60 dense x{w}"] = rrf_docs(60, w, 1.0)
    for alpha in (0.3, 0.4, 0.5, 0.6, 0.7):
        variants[f"convex alpha={alpha}"] = convex(alpha)
    for alpha in (0.4, 0.5, 0.6):
        variants[f"convex chunks alpha={alpha}"] = convex_chunks(alpha)
        variants[f"convex chunks z alpha={alpha}"] = convex_chunks(alpha, "z")
    print(f"{'variant':28} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}")
    for name, fuse in variants.items():
        rankings = {qid: fuse(*lists[qid])[:100] for qid in lists}
        m = score(rankings, questions)
        print(
            f"{name:28} {m['ndcg@10']:8.3f} {m['recall@10']:7.3f} {m['recall@100']:7.3f} {m['mrr@10']:7.3f}"
        )


if __name__ == "__main__":
    main()
