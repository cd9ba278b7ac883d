"""Answer a question from the chunks the asker may read: retrieve, build the prompt from those
hits only, generate, cite, and pick the evidence sentences that support the answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memex.access import Principal
from memex.documents import Hit
from memex.index import NO_NARROWING, Index, Narrowing
from memex.llm import LanguageModel, Message
from memex.output_rules import SafeStream, clean_answer
from memex.prompting import build_messages
from memex.timeparse import DateRange

NO_ANSWER = "The archives you can read do not contain an answer to that question."
# Below these, a hit is not about the question (all-MiniLM-L6-v2 cosine; see BENCHMARKS.md).
MIN_SIMILARITY = 0.30
MIN_SIMILARITY_WITH_KEYWORDS = 0.18
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Citation:
    n: int
    chunk_id: str
    source: str
    title: str
    section: str
    page: int | None
    labels: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "chunk_id": self.chunk_id,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "page": self.page,
            "labels": list(self.labels),
        }

    def location(self) -> str:
        parts = [self.source]
        if self.section:
            parts.append(self.section)
        if self.page is not None:
            parts.append(f"page {self.page}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Evidence:
    n: int  # the citation it comes from
    sentence: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "sentence": self.sentence, "score": round(self.score, 4)}


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    dates: DateRange | None = None  # the question's time expression, applied as a date filter

    @property
    def answered(self) -> bool:
        return bool(self.citations)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [c.to_json() for c in self.citations],
            "evidence": [e.to_json() for e in self.evidence],
            "dates": self.dates.to_json() if self.dates else None,
        }


def relevant(hits: Sequence[Hit]) -> list[Hit]:
    """Hits that are plausibly about the question (the rest would only mislead a small model)."""
    out = []
    for hit in hits:
        similarity = hit.metadata.get("similarity")
        keywords = hit.metadata.get("bm25") is not None
        if similarity is None:
            if keywords:
                out.append(hit)
        elif similarity >= MIN_SIMILARITY or (keywords and similarity >= MIN_SIMILARITY_WITH_KEYWORDS):
            out.append(hit)
    return out


def answer_question(
    question: str,
    *,
    principal: Principal,
    index: Index,
    model: LanguageModel,
    k: int = 5,
    narrowing: Narrowing = NO_NARROWING,
    max_tokens: int = 256,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    hits = relevant(index.search(question, principal=principal, k=k, narrowing=narrowing))
    if not hits:
        if on_token:
            on_token(NO_ANSWER)
        return Answer(question=question, text=NO_ANSWER)
    messages, used = build_messages(question, hits, model=model, max_tokens=max_tokens)
    citations = [
        Citation(
            n=n,
            chunk_id=hit.chunk_id,
            source=hit.uri,
            title=clean_answer(hit.title),  # a title is the document's: an e-mail subject, a file name
            section=clean_answer(hit.section),
            page=hit.page,
            labels=tuple(sorted(hit.access.labels)),
        )
        for n, hit in enumerate(used, start=1)
    ]
    allowed_urls = {c.source for c in citations}
    pieces: list[str] = []
    streamer = SafeStream(on_token, allowed_urls)
    for piece in model.stream(messages, max_tokens=max_tokens):
        pieces.append(piece)
        streamer.feed(piece)
    streamer.close()
    text = clean_answer("".join(pieces), allowed_urls=allowed_urls).strip() or NO_ANSWER
    evidence = [  # quoted from the sources: shown under the same rules as the answer
        Evidence(e.n, clean_answer(e.sentence, allowed_urls=allowed_urls), e.score)
        for e in best_sentences(question, used, index.embedder)
    ]
    return Answer(question, text, citations, evidence, used, messages)


def best_sentences(question: str, hits: Sequence[Hit], embedder, *, limit: int = 3) -> list[Evidence]:
    """The sentences of the cited chunks closest to the question (extractive support)."""
    candidates: list[tuple[int, str]] = []
    for n, hit in enumerate(hits, start=1):
        for sentence in _sentences(_body(hit)):
            candidates.append((n, sentence))
    if not candidates:
        return []
    vectors = embedder.embed([question] + [s for _, s in candidates])
    similarity = vectors[1:] @ vectors[0]
    question_words = set(_WORD.findall(question.lower()))
    scored = []
    for (n, sentence), sim in zip(candidates, similarity, strict=True):
        words = set(_WORD.findall(sentence.lower()))
        overlap = len(words & question_words) / (len(question_words) or 1)
        scored.append(Evidence(n=n, sentence=sentence, score=float(sim) + 0.2 * overlap))
    scored.sort(key=lambda e: -e.score)
    out, seen = [], set()
    for item in scored:
        if item.sentence in seen:
            continue
        seen.add(item.sentence)
        out.append(item)
        if len(out) == limit:
            break
    return out


def _body(hit: Hit) -> str:
    first, _, rest = hit.text.partition("\n")
    return rest if rest and hit.title and first.startswith(hit.title) else hit.text


def _sentences(text: str) -> list[str]:
    out = []
    for part in _SENTENCE.split(text):
        part = " ".join(part.split())
        if len(part) >= 12 and len(_WORD.findall(part)) >= 3:
            out.append(part[:400])
    return out
