"""BEIR-format corpora (corpus.jsonl, queries.jsonl, qrels/*.tsv): one document per corpus entry.

Used by `memex eval`, and by anyone who ingests such a folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from memex.connector import Connector
from memex.documents import Element, SourceDocument
from memex.errors import ParseError


class BeirConnector(Connector):
    name = "beir"

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        return (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file()

    def load(self) -> Iterator[SourceDocument]:
        folder = Path(self.target)
        corpus = folder / "corpus.jsonl"
        with corpus.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    doc_id = str(record["_id"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise ParseError(f"{corpus}:{number}: not a BEIR corpus record ({exc})") from None
                title = str(record.get("title") or "")
                text = str(record.get("text") or "")
                yield SourceDocument(
                    source_id=f"beir:{doc_id}",
                    uri=f"{corpus.as_posix()}#{doc_id}",
                    title=title or doc_id,
                    connector=self.name,
                    attributes={"connector": self.name, "path": folder.as_posix()},
                    read_bytes=partial(_content, title, text),
                    parse=partial(_elements, text),
                    metadata={"doc_id": doc_id},
                    isolated=False,  # already-parsed JSON text
                )


def _content(title: str, text: str) -> bytes:
    return f"{title}\n{text}".encode()


def _elements(text: str) -> list[Element]:
    if not text.strip():
        raise ParseError("empty corpus entry")
    return [Element(text=text)]
