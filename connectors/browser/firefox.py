"""Firefox's places.sqlite: visits (moz_historyvisits joined to moz_places) and bookmarks
(moz_bookmarks: folders, tags, keywords). Times are microseconds since 1970."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from connectors.browser.records import Bookmark, Visit, readable
from connectors.browser.snapshot import tables
from memex.errors import ParseError

ROOT_NAMES = {
    "root________": "",
    "menu________": "Bookmarks Menu",
    "toolbar_____": "Bookmarks Toolbar",
    "unfiled_____": "Other Bookmarks",
    "mobile______": "Mobile Bookmarks",
    "tags________": "Tags",
}
BOOKMARK, FOLDER = 1, 2


def check(db: sqlite3.Connection) -> None:
    missing = {"moz_places", "moz_historyvisits", "moz_bookmarks"} - tables(db)
    if missing:
        raise ParseError(f"not a Firefox places database (no {', '.join(sorted(missing))} table)")


def visits(db: sqlite3.Connection) -> Iterator[Visit]:
    """Every visit, by URL then time."""
    rows = db.execute(
        "SELECT p.url, COALESCE(p.title, ''), v.visit_date FROM moz_historyvisits v "
        "JOIN moz_places p ON p.id = v.place_id WHERE v.visit_date IS NOT NULL "
        "ORDER BY p.url, v.visit_date"
    )
    while batch := rows.fetchmany(1000):
        for url, title, when in batch:
            yield Visit(url=url, title=title, when=when / 1_000_000)


def bookmarks(db: sqlite3.Connection) -> Iterator[Bookmark]:
    """Every bookmark outside the tags folder, with its folder path, tags and keyword."""
    rows = db.execute(
        "SELECT b.id, b.type, b.parent, COALESCE(b.title, ''), b.dateAdded, COALESCE(b.guid, ''), "
        "p.url, b.fk FROM moz_bookmarks b LEFT JOIN moz_places p ON p.id = b.fk ORDER BY b.parent, b.position"
    ).fetchall()
    folders = {row[0]: row for row in rows if row[1] == FOLDER}
    tags_root = next((row[0] for row in folders.values() if row[5] == "tags________"), None)
    tags: dict[int, list[str]] = {}
    for _, kind, parent, _, _, _, _, place in rows:
        if kind == BOOKMARK and tags_root is not None and folders.get(parent, (0, 0, -1))[2] == tags_root:
            tags.setdefault(place, []).append(folders[parent][3])
    keywords = _keywords(db)
    for ident, kind, parent, title, added, guid, url, place in rows:
        if kind != BOOKMARK or not url or not readable(url):
            continue
        path = _path(parent, folders)
        if tags_root is not None and path[:1] == ("Tags",):
            continue  # a tag entry: read as the bookmark's tags above
        yield Bookmark(
            url=url,
            title=title,
            folders=path,
            added=added / 1_000_000 if added else None,
            key=guid or str(ident),
            tags=sorted(set(tags.get(place, []))),
            keyword=keywords.get(place, ""),
        )


def _path(parent: int, folders: dict[int, tuple]) -> tuple[str, ...]:
    names: list[str] = []
    seen: set[int] = set()
    while parent in folders and parent not in seen:
        seen.add(parent)
        _, _, grandparent, title, _, guid, _, _ = folders[parent]
        name = ROOT_NAMES.get(guid, title)
        if name:
            names.append(name)
        parent = grandparent
    return tuple(reversed(names))


def _keywords(db: sqlite3.Connection) -> dict[int, str]:
    if "moz_keywords" not in tables(db):
        return {}
    try:
        return {place: keyword for place, keyword in db.execute("SELECT place_id, keyword FROM moz_keywords")}
    except sqlite3.OperationalError:  # an older schema (keywords on moz_bookmarks)
        return {}
