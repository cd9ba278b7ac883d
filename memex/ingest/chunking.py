"""Split parsed elements into chunks that keep their document title and section headings.

Each chunk's text starts with a context line ("Title > Section > Subsection") so that both the
embedding and the lexical index see what the text is about, then packs whole elements (split at
sentence boundaries only when one element alone is too long) up to `max_chars`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from memex.documents import Element

MAX_CHARS = 1000
MIN_CHARS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


@dataclass(frozen=True)
class Piece:
    text: str  # context line + body
    body: str
    section: str
    page: int | None


def chunk_elements(
    elements: Iterable[Element],
    *,
    title: str,
    max_chars: int = MAX_CHARS,
    min_chars: int = MIN_CHARS,
) -> list[Piece]:
    pieces: list[Piece] = []
    body: list[str] = []
    size = 0
    section: tuple[str, ...] = ()
    page: int | None = None
    heading_only = False  # the chunk so far is a heading (in its context line) with no text yet

    def flush() -> None:
        nonlocal body, size, heading_only
        text = "\n".join(body).strip()
        if text:
            pieces.append(_piece(title, section, text, page))
        body, size, heading_only = [], 0, False

    def add(text: str) -> None:
        nonlocal size, heading_only
        body.append(text)
        size += len(text) + 1
        heading_only = False

    for element in elements:
        text = _normalise(element.text)
        if not text:
            continue
        is_title = element.kind == "title"
        heading_path = (*element.section, text) if is_title else element.section
        if heading_path != section:
            if size >= min_chars:
                flush()
            if not body and not heading_only:
                section, page = heading_path, element.page
                if is_title:
                    heading_only = True  # shown in the context line, not repeated in the body
                    continue
            elif is_title:
                add(text)  # a short section (or a bare heading) runs on: keep its heading inline
                continue
        elif is_title:
            continue
        if page is None:
            page = element.page
        for part in _split_long(text, max_chars):
            if size and size + len(part) + 1 > max_chars:
                flush()
                section, page = heading_path, element.page
            add(part)
    if heading_only and not body and section:
        body.append(section[-1])  # a document that is only a heading
    flush()
    return pieces


def _piece(title: str, section: tuple[str, ...], body: str, page: int | None) -> Piece:
    trail = [h for h in section if h and h != title]
    context = " > ".join([title, *trail]) if title else " > ".join(trail)
    text = f"{context}\n{body}" if context else body
    return Piece(text=text, body=body, section=" > ".join(trail), page=page)


def _normalise(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line).strip()


def _split_long(text: str, max_chars: int) -> Iterator[str]:
    if len(text) <= max_chars:
        yield text
        return
    current = ""
    for sentence in _SENTENCE_END.split(text):
        for part in _hard_wrap(sentence, max_chars):
            if current and len(current) + 1 + len(part) > max_chars:
                yield current
                current = part
            else:
                current = f"{current} {part}" if current else part
    if current:
        yield current


def _hard_wrap(text: str, max_chars: int) -> Iterator[str]:
    while len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        if cut <= max_chars // 2:
            cut = max_chars
        yield text[:cut].strip()
        text = text[cut:].strip()
    if text:
        yield text
