"""`memex eval`: retrieval quality on BEIR-format question sets (nDCG@10, Recall@10, Recall@100,
MRR@10), dense, lexical and hybrid side by side.

With a corpus (corpus.jsonl), the corpus is ingested into a throwaway MEMEX_HOME through the real
pipeline (connector, policy labels, chunking, embedding, the access-filtered search). Without one,
the questions run against an existing index: qrels then name source ids or paths.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memex.errors import ConfigError

MODES = ("dense", "lexical", "hybrid")
EVAL_POLICY = """
labels: []
users:
  evaluator: {}
sources:
  - {name: evaluation-corpus, match: {connector: beir}}
"""


@dataclass(frozen=True)
class QuestionSet:
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {document id: relevance}


def load_questions(folder: Path, *, split: str = "test", limit: int | None = None) -> QuestionSet:
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = (
            sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        )
        raise ConfigError(
            f"{qrels_path} not found; a BEIR folder has queries.jsonl and qrels/SPLIT.tsv "
            f"(splits here: {', '.join(available) or 'none'})"
        )
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            score = int(row["score"])
            if score > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = score
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if str(record["_id"]) in qrels:
                    queries[str(record["_id"])] = record["text"]
    ids = sorted(queries, key=_natural)[:limit] if limit else sorted(queries, key=_natural)
    return QuestionSet({i: queries[i] for i in ids}, {i: qrels[i] for i in ids})


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (rank + 1)
    return 0.0


def score(rankings: Mapping[str, Sequence[str]], questions: QuestionSet) -> dict[str, float]:
    rows = [(rankings.get(q, []), questions.qrels[q]) for q in questions.queries]
    n = len(rows) or 1
    return {
        "ndcg@10": sum(ndcg_at(r, rel, 10) for r, rel in rows) / n,
        "recall@10": sum(recall_at(r, rel, 10) for r, rel in rows) / n,
        "recall@100": sum(recall_at(r, rel, 100) for r, rel in rows) / n,
        "mrr@10": sum(mrr_at(r, rel, 10) for r, rel in rows) / n,
    }


Search = Callable[[str, int, str], Sequence[Any]]  # (query, k, mode) -> hits, best first


def rank_documents(
    search: Search, query: str, *, mode: str, depth: int = 100, doc_id: Callable[[Any], str]
) -> list[str]:
    """Documents in the order of their best chunk."""
    hits = search(query, depth * 2, mode)
    return list(dict.fromkeys(doc_id(hit) for hit in hits))[:depth]


def evaluate_index(
    search: Search,
    questions: QuestionSet,
    *,
    modes: Iterable[str] = MODES,
    doc_id: Callable[[Any], str],
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Every mode's scores, ranking with `search` (one asker's view: the read facade's search,
    or an index's for a throwaway corpus)."""
    results = {}
    for mode in modes:
        rankings = {}
        for qid, text in questions.queries.items():
            rankings[qid] = rank_documents(search, text, mode=mode, doc_id=doc_id)
            if progress:
                progress(1)
        results[mode] = score(rankings, questions)
    return results


def evaluate_corpus(
    folder: Path,
    *,
    embedder,
    split: str = "test",
    limit: int | None = None,
    modes: Iterable[str] = MODES,
    ingest_progress=None,
    query_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Ingest the corpus into a throwaway home and score every mode."""
    from memex.access.policyfile import parse_policy
    from memex.api.wiring import Memex
    from memex.config import Paths

    questions = load_questions(folder, split=split, limit=limit)
    policy = parse_policy(EVAL_POLICY, origin="memex-eval")
    with tempfile.TemporaryDirectory(prefix="memex-eval-") as home:
        with Memex(Paths(Path(home)), policy=policy, embedder=embedder, writable=True) as memex:
            report = memex.ingest([str(folder.resolve())], progress=ingest_progress)
            evaluator = policy.principal("evaluator")
            results = evaluate_index(
                lambda query, k, mode: memex.index.search(query, principal=evaluator, k=k, mode=mode),
                questions,
                modes=modes,
                doc_id=lambda hit: hit.source_id.removeprefix("beir:"),
                progress=query_progress,
            )
    return {
        "dataset": str(folder),
        "split": split,
        "queries": len(questions.queries),
        "documents": len(report.indexed),
        "chunks": report.chunks_added,
        "ingest_seconds": round(report.seconds, 1),
        "failed": len(report.failures),
        "modes": results,
    }


def _natural(value: str) -> tuple:
    return (0, int(value), "") if value.isdigit() else (1, 0, value)
