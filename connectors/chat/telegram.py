"""Telegram Desktop exports in JSON: result.json of one chat ({"name", "type", "id", "messages"})
or of a full export ({"chats": {"list": [...]}, "left_chats": ...}), alone or in its export folder
(where photos and files it references lie beside it).

Text entities (bold, links, mentions) are joined into plain text; service messages (joined,
created group, calls, pins) become system lines; replies, forwards, edits, polls, stickers,
locations and reactions are noted; files present in the export folder are read by the document
parsers. Times come from `date_unixtime` (shown in the export's `date`, the exporter's local
time, where both are there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath

from connectors.chat.archive import Export, head, json_keys, load_json, read_capped
from connectors.chat.base import ChatConnector
from connectors.chat.model import (
    DM,
    GROUP,
    PRIVATE,
    PUBLIC,
    Attachment,
    Conversation,
    Message,
    Problem,
    naive_epoch,
    slug,
    sort_messages,
    uri_part,
    utc_clock,
)
from memex.documents import SourceDocument
from memex.errors import ParseError

KINDS = {
    "personal_chat": DM,
    "bot_chat": DM,
    "saved_messages": DM,
    "private_group": GROUP,
    "private_supergroup": GROUP,
    "public_supergroup": PUBLIC,
    "public_channel": PUBLIC,
    "private_channel": PRIVATE,
}
MEDIA_FIELDS = ("file", "photo", "thumbnail")
NOT_INCLUDED = "(File not included"
_MESSAGE_TYPE = re.compile(rb'"type"\s*:\s*"(message|service)"')


def looks_like_telegram(data: bytes) -> bool:
    keys = json_keys(data)
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return False
    if b"Here is the data you requested" in data and "chats" in keys:
        return True
    if "messages" not in keys and "chats" not in keys:
        return False
    telegram_keys = {"date_unixtime", "from_id", "text_entities", "actor_id"}
    return (
        bool(_MESSAGE_TYPE.search(data))
        and ("date" in keys or "date_unixtime" in keys)
        and (bool(keys & telegram_keys) or "from" in keys)
    )


class TelegramConnector(ChatConnector):
    """A Telegram Desktop JSON export: result.json, or the export folder holding it."""

    name = "telegram"

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return path.suffix.lower() == ".json" and looks_like_telegram(head(path))

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        result = path / "result.json"
        return result.is_file() and looks_like_telegram(head(result))

    def conversations(self, path: Path) -> Iterator[Conversation | SourceDocument]:
        folder, name = (path, "result.json") if path.is_dir() else (path.parent, path.name)
        # Files beside result.json belong to the export (a folder walk hands the whole export
        # folder here); beside another JSON file they are the folder's own, read as files.
        export = Export(folder) if name == "result.json" else None
        data = load_json(read_capped(folder / name), name)
        if not isinstance(data, dict):
            raise ParseError(f"{name} is not a Telegram export (not a JSON object)")
        chats: list = []
        if isinstance(data.get("chats"), dict):
            for section in ("chats", "left_chats"):
                listing = data.get(section)
                if isinstance(listing, dict) and isinstance(listing.get("list"), list):
                    chats.extend(listing["list"])
        elif isinstance(data.get("messages"), list):
            chats.append(data)
        else:
            raise ParseError(f"{name} has neither 'messages' nor 'chats': not a Telegram export")
        location = (folder / name).as_posix()
        for i, chat in enumerate(chats):
            if not isinstance(chat, dict) or not isinstance(chat.get("messages"), list):
                yield self.broken(Path(f"{location}#chat{i + 1}"), f"chat {i + 1} has no list of messages")
                continue
            if chat["messages"]:
                yield _conversation(chat, export, location, fallback=Path(name).stem)


def _conversation(chat: dict, export: Export | None, location: str, *, fallback: str) -> Conversation:
    name = str(chat.get("name") or ("Saved Messages" if chat.get("type") == "saved_messages" else fallback))
    chat_id = chat.get("id")
    key = str(chat_id) if chat_id is not None else slug(name) or "chat"
    conversation = Conversation(
        platform="telegram",
        workspace="telegram",
        channel=name,
        kind=KINDS.get(str(chat.get("type")), GROUP),
        key=key,
        label=f"Telegram chat {name}",
        uri=f"telegram://{uri_part(name)}",
        path=location,
    )
    authors: dict[str, str] = {}
    bad: list[str] = []
    messages: list[Message] = []
    for i, raw in enumerate(chat["messages"], start=1):
        if not isinstance(raw, dict):
            bad.append(f"#{i} is not an object")
            continue
        message = _message(raw, export, authors)
        if message is None:
            bad.append(f"#{raw.get('id', i)} has no valid date")
        else:
            messages.append(message)
    conversation.messages = sort_messages(messages)
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        conversation.problems.append(Problem("messages", f"{len(bad)} message(s) skipped: {shown}"))
    return conversation


def _when(raw: dict) -> tuple[float, datetime] | None:
    clock = None
    if isinstance(raw.get("date"), str):
        try:
            clock = datetime.fromisoformat(raw["date"]).replace(tzinfo=None)
        except ValueError:
            clock = None
    try:
        ts = float(raw["date_unixtime"])
    except (KeyError, TypeError, ValueError):
        return (naive_epoch(clock), clock) if clock else None
    return ts, clock or utc_clock(ts)


def _message(raw: dict, export: Export | None, authors: dict[str, str]) -> Message | None:
    when = _when(raw)
    if when is None:
        return None
    ts, clock = when
    message_id = str(raw.get("id", f"{ts:.0f}"))
    if raw.get("type") == "service":
        actor = str(raw.get("actor") or raw.get("from") or "")
        return Message(ts, clock, "", _service_text(raw, actor), message_id, system=True)
    author = str(raw.get("from") or raw.get("author") or raw.get("from_id") or "Deleted Account")
    authors[message_id] = author
    notes = []
    if raw.get("forwarded_from"):
        notes.append(f"forwarded from {raw['forwarded_from']}")
    if raw.get("reply_to_message_id") is not None:
        replied = authors.get(str(raw["reply_to_message_id"]))
        notes.append(f"reply to {replied}" if replied else "reply")
    text = entities_text(raw.get("text"))
    extra = _media_text(raw)
    if extra:
        text = f"{text}\n{extra}".strip() if text else extra
    attachments = []
    for field in MEDIA_FIELDS[:2]:
        value = raw.get(field)
        if isinstance(value, str) and value and not value.startswith(NOT_INCLUDED):
            locate = export.locator(value) if export is not None else None
            attachments.append(Attachment(PurePosixPath(value).name, value, locate))
        elif isinstance(value, str) and value.startswith(NOT_INCLUDED):
            what = (
                "photo" if field == "photo" else str(raw.get("file_name") or raw.get("media_type") or "file")
            )
            text = f"{text} [{what.replace('_', ' ')} not included]".strip()
    reactions = tuple(
        (str(r.get("emoji") or r.get("document_id") or "?"), int(r.get("count") or 1))
        for r in raw.get("reactions") or []
        if isinstance(r, dict)
    )
    return Message(
        ts=ts,
        clock=clock,
        author=author,
        text=text,
        id=message_id,
        edited=bool(raw.get("edited") or raw.get("edited_unixtime")),
        reactions=reactions,
        attachments=tuple(attachments),
        notes=tuple(notes),
    )


def entities_text(value: object) -> str:
    """Telegram text: a string, or a list of strings and {"type", "text"} entities. Two
    entities that touch without a space between them (a bold label and a link) get one."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return ""
    out = ""
    previous_entity = False
    for part in value:
        is_entity = isinstance(part, dict)
        text = str(part.get("text", "")) if is_entity else str(part)
        if previous_entity and is_entity and out and text and not out[-1].isspace() and not text[0].isspace():
            out += " "
        out += text
        previous_entity = is_entity
    return out


def _media_text(raw: dict) -> str:
    media = raw.get("media_type")
    if isinstance(raw.get("poll"), dict):
        poll = raw["poll"]
        answers = ", ".join(str(a.get("text", "")) for a in poll.get("answers") or [] if isinstance(a, dict))
        return f"[poll: {poll.get('question', '')} ({answers})]"
    if media == "sticker":
        return f"[sticker {raw.get('sticker_emoji', '')}]".replace(" ]", "]")
    if isinstance(raw.get("contact_information"), dict):
        info = raw["contact_information"]
        return f"[contact: {info.get('first_name', '')} {info.get('last_name', '')}]".replace(" ]", "]")
    if isinstance(raw.get("location_information"), dict):
        info = raw["location_information"]
        return f"[location: {info.get('latitude')}, {info.get('longitude')}]"
    if media in ("voice_message", "video_message", "audio_file", "video_file", "animation"):
        return f"[{media.replace('_', ' ')}]"
    return ""


def _service_text(raw: dict, actor: str) -> str:
    action = str(raw.get("action") or "event").replace("_", " ")
    details = []
    if raw.get("title"):
        details.append(f'"{raw["title"]}"')
    if isinstance(raw.get("members"), list):
        details.append(", ".join(str(m) for m in raw["members"]))
    if raw.get("duration_seconds"):
        details.append(f"{raw['duration_seconds']} s")
    text = entities_text(raw.get("text"))
    if text:
        details.append(text)
    return " ".join([actor or "someone", action, *details]).strip()
