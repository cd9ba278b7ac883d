"""`memex eval --answers FILE`: answer accuracy on questions with known answers, through the real
`ask` path (retrieval as the asker, the model, the grounding check).

A question set is JSON lines: {"id", "question", "answers": [accepted strings], "source": a part
of the right source's id or path (optional), "kind", "as": a policy user (optional)}. A question
with no accepted answers (or "kind": "none") must be declined. Reported, with the grounding check
on (what people read) and off (the model's own text): accuracy (an accepted answer appears in the
answer), citation accuracy (the right source cited), abstention accuracy (declined when the
archive has no answer), the share of answers that state an unsupported fact as a fact, seconds
per answer and time to the first shown word.
"""

from __future__ import annotations

import json
import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memex.answer.facts import find_facts, fold
from memex.answer.grounding import _ABSTAIN, UNSUPPORTED_MARK, Known
from memex.answer.pipeline import NO_ANSWER, Answer, source_text
from memex.errors import ConfigError

_CITED = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None = None
    kind: str = "other"
    as_user: str | None = None
    required: tuple[str, ...] = ()  # a list question: every one of these must be named

    @property
    def answerable(self) -> bool:
        return bool(self.answers) and self.kind != "none"


def load_answer_set(path: Path) -> list[Question]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the question set {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(
                Question(
                    id=str(row.get("id") or f"q{number}"),
                    question=str(row["question"]),
                    answers=tuple(str(a) for a in row.get("answers") or ()),
                    source=row.get("source") or None,
                    kind=str(row.get("kind") or "other"),
                    as_user=row.get("as") or None,
                    required=tuple(str(a) for a in row.get("all") or ()),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path}:{number}: not a question ({exc}); each line is a JSON object with "
                f'"question" and "answers" (a list, empty for questions the archive cannot answer)'
            ) from None
    if not out:
        raise ConfigError(f"{path} holds no questions")
    return out


def _normal(text: str) -> str:
    return " ".join(fold(text).replace("\u00a0", " ").split())


def _names(text: str, wanted: str) -> bool:
    """`wanted` appears in `text` as whole words, or their plural ("no" is not inside "not";
    "Tuesday" is in "on Tuesdays")."""
    return re.search(rf"(?<!\w){re.escape(_normal(wanted))}(?:s|es)?(?!\w)", _normal(text)) is not None


def contains_answer(text: str, accepted: Sequence[str], required: Sequence[str] = ()) -> bool:
    return any(_names(text, a) for a in accepted if a.strip()) and all(_names(text, r) for r in required)


def declined(text: str) -> bool:
    return not text.strip() or text.strip() == NO_ANSWER or bool(_ABSTAIN.search(text[:300]))


def cited_sources(answer: Answer, text: str) -> list[str]:
    """The sources the answer cites by number, else its first source."""
    numbers = {int(n) for group in _CITED.findall(text) for n in re.split(r"\s*,\s*", group)}
    chosen = [c for c in answer.citations if c.n in numbers] or answer.citations[:1]
    source_ids = {h.chunk_id: h.source_id for h in answer.hits}
    return [f"{c.source}\n{c.title}\n{source_ids.get(c.chunk_id, '')}" for c in chosen]


def unsupported_shown(text: str, answer: Answer) -> int:
    """Facts stated as facts that the sources do not hold (marked ones and the quoted model's
    ones do not count)."""
    if not answer.hits or declined(text):
        return 0
    known = Known.of([source_text(h) for h in answer.hits], answer.question)
    count = 0
    for fact in find_facts(text):
        if text[fact.end : fact.end + len(UNSUPPORTED_MARK)] == UNSUPPORTED_MARK:
            continue
        if not known.supports(fact):
            count += 1
    return count


@dataclass
class Outcome:
    question: Question
    text: str
    raw: str
    seconds: float
    first_word: float | None
    sources: list[str] = field(default_factory=list)
    grounding: dict[str, Any] | None = None
    unsupported_checked: int = 0
    unsupported_raw: int = 0

    def score(self, checked: bool) -> dict[str, Any]:
        text = self.text if checked else self.raw
        q = self.question
        said_no = declined(text)
        right = (
            said_no if not q.answerable else (not said_no and contains_answer(text, q.answers, q.required))
        )
        cited = None
        if q.answerable and q.source:
            cited = any(fold(q.source) in fold(s) for s in self.sources) and not said_no
        return {
            "correct": right,
            "cited": cited,
            "declined": said_no,
            "unsupported": self.unsupported_checked if checked else self.unsupported_raw,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.question.id,
            "question": self.question.question,
            "as": self.question.as_user,
            "expected": list(self.question.answers),
            "answer": self.text,
            "model_text": self.raw,
            "seconds": round(self.seconds, 2),
            "first_word_seconds": None if self.first_word is None else round(self.first_word, 2),
            "check": self.grounding,
            "scored": self.score(True),
            "scored_without_check": self.score(False),
        }


def run_questions(
    questions: Sequence[Question],
    ask: Callable[[Question, Callable[[str], None]], Answer],
    *,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Ask each question (`ask` gets the question and an on_token callback)."""
    out = []
    for question in questions:
        start = time.perf_counter()
        first: list[float] = []

        def on_token(piece: str, first: list[float] = first, start: float = start) -> None:
            if not first and piece.strip():
                first.append(time.perf_counter() - start)

        answer = ask(question, on_token)
        seconds = time.perf_counter() - start
        outcome = Outcome(
            question=question,
            text=answer.text,
            raw=answer.raw_text or answer.text,
            seconds=seconds,
            first_word=first[0] if first else None,
            sources=cited_sources(answer, answer.text),
            grounding=answer.grounding.to_json() if answer.grounding else None,
        )
        outcome.unsupported_checked = unsupported_shown(answer.text, answer)
        outcome.unsupported_raw = unsupported_shown(outcome.raw, answer)
        out.append(outcome)
        if on_done:
            on_done(outcome)
    return out


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    def rate(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    summary: dict[str, Any] = {"questions": len(outcomes)}
    for checked, name in ((True, "checked"), (False, "unchecked")):
        scores = [(o, o.score(checked)) for o in outcomes]
        answerable = [s for o, s in scores if o.question.answerable]
        unanswerable = [s for o, s in scores if not o.question.answerable]
        summary[name] = {
            "accuracy": rate([s["correct"] for _, s in scores]),
            "answerable_accuracy": rate([s["correct"] for s in answerable]),
            "citation_accuracy": rate([s["cited"] for s in answerable if s["cited"] is not None]),
            "abstention_accuracy": rate([s["declined"] for s in unanswerable]),
            "false_declines": rate([s["declined"] for s in answerable]),
            "unsupported_shown_rate": rate([s["unsupported"] > 0 for _, s in scores]),
        }
    seconds = [o.seconds for o in outcomes]
    firsts = [o.first_word for o in outcomes if o.first_word is not None]
    summary["seconds_per_answer"] = {
        "mean": round(statistics.fmean(seconds), 2) if seconds else None,
        "p50": round(statistics.median(seconds), 2) if seconds else None,
    }
    summary["first_word_seconds_p50"] = round(statistics.median(firsts), 2) if firsts else None
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return summary
