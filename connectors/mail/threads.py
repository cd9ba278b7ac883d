"""Threads of a mailbox: messages joined through their References and In-Reply-To headers.

A message's own headers name its thread's first message (the oldest reference), but mailers
trim References in long threads, and a trimmed list names another "first" message. So threads
are the connected components of the reference graph over the whole mailbox (messages and the
ids they refer to, present or not), as notmuch and JWZ's algorithm build them. A thread's id is
the root its earliest message names (its oldest reference, else itself): for an ordinary
thread every message names the same root, so the id does not depend on which messages of the
thread a mailbox happens to hold.

The id goes into each chunk's metadata when the message is indexed; a message already indexed
keeps its id if a later message joins two threads that had looked apart (it is re-read only when
its content changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from connectors.mail.headers import Envelope

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def thread_ids(envelopes: Sequence[Envelope]) -> list[str | None]:
    """The thread id of each envelope (None for a message with no id and no references)."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for envelope in envelopes:
        links = [*envelope.references, *([envelope.in_reply_to] if envelope.in_reply_to else [])]
        own = envelope.message_id
        if own is None and not links:
            continue
        anchor = own or links[0]
        find(anchor)
        for link in links:
            union(anchor, link)
    # Per component: the root named by its earliest message.
    best: dict[str, tuple[datetime, str]] = {}
    for envelope in envelopes:
        anchor = envelope.message_id or next(iter(envelope.references), None) or envelope.in_reply_to
        named = envelope.thread_id
        if anchor is None or named is None:
            continue
        component = find(anchor)
        candidate = (envelope.date or _FAR_FUTURE, named)
        if component not in best or candidate < best[component]:
            best[component] = candidate
    out: list[str | None] = []
    for envelope in envelopes:
        anchor = envelope.message_id or next(iter(envelope.references), None) or envelope.in_reply_to
        out.append(best[find(anchor)][1] if anchor is not None else None)
    return out
