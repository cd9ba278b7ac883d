"""Chrome, Chromium, Edge, Brave...: the History SQLite file (urls and visits) and the Bookmarks
JSON file. Times are microseconds since 1601-01-01 UTC."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from connectors.browser.records import Bookmark, Visit, readable
from connectors.browser.snapshot import tables
from memex.errors import ParseError

EPOCH_OFFSET = 11_644_473_600  # seconds from 1601-01-01 to 1970-01-01
ROOT_NAMES = {"bookmark_bar": "Bookmarks Bar", "other": "Other Bookmarks", "synced": "Mobile Bookmarks"}
MAX_BOOKMARKS_BYTES = 256 * 1024 * 1024


def to_epoch(webkit: int | str | None) -> float | None:
    try:
        value = int(webkit or 0)
    except (TypeError, ValueError):
        return None
    return value / 1_000_000 - EPOCH_OFFSET if value > 0 else None


def check(db: sqlite3.Connection) -> None:
    missing = {"urls", "visits"} - tables(db)
    if missing:
        raise ParseError(f"not a Chrome history database (no {', '.join(sorted(missing))} table)")


def visits(db: sqlite3.Connection) -> Iterator[Visit]:
    rows = db.execute(
        "SELECT u.url, COALESCE(u.title, ''), v.visit_time FROM visits v JOIN urls u ON u.id = v.url "
        "WHERE v.visit_time > 0 ORDER BY u.url, v.visit_time"
    )
    while batch := rows.fetchmany(1000):
        for url, title, when in batch:
            yield Visit(url=url, title=title, when=to_epoch(when) or 0.0)


def is_bookmarks_file(path: Path) -> bool:
    """Chrome's Bookmarks file: JSON with "roots" (read from its first bytes)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and b'"roots"' in head


def bookmarks(path: Path) -> Iterator[Bookmark]:
    if path.stat().st_size > MAX_BOOKMARKS_BYTES:
        raise ParseError("Bookmarks file too large")
    try:
        data = json.loads(path.read_bytes())
        roots = data["roots"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not a Chrome Bookmarks file: {exc}") from None
    if not isinstance(roots, dict):
        raise ParseError("not a Chrome Bookmarks file: roots is not an object")
    for key, root in roots.items():
        if isinstance(root, dict):
            yield from _walk(root, (ROOT_NAMES.get(key, root.get("name") or key),))


def _walk(node: dict, folders: tuple[str, ...]) -> Iterator[Bookmark]:
    for child in node.get("children") or []:
        if not isinstance(child, dict):
            continue
        if child.get("type") == "folder":
            yield from _walk(child, (*folders, str(child.get("name") or "")))
        elif child.get("type") == "url" and readable(str(child.get("url") or "")):
            yield Bookmark(
                url=str(child["url"]),
                title=str(child.get("name") or ""),
                folders=folders,
                added=to_epoch(child.get("date_added")),
                key=str(child.get("guid") or child.get("id") or ""),
            )
