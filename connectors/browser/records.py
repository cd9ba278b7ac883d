"""Visits and bookmarks as documents, whichever browser they come from.

A visited page is one document per page and day: its title, URL and that day's visit times, dated
by the day's first visit. So "what did I read last Tuesday?" filters to that day, a page read on
many days is found on each of them, and a page's document does not change once its day is over.
A bookmark is one document with its folder path, tags and the date it was added. Both are cited
by their URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from urllib.parse import urlsplit

from connectors.records import lines, record_document
from connectors.spoken import spoken_day
from memex.documents import Element, SourceDocument

# Only pages: not browser-internal pages, scripts, inline data or Firefox's saved searches.
READABLE_SCHEMES = ("http", "https", "ftp", "file")
MAX_URL = 2048


@dataclass(frozen=True)
class Visit:
    url: str
    title: str
    when: float  # epoch seconds


@dataclass
class Bookmark:
    url: str
    title: str
    folders: tuple[str, ...]  # from the root: ("Bookmarks Toolbar", "Github")
    added: float | None = None  # epoch seconds
    key: str = ""  # what keeps its source id stable (the browser's id, or its place in a file)
    tags: list[str] = field(default_factory=list)
    description: str = ""
    keyword: str = ""


def readable(url: str) -> bool:
    return len(url) <= MAX_URL and urlsplit(url).scheme.lower() in READABLE_SCHEMES


def visit_documents(
    visits: Iterable[Visit], *, origin: str, browser: str, zone: tzinfo
) -> Iterator[SourceDocument]:
    """`visits` ordered by URL, then time: one document per URL and local day."""
    group: list[Visit] = []
    for visit in visits:
        if not readable(visit.url):
            continue
        if group and (visit.url != group[0].url or _day(visit.when, zone) != _day(group[0].when, zone)):
            yield _visit_document(group, origin, browser, zone)
            group = []
        group.append(visit)
    if group:
        yield _visit_document(group, origin, browser, zone)


def _visit_document(group: list[Visit], origin: str, browser: str, zone: tzinfo) -> SourceDocument:
    first = group[0]
    day = datetime.fromtimestamp(first.when, zone)
    title = next((v.title for v in reversed(group) if v.title), "") or first.url
    times = ", ".join(dict.fromkeys(datetime.fromtimestamp(v.when, zone).strftime("%H:%M") for v in group))
    count = f"{len(group)} times" if len(group) > 1 else "once"
    host = urlsplit(first.url).hostname or ""
    elements = [Element(text=f"Visited {count} on {_long_day(day)}: {times} ({_zone_name(zone)})")]
    elements += lines(("Page", title if title != first.url else None), ("URL", first.url), ("Site", host))
    return record_document(
        source_id=f"browser:{origin}#visit/{day:%Y-%m-%d}/{first.url}",
        uri=first.url,
        title=f"{title} (visited {day:%Y-%m-%d})",
        connector="browser",
        attributes={"connector": "browser", "kind": "visit", "path": origin, "domain": host}
        | {"field.browser": browser},
        elements=elements,
        metadata={
            "timestamp": first.when,
            "last_timestamp": group[-1].when,
            "visits": len(group),
            "url": first.url,
            "browser": browser,
        },
    )


def bookmark_document(bookmark: Bookmark, *, origin: str, browser: str, zone: tzinfo) -> SourceDocument:
    folder = " > ".join(bookmark.folders)
    host = urlsplit(bookmark.url).hostname or ""
    title = bookmark.title or bookmark.url
    added = datetime.fromtimestamp(bookmark.added, zone) if bookmark.added else None
    elements = lines(
        ("Bookmark", title),
        ("URL", bookmark.url),
        ("Folder", folder),
        ("Tags", bookmark.tags),
        ("Keyword", bookmark.keyword),
        ("Added", _long_day(added) if added else None),
    )
    if bookmark.description:
        elements.append(Element(text=bookmark.description))
    attributes = {"connector": "browser", "kind": "bookmark", "path": origin, "domain": host}
    attributes |= {"field.browser": browser, "folder": "/".join(bookmark.folders)}
    if bookmark.tags:
        attributes["field.tags"] = list(bookmark.tags)
    metadata = {"url": bookmark.url, "folder": folder, "browser": browser, "tags": list(bookmark.tags)}
    if bookmark.added:
        metadata["timestamp"] = bookmark.added
    return record_document(
        source_id=f"browser:{origin}#bookmark/{bookmark.key or bookmark.url}",
        uri=bookmark.url,
        title=f"{title} (bookmark{', ' + folder if folder else ''})",
        connector="browser",
        attributes=attributes,
        elements=elements,
        metadata=metadata,
    )


def _day(when: float, zone: tzinfo) -> str:
    return datetime.fromtimestamp(when, zone).strftime("%Y-%m-%d")


def _long_day(moment: datetime) -> str:
    return spoken_day(moment)


def _zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)
