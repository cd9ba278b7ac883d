"""The retrieval development sets (benchmarks/devsets.py): generated from ../shared/data at run
time in the BEIR layout `memex eval` reads, with every question's answers in the corpus."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from memex.eval.retrieval import load_questions

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
NEEDED = ("email_maildir_notmuch", "chat_slack_export", "sql_chinook", "sql_northwind", "sql_oracle_hr")

pytestmark = pytest.mark.skipif(
    not all((DATA / name).is_dir() for name in NEEDED),
    reason=f"the shared data ({DATA}) is not here: the development sets are drawn from it",
)


def _devsets():
    spec = importlib.util.spec_from_file_location("devsets", ROOT / "benchmarks" / "devsets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("devsets", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["mail", "chat", "records"])
def test_a_development_set_is_a_valid_beir_folder(tmp_path, name):
    folder = _devsets().generate(DATA, tmp_path, [name])[name]
    corpus = _lines(folder / "corpus.jsonl")
    queries = _lines(folder / "queries.jsonl")
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["query-id", "corpus-id", "score"]
    ids = [doc["_id"] for doc in corpus]
    assert len(ids) == len(set(ids)) > 100
    assert all(set(doc) == {"_id", "title", "text"} and doc["text"].strip() for doc in corpus)
    assert {row[0] for row in rows[1:]} == {q["_id"] for q in queries}  # every question has answers
    assert {row[1] for row in rows[1:]} <= set(ids)  # and they are in the corpus
    assert len(queries) >= 100 and len({q["text"] for q in queries}) == len(queries)
    assert len({q["kind"] for q in queries}) >= 2  # a mix of kinds of question
    questions = load_questions(folder)  # what memex eval reads
    assert len(questions.queries) == len(queries)


def test_the_sets_are_the_same_on_every_run(tmp_path):
    devsets = _devsets()
    first = devsets.generate(DATA, tmp_path / "one", ["chat"])["chat"]
    second = devsets.generate(DATA, tmp_path / "two", ["chat"])["chat"]
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_a_held_out_chat_question_is_not_in_the_window_it_asks_about(tmp_path):
    folder = _devsets().generate(DATA, tmp_path, ["chat"])["chat"]
    corpus = {doc["_id"]: doc["text"] for doc in _lines(folder / "corpus.jsonl")}
    questions = load_questions(folder)
    asked = {q: text for q, text in questions.queries.items() if q.startswith("question-")}
    assert len(asked) >= 30
    for qid, text in asked.items():
        (window,) = questions.qrels[qid]
        assert text not in " ".join(corpus[window].split())
