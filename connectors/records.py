"""Documents for records that are already parsed (an event, a visit, a bookmark, a task, a photo's
tags): their text is built in the connector, so nothing is parsed again in the sandbox; and
stand-ins that fail with a reason, so that ingest reports a bad record and goes on."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from memex.documents import Element, SourceDocument


def record_document(
    *,
    source_id: str,
    uri: str,
    title: str,
    connector: str,
    attributes: Mapping[str, Any],
    elements: Iterable[Element],
    metadata: Mapping[str, Any],
) -> SourceDocument:
    """A record whose text is `elements`. Its fingerprint is a digest of what it shows, so an
    unchanged record costs nothing on the next run, and one whose labels alone changed is
    relabelled without re-embedding."""
    elements = tuple(elements)
    digest = hashlib.sha256()
    for part in (title, uri, *(f"{e.kind}\x00{'/'.join(e.section)}\x00{e.text}" for e in elements)):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x01")
    return SourceDocument(
        source_id=source_id,
        uri=uri,
        title=title,
        connector=connector,
        attributes=dict(attributes),
        parse=partial(_elements, elements),
        fingerprint=f"{connector}:{digest.hexdigest()}",
        metadata=dict(metadata),
        isolated=False,  # already parsed: plain strings
    )


def _elements(elements: tuple[Element, ...]) -> list[Element]:
    return list(elements)


def lines(*pairs: tuple[str, object]) -> list[Element]:
    """ "Label: value" elements for the values that are present."""
    out = []
    for label, value in pairs:
        if value is None or value == "" or value == [] or value == ():
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        out.append(Element(text=f"{label}: {value}" if label else str(value)))
    return out
