"""Answers checked against their sources, whatever the model: every number, amount, date, time,
e-mail address and proper name the answer states must be found in the sources the model was
given (allowing for how it is written). Unsupported facts are marked; when the direct answer
itself is unsupported, memex says so and quotes the sources instead. Citations of source numbers
the model was not given are removed. Deterministic and independent of the model's honesty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from memex.answer.facts import Fact, find_facts, fold, words_of

UNSUPPORTED_MARK = " [not in the sources]"
MAX_PIECE = 200  # characters of a sentence without an end that are checked and shown at once
_ABSTAIN = re.compile(
    r"\b(?:(?:archives?|sources?|documents?|context|records?|information)\s+(?:provided\s+)?"
    r"(?:do(?:es)?\s+not|don'?t|doesn'?t)\s+(?:say|contain|mention|include|provide|specify|state|"
    r"have|give|show)"
    r"|(?:there\s+is|i\s+(?:could|can)\s*not\s+find|i\s+found)\s+no\s+(?:information|mention|answer|record)"
    r"|no\s+information\s+(?:about|on|regarding)"
    r"|(?:is|are)\s+not\s+(?:mentioned|provided|specified|stated|given|available)\s+in\s+the"
    r"|i\s+(?:do\s+not|don'?t)\s+know"
    r"|(?:cannot|can'?t|unable\s+to)\s+(?:find|determine|answer|tell))",
    re.IGNORECASE,
)
_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")


@dataclass(frozen=True)
class Known:
    """What the sources (and the question, for names) contain, in comparable form."""

    values: frozenset[float]
    dates: frozenset[tuple[int | None, int | None, int | None]]
    times: frozenset[str]
    emails: frozenset[str]
    words: frozenset[str]
    text: str  # folded

    @classmethod
    def of(cls, sources: Sequence[str], question: str = "") -> Known:
        values: set[float] = set()
        dates: set[tuple[int | None, int | None, int | None]] = set()
        times: set[str] = set()
        emails: set[str] = set()
        for text in sources:
            for fact in find_facts(text):
                if fact.kind in ("number", "amount"):
                    values.add(float(fact.value))  # type: ignore[arg-type]
                elif fact.kind == "date":
                    year, month, day = fact.value  # type: ignore[misc]
                    dates.add((year, month, day))
                    values.update(float(v) for v in (year, day) if v is not None)
                elif fact.kind == "time":
                    times.add(str(fact.value))
                elif fact.kind == "email":
                    emails.add(str(fact.value))
        words = set().union(*(words_of(t) for t in [*sources, question])) if sources else words_of(question)
        return cls(
            frozenset(values),
            frozenset(dates),
            frozenset(times),
            frozenset(emails),
            frozenset(words),
            fold(" ".join([*sources, question])),
        )

    def supports(self, fact: Fact) -> bool:
        if fact.kind in ("number", "amount"):
            value = float(fact.value)  # type: ignore[arg-type]
            return any(abs(value - known) <= 1e-9 * max(1.0, abs(known)) for known in self.values)
        if fact.kind == "date":
            year, month, day = fact.value  # type: ignore[misc]
            return any(
                (year is None or y is None or y == year)
                and (month is None or m == month)
                and (day is None or d is None or d == day)
                and not (year is not None and y is None and day is None)
                for y, m, d in self.dates
            ) or (month is None and day is None and year is not None and float(year) in self.values)
        if fact.kind == "time":
            return fact.value in self.times or fact.text.strip() in self.text
        if fact.kind == "email":
            return fact.value in self.emails
        parts = [w for w in words_of(fact.text) if len(w) > 1]
        return all(_word_known(w, self.words) for w in parts)


def _word_known(word: str, known: frozenset[str]) -> bool:
    if word in known:
        return True
    stem = word[:5] if len(word) >= 6 else None
    return stem is not None and any(k.startswith(stem) and abs(len(k) - len(word)) <= 3 for k in known)


@dataclass
class SentenceCheck:
    text: str  # as it will be shown: unsupported facts marked, bad citations removed
    facts: list[Fact]
    unsupported: list[Fact]


@dataclass
class Grounding:
    """The outcome of checking one answer."""

    sentences: list[SentenceCheck] = field(default_factory=list)
    abstained: bool = False
    replaced: bool = False  # the direct answer was unsupported: the sources are quoted instead

    @property
    def claims(self) -> int:
        return sum(len(s.facts) for s in self.sentences)

    @property
    def unsupported(self) -> list[str]:
        return [f.text for s in self.sentences for f in s.unsupported]

    def to_json(self) -> dict[str, object]:
        return {
            "claims": self.claims,
            "unsupported": self.unsupported,
            "abstained": self.abstained,
            "replaced": self.replaced,
        }


class Checker:
    """Checks an answer sentence by sentence, so a streamed answer is checked before each
    sentence is shown. The first sentence that states a fact is the direct answer: if any of its
    facts is unsupported, `fallback` (the sources quoted) replaces the rest of the answer."""

    def __init__(
        self,
        known: Known,
        *,
        sources: int,
        fallback: Callable[[list[Fact]], str],
        abstain_text: str,
        echo_lines: Sequence[str] = (),
        per_source: Sequence[Known] = (),
        answers: Callable[[str, list[Fact]], bool] | None = None,
    ) -> None:
        """`per_source`: what each source holds, to cite the one that supports a direct answer
        the model left uncited. `answers`: whether a sentence states the kind of thing asked for
        (a number for "how many"); with it, sentences before the first fact wait, and a direct
        answer that states no such thing is replaced by `fallback([])`."""
        self.known = known
        self.sources = sources
        self.fallback = fallback
        self.abstain_text = abstain_text
        self.echo = [words_of(line) for line in echo_lines if len(words_of(line)) >= 4]
        self.echo_text = _plain_words(" ".join(echo_lines))
        self.per_source = list(per_source)
        self.answers = answers
        self.result = Grounding()
        self.done = False
        self._answered = False  # a sentence with facts has been shown
        self._held: list[str] = []  # sentences before the direct answer, while it is awaited

    def sentence(self, raw: str) -> str:
        """The text to show for one sentence of the model's answer ('' to show nothing yet)."""
        if self.done:
            return ""
        text = self._fix_citations(raw)
        if not text.strip():
            return ""
        if self._echoes(text):
            return ""
        if not self._answered and _ABSTAIN.search(text):
            self.result.abstained = True
            self.done = True
            return self.abstain_text
        facts = [f for f in find_facts(text) if f.kind != "name" or not _is_source_reference(f.text)]
        unsupported = [f for f in facts if not self.known.supports(f)]
        if not self._answered:
            if not facts:
                if self.answers is None:
                    return text
                self._held.append(text)
                return ""
            self._answered = True
            if unsupported:
                return self._replace(SentenceCheck(text, facts, unsupported), unsupported)
            if self.answers is not None and not self.answers(text, facts):
                return self._replace(SentenceCheck(text, facts, []), [])
            text = self._cite(text, facts)
            self.result.sentences.append(SentenceCheck(text, facts, []))
            held, self._held = self._held, []
            return " ".join([*held, text])
        shown = _mark(text, unsupported)
        self.result.sentences.append(SentenceCheck(shown, facts, unsupported))
        return shown

    def finish(self) -> str:
        """At the end of the answer: what is still to show (held sentences, or the sources
        quoted when no sentence stated what was asked)."""
        if self.done or self._answered:
            return ""
        held, self._held = self._held, []
        if self.answers is not None and held:
            return self._replace(SentenceCheck(" ".join(held), [], []), [])
        return " ".join(held)

    def _replace(self, check: SentenceCheck, unsupported: list[Fact]) -> str:
        self.result.sentences.append(check)
        self.result.replaced = True
        self.done = True
        self._held = []
        return self.fallback(unsupported)

    def _cite(self, text: str, facts: list[Fact]) -> str:
        """The direct answer, with the number of the source that holds all its facts when the
        model cited none."""
        if _MARKER.search(text):
            return text
        for n, known in enumerate(self.per_source, start=1):
            if all(known.supports(f) for f in facts):
                body = text.rstrip()
                end = body[-1] if body and body[-1] in ".!?" else ""
                return f"{body[: len(body) - len(end)]} [{n}]{end}"
        return text

    def _fix_citations(self, text: str) -> str:
        def keep(match: re.Match[str]) -> str:
            numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1).strip())]
            valid = [n for n in numbers if 1 <= n <= self.sources]
            return "[" + ", ".join(map(str, valid)) + "]" if valid else ""

        fixed = _MARKER.sub(keep, text)
        return re.sub(r"[ \t]+([.,;:!?])", r"\1", fixed) if fixed != text else fixed

    def _echoes(self, text: str) -> bool:
        """A sentence of the instructions repeated (the prompt is not an answer)."""
        plain = _plain_words(text)
        if len(plain) >= 12 and plain in self.echo_text:
            return True
        words = words_of(text)
        return len(words) >= 4 and any(len(words & line) >= 0.7 * len(words) for line in self.echo)


def _plain_words(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", fold(_MARKER.sub(" ", text))))


def _is_source_reference(text: str) -> bool:
    return fold(text).startswith(("source", "sources"))


def _mark(text: str, unsupported: list[Fact]) -> str:
    for fact in sorted(unsupported, key=lambda f: -f.start):
        text = text[: fact.end] + UNSUPPORTED_MARK + text[fact.end :]
    return text


class SentenceSplitter:
    """Feeds a checker whole sentences from a stream of pieces."""

    def __init__(self, emit: Callable[[str], None], checker: Checker) -> None:
        self.emit = emit
        self.checker = checker
        self.buffer = ""
        self.shown: list[str] = []

    def feed(self, piece: str) -> None:
        self.buffer += piece
        while not self.checker.done:
            match = _SENTENCE_BREAK.search(self.buffer)
            if match is None or _inside_abbreviation(self.buffer[: match.start()]):
                # A run-on sentence is checked in pieces (at a space), so the answer still streams.
                cut = self.buffer.rfind(" ", 0, MAX_PIECE) if len(self.buffer) > MAX_PIECE else -1
                if cut <= 0:
                    return
                match = re.compile(" ").match(self.buffer, cut)
                assert match is not None
            sentence, self.buffer = self.buffer[: match.start()], self.buffer[match.end() :]
            self._show(sentence, match.group(0))

    def close(self) -> None:
        if self.buffer.strip() and not self.checker.done:
            self._show(self.buffer, "")
        self.buffer = ""
        rest = self.checker.finish().strip()
        if rest:
            self.shown.append(rest)
            self.emit(rest)

    def _show(self, sentence: str, gap: str) -> None:
        """Emit a checked sentence with the space (or line break) after it, so that what
        follows streams on (the output rules release text at a space)."""
        out = self.checker.sentence(sentence).strip()
        if not out:
            return
        text = out + ("\n" if "\n" in gap else " ")
        self.shown.append(text)
        self.emit(text)

    @property
    def text(self) -> str:
        return "".join(self.shown).strip()


def _inside_abbreviation(before: str) -> bool:
    """ "e.g." or "Dr." or a decimal point are not the end of a sentence."""
    tail = before[-6:].lower()
    return bool(re.search(r"(?:\b(?:e\.g|i\.e|etc|dr|mr|mrs|ms|vs|no|st|approx)\.)$", tail))
