"""Outlook .msg files (OLE compound files) through extract-msg, into the same Content as a MIME
message: envelope from the transport headers where the message has them, else from its MAPI
properties; body as plain text (or HTML made readable); attachments, embedded messages too."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from connectors.mail.content import (
    MAX_MESSAGE_BYTES,
    MAX_NESTING,
    Attachment,
    Content,
    content_elements,
)
from connectors.mail.headers import Envelope, addresses, clean_text, message_id, message_ids, read_envelope
from connectors.mail.text import html_to_text
from memex.documents import Element
from memex.errors import ParseError

ENCRYPTED_CLASSES = ("ipm.note.smime", "ipm.note.pgp")


def parse_msg_file(path: str) -> list[Element]:
    content = read_msg(Path(path))
    return content_elements(content)


def read_msg(path: Path, *, with_body: bool = True) -> Content:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise ParseError("the file is empty")
    if size > MAX_MESSAGE_BYTES:
        raise ParseError(f"the message is larger than {MAX_MESSAGE_BYTES // (1024 * 1024)} MB")
    msg = _open(path)
    try:
        return _content(msg, with_body=with_body, depth=0)
    except ParseError:
        raise
    except Exception as exc:  # extract-msg raises many kinds of errors on damaged files
        raise ParseError(f"the Outlook message is damaged: {type(exc).__name__}: {exc}"[:300]) from None
    finally:
        _close(msg)


def msg_envelope(path: Path) -> Envelope:
    """The envelope only (no body, no attachments): for listing a .msg file."""
    return read_msg(path, with_body=False).envelope


def _open(path: Path):
    try:
        import extract_msg
    except ImportError:  # pragma: no cover - a dependency
        raise ParseError("Outlook .msg files need extract-msg: `pip install extract-msg`") from None
    logging.getLogger("extract_msg").setLevel(logging.CRITICAL)
    try:
        return extract_msg.openMsg(str(path), delayAttachments=True)
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise ParseError(f"not a readable Outlook message ({reason})"[:300]) from None


def _close(msg) -> None:
    try:
        msg.close()
    except Exception:  # closing a damaged file may fail too; nothing to do about it
        pass


def _content(msg, *, with_body: bool, depth: int) -> Content:
    content = Content(envelope=_envelope(msg))
    if not with_body:
        return content
    body = _text(getattr(msg, "body", None))
    if not body.strip():
        html = getattr(msg, "htmlBody", None)
        if html:
            body = html_to_text(html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html))
    content.body = body.replace("\r\n", "\n").strip()
    klass = str(getattr(msg, "classType", "") or "").lower()
    if klass.startswith(ENCRYPTED_CLASSES):
        content.notes.append("the message is encrypted; memex cannot read its text")
    for attachment in _attachments(msg):
        name = _attachment_name(attachment, len(content.attachments) + 1)
        mimetype = str(getattr(attachment, "mimetype", "") or "application/octet-stream").lower()
        if mimetype == "application/pgp-encrypted" or name.lower().endswith(".pgp-encrypted"):
            content.notes.append("the message is encrypted; memex cannot read its text")
            continue
        data = getattr(attachment, "data", None)
        if isinstance(data, bytes | bytearray):
            content.attachments.append(Attachment(name, mimetype, data=bytes(data)))
        elif data is not None and hasattr(data, "subject") and depth < MAX_NESTING:
            nested = _content(data, with_body=True, depth=depth + 1)
            subject = nested.envelope.subject or "message"
            content.attachments.append(Attachment(f"{subject}.msg", "message/rfc822", message=nested))
    content.notes = list(dict.fromkeys(content.notes))
    return content


def _envelope(msg) -> Envelope:
    header = getattr(msg, "header", None)
    from_headers = read_envelope(header) if header is not None else Envelope(message_id=None, subject="")
    date = getattr(msg, "date", None) or _creation_time(msg)
    if isinstance(date, datetime) and date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    references = from_headers.references
    return Envelope(
        message_id=from_headers.message_id or message_id(_text(getattr(msg, "messageId", None))),
        subject=clean_text(_text(getattr(msg, "subject", None))) or from_headers.subject,
        sender=addresses(_text(getattr(msg, "sender", None)), sender=True) or from_headers.sender,
        to=addresses(_text(getattr(msg, "to", None))) or from_headers.to,
        cc=addresses(_text(getattr(msg, "cc", None))) or from_headers.cc,
        bcc=addresses(_text(getattr(msg, "bcc", None))) or from_headers.bcc,
        delivered_to=from_headers.delivered_to,
        date=date if isinstance(date, datetime) else from_headers.date,
        in_reply_to=from_headers.in_reply_to
        or next(iter(message_ids(_text(getattr(msg, "inReplyTo", None)))), None),
        references=references,
        unreadable=from_headers.unreadable,
    )


def _creation_time(msg) -> datetime | None:
    """PR_CREATION_TIME: for a message with no sent or delivery time (a draft, a saved copy)."""
    try:
        prop = msg.props.get("30070040")
        value = prop.value if prop is not None else None
    except Exception:  # a damaged property stream
        return None
    return value if isinstance(value, datetime) else None


def _attachments(msg) -> list:
    try:
        return list(msg.attachments)
    except Exception:  # a damaged attachment table: the message without its attachments
        return []


def _attachment_name(attachment, n: int) -> str:
    for attribute in ("longFilename", "shortFilename", "displayName", "name"):
        try:
            value = getattr(attachment, attribute, None)
        except Exception:  # properties of damaged attachments raise on access
            value = None
        if value:
            name = Path(str(value).replace("\\", "/")).name.strip()
            if name:
                return "".join(ch for ch in name if ch.isprintable())[:200]
    return f"attachment-{n}"


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value).replace("\x00", "")
