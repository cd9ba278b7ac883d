"""WhatsApp chat exports: "WhatsApp Chat with Alice.txt" (Android), "_chat.txt" (iOS), or the
.zip WhatsApp makes when media are included. The same line format is written by some other
apps' exporters (e.g. Signal backups), which are read too.

A line starts a message when it begins with a date and a time in one of the locales' layouts:

    12/09/2020, 23:55 - Alice: text        (Android, day first, 24 h)
    9/12/20, 11:55 PM - Alice: text        (Android, US)
    [12.09.20, 23:55:01] Alice: text       (iOS, German)
    2020-09-12, 23:55 - Alice: text        (year first)
    01/30/2019, 08:49 p. m. - Alice: text  (Spanish 12 h)

Other lines continue the message above. Day/month order is read from the file (a first field
over 12 means day first, a second one month first); when every date fits both, the order under
which dates do not go backwards wins, then month first for the US clock ("11:55 PM") and day
first otherwise. Lines without "Name: " are system messages (group created, member added). Media
placeholders ("<Media omitted>", "image omitted") become "[media omitted]"; files attached in a
.zip export are read by the document parsers. Times are the phone's local time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from connectors.chat.archive import Export, head, head_text, read_capped, zip_names
from connectors.chat.base import ChatConnector
from connectors.chat.model import (
    DM,
    GROUP,
    Attachment,
    Conversation,
    Message,
    Problem,
    naive_epoch,
    slug,
    sort_messages,
    uri_part,
)
from connectors.fileparse import decode
from memex.documents import SourceDocument
from memex.errors import ParseError

HEADER = re.compile(
    r"^\[?(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})\.?,?\s+"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
    r"(?:\s?(?P<ampm>[ap]\.?\s?m\.?))?"
    r"(?:\]\s?|\s[-–]\s)(?P<rest>.*)$",
    re.IGNORECASE,
)
# Marks WhatsApp puts around names and attachments (dropped) and the narrow spaces some locales
# put before AM/PM (made plain spaces).
_ODD = re.compile("[\u200e\u200f\ufeff\u2066-\u2069\u202f\u00a0\u2009]")
MEDIA_OMITTED = {
    "<media omitted>", "<médias omis>", "<medien ausgeschlossen>", "<multimedia omitido>",
    "<media weggelaten>", "<mídia oculta>", "<arquivo de mídia oculto>", "<media omessi>",
    "<medya dahil edilmedi>", "<ملف وسائط محذوف>",
}  # fmt: skip
OMITTED = re.compile(
    r"^(image|video|audio|sticker|gif|document|contact card|photo|voice message) omitted$", re.I
)
ATTACHED_IOS = re.compile(r"<attached: ([^>]+)>")
ATTACHED_ANDROID = re.compile(
    r"^(?P<name>\S.*?\.\w{1,5}) \((?:file attached|datei angehängt|archivo adjunto|fichier joint|"
    r"arquivo anexado|file allegato|bestand bijgevoegd)\)",
    re.IGNORECASE,
)
DELETED = {
    "this message was deleted", "you deleted this message", "diese nachricht wurde gelöscht",
    "du hast diese nachricht gelöscht", "se eliminó este mensaje", "eliminaste este mensaje",
    "ce message a été supprimé", "vous avez supprimé ce message", "mensagem apagada",
}  # fmt: skip
EDITED = re.compile(
    r"\s*<(?:this message was edited|se editó este mensaje\.?|diese nachricht wurde bearbeitet|"
    r"ce message a été modifié|mensagem editada)>\s*$",
    re.IGNORECASE,
)
NAME_PREFIX = re.compile(
    r"^(?:whatsapp chat (?:with|mit|-)|whatsapp-chat (?:met|mit)|chat de whatsapp con|"
    r"discussion whatsapp avec|conversa do whatsapp com|chat whatsapp con)\s*",
    re.IGNORECASE,
)
GENERIC_NAMES = {"_chat", "chat"}
SNIFF_LINES = 50


def looks_like_chat(text: str) -> bool:
    """The first line is a message line, and so are others among the first lines (one line
    alone is enough only in a one-line file)."""
    lines = [line for line in text.splitlines() if line.strip()][:SNIFF_LINES]
    if not lines or not _header(lines[0]):
        return False
    return len(lines) == 1 or sum(1 for line in lines[1:] if _header(line)) >= 1


def _plain(line: str) -> str:
    if not _ODD.search(line):
        return line
    return _ODD.sub(lambda m: "" if m.group(0) in "\u200e\u200f\ufeff\u2066\u2067\u2068\u2069" else " ", line)


def _header(line: str) -> re.Match | None:
    return HEADER.match(_plain(line).strip())


def chat_member(path: Path) -> str | None:
    """The chat file inside a WhatsApp .zip export, if it is one."""
    names = [n for n in zip_names(path) if "/" not in n and n.lower().endswith(".txt")]
    preferred = [n for n in names if n == "_chat.txt" or n.lower().startswith("whatsapp")]
    candidates = preferred or (names if len(names) == 1 else [])
    for name in candidates:
        try:
            with Export(path) as export:
                data = export.read(name)[:8192]
        except (ParseError, OSError):
            return None
        if looks_like_chat(head_text(data)):
            return name
    return None


class WhatsAppConnector(ChatConnector):
    """A WhatsApp chat export (.txt, or .zip with media), recognised by its content."""

    name = "whatsapp"

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        suffix = path.suffix.lower()
        if suffix == ".txt":
            return looks_like_chat(head_text(head(path, 8192)))
        if suffix == ".zip":
            return chat_member(path) is not None
        return False

    def conversations(self, path: Path) -> Iterator[Conversation | SourceDocument]:
        if path.suffix.lower() == ".zip":
            member = chat_member(path)
            if member is None:
                raise ParseError("not a WhatsApp export (no chat .txt in the zip)")
            with Export(path) as export:
                yield read_chat(export.read(member), path, _chat_name(path), export)
        else:
            yield read_chat(read_capped(path), path, _chat_name(path), None)


def _chat_name(path: Path) -> str:
    stem = path.stem
    if stem.lower() in GENERIC_NAMES:
        stem = path.parent.name or stem
    return NAME_PREFIX.sub("", stem).strip() or stem


@dataclass
class _Record:
    lineno: int
    date: str
    time: str
    ampm: str | None
    lines: list[str] = field(default_factory=list)


def read_chat(data: bytes, path: Path, name: str, export: Export | None) -> Conversation:
    """Parse a chat file into a conversation (ParseError if its dates cannot be read at all)."""
    text = decode(data)
    records = _records(text)
    if not records:
        raise ParseError("no message lines found (a line starts with a date and a time)")
    order = date_order([r.date for r in records], us_clock=any(r.ampm in ("AM", "PM") for r in records))
    problems: list[str] = []
    messages: list[Message] = []
    per_minute: dict[str, int] = {}
    for record in records:
        clock = _clock(record, order)
        if clock is None:
            problems.append(f"line {record.lineno}: {record.date} {record.time} is not a valid date")
            continue
        minute = f"{clock:%Y%m%dT%H%M}"
        per_minute[minute] = per_minute.get(minute, 0) + 1
        messages.append(_message(record, clock, f"{minute}-{per_minute[minute]}", export))
    conversation = Conversation(
        platform="whatsapp",
        workspace="whatsapp",
        channel=name,
        kind=DM,
        key="",
        label=f"WhatsApp chat {name}",
        uri=f"whatsapp://{uri_part(name)}",
        path=path.as_posix(),
        messages=sort_messages(messages),
    )
    if not conversation.messages:
        raise ParseError("; ".join(problems[:3]) or "no messages")
    authors = {m.author for m in conversation.messages if m.author}
    created = any(m.system and "created group" in m.text.lower() for m in conversation.messages)
    if len(authors) > 2 or created:
        conversation.kind = GROUP
    first = conversation.messages[0]
    conversation.key = f"{slug(name) or 'chat'}:{first.clock:%Y%m%dT%H%M}"
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        conversation.problems.append(Problem("lines", f"{len(problems)} message(s) skipped: {shown}"))
    return conversation


def _records(text: str) -> list[_Record]:
    records: list[_Record] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _plain(raw)
        match = HEADER.match(line.strip())
        if match:
            record = _Record(lineno, match["date"], match["time"], match["ampm"])
            record.lines.append(match["rest"])
            records.append(record)
        elif records:
            records[-1].lines.append(line)
    return records


def date_order(dates: list[str], *, us_clock: bool) -> str:
    """The order of the dates of one file: "dmy", "mdy" or "ymd" (ParseError if none fits).
    `us_clock`: the times say "AM"/"PM" as the US locale writes them (British, Indian,
    Australian and Spanish exports write "am" or "a. m." and put the day first)."""
    fields = [re.split(r"[./-]", d) for d in dates]
    if all(len(f[0]) == 4 for f in fields):
        return "ymd"
    if any(len(f[0]) == 4 for f in fields):
        raise ParseError(f"dates mix year-first and year-last layouts ({dates[0]!r} ...)")
    first_big = next((d for d, f in zip(dates, fields, strict=True) if int(f[0]) > 12), None)
    second_big = next((d for d, f in zip(dates, fields, strict=True) if int(f[1]) > 12), None)
    if first_big and second_big:
        raise ParseError(
            f"unrecognised date format: {first_big!r} reads only day first and {second_big!r} "
            "only month first"
        )
    if first_big:
        return "dmy"
    if second_big:
        return "mdy"
    backwards = {order: _backwards(fields, order) for order in ("dmy", "mdy")}
    if backwards["dmy"] != backwards["mdy"]:
        return min(backwards, key=backwards.__getitem__)
    return "mdy" if us_clock else "dmy"


def _backwards(fields: list[list[str]], order: str) -> int:
    count, previous = 0, None
    for f in fields:
        day, month = (f[0], f[1]) if order == "dmy" else (f[1], f[0])
        key = (_year(f[2]), int(month), int(day))
        if previous is not None and key < previous:
            count += 1
        previous = key
    return count


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _clock(record: _Record, order: str) -> datetime | None:
    parts = re.split(r"[./-]", record.date)
    if order == "ymd":
        year, month, day = parts
    elif order == "dmy":
        day, month, year = parts
    else:
        month, day, year = parts
    times = [int(t) for t in re.split(r"[:.]", record.time)]
    hour, minute, second = times[0], times[1], times[2] if len(times) > 2 else 0
    if record.ampm:
        if hour > 12:
            return None
        pm = record.ampm.lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
    try:
        return datetime(_year(year), int(month), int(day), hour, minute, second)
    except ValueError:
        return None


def _message(record: _Record, clock: datetime, message_id: str, export: Export | None) -> Message:
    rest = record.lines[0]
    author, sep, body = rest.partition(": ")
    if not sep or not author.strip() or len(author) > 100 or '"' in author or "\n" in author:
        author, body = "", rest
    text = "\n".join([body, *record.lines[1:]]).strip()
    edited = False
    if EDITED.search(text):
        text, edited = EDITED.sub("", text), True
    attachments: list[Attachment] = []
    lowered = text.lower()
    if lowered in MEDIA_OMITTED:
        text = "[media omitted]"
    elif OMITTED.match(text):
        text = f"[{text.lower()}]"
    elif lowered in DELETED:
        text = "[deleted]"
    else:
        for name in ATTACHED_IOS.findall(text):
            attachments.append(_attachment(name.strip(), export))
        text = ATTACHED_IOS.sub("", text).strip()
        first, _, caption = text.partition("\n")
        android = ATTACHED_ANDROID.match(first)
        if android:
            attachments.append(_attachment(android["name"].strip(), export))
            text = caption.strip()
    return Message(
        ts=naive_epoch(clock),
        clock=clock,
        author=author.strip(),
        text=text,
        id=message_id,
        system=not author,
        edited=edited,
        attachments=tuple(attachments),
    )


def _attachment(name: str, export: Export | None) -> Attachment:
    name = PurePosixPath(name).name
    locate = export.locator(name) if export is not None else None
    return Attachment(name=name, key=name, locate=locate)
