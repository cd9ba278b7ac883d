"""Discord exports made by DiscordChatExporter (JSON): {"guild", "channel", "messages"}, one file
per channel or thread. With `--media`, attachments are saved beside it (in "<file>.json_Files/")
and their URLs are relative paths: such files are read by the document parsers.

Authors are shown by nickname (else name); replies say whom they answer; edits, reactions,
stickers, embeds and attachment names are kept; calls, pins, joins and renames become system
lines. A message exported twice (overlapping exports) counts once. Server channels have the
kind "channel" (the export does not say who could read them); DMs "dm"; group DMs "group".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from connectors.chat.archive import Export, head, json_keys, load_json, read_capped
from connectors.chat.base import ChatConnector
from connectors.chat.model import (
    CHANNEL,
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

KINDS = {"DirectTextChat": DM, "DirectGroupTextChat": GROUP}
MESSAGE_TYPES = {"Default", "Reply", "ThreadStarterMessage"}


def looks_like_discord(data: bytes) -> bool:
    keys = json_keys(data[:16384])
    return (
        data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
        and {"guild", "channel"} <= keys
        and ("messages" in keys or "messageCount" in keys or "dateRange" in keys)
    )


class DiscordConnector(ChatConnector):
    """One DiscordChatExporter JSON file (a channel, a thread, a DM)."""

    name = "discord"

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return path.suffix.lower() == ".json" and looks_like_discord(head(path))

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        """The media folder DiscordChatExporter writes beside an export: its files are read
        through the export's messages, not on their own."""
        if not path.name.endswith(".json_Files"):
            return False
        export = path.with_name(path.name.removesuffix("_Files"))
        return export.is_file() and looks_like_discord(head(export))

    def conversations(self, path: Path) -> Iterator[Conversation | SourceDocument]:
        if path.is_dir():
            return  # a media folder: see claims_folder
        data = load_json(read_capped(path), path.name)
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise ParseError(f"{path.name} has no list of messages: not a DiscordChatExporter export")
        guild = data.get("guild") if isinstance(data.get("guild"), dict) else {}
        channel = data.get("channel") if isinstance(data.get("channel"), dict) else {}
        guild_name = str(guild.get("name") or "Discord")
        name = str(channel.get("name") or path.stem)
        kind = KINDS.get(str(channel.get("type")), CHANNEL)
        label = f"Discord #{name} ({guild_name})" if kind == CHANNEL else f"Discord chat {name}"
        conversation = Conversation(
            platform="discord",
            workspace=guild_name,
            channel=name,
            kind=kind,
            key=f"{guild.get('id') or slug(guild_name)}:{channel.get('id') or slug(name)}",
            label=label,
            uri=f"discord://{uri_part(guild_name)}/#{uri_part(name)}",
            path=path.as_posix(),
        )
        export = Export(path.parent)
        seen: dict[str, Message] = {}
        names: dict[str, str] = {}
        bad = []
        for i, raw in enumerate(data["messages"], start=1):
            if not isinstance(raw, dict):
                bad.append(f"#{i} is not an object")
                continue
            message = _message(raw, names, export)
            if message is None:
                bad.append(f"#{raw.get('id', i)} has no valid timestamp")
            else:
                seen.setdefault(message.id, message)
        conversation.messages = sort_messages(list(seen.values()))
        if bad:
            shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
            conversation.problems.append(Problem("messages", f"{len(bad)} message(s) skipped: {shown}"))
        yield conversation


def _author(raw: dict) -> str:
    author = raw.get("author") if isinstance(raw.get("author"), dict) else {}
    return str(author.get("nickname") or author.get("name") or author.get("id") or "unknown")


def _message(raw: dict, names: dict[str, str], export: Export) -> Message | None:
    try:
        moment = datetime.fromisoformat(str(raw["timestamp"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    ts = moment.timestamp()
    message_id = str(raw.get("id") or f"{ts:.3f}")
    author = _author(raw)
    names[message_id] = author
    content = str(raw.get("content") or "")
    kind = str(raw.get("type") or "Default")
    if kind not in MESSAGE_TYPES:
        text = f"{author} {content[:1].lower()}{content[1:]}" if content else f"{author}: {kind}"
        return Message(ts, utc_clock(ts), "", text, message_id, system=True)
    notes = []
    reference = raw.get("reference")
    if isinstance(reference, dict) and reference.get("messageId"):
        replied = names.get(str(reference["messageId"]))
        notes.append(f"reply to {replied}" if replied else "reply")
    for embed in raw.get("embeds") or []:
        if isinstance(embed, dict) and (embed.get("title") or embed.get("description")):
            notes.append(f"link: {embed.get('title') or str(embed.get('description'))[:150]}")
    for sticker in raw.get("stickers") or []:
        if isinstance(sticker, dict) and sticker.get("name"):
            notes.append(f"sticker: {sticker['name']}")
    attachments = []
    for item in raw.get("attachments") or []:
        if not isinstance(item, dict):
            continue
        url = str(item.get("url") or "")
        file_name = str(item.get("fileName") or url.rsplit("/", 1)[-1] or "file")
        local = unquote(url).replace("\\", "/") if url and "://" not in url else None
        locate = export.locator(local) if local else None
        attachments.append(Attachment(file_name, str(item.get("id") or file_name), locate))
    reactions = tuple(
        (str((r.get("emoji") or {}).get("name") or "?"), int(r.get("count") or 1))
        for r in raw.get("reactions") or []
        if isinstance(r, dict)
    )
    return Message(
        ts=ts,
        clock=utc_clock(ts),
        author=author,
        text=content,
        id=message_id,
        edited=bool(raw.get("timestampEdited")),
        reactions=reactions,
        attachments=tuple(attachments),
        notes=tuple(notes),
    )
