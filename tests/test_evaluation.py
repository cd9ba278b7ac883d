"""`memex eval`: the metrics, and a tiny BEIR folder through the real pipeline."""

from __future__ import annotations

import json
import math

import pytest

from memex.eval.retrieval import evaluate_corpus, load_questions, mrr_at, ndcg_at, recall_at
from memex.models.embeddings import HashingEmbedder


def test_metrics_by_hand():
    relevant = {"a": 1, "c": 1}
    ranked = ["b", "a", "d", "c"]
    assert ndcg_at(ranked, relevant, 10) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(5)) / (1 / math.log2(2) + 1 / math.log2(3))
    )
    assert recall_at(ranked, relevant, 2) == 0.5 and recall_at(ranked, relevant, 10) == 1.0
    assert mrr_at(ranked, relevant, 10) == 0.5
    assert mrr_at(["x"], relevant, 10) == 0.0 and ndcg_at([], relevant, 10) == 0.0


@pytest.fixture
def tiny_beir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Kestrels", "Kestrels hover above fields hunting voles and mice."),
        "d2": ("Herons", "Grey herons stand still in shallow water waiting for fish."),
        "d3": ("Owls", "Barn owls hunt at night using their acute hearing."),
        "d4": ("Swifts", "Swifts spend almost their whole lives flying and even sleep on the wing."),
    }
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, (title, text) in docs.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries = {
        "q1": "which bird hovers hunting voles",
        "q2": "herons waiting for fish",
        "q3": "sleep while flying",
    }
    with (folder / "queries.jsonl").open("w") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n"
    )
    return folder


def test_a_tiny_corpus_is_ingested_and_scored(tiny_beir):
    result = evaluate_corpus(tiny_beir, embedder=HashingEmbedder(256))
    assert (result["queries"], result["documents"], result["failed"]) == (3, 4, 0)
    assert set(result["modes"]) == {"dense", "lexical", "hybrid"}
    assert result["modes"]["lexical"] == {"ndcg@10": 1.0, "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}


def test_questions_without_qrels_are_left_out_and_errors_are_clear(tiny_beir):
    (tiny_beir / "queries.jsonl").open("a").write(json.dumps({"_id": "q9", "text": "unjudged"}) + "\n")
    assert sorted(load_questions(tiny_beir).queries) == ["q1", "q2", "q3"]
    assert list(load_questions(tiny_beir, limit=1).queries) == ["q1"]
    from memex.errors import ConfigError

    with pytest.raises(ConfigError, match="qrels/dev.tsv not found.*splits here: test"):
        load_questions(tiny_beir, split="dev")
