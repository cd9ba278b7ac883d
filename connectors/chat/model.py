"""What every chat export is read into: conversations of messages, whatever the app.

Each reader (slack, whatsapp, telegram, discord, meta) turns an export into `Conversation`s;
`connectors.chat.windows` turns those into documents. Times are kept twice: `ts` (epoch seconds,
for ordering, windowing and date filters) and `clock` (the wall-clock time shown in the lines:
UTC for apps that export epochs, the phone's local time for apps that export local times).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from memex.documents import Element

# A conversation's kind, which policy rules match on (attribute "kind"):
PUBLIC = "public"  # anyone in the workspace may read it (a public Slack channel, a public Telegram channel)
PRIVATE = "private"  # members only (a private Slack channel, a private Telegram channel)
GROUP = "group"  # a group DM or group chat
DM = "dm"  # two people
CHANNEL = "channel"  # a server channel whose audience the export does not say (Discord)
KINDS = (PUBLIC, PRIVATE, GROUP, DM, CHANNEL)


@dataclass(frozen=True)
class Attachment:
    """A file a message carries. `locate` is set when the file itself is in the export: it
    returns (parse, fingerprint) for `connectors.fileparse.parse_file`."""

    name: str
    key: str  # stable within the conversation (a file id, or the path inside the export)
    locate: Callable[[], tuple[Callable[[], list[Element]], str | None]] | None = None


@dataclass
class Message:
    ts: float
    clock: datetime  # naive wall-clock time, shown in the line
    author: str  # display name; "" for a system event whose text names the actor
    text: str
    id: str  # unique within the conversation
    system: bool = False  # a join, a rename, a call: `text` says who did what
    edited: bool = False
    reactions: tuple[tuple[str, int], ...] = ()
    attachments: tuple[Attachment, ...] = ()
    notes: tuple[str, ...] = ()  # "reply to Alice", "forwarded from Bob", "link: title"
    thread: str | None = None  # the thread it replies in (its parent's id); None: the channel itself
    _line: str | None = field(default=None, init=False, repr=False, compare=False)

    def line(self) -> str:
        """The message as one line of a window (computed once; windows are cut by its length):
        [2016-05-03 14:02] Alice Smith: text (edited) [file: a.pdf] (reactions: :+1: 2)"""
        if self._line is None:
            self._line = self._render()
        return self._line

    def _render(self) -> str:
        parts = [f"[{self.clock:%Y-%m-%d %H:%M}]"]
        body = self.text.strip()
        if self.system:
            parts.append(body or "(event)")
        else:
            parts.append(f"{self.author or 'unknown'}:")
            if body:
                parts.append(body)
        if self.edited:
            parts.append("(edited)")
        for note in self.notes:
            parts.append(f"({note})")
        for attachment in self.attachments:
            if attachment.name and attachment.name not in body:
                parts.append(f"[file: {attachment.name}]")
        if self.reactions:
            parts.append("(reactions: " + ", ".join(f"{name} {n}" for name, n in self.reactions) + ")")
        return " ".join(parts)


@dataclass(frozen=True)
class Problem:
    """A part of an export that could not be read (a file, a record): reported, then skipped."""

    where: str  # a path inside the export, or "lines"
    reason: str
    uri: str | None = None  # where the report points (a file's path); else the conversation's URI + where


@dataclass
class Conversation:
    platform: str  # slack, whatsapp, telegram, discord, messenger, instagram
    workspace: str  # policy attribute "workspace"
    channel: str  # policy attribute "channel"
    kind: str  # one of KINDS
    key: str  # stable identity across exports (ids, not names or paths)
    label: str  # what titles call it: "#general", "WhatsApp chat with Alice"
    uri: str  # citation base: "slack://houstondatavis/#general"
    path: str  # policy attribute "path": where the export (part) lies
    messages: list[Message] = field(default_factory=list)
    members: tuple[str, ...] = ()  # names, for private conversations
    acl: frozenset[str] | None = None  # identities of the members, for private conversations
    problems: list[Problem] = field(default_factory=list)
    zone: str = ""  # the time zone of the clocks shown, where the export says ("" = local time)

    def attributes(self) -> dict[str, object]:
        return {
            "connector": "chat",
            "workspace": self.workspace,
            "channel": self.channel,
            "kind": self.kind,
            "path": self.path,
            "field.platform": self.platform,
        }


def utc_clock(ts: float, zone: tzinfo | None = None) -> datetime:
    """The wall-clock time of an epoch in `zone` (UTC by default), without its zone."""
    return datetime.fromtimestamp(ts, zone or UTC).replace(tzinfo=None)


def zone_named(name: object) -> tzinfo | None:
    """A time zone by its IANA name ("Europe/Lisbon"), or None if unknown."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def naive_epoch(clock: datetime) -> float:
    """Epoch seconds of a wall-clock time from an export that gives no zone (read as UTC)."""
    return clock.replace(tzinfo=UTC).timestamp()


def sort_messages(messages: list[Message]) -> list[Message]:
    """In time order; messages with equal times keep the export's order."""
    return sorted(messages, key=lambda m: m.ts)


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")


def uri_part(text: str) -> str:
    """A name as a part of a citation URI: readable, without slashes."""
    return " ".join(text.replace("/", "∕").split()) or "unnamed"


def snippet(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"
