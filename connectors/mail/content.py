"""What a message says, whatever it came from (MIME or Outlook), and how it becomes Elements: a
header block (From, To, Cc, Date, Subject) first, then the message's own text without quoted
replies, then each attachment through the file parsers under the section "attachment NAME", so
citations read "attachment X of message Y". Every Element's section starts with the message's
byline ("from Frank Silva <frank@kestrel.example>, 12 March 2026"), so the sender and the date
travel with every chunk.
"""

from __future__ import annotations

import mimetypes
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from connectors.mail.headers import Address, Envelope
from connectors.mail.text import html_to_text, strip_quoted
from connectors.spoken import MONTHS, spoken_day
from memex.documents import Element
from memex.errors import ParseError

MAX_MESSAGE_BYTES = 200 * 1024 * 1024
MAX_BODY_CHARS = 500_000  # of one message's own text
MAX_ATTACHMENT_CHARS = 1_000_000  # of text from one attachment
MAX_ATTACHMENTS = 100
MAX_NESTING = 3  # messages attached to messages attached to messages
MAX_LISTED_RECIPIENTS = 25
MEDIA_TYPES = {"image", "audio", "video", "font", "model"}
_FORWARD = re.compile(r"^\s*(fwd?|fw|tr|wg|rv|enc|i)\s*:", re.IGNORECASE)


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes = b""
    message: Content | None = None  # an attached message, already read


@dataclass
class Content:
    """What a message says: its envelope, its own text, its attachments, and notes about what
    could not be read (encrypted parts)."""

    envelope: Envelope
    body: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- elements ----------------------------------------------------------------------------


def content_elements(content: Content, *, section: tuple[str, ...] = ()) -> list[Element]:
    env = content.envelope
    here = (*section, byline(env))
    out = [Element(text=header_text(content), section=here)]
    forwarded = bool(_FORWARD.match(env.subject))
    body = strip_quoted(content.body, forwarded=forwarded)
    for paragraph in re.split(r"\n\s*\n", body):
        if paragraph.strip():
            out.append(Element(text=paragraph.strip(), section=here))
    for attachment in content.attachments:
        label = f"attachment {attachment.name}"
        if attachment.message is not None:
            out.append(Element(text=label, kind="title", section=here))
            out.extend(content_elements(attachment.message, section=(*here, label)))
            continue
        parsed = attachment_elements(attachment)
        if parsed:
            out.append(Element(text=label, kind="title", section=here))
            for element in parsed:
                out.append(
                    Element(
                        text=element.text,
                        kind=element.kind,
                        section=(*here, label, *element.section),
                        page=element.page,
                    )
                )
    return out


def header_text(content: Content) -> str:
    env = content.envelope
    lines = []
    for label, people in (("From", env.sender), ("To", env.to), ("Cc", env.cc)):
        if people:
            lines.append(f"{label}: {_people(people)}")
    if env.date is not None:
        lines.append(f"Date: {format_date(env.date)}")
    lines.append(f"Subject: {env.subject or '(no subject)'}")
    if content.attachments:
        lines.append("Attachments: " + ", ".join(a.name for a in content.attachments))
    for note in dict.fromkeys(content.notes):
        lines.append(f"Note: {note}")
    for part in env.unreadable[:MAX_LISTED_RECIPIENTS]:
        lines.append(f"Note: not an address, so it gives no one access ({part})")
    return "\n".join(lines)


def byline(env: Envelope) -> str:
    """Who and when, carried by every chunk of the message (its section)."""
    who = env.sender[0].display() if env.sender else "unknown sender"
    when = f", {env.date.day} {MONTHS[env.date.month - 1]} {env.date.year}" if env.date else ""
    return f"from {who}{when}"


def format_date(date: datetime) -> str:
    """'Thursday 12 March 2026 14:03 +0100': whole words (in English whatever the locale), so
    "March" finds it."""
    return f"{spoken_day(date)} {date:%H:%M %z}".strip()


def _people(people: tuple[Address, ...]) -> str:
    shown = [p.display() for p in people[:MAX_LISTED_RECIPIENTS]]
    more = len(people) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def attachment_elements(attachment: Attachment) -> list[Element]:
    """An attachment's text through the file parsers; [] for what holds no text memex reads."""
    from connectors.fileparse import decode, parse_file

    maintype = attachment.content_type.partition("/")[0]
    suffix = Path(attachment.name).suffix.lower()
    if maintype in MEDIA_TYPES or not attachment.data:
        return []
    html = attachment.content_type == "text/html" or suffix in (".html", ".htm")
    if html or (maintype == "text" and suffix not in _parseable_suffixes()):
        text = decode(attachment.data)
        if html:
            text = html_to_text(text)
        return [
            Element(text=p.strip()) for p in re.split(r"\n\s*\n", text[:MAX_ATTACHMENT_CHARS]) if p.strip()
        ]
    if not suffix:
        suffix = mimetypes.guess_extension(attachment.content_type) or ""
    with tempfile.TemporaryDirectory(prefix="memex-attachment-") as folder:
        path = Path(folder) / f"attachment{suffix}"
        path.write_bytes(attachment.data)
        try:
            elements = parse_file(path)
        except ParseError:
            return []
    out, size = [], 0
    for element in elements:
        size += len(element.text)
        if size > MAX_ATTACHMENT_CHARS:
            break
        out.append(element)
    return out


def _parseable_suffixes() -> set[str]:
    from connectors.fileparse import supported_extensions

    return supported_extensions()


def has_substance(content: Content) -> bool:
    """False for something that is no message at all: none of From, To, Cc, Subject, Date or
    Message-ID (text alone does not make a message)."""
    env = content.envelope
    return bool(env.sender or env.to or env.cc or env.subject or env.message_id or env.date)
