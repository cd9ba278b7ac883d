"""Facebook Messenger and Instagram message exports ("Download your information", JSON): one
folder per conversation (messages/inbox/<thread>/) holding message_1.json, message_2.json, ...
and the photos, audio and files sent in it. A single message_N.json is read on its own too.

Meta writes UTF-8 text as if each byte were a Latin-1 character ("Ã©" for "é"); that is undone.
The platform is "instagram" when the export's path says so, else "messenger".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from connectors.chat.archive import Export, head, json_keys, load_json, read_capped
from connectors.chat.base import ChatConnector
from connectors.chat.model import (
    DM,
    GROUP,
    Attachment,
    Conversation,
    Message,
    Problem,
    slug,
    sort_messages,
    uri_part,
    utc_clock,
)
from memex.documents import SourceDocument
from memex.errors import ParseError

MEDIA_LISTS = ("photos", "videos", "audio_files", "files", "gifs")
_PART = re.compile(r"^message_(\d+)\.json$")


def looks_like_meta(data: bytes) -> bool:
    keys = json_keys(data)
    return (
        data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
        and "messages" in keys
        and {"sender_name", "timestamp_ms"} <= keys
    )


def fix_text(text: str) -> str:
    """Undo Meta's mojibake: UTF-8 bytes exported as Latin-1 characters."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


class MessengerConnector(ChatConnector):
    """A Messenger or Instagram conversation: its folder, or one message_N.json."""

    name = "messenger"

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return path.suffix.lower() == ".json" and looks_like_meta(head(path))

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        first = path / "message_1.json"
        return first.is_file() and looks_like_meta(head(first))

    def conversations(self, path: Path) -> Iterator[Conversation | SourceDocument]:
        if path.is_dir():
            parts = sorted(
                (int(m.group(1)), p.name)
                for p in path.iterdir()
                if (m := _PART.match(p.name)) and p.is_file()
            )
            folder, names = path, [name for _, name in parts]
            export: Export | None = Export(path)
        else:
            folder, names, export = path.parent, [path.name], None
        platform = "instagram" if "instagram" in path.as_posix().lower() else "messenger"
        yield _conversation(folder, names, export, platform)


def _conversation(folder: Path, names: list[str], export: Export | None, platform: str) -> Conversation:
    problems: list[Problem] = []
    raw_messages: list[dict] = []
    header: dict = {}
    for name in names:
        try:
            data = load_json(read_capped(folder / name), name)
        except ParseError as exc:
            problems.append(Problem(name, str(exc)))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            problems.append(Problem(name, f"{name} has no list of messages"))
            continue
        header = header or data
        raw_messages.extend(m for m in data["messages"] if isinstance(m, dict))
    if not header:
        raise ParseError("; ".join(p.reason for p in problems) or "no messages")
    participants = [
        fix_text(str(p.get("name"))) for p in header.get("participants") or [] if isinstance(p, dict)
    ]
    title = fix_text(str(header.get("title") or ", ".join(participants) or Path(names[0]).stem))
    stem = Path(names[0]).stem
    thread = str(header.get("thread_path") or (folder.name if _PART.match(names[0]) else stem))
    senders = {fix_text(str(m.get("sender_name"))) for m in raw_messages if m.get("sender_name")}
    kind = (
        GROUP if len(set(participants) | senders) > 2 or header.get("thread_type") == "RegularGroup" else DM
    )
    conversation = Conversation(
        platform=platform,
        workspace=platform,
        channel=title,
        kind=kind,
        key=slug(thread) or "chat",
        label=f"{platform.capitalize()} chat {title}",
        uri=f"{platform}://{uri_part(title)}",
        path=(folder / names[0]).as_posix() if export is None else folder.as_posix(),
        problems=problems,
    )
    messages, bad = [], 0
    per_ms: dict[int, int] = {}
    for raw in raw_messages:
        try:
            ms = int(raw["timestamp_ms"])
        except (KeyError, TypeError, ValueError):
            bad += 1
            continue
        per_ms[ms] = per_ms.get(ms, 0) + 1
        messages.append(_message(raw, ms, f"{ms}-{per_ms[ms]}", export))
    if bad:
        problems.append(Problem("messages", f"{bad} message(s) skipped: no valid timestamp_ms"))
    conversation.messages = sort_messages(messages)
    return conversation


def _message(raw: dict, ms: int, message_id: str, export: Export | None) -> Message:
    ts = ms / 1000
    text = fix_text(str(raw.get("content") or ""))
    attachments = []
    for field in MEDIA_LISTS:
        for item in raw.get(field) or []:
            if isinstance(item, dict) and item.get("uri"):
                uri = str(item["uri"])
                local = _inside_thread(uri, export)
                locate = export.locator(local) if export is not None and local else None
                attachments.append(Attachment(PurePosixPath(uri).name, uri, locate))
    notes = []
    if isinstance(raw.get("sticker"), dict):
        notes.append("sticker")
    share = raw.get("share")
    if isinstance(share, dict) and share.get("link") and share["link"] not in text:
        notes.append(f"link: {share['link']}")
    if raw.get("is_unsent"):
        text = text or "[unsent]"
    reactions: dict[str, int] = {}
    for reaction in raw.get("reactions") or []:
        if isinstance(reaction, dict) and reaction.get("reaction"):
            emoji = fix_text(str(reaction["reaction"]))
            reactions[emoji] = reactions.get(emoji, 0) + 1
    return Message(
        ts=ts,
        clock=utc_clock(ts),
        author=fix_text(str(raw.get("sender_name") or "unknown")),
        text=text,
        id=message_id,
        reactions=tuple(reactions.items()),
        attachments=tuple(attachments),
        notes=tuple(notes),
    )


def _inside_thread(uri: str, export: Export | None) -> str | None:
    """A URI of the export ("messages/inbox/alice_x/files/a.docx") as a path inside the thread's
    folder ("files/a.docx"), or None."""
    if export is None:
        return None
    marker = f"/{export.path.name}/"
    padded = "/" + uri.lstrip("/")
    return padded.split(marker, 1)[1] if marker in padded else None
