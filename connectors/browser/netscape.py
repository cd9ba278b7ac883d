"""Netscape bookmark files (<!DOCTYPE NETSCAPE-Bookmark-file-1>): what Firefox, Chrome, Edge and
Safari write when you export bookmarks to HTML. Folders are <DT><H3>name</H3> followed by a <DL>
of their entries; links are <DT><A HREF=...>title</A>, optionally followed by <DD>description.
The markup is loose (unclosed <DT> and <p>), so it is read as a stream of tags."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from connectors.browser.records import Bookmark, readable
from memex.errors import ParseError

DOCTYPE = b"netscape-bookmark-file-1"
FIELDS = {"folder": ("add_date", "last_modified"), "link": ("href", "add_date", "last_modified", "icon")}
MAX_BYTES = 256 * 1024 * 1024


@dataclass
class Node:
    """A folder (children is a list) or a link (children is None), with its attributes in file
    order (keys lower-cased)."""

    name: str
    attributes: dict[str, str]
    children: list[Node] | None = None
    description: str = ""

    @property
    def is_folder(self) -> bool:
        return self.children is not None

    def to_json(self) -> dict[str, Any]:
        """The shape the netscape-bookmarks parsers use: known attributes as fields, the others
        as a list of {key, value}."""
        known = FIELDS["folder" if self.is_folder else "link"]
        out: dict[str, Any] = {"name": self.name}
        out |= {key: value for key, value in self.attributes.items() if key in known}
        if self.children is not None:
            out["children"] = [child.to_json() for child in self.children]
        out["attributes"] = [{"key": k, "value": v} for k, v in self.attributes.items() if k not in known]
        return out


def is_netscape_bookmarks(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(1024).lower()
    except OSError:
        return False
    return DOCTYPE in head


def parse(data: bytes) -> list[Node]:
    """The top-level entries of a bookmark file."""
    if DOCTYPE not in data[:1024].lower():
        raise ParseError("not a Netscape bookmark file (no <!DOCTYPE NETSCAPE-Bookmark-file-1>)")
    parser = _Parser()
    parser.feed(data.decode("utf-8", "replace"))
    parser.close()
    return parser.root.children or []


def bookmarks(path: Path) -> Iterator[Bookmark]:
    if path.stat().st_size > MAX_BYTES:
        raise ParseError("bookmark file too large")
    seen: dict[str, int] = {}
    for node, folders in walk(parse(path.read_bytes())):
        url = node.attributes.get("href", "")
        if not readable(url):
            continue
        key = f"{'/'.join(folders)}/{url}"
        seen[key] = seen.get(key, 0) + 1
        yield Bookmark(
            url=url,
            title=node.name,
            folders=folders,
            added=_seconds(node.attributes.get("add_date")),
            key=key if seen[key] == 1 else f"{key}#{seen[key]}",
            tags=[t.strip() for t in node.attributes.get("tags", "").split(",") if t.strip()],
            description=node.description,
            keyword=node.attributes.get("shortcuturl", ""),
        )


def walk(nodes: list[Node], folders: tuple[str, ...] = ()) -> Iterator[tuple[Node, tuple[str, ...]]]:
    """Every link with the names of the folders it is in."""
    for node in nodes:
        if node.children is not None:
            yield from walk(node.children, (*folders, node.name))
        else:
            yield node, folders


def _seconds(value: str | None) -> float | None:
    try:
        number = float(value or 0)
    except ValueError:
        return None
    if number > 1e14:  # microseconds (some exporters)
        number /= 1_000_000
    elif number > 1e11:  # milliseconds
        number /= 1000
    return number or None


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("", {}, [])
        self.stack: list[Node] = [self.root]
        self.pending: Node | None = None  # the folder whose <DL> comes next
        self.capture: Node | None = None  # the <H3> or <A> whose text is being read
        self.describing: Node | None = None  # the entry a <DD> describes

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("dt", "dl", "hr", "h3", "a"):
            self._end_description()
        if tag == "dt":
            self.pending = None
        elif tag == "h3":
            self.capture = Node("", {k.lower(): v or "" for k, v in attrs}, [])
        elif tag == "a":
            self.capture = Node("", {k.lower(): v or "" for k, v in attrs})
        elif tag == "dl":
            self.stack.append(self.pending if self.pending is not None else self.stack[-1])
            self.pending = None
        elif tag == "dd":
            self.describing = self.stack[-1].children[-1] if self.stack[-1].children else None

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h3", "a") and self.capture is not None:
            node, self.capture = self.capture, None
            node.name = " ".join(node.name.split())
            self.stack[-1].children.append(node)  # type: ignore[union-attr]
            if tag == "h3":
                self.pending = node
        elif tag == "dl":
            self._end_description()
            if len(self.stack) > 1:
                self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.capture is not None:
            self.capture.name += data
        elif self.describing is not None:
            self.describing.description += data

    def _end_description(self) -> None:
        if self.describing is not None:
            self.describing.description = " ".join(self.describing.description.split())
            self.describing = None
