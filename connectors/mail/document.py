"""A message as a SourceDocument: its id (mail:<Message-ID>, the same in every mailbox it sits
in), its access list (sender and recipients) and the attributes policy rules match on."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from connectors.mail.headers import Envelope, header_block
from memex.documents import Element, SourceDocument

CONNECTOR = "mail"

# Headers that mail programs add or rewrite when they store a message (read flags, positions,
# lengths): not part of the message, so left out of its content hash. The same message in an
# mbox, a Maildir and on an IMAP server hashes the same.
VOLATILE_HEADERS = {
    b"status", b"x-status", b"x-keywords", b"x-uid", b"x-mozilla-status", b"x-mozilla-status2",
    b"x-mozilla-keys", b"content-length", b"lines", b"x-imap", b"x-imapbase", b"x-imap-uid",
    b"x-evolution", b"x-evolution-source", b"x-label", b"x-gmail-labels", b"x-gm-thrid",
}  # fmt: skip
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def source_id_for(envelope: Envelope, raw: bytes | None = None) -> str:
    """mail:<Message-ID>, or for a message without one a hash of its content."""
    if envelope.message_id:
        return f"{CONNECTOR}:{envelope.message_id}"
    return f"{CONNECTOR}:sha256:{hashlib.sha256(canonical(raw or b'')).hexdigest()[:32]}"


def message_document(
    envelope: Envelope,
    *,
    source_id: str,
    uri: str,
    folder: str,
    path: str | None,
    fingerprint: str | None,
    read_bytes: Callable[[], bytes],
    parse: Callable[[], list[Element]],
) -> SourceDocument:
    addresses = envelope.addresses()
    domains = sorted({a.rpartition("@")[2] for a in addresses})
    attributes: dict[str, Any] = {
        "connector": CONNECTOR,
        "folder": folder,
        "address": addresses,
        "domain": domains,
    }
    if path is not None:
        attributes["path"] = path
    return SourceDocument(
        source_id=source_id,
        uri=uri,
        title=envelope.subject or "(no subject)",
        connector=CONNECTOR,
        attributes=attributes,
        read_bytes=read_bytes,
        parse=parse,
        acl=frozenset(f"email:{a}" for a in addresses),
        fingerprint=fingerprint,
        metadata=metadata(envelope, folder),
    )


def metadata(envelope: Envelope, folder: str) -> dict[str, Any]:
    """What every chunk of the message carries (never Bcc: recipients see chunks, not headers)."""
    out: dict[str, Any] = {"folder": folder}
    if envelope.date is not None:
        out["timestamp"] = envelope.date.timestamp()
        out["date"] = envelope.date.isoformat()
    if envelope.sender:
        out["from"] = envelope.sender[0].addr
    for key, value in (
        ("message_id", envelope.message_id),
        ("thread_id", envelope.thread_id),
        ("in_reply_to", envelope.parent),
    ):
        if value:
            out[key] = value
    return out


def canonical(raw: bytes) -> bytes:
    """The message as its sender wrote it, for change detection: LF line ends, no volatile
    headers (read flags, lengths), no trailing blank lines."""
    raw = raw.replace(b"\r\n", b"\n")
    head = header_block(raw)
    body = raw[len(head) :]
    kept, skipping = [], False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        match = _FIELD.match(line)
        skipping = bool(match) and match.group(1).lower() in VOLATILE_HEADERS
        if not skipping:
            kept.append(line)
    return (b"\n".join(kept) + body).rstrip(b"\n") + b"\n"
