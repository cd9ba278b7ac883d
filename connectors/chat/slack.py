"""Slack workspace exports: a folder (or a .zip of one) with users.json, channels.json and, where
the export has them, groups.json (private channels), mpims.json (group DMs) and dms.json, plus one
folder per conversation holding one JSON file per day.

- User ids become names (users.json; a message's own user_profile or username where the user is
  not listed); mentions, channel links and URLs in the text are written out.
- Thread replies (thread_ts) are grouped with their parent in windows of their own.
- Edits show "(edited)", reactions are summarised, file names are indexed, and files that are in
  the export (slackdump's `<channel>/attachments/<id>-<name>` or `__uploads/<id>/<name>`) are
  read by the document parsers.
- Private channels, group DMs and DMs carry an access list of their members' e-mail addresses
  (`email:<address>` from users.json). A policy user reads them when one of their `emails` (or
  their groups' `emails`) is a member's Slack address; a member without an address in users.json
  gives no one access. Public channels carry no list: the policy's source rules label them.
- A conversation folder that is in none of the listings is not indexed (its audience is unknown).
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from connectors.chat.archive import Export, load_json, zip_names, zip_prefix
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
    slug,
    snippet,
    sort_messages,
    uri_part,
    utc_clock,
    zone_named,
)
from connectors.chat.windows import failing_document
from memex.documents import SourceDocument
from memex.errors import ParseError

LISTINGS = (("channels.json", PUBLIC), ("groups.json", PRIVATE), ("mpims.json", GROUP), ("dms.json", DM))
# Events whose text already says who did what ("<@U1> has joined the channel").
SYSTEM_SUBTYPES = frozenset(
    f"{scope}_{event}"
    for scope in ("channel", "group")
    for event in (
        "join", "leave", "purpose", "topic", "name", "archive", "unarchive",
        "convert_to_private", "convert_to_public", "posting_permissions",
    )
) | {
    "bot_add", "bot_remove", "bot_enable", "bot_disable", "pinned_item", "unpinned_item",
    "reminder_add", "reminder_delete", "file_comment", "file_mention", "sh_room_created",
    "huddle_thread", "tombstone", "joiner_notification", "slackbot_response",
}  # fmt: skip
KNOWN_SUBTYPES = SYSTEM_SUBTYPES | {
    "file_share",
    "bot_message",
    "me_message",
    "thread_broadcast",
    "message_changed",
}
NOT_WORKSPACES = {"files", "api", "app", "hooks", "a", "slack-files", "downloads", "status", "www", "edgeapi"}
_MARKUP = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_BARE_USER = re.compile(r"\b[UW][A-Z0-9]{6,12}\b")
_DOMAIN = re.compile(r"https?://([a-z0-9-]+)\.slack\.com/", re.I)


def is_slack_folder(path: Path) -> bool:
    return (path / "users.json").is_file() and any((path / name).is_file() for name, _ in LISTINGS)


def is_slack_zip(path: Path) -> bool:
    if path.suffix.lower() != ".zip":
        return False
    names = zip_names(path)
    prefix = zip_prefix(names, "users.json")
    return prefix is not None and any(f"{prefix}{name}" in names for name, _ in LISTINGS)


class SlackConnector(ChatConnector):
    """A Slack workspace export: its folder, or the .zip Slack hands out."""

    name = "slack"

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        return is_slack_folder(path)

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return is_slack_zip(path)

    def conversations(self, path: Path) -> Iterator[Conversation | SourceDocument]:
        if not (is_slack_folder(path) if path.is_dir() else is_slack_zip(path)):
            raise ParseError("not a Slack export (no users.json beside channels.json, groups.json, ...)")
        with Export(path, root_marker="users.json") as export:
            yield from _Reader(export, self.options).read()


@dataclass(frozen=True)
class User:
    id: str
    name: str  # display name
    handle: str
    email: str | None
    team: str | None = None
    zone: str | None = None


@dataclass
class _Listed:
    kind: str
    info: dict
    folder: str
    listing: str = ""


STRICTNESS = {PUBLIC: 0, PRIVATE: 1, GROUP: 2, DM: 3}


def _stricter(first: _Listed, second: _Listed) -> _Listed:
    """One folder named by two listing entries: the stricter reading. A restricted kind wins over
    public; two restricted entries keep only the members both name."""
    strict, other = sorted((first, second), key=lambda e: STRICTNESS[e.kind], reverse=True)
    info = dict(strict.info)
    if other.kind != PUBLIC:
        mine, theirs = info.get("members"), other.info.get("members")
        if isinstance(mine, list) and isinstance(theirs, list):
            info["members"] = [m for m in mine if m in theirs]
        else:
            info["members"] = None  # malformed on either side: reported, and not indexed
    return _Listed(strict.kind, info, strict.folder, strict.listing)


class _Reader:
    def __init__(self, export: Export, options: dict) -> None:
        self.export = export
        self.options = options
        self.users: dict[str, User] = {}
        self.channel_names: dict[str, str] = {}
        self.problems: list[Problem] = []  # about the export as a whole
        self.team_ids: Counter[str] = Counter()  # messages' "team" fields
        self.zone_name = "UTC"
        self.zone: tzinfo | None = None

    def read(self) -> Iterator[Conversation | SourceDocument]:
        self.users = self._users()
        listed, unreadable = self._listings()
        self.channel_names = {e.info.get("id", ""): e.info.get("name", "") for e in listed.values()}
        raw: dict[str, tuple[list[tuple[str, dict]], list[Problem]]] = {}
        for folder in self.export.folders():
            if folder in listed:
                raw[folder] = self._day_files(folder)
            elif folder not in ("__uploads", "attachments"):
                why = f"; {', '.join(unreadable)} could not be read" if unreadable else ""
                self.problems.append(
                    Problem(
                        folder,
                        f"the folder {folder}/ is in none of the listings (channels.json, groups.json, "
                        f"mpims.json, dms.json){why}: who may read it is unknown, so it is not indexed",
                    )
                )
        workspace = self._workspace(raw)
        self.zone_name = self._zone()
        self.zone = zone_named(self.zone_name)
        team = self._team() or slug(workspace)
        for folder, (records, problems) in raw.items():
            yield self._conversation(workspace, team, listed[folder], records, problems)
        for problem in self.problems:
            yield failing_document(
                source_id=f"slack:{team}:problem:{problem.where}",
                uri=self.export.location(problem.where),
                attributes={
                    "connector": "chat",
                    "workspace": workspace,
                    "path": self.export.location(problem.where),
                    "field.platform": "slack",
                },
                reason=problem.reason,
            )

    # -- the listings ------------------------------------------------------------------------
    def _json(self, name: str) -> object | None:
        """A top-level JSON file, or None (with a problem recorded) when it cannot be read."""
        try:
            return load_json(self.export.read(name), name)
        except ParseError as exc:
            self.problems.append(Problem(name, str(exc)))
        except OSError as exc:
            self.problems.append(Problem(name, f"{name} cannot be read: {exc.strerror or exc}"))
        return None

    def _users(self) -> dict[str, User]:
        data = self._json("users.json")
        if data is None:
            return {}
        if not isinstance(data, list):
            self.problems.append(Problem("users.json", "users.json is not a list of users"))
            return {}
        users = {}
        for entry in data:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            profile = entry.get("profile") if isinstance(entry.get("profile"), dict) else {}
            handle = str(entry.get("name") or entry["id"])
            name = next(
                (
                    str(v).strip()
                    for v in (
                        profile.get("real_name"),
                        entry.get("real_name"),
                        profile.get("display_name"),
                        handle,
                    )
                    if v and str(v).strip()
                ),
                handle,
            )
            email = profile.get("email")
            team = entry.get("team_id")
            users[entry["id"]] = User(
                entry["id"],
                name,
                handle,
                email.strip().lower() if isinstance(email, str) and email.strip() else None,
                team if isinstance(team, str) and team else None,
                entry.get("tz") if isinstance(entry.get("tz"), str) and not entry.get("deleted") else None,
            )
        return users

    def _listings(self) -> tuple[dict[str, _Listed], list[str]]:
        listed: dict[str, _Listed] = {}
        unreadable = []
        for name, kind in LISTINGS:
            if not self.export.exists(name):
                continue
            data = self._json(name)
            if data is None or not isinstance(data, list):
                if data is not None:
                    self.problems.append(Problem(name, f"{name} is not a list of conversations"))
                unreadable.append(name)
                continue
            for info in data:
                if not isinstance(info, dict) or not info.get("id"):
                    continue
                entry_kind = PRIVATE if kind == PUBLIC and info.get("is_private") else kind
                folder = str(info.get("name") or info["id"]) if kind != DM else str(info["id"])
                entry = _Listed(entry_kind, info, folder, name)
                if folder in listed:  # never last-wins: a private channel must not turn public
                    before = listed[folder]
                    entry = _stricter(before, entry)
                    self.problems.append(
                        Problem(
                            folder,
                            f"{folder} is listed twice ({before.kind} in {before.listing}, "
                            f"{kind if entry_kind == kind else entry_kind} in {name}): read as "
                            f"{entry.kind}"
                            + (", with only the members both name" if entry.kind != PUBLIC else ""),
                        )
                    )
                listed[folder] = entry
        return listed, unreadable

    def _zone(self) -> str:
        """Times are shown in the workspace's time zone: the option, else the zone most of its
        people have in users.json, else UTC."""
        if zone_named(self.options.get("timezone")):
            return str(self.options["timezone"])
        zones = Counter(u.zone for u in self.users.values() if zone_named(u.zone))
        return zones.most_common(1)[0][0] if zones else "UTC"

    def _team(self) -> str | None:
        """The workspace's id: the commonest team of its users and messages (ids outlive names)."""
        teams = self.team_ids + Counter(u.team for u in self.users.values() if u.team)
        return teams.most_common(1)[0][0] if teams else None

    def _workspace(self, raw: dict[str, tuple[list[tuple[str, dict]], list[Problem]]]) -> str:
        """The option, else the workspace's Slack domain as the export's links show it, else the
        export's name without Slack's " Slack export ..." suffix."""
        if self.options.get("workspace"):
            return str(self.options["workspace"])
        domains: Counter[str] = Counter()
        for records, _ in raw.values():
            for _, record in records:
                texts = [record.get("text")]
                for file in _files(record):
                    texts += [file.get("permalink"), file.get("url_private")]
                for text in texts:
                    if isinstance(text, str) and ".slack.com/" in text:
                        domains.update(
                            d.lower() for d in _DOMAIN.findall(text) if d.lower() not in NOT_WORKSPACES
                        )
        if domains:
            return domains.most_common(1)[0][0]
        stem = self.export.path.name.removesuffix(".zip")
        stem = re.split(r"\s+slack\s+export", stem, maxsplit=1, flags=re.I)[0]
        return slug(stem) or "slack"

    # -- messages ----------------------------------------------------------------------------
    def _day_files(self, folder: str) -> tuple[list[tuple[str, dict]], list[Problem]]:
        """(file, record) for every message of a conversation folder, and what was skipped."""
        records: list[tuple[str, dict]] = []
        problems: list[Problem] = []
        for name in self.export.files_in(folder):
            if not name.endswith(".json"):
                continue
            try:
                data = load_json(self.export.read(name), name)
            except ParseError as exc:
                problems.append(Problem(name, str(exc), self.export.location(name)))
                continue
            except OSError as exc:
                problems.append(
                    Problem(name, f"{name} cannot be read: {exc.strerror or exc}", self.export.location(name))
                )
                continue
            if not isinstance(data, list):
                problems.append(
                    Problem(name, f"{name} is not a list of messages", self.export.location(name))
                )
                continue
            bad = []
            for i, record in enumerate(data, start=1):
                if not isinstance(record, dict):
                    bad.append(f"#{i} is not an object")
                elif _ts(record.get("ts")) is None:
                    bad.append(f"#{i} has no valid 'ts'")
                else:
                    records.append((name, record))
                    team = record.get("team") or record.get("user_team")
                    if isinstance(team, str) and team:
                        self.team_ids[team] += 1
            if bad:
                shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
                problems.append(
                    Problem(
                        name,
                        f"{name}: {len(bad)} of {len(data)} messages skipped ({shown})",
                        self.export.location(name),
                    )
                )
        return records, problems

    def _conversation(
        self,
        workspace: str,
        team: str,
        entry: _Listed,
        records: list[tuple[str, dict]],
        problems: list[Problem],
    ) -> Conversation:
        info, kind, folder = entry.info, entry.kind, entry.folder
        raw_members = info.get("members")
        member_ids = [m for m in raw_members if isinstance(m, str)] if isinstance(raw_members, list) else []
        members = tuple(self._user(m).name for m in member_ids)
        name = str(info.get("name") or folder)
        if kind == DM:
            handles = "+".join(sorted(self._user(m).handle for m in member_ids)) or folder
            label = f"Slack DM {' and '.join(members) or folder} ({workspace})"
            uri = f"slack://{uri_part(workspace)}/dm/{uri_part(handles)}"
        elif kind == GROUP:
            label = f"Slack group DM {', '.join(members) or name} ({workspace})"
            uri = f"slack://{uri_part(workspace)}/#{uri_part(name)}"
        else:
            private = "private, " if kind == PRIVATE else ""
            label = f"#{name} ({private}{workspace} Slack)"
            uri = f"slack://{uri_part(workspace)}/#{uri_part(name)}"
        acl = None
        if kind != PUBLIC:
            acl = frozenset(f"email:{u.email}" for u in map(self._user, member_ids) if u.email)
            malformed = _malformed_members(raw_members, self.users)
            if malformed:
                problems.append(Problem("members", f"{name}: {malformed}; they are not given access"))
            if member_ids and not acl:
                problems.append(
                    Problem(
                        "access",
                        f"{name} is a {kind} conversation but none of its members has an address "
                        "in users.json: nobody could read it, so it is not indexed",
                    )
                )
                records = []
            elif not member_ids:
                problems.append(
                    Problem(
                        "members",
                        f"{name} is a {kind} conversation but its listing names no members: "
                        "nobody could read it, so it is not indexed",
                    )
                )
                records = []
        conversation = Conversation(
            platform="slack",
            workspace=workspace,
            channel=name,
            kind=kind,
            key=f"{team}:{info.get('id') or folder}",
            label=label,
            uri=uri,
            path=self.export.location(folder),
            members=members if kind != PUBLIC else (),
            zone=self.zone_name,
            acl=acl,
            problems=problems,
        )
        seen: dict[str, Message] = {}
        for _, record in records:
            message = self._message(record, folder)
            seen[message.id] = message  # a message in two day files (overlapping exports) counts once
        conversation.messages = sort_messages(list(seen.values()))
        return conversation

    def _user(self, user_id: str) -> User:
        return self.users.get(user_id) or User(user_id, user_id, user_id, None)

    def _author(self, record: dict) -> str:
        user_id = record.get("user")
        if not user_id and isinstance(record.get("comment"), dict):
            user_id = record["comment"].get("user")  # a comment on a file
        if isinstance(user_id, str) and user_id in self.users:
            return self.users[user_id].name
        for holder in (record.get("user_profile"), record.get("bot_profile")):
            if isinstance(holder, dict):
                for key in ("real_name", "display_name", "name"):
                    if holder.get(key):
                        return str(holder[key])
        if record.get("username"):
            return str(record["username"])
        return str(user_id or record.get("bot_id") or "unknown")

    def _message(self, record: dict, folder: str) -> Message:
        ts_text = str(record["ts"])
        ts = _ts(ts_text)
        assert ts is not None
        subtype = record.get("subtype")
        author = self._author(record)
        text = self.clean(record.get("text"))
        system = subtype in SYSTEM_SUBTYPES
        if subtype == "file_share" and re.match(
            r"^<@[UW][A-Z0-9]+(\|[^>]*)?> (uploaded|shared)", str(record.get("text") or "")
        ):
            system = True  # the old style: "<@U1|bob> uploaded a file: <url|name>"
        if system and text.startswith("@"):
            text = text[1:]  # "<@U1> has joined the channel": "Alice Smith has joined the channel"
        elif system and author and author not in text:
            text = f"{author} {text}" if text else author
        notes = []
        if not system:
            for item in record.get("attachments") or []:
                if isinstance(item, dict):
                    title = item.get("title") or item.get("fallback") or item.get("text")
                    if title:
                        notes.append("link: " + snippet(self.clean(str(title)), 150))
        attachments = tuple(
            self._attachment(f, folder) for f in _files(record) if f.get("name") or f.get("title")
        )
        reactions = tuple(
            (f":{r['name']}:", int(r.get("count") or len(r.get("users") or [])) or 1)
            for r in record.get("reactions") or []
            if isinstance(r, dict) and r.get("name")
        )
        thread_ts = record.get("thread_ts")
        thread = str(thread_ts) if thread_ts and str(thread_ts) != ts_text else None
        if subtype and subtype not in KNOWN_SUBTYPES:
            notes.append(subtype.replace("_", " "))
        return Message(
            ts=ts,
            clock=utc_clock(ts, self.zone),
            author="" if system else author,
            text=text,
            id=ts_text,
            system=system,
            edited=bool(record.get("edited")),
            reactions=reactions,
            attachments=attachments,
            notes=tuple(notes),
            thread=thread,
        )

    def _attachment(self, file: dict, folder: str) -> Attachment:
        name = str(file.get("name") or file.get("title"))
        file_id = str(file.get("id") or name)
        locate = None
        for candidate in (f"{folder}/attachments/{file_id}-{name}", f"__uploads/{file_id}/{name}"):
            locate = self.export.locator(candidate)
            if locate is not None:
                break
        return Attachment(name=name, key=file_id, locate=locate)

    def clean(self, text: object) -> str:
        """Slack's markup as plain text: <@U1> -> @Name, <#C1|general> -> #general, links."""
        if not isinstance(text, str):
            return ""

        def replace(match: re.Match) -> str:
            target, label = match.group(1), match.group(2)
            if target.startswith("@"):
                user = self.users.get(target[1:])
                return "@" + (user.name if user else label or target[1:])
            if target.startswith("#"):
                return "#" + (label or self.channel_names.get(target[1:]) or target[1:])
            if target.startswith("!"):
                if label:
                    return label
                word = target[1:].split("^", 1)[0]
                return f"@{word}"
            if target.startswith("mailto:"):
                return label or target[len("mailto:") :]
            if label and label != target:
                return label if ".slack.com/files/" in target else f"{label} ({target})"
            return target

        text = _MARKUP.sub(replace, text)
        text = _BARE_USER.sub(
            lambda m: self.users[m.group(0)].name if m.group(0) in self.users else m.group(0), text
        )
        return html.unescape(text)


def _files(record: dict) -> list[dict]:
    files = record.get("files")
    if isinstance(files, list):
        return [f for f in files if isinstance(f, dict)]
    file = record.get("file")
    return [file] if isinstance(file, dict) else []


def _ts(value: object) -> float | None:
    try:
        ts = float(str(value))
    except (TypeError, ValueError):
        return None
    return ts if 0 < ts < 1e11 else None


def _malformed_members(raw: object, users: dict[str, User]) -> str:
    """What is wrong with a listing's members (empty when nothing is)."""
    if raw is None:
        return ""
    if not isinstance(raw, list):
        return f"its members are not a list ({type(raw).__name__})"
    wrong = [repr(m)[:40] for m in raw if not isinstance(m, str)]
    unknown = [m for m in raw if isinstance(m, str) and m not in users]
    parts = []
    if wrong:
        parts.append(f"members that are not user ids: {', '.join(wrong[:5])}")
    if unknown:
        parts.append(f"members not in users.json: {', '.join(unknown[:5])}")
    return "; ".join(parts)
