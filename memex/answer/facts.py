"""The checkable things in a text: numbers, amounts, dates, times, e-mail addresses and proper
names, each normalised so that two ways of writing one fact compare equal ("25" and
"twenty-five", "160,000 EUR" and "€160k", "2026-03-12" and "12 March 2026"). Pure functions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from memex.answer.timeparse import MONTH_NAMES

MONTHS = {name: i for i, names in enumerate(MONTH_NAMES, start=1) for name in names}
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_SCALE = {
    "k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "millions": 1e6,
    "bn": 1e9, "b": 1e9, "billion": 1e9, "hundred": 1e2,
}  # fmt: skip
_CURRENCY = r"(?:€|\$|£|¥|₹|EUR|USD|GBP|CHF|NOK|SEK|DKK|JPY|CAD|AUD)"
_CURRENCY_WORD = r"(?:euros?|dollars?|pounds?|francs?|kroner|krona|kronor|yen)"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WORD_NUMBER = (
    r"(?:"
    + "|".join(sorted(_TENS, key=len, reverse=True))
    + r")(?:[- ](?:"
    + "|".join(k for k in _UNITS if _UNITS[k] < 10 and k != "zero")
    + r"))?|"
    + "|".join(sorted((k for k in _UNITS if k != "one"), key=len, reverse=True))
)

_DATE = re.compile(
    rf"\b(?P<iso>(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})(?:-(?P<id>\d{{1,2}}))?)\b"
    rf"|\b(?P<dmy>(?P<dd>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+(?P<dm>{_MONTH})(?:,?\s+(?P<dy>\d{{4}}))?)\b"
    rf"|\b(?P<mdy>(?P<mm>{_MONTH})\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<my>\d{{4}}))?)\b"
    rf"|\b(?P<my2>(?P<mm2>{_MONTH}),?\s+(?P<yy2>\d{{4}}))\b"
    rf"|\b(?P<slash>(?P<sd>\d{{1,2}})[/.](?P<sm>\d{{1,2}})[/.](?P<sy>\d{{4}}))\b",
    re.IGNORECASE,
)
_TIME = re.compile(r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::[0-5]\d)?\s*(?P<ampm>[ap]\.?m\.?)?", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_AMOUNT = re.compile(
    rf"(?P<pre>{_CURRENCY})\s?(?P<n1>{_NUM})(?:\s?(?P<s1>k|m|mn|bn|thousand|million|billion)\b)?"
    rf"|(?P<n2>{_NUM})(?:\s?(?P<s2>k|m|mn|bn|thousand|million|billion)\b)?\s?(?P<post>{_CURRENCY}|{_CURRENCY_WORD})\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    rf"(?<![\w.])(?P<n>{_NUM})(?:\s?(?P<s>k|m|bn|thousand|million|billion)\b)?(?P<pct>\s?(?:%|percent\b|per cent\b))?(?![\w@])"
    rf"|(?<![\w.])(?P<o>\d+)(?:st|nd|rd|th)\b"
    rf"|\b(?P<w>{_WORD_NUMBER})\b(?:\s(?P<ws>hundred|thousand|million|billion)\b)?",
    re.IGNORECASE,
)
# Citation markers and references to the numbered sources are not facts: [1], [1, 2], source 2.
_CITATION = re.compile(
    r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]|\bsources?\s+\d+(?:\s*(?:,|and|&)\s*\d+)*", re.IGNORECASE
)


@dataclass(frozen=True)
class Fact:
    kind: str  # number | amount | date | time | email | name
    text: str  # as written
    start: int
    end: int
    value: object  # float, (year, month, day) with None for missing parts, "hh:mm", folded string


def fold(text: str) -> str:
    """Case- and accent-insensitive form: "Luís Gonçalves" -> "luis goncalves"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _number(text: str, scale: str | None) -> float:
    value = float(text.replace(",", ""))
    return value * _SCALE.get((scale or "").lower(), 1.0)


def _word_number(text: str) -> float:
    parts = re.split(r"[- ]", text.lower())
    return float(sum(_TENS.get(p, 0) + _UNITS.get(p, 0) for p in parts))


def _month(text: str) -> int:
    return MONTHS[text.lower().rstrip(".")]


def find_facts(text: str) -> list[Fact]:
    """Every checkable fact in `text`, without overlaps (dates before amounts before numbers),
    citation markers like [1] excluded."""
    taken = [False] * len(text)
    out: list[Fact] = []

    def claim(start: int, end: int) -> bool:
        if any(taken[start:end]):
            return False
        for i in range(start, end):
            taken[i] = True
        return True

    for match in _CITATION.finditer(text):
        claim(match.start(), match.end())
    for match in _EMAIL.finditer(text):
        if claim(match.start(), match.end()):
            out.append(Fact("email", match.group(0), match.start(), match.end(), match.group(0).lower()))
    for match in _DATE.finditer(text):
        value = _date_value(match)
        if value is not None and claim(match.start(), match.end()):
            out.append(Fact("date", match.group(0), match.start(), match.end(), value))
    for match in _TIME.finditer(text):
        hour, minute = int(match["h"]), int(match["m"])
        ampm = (match["ampm"] or "").lower().replace(".", "")
        if ampm == "pm" and hour < 12:
            hour += 12
        if ampm == "am" and hour == 12:
            hour = 0
        if claim(match.start(), match.end()):
            out.append(Fact("time", match.group(0), match.start(), match.end(), f"{hour:02d}:{minute:02d}"))
    for match in _AMOUNT.finditer(text):
        number, scale = (match["n1"], match["s1"]) if match["n1"] else (match["n2"], match["s2"])
        if claim(match.start(), match.end()):
            out.append(Fact("amount", match.group(0), match.start(), match.end(), _number(number, scale)))
    for match in _NUMBER.finditer(text):
        if match["n"]:
            value = _number(match["n"], match["s"])
        elif match["o"]:
            value = float(match["o"])
        else:
            value = _word_number(match["w"]) * _SCALE.get((match["ws"] or "").lower(), 1.0)
        if claim(match.start(), match.end()):
            out.append(Fact("number", match.group(0), match.start(), match.end(), value))
    for start, end in _names(text):
        if claim(start, end):
            out.append(Fact("name", text[start:end], start, end, fold(text[start:end])))
    out.sort(key=lambda f: f.start)
    return out


def _date_value(match: re.Match[str]) -> tuple[int | None, int | None, int | None] | None:
    if match["iso"]:
        year, month = int(match["iy"]), int(match["im"])
        day = int(match["id"]) if match["id"] else None
    elif match["dmy"]:
        year = int(match["dy"]) if match["dy"] else None
        month, day = _month(match["dm"]), int(match["dd"])
    elif match["mdy"]:
        year = int(match["my"]) if match["my"] else None
        month, day = _month(match["mm"]), int(match["md"])
    elif match["my2"]:
        year, month, day = int(match["yy2"]), _month(match["mm2"]), None
    else:
        year, month, day = int(match["sy"]), int(match["sm"]), int(match["sd"])
    if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
        return None
    return (year, month, day)


# Capitalised words that start sentences or name no one.
_NOT_NAMES = {
    "i", "a", "an", "the", "this", "that", "these", "those", "it", "its", "they", "he", "she", "we",
    "you", "your", "our", "my", "his", "her", "their", "yes", "no", "not", "according", "based",
    "source", "sources", "however", "also", "note", "answer", "question", "in", "on", "at", "for",
    "from", "to", "by", "with", "as", "if", "and", "or", "but", "so", "there", "here", "what",
    "who", "when", "where", "which", "how", "why", "each", "every", "all", "some", "any", "none",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today",
    "tomorrow", "yesterday", "mr", "mrs", "ms", "dr", "is", "are", "was", "were", "be", "do",
    "does", "did", "has", "have", "had", "can", "will", "would", "should", "may", "might", "must",
    "unfortunately", "sorry", "please", "thank", "thanks", "hello", "hi", "dear", "ok", "okay",
    "after", "before", "during", "since", "until", "about", "because", "then", "than", "both",
    "employees", "employee", "staff", "everyone", "nobody", "one", "two", "first", "last",
}  # fmt: skip
_CONNECTORS = {
    "de",
    "da",
    "do",
    "dos",
    "das",
    "van",
    "von",
    "der",
    "den",
    "del",
    "della",
    "la",
    "le",
    "du",
    "di",
}
_TOKEN = re.compile(r"[^\W\d_][\w'’\-]*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?:;]\s*$|^\s*$|\n\s*$|[-*•]\s*$|\)\s*$")


def _names(text: str) -> list[tuple[int, int]]:
    """Runs of capitalised words that are not sentence starters, months or common words."""
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        words = list(run)
        while words and _plain(words[0].group(0)) in _NOT_NAMES | _CONNECTORS:
            words.pop(0)
        while words and _plain(words[-1].group(0)) in _CONNECTORS:
            words.pop()
        if words:
            first = words[0]
            at_start = _SENTENCE_END.search(text[: first.start()][-3:] or "") is not None
            if len(words) > 1 or not at_start:
                spans.append((first.start(), words[-1].end()))
        run.clear()

    for match in _TOKEN.finditer(text):
        word = match.group(0)
        gap = text[run[-1].end() : match.start()] if run else ""
        capital = word[0].isupper() and not (word.isupper() and len(word) <= 4)
        lower = _plain(word)
        if run and (gap.strip() or "\n" in gap):
            close()
        if capital and lower not in MONTHS:
            run.append(match)
        elif run and lower in _CONNECTORS:
            run.append(match)
        else:
            close()
    close()
    return spans


def _plain(word: str) -> str:
    return re.sub(r"['’]s$", "", fold(word))


def words_of(text: str) -> set[str]:
    return {_plain(m.group(0)) for m in _TOKEN.finditer(text)}
