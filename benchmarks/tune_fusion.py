"""Choose fusion by measurement on several BEIR sets: SciFact and the development sets that
benchmarks/devsets.py generates from ../shared/data.

    python benchmarks/devsets.py --out /tmp/memex-devsets
    python benchmarks/tune_fusion.py [--sets /tmp/memex-devsets] [--scifact ../shared/data/beir_scifact]
                                     [--cache /tmp/memex-fusion] [--kinds]

For each set it builds (once; reused from --cache) an index of the corpus through the real pipeline
with the default embedding model, and fetches each question's dense, lexical and phrase candidate
lists once, as `Index.search` fetches them for `memex eval` (k = 200, so 800 candidates a list;
cached as JSON). Then it scores fusions offline from those lists, by documents in the order of their
best chunk as `memex eval` ranks them: dense only, lexical only, the fixed-weight fusion that
shipped first, the adaptive fusion that ships now (memex.index.fusion), and a few known methods.
`--kinds` adds one row per kind of question of the development sets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.eval.retrieval import QuestionSet, load_questions, score  # noqa: E402
from memex.index import fusion  # noqa: E402

Ranking = Sequence[tuple[str, float]]
Lists = tuple[Ranking, Ranking, Ranking]  # dense, lexical, phrase
EVAL_K = 200  # memex eval asks the index for 2 x 100 hits
DEPTH = max(EVAL_K * 4, 40)  # and Index.search then fetches this many candidates a list


def fetch(dataset: Path, cache: Path) -> dict[str, dict]:
    """Each question's candidate lists and the documents of their chunks (cached under `cache`)."""
    corpus, asked = (_digest(dataset / name) for name in ("corpus.jsonl", "queries.jsonl"))
    saved = cache / f"{dataset.name}-{corpus}-{asked}.candidates.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    from memex.access.policyfile import parse_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.eval.retrieval import EVAL_POLICY
    from memex.index import NO_NARROWING
    from memex.models.embeddings import SentenceTransformerEmbedder

    policy = parse_policy(EVAL_POLICY, origin="memex-eval")
    principal = policy.principal("evaluator")
    questions = load_questions(dataset)
    lists: dict[str, dict] = {}
    with Memex(
        Paths(cache / f"home-{dataset.name}-{corpus}"),
        policy=policy,
        embedder=SentenceTransformerEmbedder(),
        writable=True,
    ) as memex:
        index = memex.index
        if index.count(principal=principal)["chunks"] == 0:
            report = memex.ingest([str(dataset.resolve())])
            print(
                f"{dataset.name}: {len(report.indexed)} documents, {report.chunks_added} chunks",
                file=sys.stderr,
            )
        visible = index._visible_classes(principal, NO_NARROWING)
        where = NO_NARROWING.sql_where()
        for qid, text in questions.queries.items():
            dense = index._vectors.query(
                index.embedder.embed_query(text),
                wanted=DEPTH,
                visible=visible,
                classes=index._lexical.classes(),
                counts=index._lexical.class_counts(),
                classes_of=index._lexical.classes_of,
            )
            lexical = index._lexical.search(text, visible, where, DEPTH)
            phrase = index._lexical.phrase_search(text, visible, where, DEPTH)
            ids = sorted({c for c, _ in dense} | {c for c, _ in lexical} | {c for c, _ in phrase})
            docs = {}
            for start in range(0, len(ids), 500):
                for chunk_id, (_, meta) in index._vectors.fetch(ids[start : start + 500]).items():
                    docs[chunk_id] = meta["source_id"].removeprefix("beir:")
            lists[qid] = {"dense": dense, "lexical": lexical, "phrase": phrase, "docs": docs}
    cache.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(lists))
    return lists


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


Fuse = Callable[[Ranking, Ranking, Ranking], Sequence[tuple[str, float]]]


def dense_only(dense: Ranking, lexical: Ranking, phrase: Ranking) -> list[tuple[str, float]]:
    """Dense mode as Index.search runs it (no lexical list, no phrase list)."""
    return fusion.fuse(dense, [], [], DEPTH, depth=DEPTH)


def lexical_only(dense: Ranking, lexical: Ranking, phrase: Ranking) -> list[tuple[str, float]]:
    """Lexical mode as Index.search runs it: BM25 and the phrase bonus."""
    return fusion.fuse([], lexical, phrase, DEPTH, depth=DEPTH)


def fixed_weight(dense: Ranking, lexical: Ranking, phrase: Ranking) -> list[tuple[str, float]]:
    """The first shipped fusion: z-scores, dense weight 0.5, phrase bonus."""
    return fusion.fixed(dense, lexical, phrase, DEPTH, depth=DEPTH, dense_weight=0.5)


def adaptive(dense: Ranking, lexical: Ranking, phrase: Ranking) -> list[tuple[str, float]]:
    return fusion.fuse(dense, lexical, phrase, DEPTH, depth=DEPTH)


def rrf(k: int = 60) -> Fuse:
    def fuse(dense: Ranking, lexical: Ranking, phrase: Ranking) -> list[tuple[str, float]]:
        scores: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, (chunk_id, _) in enumerate(ranking):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + 1 / (k + rank + 1)
        return sorted(scores.items(), key=lambda item: -item[1])

    return fuse


def relative_score(alpha: float = 0.5) -> Fuse:
    """Weaviate's relativeScoreFusion: min-max over each list, weighted sum."""

    def fuse(dense: Ranking, lexical: Ranking, phrase: Ranking) -> list[tuple[str, float]]:
        def scaled(ranking: Ranking) -> dict[str, float]:
            values = [v for _, v in ranking]
            low, high = min(values, default=0.0), max(values, default=0.0)
            return {c: (v - low) / (high - low or 1.0) for c, v in ranking}

        d, lx = scaled(dense), scaled(lexical)
        scores = {c: alpha * d.get(c, 0.0) + (1 - alpha) * lx.get(c, 0.0) for c in {*d, *lx}}
        return sorted(scores.items(), key=lambda item: -item[1])

    return fuse


VARIANTS: dict[str, Fuse] = {
    "dense": dense_only,
    "lexical": lexical_only,
    "hybrid, fixed weight (old)": fixed_weight,
    "hybrid, adaptive (new)": adaptive,
    "reciprocal rank fusion k=60": rrf(60),
    "relative score fusion 0.5": relative_score(0.5),
}


def measure(lists: dict[str, dict], questions: QuestionSet, fuse: Fuse) -> dict[str, float]:
    rankings = {}
    for qid in questions.queries:
        entry = lists[qid]
        ranked = fuse(entry["dense"], entry["lexical"], entry["phrase"])
        docs = entry["docs"]
        rankings[qid] = list(dict.fromkeys(docs[c] for c, _ in ranked[:EVAL_K] if c in docs))[:100]
    return score(rankings, questions)


def subsets(dataset: Path, questions: QuestionSet) -> dict[str, QuestionSet]:
    """The questions of each kind (queries.jsonl's "kind", written by benchmarks/devsets.py)."""
    kinds: dict[str, list[str]] = {}
    with (dataset / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") and record["_id"] in questions.queries:
                kinds.setdefault(record["kind"], []).append(record["_id"])
    return {
        kind: QuestionSet({q: questions.queries[q] for q in ids}, {q: questions.qrels[q] for q in ids})
        for kind, ids in kinds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", type=Path, default=Path("/tmp/memex-devsets"))
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "data" / "beir_scifact")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/memex-fusion"))
    parser.add_argument("--kinds", action="store_true", help="Also score each kind of question.")
    args = parser.parse_args()
    datasets = [args.scifact] + sorted(p for p in args.sets.iterdir() if (p / "corpus.jsonl").is_file())
    table: dict[str, dict[str, float]] = {}
    for dataset in datasets:
        questions = load_questions(dataset)
        lists = fetch(dataset, args.cache)
        groups = {dataset.name: questions}
        if args.kinds:
            groups |= {f"{dataset.name}/{k}": s for k, s in subsets(dataset, questions).items()}
        for group, subset in groups.items():
            table[f"{group} ({len(subset.queries)})"] = {
                name: measure(lists, subset, fuse)["ndcg@10"] for name, fuse in VARIANTS.items()
            }
    names = list(VARIANTS)
    print("nDCG@10 | " + " | ".join(names))
    for group, row in table.items():
        print(f"{group} | " + " | ".join(f"{row[n]:.3f}" for n in names))


if __name__ == "__main__":
    main()
