"""The headers of one message, read the way real archives need: raw 8-bit bytes, RFC 2047 words
in unknown or wrongly declared charsets, obfuscated or broken addresses, and dates in whatever
form the mailer wrote (or none at all).

Everything here is cheap: `read_envelope` looks at the header block only, so a connector can
list a mailbox (ids, subjects, addresses, dates) without parsing bodies.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email._header_value_parser import get_address_list  # the parser of email.headerregistry
from email.errors import NonASCIILocalPartDefect
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any

HEADER_LIMIT = 256 * 1024  # bytes of a message read to find its header block

# Charset names mailers write that Python does not know (or knows as something narrower).
CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "default": "",
    "charset": "",
}


@dataclass(frozen=True)
class Address:
    name: str
    addr: str  # lowercased addr-spec

    def display(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name and self.name != self.addr else self.addr

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2]


@dataclass(frozen=True)
class Envelope:
    """What the headers say about a message."""

    message_id: str | None
    subject: str
    sender: tuple[Address, ...] = ()  # From (several are allowed)
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    # Envelope recipients of this copy (Delivered-To, X-Original-To): who actually got it when
    # the headers do not say (Bcc, mailing lists).
    delivered_to: tuple[str, ...] = ()
    date: datetime | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    # "To: ..." for each address header part that did not parse as a mailbox: it grants nothing.
    unreadable: tuple[str, ...] = ()

    @property
    def parent(self) -> str | None:
        """The message this one replies to."""
        return self.in_reply_to or (self.references[-1] if self.references else None)

    @property
    def thread_id(self) -> str | None:
        """The first message of the thread: the oldest reference (RFC 5322 keeps it when a
        mailer trims References), else the parent, else the message itself."""
        return (self.references[0] if self.references else self.in_reply_to) or self.message_id

    def addresses(self) -> list[str]:
        """Every address of the sender and the recipients, lowercased, once each, in order."""
        seen: dict[str, None] = {}
        for group in (self.sender, self.to, self.cc, self.bcc):
            for address in group:
                seen.setdefault(address.addr, None)
        for addr in self.delivered_to:
            seen.setdefault(addr, None)
        return [a for a in seen if a]

    def to_json(self) -> dict[str, Any]:
        def people(group: tuple[Address, ...]) -> list[list[str]]:
            return [[a.name, a.addr] for a in group]

        return {
            "message_id": self.message_id,
            "subject": self.subject,
            "from": people(self.sender),
            "to": people(self.to),
            "cc": people(self.cc),
            "bcc": people(self.bcc),
            "delivered_to": list(self.delivered_to),
            "date": self.date.isoformat() if self.date else None,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "unreadable": list(self.unreadable),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Envelope:
        def people(key: str) -> tuple[Address, ...]:
            return tuple(Address(name, addr) for name, addr in data.get(key) or ())

        date = data.get("date")
        return cls(
            message_id=data.get("message_id"),
            subject=data.get("subject") or "",
            sender=people("from"),
            to=people("to"),
            cc=people("cc"),
            bcc=people("bcc"),
            delivered_to=tuple(data.get("delivered_to") or ()),
            date=datetime.fromisoformat(date) if date else None,
            in_reply_to=data.get("in_reply_to"),
            references=tuple(data.get("references") or ()),
            unreadable=tuple(data.get("unreadable") or ()),
        )


# --- reading ---------------------------------------------------------------------------


def header_block(raw: bytes) -> bytes:
    """The header block of a message (up to the first empty line), at most HEADER_LIMIT bytes."""
    head = raw[:HEADER_LIMIT]
    for separator in (b"\n\n", b"\r\n\r\n"):
        end = head.find(separator)
        if end >= 0:
            return head[: end + len(separator)]
    return head


def parse_headers(raw: bytes) -> Message:
    return BytesHeaderParser(policy=policy.default).parsebytes(header_block(raw))


def read_envelope(msg: Message, *, fallback_date: datetime | None = None) -> Envelope:
    """The envelope of a parsed message (its headers only are looked at)."""
    date = parse_date(header(msg, "date")) or received_date(msg) or fallback_date
    references = tuple(dict.fromkeys(message_ids(header(msg, "references"))))
    in_reply_to = next(iter(message_ids(header(msg, "in-reply-to"))), None)
    delivered, unreadable = [], []
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        for value in all_headers(msg, name):
            delivered.extend(a.addr for a in addresses(value))
    for name, label in (("from", "From"), ("sender", "Sender"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc")):
        for value in all_headers(msg, name):
            parts = unreadable_addresses(value, sender=name in ("from", "sender"))
            unreadable += [f"{label}: {part}" for part in parts]
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        for value in all_headers(msg, name):
            unreadable += [f"{name.title()}: {part}" for part in unreadable_addresses(value)]
    return Envelope(
        message_id=message_id(header(msg, "message-id")),
        subject=clean_text(decode_words(header(msg, "subject") or "")),
        sender=addresses(header(msg, "from"), sender=True) or addresses(header(msg, "sender"), sender=True),
        to=addresses(", ".join(all_headers(msg, "to"))),
        cc=addresses(", ".join(all_headers(msg, "cc"))),
        bcc=addresses(", ".join(all_headers(msg, "bcc"))),
        delivered_to=tuple(dict.fromkeys(delivered)),
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        unreadable=tuple(dict.fromkeys(unreadable)),
    )


def all_headers(msg: Message, name: str) -> list[str]:
    """Raw values of every `name` header, 8-bit bytes decoded, lines unfolded."""
    name = name.lower()
    out = []
    for key, value in msg.raw_items():
        if key.lower() == name:
            out.append(unfold(fix_8bit(str(value))))
    return out


def header(msg: Message, name: str) -> str | None:
    values = all_headers(msg, name)
    return values[0] if values else None


def unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def fix_8bit(value: str) -> str:
    """Header bytes outside ASCII (surrogate-escaped by the parser): UTF-8 if they are, else the
    best guess, else Windows-1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    return decode_bytes(data, None)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words (=?charset?q?...?=), each in its charset or the best guess."""
    if "=?" not in value:
        return value
    try:
        parts = decode_header(value)
    except Exception:  # a malformed encoded word: show the text as it is
        return value
    out = []
    for text, charset in parts:
        out.append(text if isinstance(text, str) else decode_bytes(text, charset))
    return "".join(out)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text in its declared charset if that decodes cleanly, else UTF-8, else a detector's guess,
    else Windows-1252 (what undeclared or wrongly declared 8-bit mail almost always is), else
    the declared charset with replacements. Never fails."""
    name = normalise_charset(charset)
    if name:
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    guess = _detect(data) if len(data) >= 64 else None
    if guess:
        try:
            return data.decode(guess)
        except (UnicodeDecodeError, LookupError):
            pass
    if not name or name in _SINGLE_BYTE or name.startswith(("iso-8859", "iso8859", "cp125", "windows-")):
        return data.decode("cp1252", errors="replace")
    return data.decode(name, errors="replace")


_SINGLE_BYTE = {"ascii", "us-ascii", "utf-8", "utf8", "latin-1", "latin1", "l1"}


def normalise_charset(charset: str | None) -> str:
    """A charset name Python knows, or "" for none/unknown."""
    if not charset:
        return ""
    name = str(charset).strip().strip("\"'").lower()
    name = CHARSET_ALIASES.get(name, name)
    if not name:
        return ""
    try:
        codecs.lookup(name)
    except LookupError:
        return ""
    return name


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - charset_normalizer comes with requests
        return None
    best = from_bytes(data[:100_000]).best()
    return best.encoding if best is not None else None


def clean_text(value: str) -> str:
    """One line, no control characters."""
    value = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(value.split())


# --- addresses ---------------------------------------------------------------------------

_OBFUSCATED = re.compile(r"^\s*([^\s@<>(),;:\"]+) at ([^\s@<>(),;:\"]+\.[^\s@<>(),;:\"]+)")
_ADDR_SPEC = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def addresses(value: str | None, *, sender: bool = False) -> tuple[Address, ...]:
    """The mailboxes of a From/To/Cc header that parse cleanly: display names decoded, addresses
    lowercased. These become access lists, so nothing is guessed: a mailbox the RFC 5322 parser
    reads only with a defect (`pat@kestrel.example <x@y>`, `"pat@kestrel.example"@elsewhere`,
    `pat at kestrel.example`) is left out, and `unreadable_addresses` says what was. For the
    sender only (`sender=True`), mailing-list archives' "user at example.com" is read as
    user@example.com: whoever writes a From header can name anyone anyway."""
    return _parse_addresses(_deobfuscate(value) if sender else value)[0]


def unreadable_addresses(value: str | None, *, sender: bool = False) -> list[str]:
    """The parts of an address header that are not clean mailboxes (they grant nothing)."""
    return _parse_addresses(_deobfuscate(value) if sender else value)[1]


def _deobfuscate(value: str | None) -> str | None:
    if not value or "@" in value:
        return value
    return _OBFUSCATED.sub(r"\1@\2", value)


def _parse_addresses(value: str | None) -> tuple[tuple[Address, ...], list[str]]:
    if not value or not value.strip():
        return (), []
    try:
        parsed, rest = get_address_list(value)
    except Exception:  # the parser raises on some damaged input (IndexError, HeaderParseError)
        return (), [clean_text(value)[:200]]
    found, unreadable = [], []
    for address in parsed.addresses:
        mailboxes = address.all_mailboxes
        bad = any(not isinstance(d, NonASCIILocalPartDefect) for d in address.all_defects) or not mailboxes
        for mailbox in mailboxes:
            addr = str(getattr(mailbox, "addr_spec", None) or "").lower()
            if bad or not _ADDR_SPEC.fullmatch(addr):
                bad = True
                continue
            # "addr (Name)": the name of a comment, as mail programs show it
            name = str(getattr(mailbox, "display_name", None) or parseaddr(str(address))[0])
            found.append(Address(clean_text(decode_words(name)).strip("\"' "), addr))
        if bad and str(address).strip(" ,"):
            unreadable.append(clean_text(str(address)).strip(" ,")[:200])
    if rest.strip(" ,"):
        unreadable.append(clean_text(rest)[:200])
    return tuple(dict.fromkeys(found)), unreadable


# --- message ids -------------------------------------------------------------------------

_BRACKETED = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str | None) -> list[str]:
    """The <ids> of a References or In-Reply-To header, in order."""
    if not value:
        return []
    ids = [i for i in _BRACKETED.findall(value) if _plausible_id(i)]
    if not ids:
        ids = [t.strip("<>") for t in value.split() if "@" in t and _plausible_id(t.strip("<>"))]
    return ids


def message_id(value: str | None) -> str | None:
    ids = message_ids(value)
    if ids:
        return ids[0]
    token = (value or "").strip().strip("<>").strip()
    return token if " " not in token and _plausible_id(token) else None


def _plausible_id(value: str) -> bool:
    """id-left "@" id-right (RFC 5322). Tools write nonsense here too (git send-email's famous
    "In-Reply-To: <yes>"), which must not join unrelated threads."""
    left, at, right = value.rpartition("@")
    return bool(at and left and right) and len(value) <= 900 and value.isprintable()


# --- dates -------------------------------------------------------------------------------

_RECEIVED_DATE = re.compile(r";\s*([^;]+)$")


def parse_date(value: str | None) -> datetime | None:
    """An aware datetime: RFC 5322 dates (obsolete forms too), ISO 8601, and what a lenient
    parser can make of the rest. A date without a zone ("-0000" or none) is taken as UTC."""
    if not value:
        return None
    value = " ".join(value.split())
    date = None
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    if date is None:
        try:
            date = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    if date is None:
        date = _lenient(value)
    if date is None:
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    if not 1970 <= date.year <= 2200:
        return None
    return date


def _lenient(value: str) -> datetime | None:
    try:
        from dateutil import parser
    except ImportError:  # pragma: no cover - optional: python-dateutil comes with pandas
        return None
    cleaned = re.sub(r"\([^)]*\)", " ", value)
    try:
        # Missing parts default to a year the range check refuses, so "12:00" is not taken as today.
        return parser.parse(cleaned, fuzzy=True, default=datetime(1, 1, 1))
    except (ValueError, OverflowError, TypeError):
        return None


def received_date(msg: Message) -> datetime | None:
    """When the last server received the message: for messages without a usable Date."""
    for value in all_headers(msg, "received"):
        match = _RECEIVED_DATE.search(value)
        if match:
            date = parse_date(match.group(1))
            if date:
                return date
    return None


_FROM_LINE_DATE = re.compile(r"\s((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s.*)$")


def from_line_date(line: str) -> datetime | None:
    """The date of an mbox "From sender date" separator line (asctime form, no zone: UTC)."""
    match = _FROM_LINE_DATE.search(line.strip())
    if not match:
        return None
    try:
        date = datetime.strptime(" ".join(match.group(1).split()[:5]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return date.replace(tzinfo=UTC)
