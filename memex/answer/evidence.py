"""Evidence: the sentences (or, for records, the fields) of the cited sources that answer the
question. A sentence scores by its meaning's closeness to the question, the question's words it
shares, whether it holds the kind of thing asked for (a person for "who", a date for "when", a
number for "how many"), and whether it comes from the entity the question names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memex.answer.facts import find_facts, fold, words_of
from memex.documents import Hit

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|\s/\s")
_QUESTION_WORDS = {
    "what", "which", "who", "whom", "whose", "when", "where", "how", "many", "much", "is", "are",
    "was", "were", "do", "does", "did", "the", "a", "an", "of", "to", "in", "on", "for", "and",
    "or", "our", "my", "we", "i", "you", "your", "get", "gets", "there", "be", "by", "at", "with",
    "it", "its", "that", "this", "from", "has", "have", "had", "can", "will", "should", "about",
}  # fmt: skip


@dataclass(frozen=True)
class Evidence:
    n: int  # the citation it comes from
    sentence: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "sentence": self.sentence, "score": round(self.score, 4)}


def asked_kind(question: str) -> str:
    """What kind of thing answers the question: number, date, person, place, email, yesno, other."""
    q = fold(question).strip()
    if re.search(r"\b(e-?mail|email address)\b", q):
        return "email"
    if re.search(
        r"\bhow (many|much|long|old|often|big|large|far)\b|\bwhat (percentage|number|share)\b|\bphone\b", q
    ):
        return "number"
    if re.match(
        r"what (is|was|are|were|'s) (the |our |my |his |her |their |its )?"
        r"((?!(?:in|of|for|about|on|at|with|by|from|to) )[\w'-]+ ){0,3}"
        r"(price|cost|amount|budget|salary|total|revenue|fee|rate|balance|pay)\b",
        q,
    ) or re.search(r"\bworth\W*$", q):
        return "number"
    if re.search(r"^when\b|\bwhat (date|day|time|year|month)\b|\bwhich (date|day|year|month)\b", q):
        return "date"
    if re.search(r"^(who|whom|whose)\b|\bwhich (person|employee|customer|manager|colleague)\b", q):
        return "person"
    if re.search(r"^where\b|\bwhich (city|country|town|office|room)\b|\bwhat (city|country)\b", q):
        return "place"
    if re.match(r"^(is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b", q):
        return "yesno"
    return "other"


_DAY_OR_MONTH = re.compile(
    r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b|\b(?:january|february|march|april|may|june|july|"
    r"august|september|october|november|december)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(
    r"\b(?:at|from|until|by|before|after)\s+(?:\d{1,2}(?:[.:]\d{2})?|one|two|three|four|five|six|seven|eight|"
    r"nine|ten|eleven|twelve|noon|midnight)\b|\b\d{1,2}\s?[ap]\.?m\b|\bnoon\b|\bmidnight\b|o'clock",
    re.IGNORECASE,
)
NEEDS_A_FACT = ("number", "date", "person", "place", "email")


def holds_kind(sentence: str, kind: str, *, besides: str = "") -> bool:
    """Whether `sentence` states the kind of thing asked for (facts also in `besides`, the
    question, do not count: "the Q2 2026 budget" does not answer "what is the Q2 2026 budget")."""
    asked = {(f.kind, str(f.value)) for f in find_facts(besides)} if besides else set()
    facts = [f for f in find_facts(sentence) if (f.kind, str(f.value)) not in asked]
    kinds = {f.kind for f in facts}
    if kind == "number":
        return bool(kinds & {"number", "amount"})
    if kind == "date":
        year = any(f.kind == "number" and 1900 <= float(f.value) <= 2100 for f in facts)  # type: ignore[arg-type]
        spoken = _DAY_OR_MONTH.search(sentence) or _CLOCK.search(sentence)  # "on Tuesdays", "at nine"
        return bool(kinds & {"date", "time"}) or year or bool(spoken)
    if kind in ("person", "place"):
        return "name" in kinds
    if kind == "email":
        return "email" in kinds
    return True


def question_entities(question: str) -> list[str]:
    """The proper names the question mentions ("Steve Johnson"), folded."""
    return [str(f.value) for f in find_facts(question) if f.kind == "name"]


def content_words(question: str) -> set[str]:
    return {_stem(w) for w in words_of(question) if w not in _QUESTION_WORDS and len(w) > 2}


def _stem(word: str) -> str:
    """A crude stem that joins "carried"/"carry", "reports"/"ReportsTo", "hours"/"hour"."""
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    return word[:5]


def best_sentences(question: str, hits: Sequence[Hit], embedder: Any, *, limit: int = 3) -> list[Evidence]:
    """The sentences of the cited chunks that best answer the question."""
    candidates: list[tuple[int, str, bool]] = []
    entities = question_entities(question)
    for n, hit in enumerate(hits, start=1):
        folded = fold(hit.title + "\n" + hit.text)
        names_entity = bool(entities) and any(e in folded for e in entities)
        for sentence in _sentences(_body(hit)):
            candidates.append((n, sentence, names_entity))
    if not candidates:
        return []
    vectors = embedder.embed([question] + [s for _, s, _ in candidates])
    similarity = vectors[1:] @ vectors[0]
    wanted = content_words(question)
    kind = asked_kind(question)
    scored = []
    for (n, sentence, names_entity), sim in zip(candidates, similarity, strict=True):
        words = {_stem(w) for w in words_of(_split_identifiers(sentence))}
        overlap = len(words & wanted) / (len(wanted) or 1)
        score = float(sim) + 0.3 * overlap
        if kind not in ("other", "yesno") and holds_kind(sentence, kind):
            score += 0.15
        if names_entity:
            score += 0.2
        scored.append(Evidence(n=n, sentence=sentence, score=score))
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


def answering_sentence(question: str, evidence: Sequence[Evidence]) -> Evidence | None:
    """The best evidence that could answer the question: it holds the kind of thing asked for
    and shares at least one of the question's content words (or the entity). None if nothing
    does: the archive then has no answer to give."""
    kind = asked_kind(question)
    wanted = content_words(question)
    entities = question_entities(question)
    focus = focus_words(question)
    best: tuple[float, Evidence] | None = None
    for rank, item in enumerate(evidence):
        text = _split_identifiers(item.sentence)
        words = {_stem(w) for w in words_of(text)}
        coverage = len(words & wanted) / (len(wanted) or 1) + sum(e in fold(text) for e in entities)
        if focus and not focus & words:
            continue
        if coverage and (kind in ("other", "yesno") or holds_kind(item.sentence, kind)):
            key = coverage - 0.01 * rank  # the question's words first, then the evidence order
            if best is None or key > best[0]:
                best = (key, item)
    return best[1] if best else None


_FOCUS = re.compile(
    r"^(?:what|which|who|whom|whose|how\s+(?:many|much|long|old|often)|when|where)\s+"
    r"(?:(?:is|are|was|were|did|does|do|will|would|can|could)\s+)?(?:(?:my|our|the|your|a|an|his|her|their)\s+)?"
    r"(?P<focus>[\w'-]+(?:\s+[\w'-]+){0,2})",
    re.IGNORECASE,
)
_GENERIC = {
    "number", "name", "names", "date", "time", "amount", "value", "total", "kind", "type", "days",
    "day", "year", "years", "people", "person", "thing", "things", "one", "ones", "much", "many",
}  # fmt: skip
_STOP = re.compile(
    r"\b(?:for|of|in|on|at|to|do|does|did|is|are|was|were|with|from|by|that|get|gets|have|has)\b.*$", re.I
)


def focus_words(question: str) -> set[str]:
    """The words naming what is asked for ("passport" in "What is my passport number?"): a
    sentence that answers must name it."""
    match = _FOCUS.match(fold(question).strip())
    if not match:
        return set()
    phrase = _STOP.sub("", match["focus"])
    return {
        _stem(w) for w in words_of(phrase) if w not in _GENERIC and w not in _QUESTION_WORDS and len(w) > 2
    }


def _split_identifiers(text: str) -> str:
    """ "ReportsTo: 2" reads as "Reports To: 2"; "job_title" as "job title"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|_", " ", text)


def _body(hit: Hit) -> str:
    first, _, rest = hit.text.partition("\n")
    return rest if rest and hit.title and first.startswith(hit.title) else hit.text


def _sentences(text: str) -> list[str]:
    out = []
    for part in _SENTENCE.split(text):
        part = " ".join(part.split())
        if len(part) >= 6 and len(part.split()) >= 2:
            out.append(part[:400])
    return out
