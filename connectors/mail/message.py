"""One RFC 822 / MIME message, read with Python's email package (policy.default) into Content:
the envelope, the body as text (text/plain, else text/html made readable), attachments and
attached messages, and notes on what cannot be read (encrypted parts).

Parsing runs in the sandboxed parser workers; whatever a bad message does wrong becomes a
ParseError with a reason, or is left out of an otherwise readable message.
"""

from __future__ import annotations

import mimetypes
import re
import tempfile
from dataclasses import replace
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

from connectors.mail.content import (
    MAX_ATTACHMENTS,
    MAX_BODY_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_NESTING,
    Attachment,
    Content,
    content_elements,
    has_substance,
)
from connectors.mail.headers import decode_bytes, decode_words, read_envelope
from connectors.mail.outlook import read_msg
from connectors.mail.text import html_to_text
from memex.documents import Element
from memex.errors import ParseError

SIGNATURES = {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
ENCRYPTED = {"application/pgp-encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"}
BODY_TYPES = {"text/plain", "text/html", "text/enriched"}
_PGP_BLOCK = re.compile(r"-----BEGIN PGP MESSAGE-----.*?(-----END PGP MESSAGE-----|\Z)", re.S)


# --- entry points (picklable: module-level functions taking paths and numbers) ------------


def parse_message_file(path: str, skip_first_line: bool = False) -> list[Element]:
    """A file holding one message (.eml, a Maildir file, an IMAP cache file; .emlx with its
    byte-count line)."""
    raw = _read(Path(path))
    if skip_first_line:
        raw = _emlx_message(raw)
    return message_elements(raw)


def parse_message_bytes(raw: bytes, fallback_date: str | None = None) -> list[Element]:
    date = datetime.fromisoformat(fallback_date) if fallback_date else None
    return message_elements(raw, fallback_date=date)


def message_elements(raw: bytes, *, fallback_date: datetime | None = None) -> list[Element]:
    content = read_message(raw)
    if not has_substance(content):
        raise ParseError("no mail headers (From, To, Subject, Date, Message-ID): this is not a mail message")
    if content.envelope.date is None and fallback_date is not None:
        content.envelope = replace(content.envelope, date=fallback_date)  # an mbox From_ line's date
    return content_elements(content)


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_MESSAGE_BYTES:
            raise ParseError(
                f"the message is {size // (1024 * 1024)} MB; memex reads messages up to "
                f"{MAX_MESSAGE_BYTES // (1024 * 1024)} MB"
            )
        return path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from None


def _emlx_message(raw: bytes) -> bytes:
    """Apple Mail's .emlx: a line with the message's length, the message, then a property list."""
    first, _, rest = raw.partition(b"\n")
    try:
        length = int(first.strip())
    except ValueError:
        raise ParseError("not an .emlx file: the first line is not the message's length") from None
    return rest[:length]


# --- reading MIME ------------------------------------------------------------------------


def read_message(raw: bytes, *, fallback_date: datetime | None = None, depth: int = 0) -> Content:
    raw = normalise_encoding(raw)
    if not raw.strip():
        raise ParseError("the message is empty")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ParseError(f"the message is larger than {MAX_MESSAGE_BYTES // (1024 * 1024)} MB")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        return read_parsed(msg, fallback_date=fallback_date, depth=depth)
    except RecursionError:
        raise ParseError("the message's MIME structure is nested too deeply to read") from None


def read_parsed(msg: Message, *, fallback_date: datetime | None = None, depth: int = 0) -> Content:
    content = Content(envelope=read_envelope(msg, fallback_date=fallback_date))
    _collect(msg, content, depth, nesting=0)
    if len(content.body) > MAX_BODY_CHARS:
        content.body = content.body[:MAX_BODY_CHARS]
        content.notes.append(f"only the first {MAX_BODY_CHARS:,} characters of the text are indexed")
    if len(content.attachments) > MAX_ATTACHMENTS:
        content.notes.append(f"only the first {MAX_ATTACHMENTS} attachments are indexed")
        del content.attachments[MAX_ATTACHMENTS:]
    return content


def normalise_encoding(raw: bytes) -> bytes:
    """A message saved as UTF-16 (some Windows tools do) or with a byte order mark, as bytes the
    MIME parser reads."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif raw[:64].count(b"\x00") > 16:
        # Without a byte order mark: ASCII headers put their zero bytes first in big-endian.
        head = raw[:64]
        encoding = "utf-16-be" if head[0::2].count(0) > head[1::2].count(0) else "utf-16-le"
    else:
        return raw
    try:
        return raw.decode(encoding).encode("utf-8")
    except UnicodeDecodeError:
        return raw


def _collect(part: Message, content: Content, depth: int, nesting: int) -> None:
    if nesting > 50:
        content.notes.append("parts nested too deeply were left out")
        return
    ctype = part.get_content_type()
    if part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        if ctype == "multipart/alternative":
            chosen = _choose_alternative(children)
            if chosen is not None:
                _collect(chosen, content, depth, nesting + 1)
            for child in children:  # a meeting invitation's details are not in its text part
                if child is not chosen and child.get_content_type() == "text/calendar":
                    name = _filename(child) or "invitation.ics"
                    content.attachments.append(Attachment(name, "text/calendar", data=_payload(child)))
            return
        if ctype == "multipart/encrypted":
            content.notes.append("the message is encrypted; memex cannot read its text")
            return
        if ctype == "multipart/signed":
            children = children[:1]
        for child in children:
            _collect(child, content, depth, nesting + 1)
        return
    if ctype.startswith("multipart/"):
        # A multipart whose boundary never appears: the parser keeps its text as one string.
        text = part_text(part)
        if text.strip():
            content.body = f"{content.body}\n\n{text}" if content.body else text
        return
    if ctype in ("message/rfc822", "message/global"):
        _attach_message(part, content, depth)
        return
    if ctype in SIGNATURES:
        return
    if ctype in ENCRYPTED:
        smime = str(part.get_param("smime-type") or "").lower()
        if smime == "signed-data":
            content.notes.append("the text is inside an S/MIME signature memex cannot unpack")
        elif "encrypted" not in " ".join(content.notes):
            content.notes.append("the message is encrypted; memex cannot read its text")
        return
    filename = _filename(part)
    disposition = part.get_content_disposition()
    if ctype in BODY_TYPES and (disposition == "inline" or (disposition is None and not filename)):
        text = part_text(part)
        if ctype == "text/html":
            text = html_to_text(text)
        if "-----BEGIN PGP MESSAGE-----" in text:
            text = _PGP_BLOCK.sub("", text)
            content.notes.append("the message is encrypted; memex cannot read its text")
        if text.strip():
            content.body = f"{content.body}\n\n{text}" if content.body else text
        return
    data = _payload(part)
    if not data and not filename:
        return
    name = filename or _name_for(ctype, len(content.attachments) + 1)
    if name.lower().endswith((".eml", ".msg")) and depth < MAX_NESTING:
        try:
            nested = read_message(data, depth=depth + 1) if name.lower().endswith(".eml") else _outlook(data)
        except ParseError:
            nested = None
        if nested is not None:
            content.attachments.append(Attachment(name, "message/rfc822", message=nested))
            return
    content.attachments.append(Attachment(name, ctype, data=data))


def _outlook(data: bytes) -> Content:
    with tempfile.TemporaryDirectory(prefix="memex-attachment-") as folder:
        path = Path(folder) / "attached.msg"
        path.write_bytes(data)
        return read_msg(path)


def _choose_alternative(children: list[Message]) -> Message | None:
    """text/plain when it says something, else the richest alternative memex can read."""
    for child in children:
        if child.get_content_type() == "text/plain" and part_text(child).strip():
            return child
    for child in reversed(children):
        ctype = child.get_content_type()
        if ctype in BODY_TYPES or child.is_multipart() or ctype in ENCRYPTED:
            return child
    return children[-1] if children else None


def _attach_message(part: Message, content: Content, depth: int) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return
    if depth >= MAX_NESTING:
        content.notes.append("messages attached deeper than this are not indexed")
        return
    nested = read_parsed(inner, depth=depth + 1)
    name = _filename(part) or f"{nested.envelope.subject or 'message'}.eml"
    content.attachments.append(Attachment(name, "message/rfc822", message=nested))


def part_text(part: Message) -> str:
    """A text part's content in its declared charset, or UTF-8, or the best guess."""
    data = _payload(part)
    try:
        charset = part.get_content_charset()
    except Exception:  # a malformed Content-Type parameter
        charset = None
    return decode_bytes(data, charset).replace("\r\n", "\n").replace("\x00", "")


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: take the bytes as they are
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    return data or b""


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # malformed RFC 2231 parameters
        name = ""
    name = decode_words(str(name))
    name = Path(name.replace("\\", "/")).name.strip()  # never a path
    return "".join(ch for ch in name if ch.isprintable())[:200]


def _name_for(ctype: str, n: int) -> str:
    suffix = mimetypes.guess_extension(ctype) or ".bin"
    return f"part-{n}{suffix}"
