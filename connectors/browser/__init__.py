"""Browser history and bookmarks: Firefox profiles (places.sqlite), Chrome/Chromium/Edge/Brave
profiles (History, Bookmarks), and bookmark files exported to HTML (Netscape format).

The SQLite files are read from a private copy (browsers lock them); nothing in a browser profile
is written, and nothing else in it (cookies, saved passwords, sessions, caches) is read.
Options: timezone (an IANA name) for the day a visit is grouped under (default: local).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from connectors.browser import chrome, firefox, netscape
from connectors.browser.records import bookmark_document, visit_documents
from connectors.browser.snapshot import is_sqlite, snapshot
from connectors.calendar import option_zone
from memex.connector import Connector, isolated
from memex.documents import SourceDocument, failing_document
from memex.errors import ParseError


def _firefox_profile(path: Path) -> bool:
    return (path / "places.sqlite").is_file() and (
        (path / "prefs.js").is_file() or (path / "times.json").is_file()
    )


def _chromium_profile(path: Path) -> bool:
    return (path / "History").is_file() and (path / "Preferences").is_file()


class BrowserConnector(Connector):
    """A browser profile folder, a places.sqlite or History file, a Chrome Bookmarks file, or a
    bookmarks .html export (also found inside any folder)."""

    name = "browser"

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        name = path.name
        if name == "places.sqlite" or name == "History":
            return is_sqlite(path)
        if name == "Bookmarks":
            return chrome.is_bookmarks_file(path)
        if path.suffix.lower() in (".html", ".htm"):
            return netscape.is_netscape_bookmarks(path)
        return False

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        return _firefox_profile(path) or _chromium_profile(path)

    def load(self) -> Iterator[SourceDocument]:
        path = Path(self.target).expanduser().resolve()
        try:
            zone = option_zone(self.options)
        except ValueError as exc:
            yield self._broken(path, str(exc))
            return
        if path.is_dir():
            parts = [path / "places.sqlite"] if _firefox_profile(path) else []
            parts += [path / "History", path / "Bookmarks"] if _chromium_profile(path) else []
            parts = [p for p in parts if p.is_file()]
        else:
            parts = [path]
        for part in parts:
            try:
                yield from self._read(part, zone)
            except (ParseError, OSError) as exc:
                yield self._broken(part, getattr(exc, "strerror", None) or str(exc))

    def _read(self, path: Path, zone) -> Iterator[SourceDocument]:
        origin = path.as_posix()
        # Bookmark files (JSON, HTML) are parsed in a worker, under the file parsers' limits.
        if path.name == "Bookmarks" and not is_sqlite(path):
            yield from isolated(partial(_bookmark_documents, path, "chrome", zone))
        elif path.suffix.lower() in (".html", ".htm"):
            yield from isolated(partial(_bookmark_documents, path, "html", zone))
        elif path.name == "places.sqlite":
            with snapshot(path, "Firefox places") as db:
                firefox.check(db)
                yield from visit_documents(firefox.visits(db), origin=origin, browser="firefox", zone=zone)
                for bookmark in firefox.bookmarks(db):
                    yield bookmark_document(bookmark, origin=origin, browser="firefox", zone=zone)
        else:
            with snapshot(path, "Chrome history") as db:
                chrome.check(db)
                yield from visit_documents(chrome.visits(db), origin=origin, browser="chrome", zone=zone)

    def _broken(self, path: Path, reason: str) -> SourceDocument:
        return failing_document(
            source_id=f"browser:{path.as_posix()}",
            uri=path.as_posix(),
            connector="browser",
            attributes={"connector": "browser", "kind": "profile", "path": path.as_posix()},
            reason=f"browser: {reason}",
        )


def _bookmark_documents(path: Path, browser: str, zone) -> list[SourceDocument]:
    found = chrome.bookmarks(path) if browser == "chrome" else netscape.bookmarks(path)
    return [bookmark_document(b, origin=path.as_posix(), browser=browser, zone=zone) for b in found]
