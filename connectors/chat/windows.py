"""Conversation windows: consecutive messages of one channel (or one thread) within a time gap,
bounded in length. Each window is one SourceDocument whose elements are its lines.

Boundaries depend only on the messages before them: a window closes when the next message comes
more than `gap` seconds later, or would take it past `max_messages` or `max_chars`. So a newer
export of the same conversation cuts every earlier window exactly as before, and only the last
window (the one still open) and new windows change. A window is keyed by its conversation and
its first message, never by the export's path: re-ingesting a newer export adds only what is new.

The fingerprint covers what the window shows (title, citation and lines) and nothing about who
may read it, so a membership change relabels the window in place without re-embedding it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from connectors.chat.model import Conversation, Message, Problem, snippet
from memex.documents import Element, SourceDocument
from memex.documents import failing_document as documents_failing

GAP_SECONDS = 2 * 3600
MAX_MESSAGES = 40
MAX_CHARS = 3000


@dataclass(frozen=True)
class Limits:
    gap: float = GAP_SECONDS  # seconds of silence that close a window (threads ignore it)
    max_messages: int = MAX_MESSAGES
    max_chars: int = MAX_CHARS

    @classmethod
    def from_options(cls, options: dict) -> Limits:
        def number(name: str, default: float) -> float:
            value = options.get(name, default)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"option {name}={value!r} is not a number") from None
            if number <= 0:
                raise ValueError(f"option {name}={value!r} must be positive")
            return number

        return cls(
            gap=number("window_gap_minutes", GAP_SECONDS / 60) * 60,
            max_messages=int(number("window_messages", MAX_MESSAGES)),
            max_chars=int(number("window_chars", MAX_CHARS)),
        )


def cut(messages: list[Message], limits: Limits = Limits(), *, use_gap: bool = True) -> list[list[Message]]:
    """Split time-ordered messages into windows (see the module docstring)."""
    windows: list[list[Message]] = []
    current: list[Message] = []
    size = 0
    for message in messages:
        length = len(message.line()) + 1
        if current and (
            (use_gap and message.ts - current[-1].ts > limits.gap)
            or len(current) >= limits.max_messages
            or size + length > limits.max_chars
        ):
            windows.append(current)
            current, size = [], 0
        current.append(message)
        size += length
    if current:
        windows.append(current)
    return windows


def documents(conversation: Conversation, limits: Limits = Limits()) -> Iterator[SourceDocument]:
    """The windows of a conversation (channel first, then each thread), the files its messages
    carry that are in the export, and one failing document per problem met while reading it."""
    channel = [m for m in conversation.messages if m.thread is None]
    by_id = {m.id: m for m in channel}
    threads: dict[str, list[Message]] = {}
    for message in conversation.messages:
        if message.thread is not None:
            threads.setdefault(message.thread, []).append(message)
    used_uris: set[str] = set()
    for window in cut(channel, limits):
        yield _window_document(conversation, window, None, None, used_uris)
    for thread_id, replies in threads.items():
        parent = by_id.get(thread_id)  # None when the thread started before the export
        messages = ([parent] if parent else []) + replies
        for window in cut(messages, limits, use_gap=False):
            yield _window_document(conversation, window, thread_id, parent or replies[0], used_uris)
    files: set[str] = set()
    for message in conversation.messages:
        for attachment in message.attachments:
            if attachment.locate is not None and attachment.key not in files:  # first shared
                files.add(attachment.key)
                yield _attachment_document(conversation, message, attachment)
    for problem in conversation.problems:
        yield problem_document(conversation, problem)


def _window_document(
    conversation: Conversation,
    window: list[Message],
    thread_id: str | None,
    parent: Message | None,
    used_uris: set[str],
) -> SourceDocument:
    """A window of the channel (thread_id None) or of a thread (`parent` is its first message,
    or the first reply the export has)."""
    first, last = window[0], window[-1]
    lines = [m.line() for m in window]
    if thread_id is None or parent is None:
        source_id = f"{conversation.platform}:{conversation.key}:{first.id}"
        uri = _unique(f"{conversation.uri}/{first.clock:%Y-%m-%dT%H:%M}", used_uris)
        label = conversation.label
    else:
        source_id = f"{conversation.platform}:{conversation.key}:thread:{thread_id}:{first.id}"
        uri = _unique(
            f"{conversation.uri}/{first.clock:%Y-%m-%dT%H:%M}?thread={parent.clock:%Y-%m-%dT%H:%M}",
            used_uris,
        )
        starter = f"{parent.author}: {parent.text}" if parent.author else parent.text
        label = f"{conversation.label} thread «{snippet(starter)}»"
    # The title (in every chunk's context line) names where and when the window starts, not
    # when it ends: a window that grows in a newer export keeps its earlier chunks as they were.
    title = f"{label}, {first.clock:%Y-%m-%d %H:%M}"
    participants = list(dict.fromkeys(m.author for m in window if m.author and not m.system))
    metadata = {
        "timestamp": first.ts,
        "last_timestamp": last.ts,
        "first_message": first.clock.isoformat(timespec="seconds"),
        "last_message": last.clock.isoformat(timespec="seconds"),
        "platform": conversation.platform,
        "workspace": conversation.workspace,
        "channel": conversation.channel,
        "kind": conversation.kind,
        "participants": participants,
        "messages": len(window),
        "message_ids": [first.id, last.id],
    }
    if conversation.zone:
        metadata["timezone"] = conversation.zone
    if thread_id is not None:
        metadata["thread"] = thread_id
    if conversation.members:
        metadata["members"] = list(conversation.members)
    digest = hashlib.sha256("\n".join([title, uri, *lines]).encode("utf-8", "surrogatepass")).hexdigest()
    return SourceDocument(
        source_id=source_id,
        uri=uri,
        title=title,
        connector="chat",
        attributes=conversation.attributes(),
        parse=partial(_elements, tuple(lines)),
        acl=conversation.acl,
        fingerprint=f"chat:{digest}",
        metadata=metadata,
        isolated=False,  # already parsed: the lines are plain strings
    )


def _elements(lines: tuple[str, ...]) -> list[Element]:
    return [Element(text=line) for line in lines]


def _attachment_document(conversation: Conversation, message: Message, attachment) -> SourceDocument:
    assert attachment.locate is not None
    parse, fingerprint = attachment.locate()
    who = f" by {message.author}" if message.author else ""
    return SourceDocument(
        source_id=f"{conversation.platform}:{conversation.key}:file:{attachment.key}",
        uri=f"{conversation.uri}/{message.clock:%Y-%m-%dT%H:%M}/{attachment.name}",
        title=f"{attachment.name} (shared in {conversation.label}{who}, {message.clock:%Y-%m-%d})",
        connector="chat",
        attributes=conversation.attributes(),
        parse=parse,
        acl=conversation.acl,
        fingerprint=fingerprint,
        metadata={
            "timestamp": message.ts,
            "platform": conversation.platform,
            "workspace": conversation.workspace,
            "channel": conversation.channel,
            "kind": conversation.kind,
            "attachment": attachment.name,
            "shared_by": message.author,
        },
    )


def problem_document(conversation: Conversation, problem: Problem) -> SourceDocument:
    """A document that fails with the problem's reason, so that ingest reports it and goes on.
    It carries the conversation's attributes, so the policy's rules for it apply."""
    return failing_document(
        source_id=f"{conversation.platform}:{conversation.key}:problem:{problem.where}",
        uri=problem.uri or f"{conversation.uri}/{problem.where}",
        attributes=conversation.attributes(),
        reason=problem.reason,
        acl=conversation.acl,
    )


def failing_document(
    *, source_id: str, uri: str, attributes: dict, reason: str, acl: frozenset[str] | None = None
) -> SourceDocument:
    """A chat problem (memex.documents.failing_document), fingerprinted by its reason so that a
    problem reported once is not reported again until it changes."""
    return documents_failing(
        source_id=source_id,
        uri=uri,
        connector="chat",
        attributes=attributes,
        reason=reason,
        acl=acl,
        fingerprint="problem:" + hashlib.sha256(reason.encode()).hexdigest(),
    )


def _unique(uri: str, used: set[str]) -> str:
    """Two windows that start in the same minute (a burst cut by the length bound) get distinct
    citations: the second gets "~2", and so on."""
    candidate, n = uri, 1
    while candidate in used:
        n += 1
        candidate = f"{uri}~{n}"
    used.add(candidate)
    return candidate
