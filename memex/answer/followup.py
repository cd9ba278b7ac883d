"""Follow-up questions: "who was on call?" after "what did we decide about the Harrier outage?"
is searched as one question that stands on its own.

A question that reads as complete (it names what it is about) is searched as it is. One that
leans on the conversation (a pronoun, "and in 2024?", "what about ...", too few words of its own)
is rewritten: by the model when it gives a short question made of the conversation's and the
question's own words, else by a rule that works with the smallest model: the question keeps its
words and takes the subject of the previous question ("who was on call? (Harrier outage)");
"and in 2024?" and "what about Lisbon?" take the previous question with the new detail.

Only what the asker may still read is ever given: the caller passes the turns it may show.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from memex.answer.timeparse import find_dates
from memex.models.llm import LanguageModel, Message

MAX_TURNS_GIVEN = 4  # the most recent turns the model sees when it rewrites a question
MAX_ANSWER_CHARS = 400
MAX_STANDALONE_CHARS = 300
MAX_SUBJECT_WORDS = 8  # what the rule adds to a follow-up: "who was on call? (Harrier outage)"

# Words in any script: "Atlântico" and "Inês" are words, not "Atl" and "ntico".
_WORD = re.compile(r"[^\W_][\w'’\-]*")
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have how i if in into
    is it its me my of on or our so than that the their them then there these they this those to was
    we were what when where which who whom whose why will with would you your about also any anything
    he him his she her hers us ours mine yours
    else more please tell give show list same one ones other first second last previous before after
    again time times just only really still yes no ok okay thanks thank decide decided happen
    happened say said know think get got make made go went need want use used find much many""".split()
)
_PRONOUNS = re.compile(
    r"\b(it|its|they|them|their|theirs|that|this|those|these|he|him|his|she|her|hers|there|"
    r"the same|the other|the first|the second|the third|the last|the latter|the former|the one)\b",
    re.I,
)
# What the rule gave a follow-up: "who wrote it? (Dev Okafor's review)".
_RULE_SUBJECT = re.compile(r"^(?P<asked>.*?\S)\s*\((?P<subject>[^()]+)\)$", re.S)
_SWAP = re.compile(r"^\s*(?:and|but|also|then|so|what about|how about|and what about|same for)\b[\s,]*", re.I)
# find_dates needs a `now`; which day it is does not matter for "does this name a time".
_NOON = datetime(2000, 1, 1, 12, tzinfo=UTC)
INSTRUCTIONS = (
    "Rewrite the user's last question so that it can be understood without the conversation. "
    "Keep its meaning. Where it refers to something earlier (a person, a project, a place, a "
    "date), name it. Reply with the rewritten question only, on one line."
)


@dataclass(frozen=True)
class Exchange:
    """One earlier turn as the rewrite sees it."""

    question: str
    standalone: str
    answer: str


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in _STOPWORDS and len(w) > 1]


def needs_context(question: str) -> bool:
    """Whether the question leans on the conversation."""
    if _SWAP.match(question):
        return True
    if _PRONOUNS.search(question):
        return True
    return len(content_words(question)) <= 2


def standalone_question(
    question: str, history: Sequence[Exchange], *, model: LanguageModel | None = None
) -> str:
    """The question to search: `question` itself, or rewritten with `history` (oldest first)."""
    question = " ".join(question.split())
    if not history or not needs_context(question):
        return question
    if model is not None:
        rewritten = _by_model(question, history, model)
        if rewritten is not None:
            return rewritten
    return by_rule(question, history[-1].standalone)


def by_rule(question: str, previous: str) -> str:
    """The cheap rewrite. A swap ("and in 2024?", "what about Lisbon?") is the previous question
    with the new detail (its own time expression replaced by the new one); anything else keeps
    its words and names the previous question's subject."""
    asked, subject = _split(previous)
    swap = _SWAP.match(question)
    if swap:
        detail = question[swap.end() :].strip().rstrip("?").strip()
        if not detail:
            return previous
        base = asked.rstrip().rstrip("?")
        if find_dates(detail, _NOON) is not None:
            base, subject = _without_dates(base), _without_dates(subject)
        return f"{base} {detail}?" + (f" ({subject})" if subject else "")
    own = {c.lower() for c in content_words(question)}
    topic = [w for w in _topic(asked, subject) if w.lower() not in own]
    if not topic:
        return question
    return f"{question.rstrip()} ({' '.join(topic[:MAX_SUBJECT_WORDS])})"


def _split(previous: str) -> tuple[str, str]:
    """A searched question as (what was asked, the subject the rule gave it): "who wrote it?
    (Dev Okafor's review)" is ("who wrote it?", "Dev Okafor's review"); any other, (itself, "")."""
    match = _RULE_SUBJECT.match(previous.strip())
    if match is None:
        return previous, ""
    return match["asked"], match["subject"]


def _topic(asked: str, subject: str) -> list[str]:
    """The words a follow-up takes from the previous question: the subject it was given first,
    then its own words, so that a long conversation keeps its subject ("Dev Okafor's review")
    instead of drifting to the words of its follow-ups ("who wrote it?", "how big is it?")."""
    words: dict[str, str] = {}
    for word in content_words(subject) + content_words(asked):
        words.setdefault(word.lower(), word)
    return list(words.values())


def _by_model(question: str, history: Sequence[Exchange], model: LanguageModel) -> str | None:
    turns = list(history)[-MAX_TURNS_GIVEN:]
    while True:
        transcript = "\n".join(
            f"Q: {t.standalone}\nA: {' '.join(t.answer.split())[:MAX_ANSWER_CHARS]}" for t in turns
        )
        prompt = f"Conversation:\n{transcript}\n\nLast question: {question}\nStandalone question:"
        if len(turns) <= 1 or model.count_tokens(prompt) < model.context_tokens // 2:
            break
        turns = turns[1:]  # the oldest go first when the conversation outgrows the context
    messages: list[Message] = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": prompt},
    ]
    try:
        reply = model.complete(messages, max_tokens=64)
    except Exception:  # a rewrite is a help, never a failure: the rule takes over
        return None
    return _checked(reply, question, turns)


def _checked(reply: str, question: str, turns: Sequence[Exchange]) -> str | None:
    """The model's rewrite if it is one short question made of words the conversation or the
    question already holds (a rewrite must not bring in anything new); else None."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if len(lines) != 1:
        return None
    text = re.sub(r"^(standalone question|question|rewritten question)\s*:\s*", "", lines[0], flags=re.I)
    text = text.strip().strip('"').strip()
    if not text.endswith("?") or len(text) > MAX_STANDALONE_CHARS or len(content_words(text)) < 2:
        return None  # not a question (a small model answers instead of rewriting)
    known = {w.lower() for w in _WORD.findall(question)}
    for turn in turns:
        known |= {w.lower() for w in _WORD.findall(f"{turn.question} {turn.standalone} {turn.answer}")}
    new = [w for w in content_words(text) if w.lower() not in known]
    if len(new) > 1:
        return None
    own = {w.lower() for w in content_words(question)}
    words = {w.lower() for w in content_words(text)}
    if own and not own & words:
        return None  # it answers another question
    if words <= own:
        return None  # it took nothing from the conversation: the rule does better
    return text


def _without_dates(text: str) -> str:
    """`text` less its time expressions ("in 2025", "last week"), for a follow-up that names
    another time."""
    pattern = re.compile(
        r"\s*\b(?:in|during|since|before|after|from|for|of)?\s*"
        r"(?:(?:last|this|next|past)\s+(?:week|month|year|quarter)|"
        r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
        r"(?:\s+\d{4})?|\d{4}(?:-\d{2}(?:-\d{2})?)?)\b",
        re.I,
    )
    return pattern.sub("", text).strip()
