"""Notes: Obsidian vaults (a folder with a `.obsidian/` folder in it).

Each Markdown note is one document (source id `file:PATH`, like any file, so a note is one
source however it was found): its title (front matter `title`, else the first `# heading`, else
the file name), its headings kept with their text, front matter as metadata and as `field.NAME`
attributes for policy rules, tags (front matter `tags` and inline `#tags`) as `field.tags`, and
`[[wiki links]]` shown as the linked note's name and kept as references (a "Links:" line and
metadata["links"], resolved to the vault's notes where the name is unique). Tasks (`- [ ]`,
`- [x]`) read as "[open] ..." and "[done] ...". A note is dated by front matter `date` or
`created`, else a daily note's name (2026-03-10.md), else its modification time.

Everything else in a vault (PDFs, images, calendars, task lists...) goes through the other
connectors, as in any folder; `.obsidian/` and `.trash/` are not read. Markdown folders that are
not vaults are read by the files connector.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, tzinfo
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from connectors.calendar import option_zone
from connectors.files import FilesConnector, broken_document, walk
from memex.connector import Connector, isolated
from memex.documents import Element, SourceDocument
from memex.errors import ParseError
from memex.links import Scope, skipped_link

NOTE_SUFFIXES = (".md", ".markdown")
MAX_BYTES = 8 * 1024 * 1024
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_WIKI = re.compile(r"(!?)\[\[([^\]|#^]*)(#[^\]|]*)?(?:\^[^\]|]*)?(?:\|([^\]]*))?\]\]")
_MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)>\s]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_TAG = re.compile(r"(?<![\w&#/])#([\w/-]*[^\W\d][\w/-]*)")
_TASK = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+\[([ xX/-])\]\s+")
_DAILY = re.compile(r"^(\d{4}-\d\d-\d\d)$")
_FIELD_NAME = re.compile(r"^[A-Za-z][\w-]{0,40}$")


class NotesConnector(Connector):
    """An Obsidian vault. Option: timezone (IANA name) for dates without one (default: local)."""

    name = "notes"

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        return (path / ".obsidian").is_dir()

    def load(self) -> Iterator[SourceDocument]:
        root = Path(self.target).expanduser().resolve()
        zone = option_zone(self.options)
        scope = Scope.of(root, self.options)
        found = list(walk(root, scope=scope))
        notes = [p for kind, p in found if kind == "file" and p.suffix.lower() in NOTE_SUFFIXES]
        names: dict[str, list[str]] = {}
        for note in notes:
            if note.is_relative_to(root):
                names.setdefault(note.stem.lower(), []).append(note.relative_to(root).as_posix())
        for kind, path in found:
            if kind == "skipped":
                yield skipped_link(path, scope)
            elif kind == "file" and path.suffix.lower() in NOTE_SUFFIXES and not _is_task_list(path):
                yield note_document(path, root, names, zone)
            else:
                options = {**self.options, "within": scope.roots[0]}
                yield from FilesConnector(str(path), others=self.others, **options).load()


def _is_task_list(path: Path) -> bool:
    from connectors.todo import is_todo_file

    return is_todo_file(path)


def note_document(path: Path, vault: Path, names: dict[str, list[str]], zone: tzinfo) -> SourceDocument:
    posix = path.as_posix()
    try:
        stat = path.stat()
        if stat.st_size > MAX_BYTES:
            raise ParseError("note too large (memex reads notes up to 8 MiB)")
        # In a worker, under the file parsers' limits: the note's regexes and YAML are its author's.
        note = isolated(partial(read_note_file, path))
    except (ParseError, OSError) as exc:
        return broken_document(path, getattr(exc, "strerror", None) or str(exc), connector="notes")
    links = [_resolve(target, names) for target in note["links"]]
    elements = list(note["elements"])
    if links:
        elements.append(Element(text="Links: " + ", ".join(dict.fromkeys(links)), section=()))
    when = _note_date(note["front"], path.stem, zone)  # the note's own date; never its mtime
    attributes: dict[str, Any] = {
        "connector": "notes",
        "kind": "note",
        "path": posix,
        "field.vault": vault.name,
    }
    for key, value in note["front"].items():
        value = _field_value(value)
        if _FIELD_NAME.match(str(key)) and value is not None and key not in ("tags", "tag"):
            attributes[f"field.{key}"] = value
    if note["tags"]:
        attributes["field.tags"] = note["tags"]
    metadata = {
        **({"timestamp": when} if when else {"modified": stat.st_mtime}),
        "vault": vault.name,
        "note": path.relative_to(vault).as_posix() if path.is_relative_to(vault) else posix,
        "tags": note["tags"],
        "links": list(dict.fromkeys(links)),
        "front_matter": _json_safe(note["front"]),
    }
    if note["problem"]:
        metadata["problem"] = note["problem"]
    return SourceDocument(
        source_id=f"file:{posix}",
        uri=posix,
        title=note["title"],
        connector="notes",
        attributes=attributes,
        parse=partial(list, elements),
        content_file=posix,
        fingerprint=f"{stat.st_mtime_ns}:{stat.st_size}",
        metadata=metadata,
        isolated=False,  # parsed here already (plain Markdown, read as text)
    )


def read_note_file(path: Path) -> dict[str, Any]:
    return read_note(path.read_bytes().decode("utf-8-sig", "replace"), path.stem)


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML without aliases: front matter has no use for them, and an alias bomb (a billion
    laughs of anchors) would grow into gigabytes once walked."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not read in front matter", event.start_mark
            )
        return super().compose_node(parent, index)


def read_note(text: str, stem: str) -> dict[str, Any]:
    """Front matter, title, tags, wiki-link targets and elements of a Markdown note."""
    front: dict[str, Any] = {}
    problem = ""
    body = text
    found = _FRONT.match(text)
    if found:
        body = text[found.end() :]
        try:
            loaded = yaml.load(found.group(1), Loader=_FrontMatterLoader)  # noqa: S506 (a SafeLoader)
        except yaml.YAMLError as exc:
            loaded = None
            problem = f"front matter is not valid YAML ({str(exc).splitlines()[0]}); kept as text"
            body = found.group(1) + "\n\n" + body
        if isinstance(loaded, dict):
            front = loaded
        elif loaded is not None:
            problem = "front matter is not a mapping; kept as text"
            body = found.group(1) + "\n\n" + body
    tags = _front_tags(front)
    links: list[str] = []
    elements: list[Element] = []
    headings: list[tuple[int, str]] = []
    block: list[str] = []
    fence = ""
    first_heading = ""

    def flush() -> None:
        if block:
            joined = "\n".join(block).strip()
            if joined:
                elements.append(Element(text=joined, section=tuple(h for _, h in headings)))
            block.clear()

    for raw in body.splitlines():
        stripped = raw.strip()
        if fence:
            block.append(raw)
            if stripped.startswith(fence):
                fence = ""
                flush()
            continue
        if stripped.startswith(("```", "~~~")):
            flush()
            fence = stripped[:3]
            block.append(raw)
            continue
        heading = _HEADING.match(raw)
        if heading:
            flush()
            level, name = len(heading.group(1)), _inline(heading.group(2), links)
            first_heading = first_heading or (name if level == 1 else "")
            headings = [h for h in headings if h[0] < level]
            elements.append(Element(text=name, kind="title", section=tuple(h for _, h in headings)))
            headings.append((level, name))
            continue
        if not stripped:
            flush()
            continue
        tags += [t for t in _TAG.findall(raw) if t not in tags]
        task = _TASK.match(raw)
        if task:
            state = "done" if task.group(2) in "xX" else "cancelled" if task.group(2) == "-" else "open"
            raw = f"{task.group(1)}- [{state}] {raw[task.end() :]}"
        block.append(_inline(raw, links))
    flush()
    title = str(front.get("title") or "").strip() or first_heading or stem
    if elements and elements[0].kind == "title" and elements[0].text == title:
        elements = elements[1:]  # the title is every chunk's first line already
    return {
        "front": front,
        "title": title,
        "tags": list(dict.fromkeys(tags)),
        "links": links,
        "elements": elements,
        "problem": problem,
    }


def _inline(text: str, links: list[str]) -> str:
    """Wiki links and Markdown links as readable text; link targets collected."""

    def wiki(match: re.Match[str]) -> str:
        embed, target, heading, alias = match.groups()
        target = target.strip()
        if target:
            links.append(target)
        shown = (
            (alias or "").strip()
            or (target + (f" > {heading[1:]}" if heading else ""))
            or (heading or "")[1:]
        )
        return f"[embedded: {shown}]" if embed else shown

    def markdown(match: re.Match[str]) -> str:
        embed, label, url = match.groups()
        if "://" not in url and url.lower().endswith(NOTE_SUFFIXES):
            links.append(Path(url.replace("%20", " ")).stem)
            return label or Path(url).stem
        if embed:
            return f"[image: {label or url}]"
        return f"{label} ({url})" if label and label != url else url

    return _MD_LINK.sub(markdown, _WIKI.sub(wiki, text))


def _resolve(target: str, names: dict[str, list[str]]) -> str:
    """A link target as the vault path of the note it names, when exactly one note has that name."""
    candidates = names.get(Path(target).stem.lower() if "/" in target else target.lower(), [])
    if "/" in target:
        candidates = [
            c for c in candidates if c.lower().removesuffix(".md") == target.lower().removesuffix(".md")
        ]
    return candidates[0] if len(candidates) == 1 else target


def _front_tags(front: dict[str, Any]) -> list[str]:
    value = front.get("tags", front.get("tag"))
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    if not isinstance(value, list):
        return []
    return [str(t).lstrip("#").strip() for t in value if str(t).strip()]


def _note_date(front: dict[str, Any], stem: str, zone: tzinfo) -> float | None:
    for key in ("date", "created", "created_at", "day"):
        value = front.get(key)
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()
        if isinstance(value, date):
            return datetime.combine(value, time(), tzinfo=zone).timestamp()
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                continue
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()
    daily = _DAILY.match(stem)
    if daily:
        return datetime.combine(date.fromisoformat(daily.group(1)), time(), tzinfo=zone).timestamp()
    return None


def _field_value(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float | date):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
