"""Answer a question from the chunks the asker may read: retrieve, build the prompt from those
hits only, generate, check the answer against its sources sentence by sentence before it is
shown (memex.answer.grounding), cite, and pick the evidence sentences that answer the question."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memex.access import Principal
from memex.answer.evidence import (
    NEEDS_A_FACT,
    Evidence,
    answering_sentence,
    asked_kind,
    best_sentences,
    holds_kind,
)
from memex.answer.facts import Fact
from memex.answer.grounding import Checker, Grounding, Known, SentenceSplitter
from memex.answer.output_rules import SafeStream, clean_answer
from memex.answer.prompting import INSTRUCTIONS, build_messages
from memex.answer.timeparse import DateRange
from memex.documents import Hit
from memex.index import NO_NARROWING, Index, Narrowing
from memex.models.llm import LanguageModel, Message

NO_ANSWER = "The archives you can read do not contain an answer to that question."
NOT_SUPPORTED = "The model's answer is not supported by the sources."
# Below these, a hit is not about the question (all-MiniLM-L6-v2 cosine; see BENCHMARKS.md).
MIN_SIMILARITY = 0.30
MIN_SIMILARITY_WITH_KEYWORDS = 0.18

__all__ = [
    "NO_ANSWER",
    "Answer",
    "Citation",
    "Evidence",
    "Prepared",
    "best_sentences",
    "generate",
    "prepare",
    "relevant",
]


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


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    dates: DateRange | None = None  # the question's time expression, applied as a date filter
    dates_note: str | None = None  # said when the dates were not applied (nothing of those dates)
    raw_text: str = ""  # what the model wrote, through the output rules only (for evaluation)
    grounding: Grounding | None = None
    asked: str | None = None  # the question as asked, when a follow-up was searched as `question`
    conversation: str | None = None  # the conversation this answer is a turn of
    turn: int | None = None

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
            "dates_note": self.dates_note,
            "check": self.grounding.to_json() if self.grounding else None,
            **({"asked": self.asked} if self.asked is not None else {}),
            **({"conversation": self.conversation, "turn": self.turn} if self.conversation else {}),
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


def source_text(hit: Hit) -> str:
    """What the answer check reads of a hit: its title, section and text."""
    return f"{hit.title}\n{hit.section}\n{hit.text}"


def within(narrowing: Narrowing, dates: DateRange | None) -> Narrowing:
    """`narrowing` further narrowed to `dates` (both date bounds apply: it only narrows)."""
    if dates is None:
        return narrowing
    low = [d for d in (narrowing.date_from, dates.date_from) if d is not None]
    high = [d for d in (narrowing.date_to, dates.date_to) if d is not None]
    return dataclasses.replace(
        narrowing, date_from=max(low) if low else None, date_to=min(high) if high else None
    )


def retrieve(
    question: str,
    *,
    principal: Principal,
    index: Index,
    k: int,
    narrowing: Narrowing = NO_NARROWING,
    dates: DateRange | None = None,
    mode: str = "hybrid",
    keep: Callable[[Sequence[Hit]], list[Hit]] = list,
) -> tuple[list[Hit], str | None]:
    """The hits for a question, and a note when its dates could not be applied. A time
    expression is a preference, not a wall: passages dated in the range come first, passages
    that mention the range's year (or month) still rank, and when neither exists the search
    runs over all dates (and says so)."""
    if dates is None:
        return keep(index.search(question, principal=principal, k=k, narrowing=narrowing, mode=mode)), None
    in_range = keep(
        index.search(question, principal=principal, k=k, narrowing=within(narrowing, dates), mode=mode)
    )
    everywhere = keep(index.search(question, principal=principal, k=k, narrowing=narrowing, mode=mode))
    mentions = [hit for hit in everywhere if mentions_dates(hit, dates)]
    ranked: dict[str, tuple[int, Hit]] = {}
    for rank, hit in [*enumerate(in_range), *enumerate(mentions)]:
        if hit.chunk_id not in ranked or rank < ranked[hit.chunk_id][0]:
            ranked[hit.chunk_id] = (rank, hit)
    combined = [hit for _, hit in sorted(ranked.values(), key=lambda pair: pair[0])][:k]
    if combined:
        return combined, None
    return everywhere, f"nothing dated {dates.describe()}; searched all dates"


def mentions_dates(hit: Hit, dates: DateRange) -> bool:
    """Whether the passage's text names the range: a year by its number, a calendar month by
    its name and year (or 2024-03). Shorter ranges ("last week") match by date only."""
    if dates.start is None or dates.end is None:
        return False
    text = f"{hit.title}\n{hit.text}"
    days = (dates.end - dates.start).days
    if days >= 365:
        return any(re.search(rf"\b{year}\b", text) for year in range(dates.start.year, dates.end.year))
    if 28 <= days <= 31 and dates.start.day == 1:
        month, year = dates.start.strftime("%B"), dates.start.year
        return bool(
            re.search(rf"\b{month}\b[^\n]{{0,20}}\b{year}\b|\b{year}-{dates.start.month:02d}\b", text)
        )
    return False


def prompt_boundary(key: bytes | None, question: str, hits: Sequence[Hit]) -> str | None:
    """The source tags' boundary token: unpredictable to a document's author (keyed by the
    home's secret), but the same for the same question over the same sources, so every door
    gives the same answer."""
    if not key:
        return None
    message = "\n".join([question, *(h.chunk_id for h in hits)]).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:12]


@dataclass
class Prepared:
    """A question made ready for the model: its retrieved hits (only those the asker may read),
    the prompt, the citations and evidence. Made under the reads' lock; generation needs none."""

    question: str
    kind: str
    used: list[Hit]
    messages: list[Message]
    citations: list[Citation]
    evidence: list[Evidence]
    dates: DateRange | None
    dates_note: str | None


def prepare(
    question: str,
    *,
    principal: Principal,
    index: Index,
    model: LanguageModel,
    k: int = 5,
    narrowing: Narrowing = NO_NARROWING,
    dates: DateRange | None = None,
    max_tokens: int = 256,
    prompt_key: bytes | None = None,
) -> Prepared:
    hits, dates_note = retrieve(
        question, principal=principal, index=index, k=k, narrowing=narrowing, dates=dates, keep=relevant
    )
    if not hits:
        return Prepared(question, "other", [], [], [], [], dates, dates_note)
    boundary = prompt_boundary(prompt_key, question, hits)
    messages, used = build_messages(question, hits, model=model, max_tokens=max_tokens, boundary=boundary)
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
    evidence = [  # quoted from the sources: shown under the same rules as the answer
        Evidence(e.n, clean_answer(e.sentence, allowed_urls=allowed_urls), e.score)
        for e in best_sentences(question, used, index.embedder)
    ]
    return Prepared(question, asked_kind(question), used, messages, citations, evidence, dates, dates_note)


def generate(
    prepared: Prepared,
    *,
    model: LanguageModel,
    max_tokens: int = 256,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """The model's answer to a prepared question, checked against its sources as it streams."""
    question, used, kind = prepared.question, prepared.used, prepared.kind
    if not used:
        if on_token:
            on_token(NO_ANSWER)
        return Answer(question=question, text=NO_ANSWER, dates=prepared.dates, dates_note=prepared.dates_note)
    citations, evidence = prepared.citations, prepared.evidence
    allowed_urls = {c.source for c in citations}

    def quote_sources(unsupported: list[Fact]) -> str:
        """The model's direct answer states what the sources do not hold, or not what was asked:
        quote the sources instead (never the model's unsupported words themselves)."""
        support = answering_sentence(question, evidence)
        if support is None:
            return NO_ANSWER
        quoted = f'The sources say: "{support.sentence}" [{support.n}]'
        return f"{NOT_SUPPORTED} {quoted}" if unsupported else quoted

    checker = Checker(
        # The prompt's own source tags (their random boundary, each citation's place) count as
        # given: a model that repeats a tag has not made up its numbers.
        Known.of([source_text(h) for h in used] + _tag_lines(prepared.messages), question),
        sources=len(used),
        fallback=quote_sources,
        abstain_text=NO_ANSWER,
        echo_lines=INSTRUCTIONS.splitlines(),
        per_source=[Known.of([source_text(h)]) for h in used],
        answers=(lambda text, facts: holds_kind(text, kind, besides=question))
        if kind in NEEDS_A_FACT
        else None,
    )
    streamer = SafeStream(on_token, allowed_urls)
    splitter = SentenceSplitter(streamer.feed, checker)
    pieces: list[str] = []
    generated = model.stream(prepared.messages, max_tokens=max_tokens)
    try:
        for piece in generated:
            pieces.append(piece)
            splitter.feed(piece)
            if checker.done:
                break
    finally:
        close = getattr(generated, "close", None)
        if close is not None:
            close()
    splitter.close()
    streamer.close()
    text = clean_answer(splitter.text, allowed_urls=allowed_urls).strip() or NO_ANSWER
    if text == NO_ANSWER:
        citations, evidence = [], []
    answer = Answer(
        question,
        text,
        list(citations),
        list(evidence),
        used,
        prepared.messages,
        dates=prepared.dates,
        dates_note=prepared.dates_note,
    )
    answer.raw_text = clean_answer("".join(pieces), allowed_urls=allowed_urls).strip()
    answer.grounding = checker.result
    return answer


def _tag_lines(messages: Sequence[Message]) -> list[str]:
    return [
        line
        for message in messages
        for line in message["content"].splitlines()
        if line.startswith(("<source ", "</source "))
    ]
