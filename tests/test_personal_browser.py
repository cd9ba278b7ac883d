"""Browser history and bookmarks: bookmark HTML exports (the Chrome example against its expected
parse, every link of the Firefox exports with its folders), Firefox places.sqlite and Chrome
History/Bookmarks built with the browsers' own schemas and read while another connection holds
them locked, broken files reported, and who may read the history."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.browser import BrowserConnector, netscape
from memex.api.reads import Reads
from memex.ingest.plugins import connectors
from tests.conftest import POLICIES, ROOT, data_dir, parse_all

LISBON = ZoneInfo("Europe/Lisbon")

FIREFOX_SCHEMA = """
CREATE TABLE moz_origins ( id INTEGER PRIMARY KEY, prefix TEXT NOT NULL, host TEXT NOT NULL, frecency INTEGER NOT NULL, recalc_frecency INTEGER NOT NULL DEFAULT 0, alt_frecency INTEGER, recalc_alt_frecency INTEGER NOT NULL DEFAULT 0, UNIQUE (prefix, host) );
CREATE TABLE moz_places (   id INTEGER PRIMARY KEY, url LONGVARCHAR, title LONGVARCHAR, rev_host LONGVARCHAR, visit_count INTEGER DEFAULT 0, hidden INTEGER DEFAULT 0 NOT NULL, typed INTEGER DEFAULT 0 NOT NULL, frecency INTEGER DEFAULT -1 NOT NULL, last_visit_date INTEGER , guid TEXT, foreign_count INTEGER DEFAULT 0 NOT NULL, url_hash INTEGER DEFAULT 0 NOT NULL , description TEXT, preview_image_url TEXT, site_name TEXT, origin_id INTEGER REFERENCES moz_origins(id), recalc_frecency INTEGER NOT NULL DEFAULT 0, alt_frecency INTEGER, recalc_alt_frecency INTEGER NOT NULL DEFAULT 0);
CREATE TABLE moz_historyvisits (  id INTEGER PRIMARY KEY, from_visit INTEGER, place_id INTEGER, visit_date INTEGER, visit_type INTEGER, session INTEGER, source INTEGER DEFAULT 0 NOT NULL, triggeringPlaceId INTEGER);
CREATE TABLE moz_bookmarks (  id INTEGER PRIMARY KEY, type INTEGER, fk INTEGER DEFAULT NULL, parent INTEGER, position INTEGER, title LONGVARCHAR, keyword_id INTEGER, folder_type TEXT, dateAdded INTEGER, lastModified INTEGER, guid TEXT, syncStatus INTEGER NOT NULL DEFAULT 0, syncChangeCounter INTEGER NOT NULL DEFAULT 1);
CREATE TABLE moz_keywords (  id INTEGER PRIMARY KEY AUTOINCREMENT, keyword TEXT UNIQUE, place_id INTEGER, post_data TEXT);
CREATE INDEX moz_places_url_hashindex ON moz_places (url_hash);
CREATE INDEX moz_historyvisits_placedateindex ON moz_historyvisits (place_id, visit_date);
CREATE INDEX moz_bookmarks_itemindex ON moz_bookmarks (fk, type);
"""
CHROME_SCHEMA = """
CREATE TABLE meta(key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, value LONGVARCHAR);
CREATE TABLE urls(id INTEGER PRIMARY KEY AUTOINCREMENT,url LONGVARCHAR,title LONGVARCHAR,visit_count INTEGER DEFAULT 0 NOT NULL,typed_count INTEGER DEFAULT 0 NOT NULL,last_visit_time INTEGER NOT NULL,hidden INTEGER DEFAULT 0 NOT NULL);
CREATE TABLE visits(id INTEGER PRIMARY KEY AUTOINCREMENT,url INTEGER NOT NULL,visit_time INTEGER NOT NULL,from_visit INTEGER,transition INTEGER DEFAULT 0 NOT NULL,segment_id INTEGER,visit_duration INTEGER DEFAULT 0 NOT NULL,incremented_omnibox_typed_score BOOLEAN DEFAULT FALSE NOT NULL,opener_visit INTEGER,originator_cache_guid TEXT,originator_visit_id INTEGER,originator_from_visit INTEGER,originator_opener_visit INTEGER,is_known_to_sync BOOLEAN DEFAULT FALSE NOT NULL,consider_for_ntp_most_visited BOOLEAN DEFAULT FALSE NOT NULL,external_referrer_url TEXT,visited_link_id INTEGER);
CREATE INDEX visits_url_index ON visits (url);
CREATE INDEX urls_url_index ON urls (url);
"""


def micro(*when: int) -> int:
    """Firefox time: microseconds since 1970, from a Lisbon wall time."""
    return int(datetime(*when, tzinfo=LISBON).timestamp() * 1_000_000)


def webkit(*when: int) -> int:
    """Chrome time: microseconds since 1601-01-01 UTC."""
    return micro(*when) + 11_644_473_600 * 1_000_000


def firefox_profile(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "prefs.js").write_text('user_pref("browser.startup.page", 3);\n')
    db = sqlite3.connect(folder / "places.sqlite")
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(FIREFOX_SCHEMA)
    places = [
        (1, "https://www.idealista.pt/arrendar-casas/porto/", "Flats to rent in Porto — idealista"),
        (2, "https://www.cp.pt/passageiros/en/buy-tickets", "Buy train tickets | CP"),
        (3, "https://github.com/maya/climbing-log", "maya/climbing-log"),
        (4, "about:preferences", "Settings"),
        (5, "place:sort=8&maxResults=10", "Most visited"),
    ]
    db.executemany("INSERT INTO moz_places (id, url, title) VALUES (?, ?, ?)", places)
    visits = [
        (1, micro(2026, 3, 2, 21, 5)),
        (1, micro(2026, 3, 2, 22, 40)),
        (1, micro(2026, 3, 9, 8, 15)),
        (2, micro(2026, 3, 6, 12, 0)),
        (4, micro(2026, 3, 6, 12, 1)),  # browser-internal: not a page
    ]
    db.executemany(
        "INSERT INTO moz_historyvisits (place_id, visit_date, visit_type) VALUES (?, ?, 1)", visits
    )
    bookmarks = [
        (1, 2, None, 0, "", "root________"),
        (2, 2, None, 1, "menu", "menu________"),
        (3, 2, None, 1, "toolbar", "toolbar_____"),
        (4, 2, None, 1, "tags", "tags________"),
        (5, 2, None, 1, "unfiled", "unfiled_____"),
        (6, 2, None, 1, "mobile", "mobile______"),
        (7, 2, None, 3, "Move to Porto", "movefolder01"),
        (8, 1, 1, 7, "Flats in Porto", "bookmark0001"),
        (9, 1, 3, 5, "Climbing log", "bookmark0002"),
        (10, 2, None, 4, "flat-hunt", "tagfolder001"),
        (11, 1, 1, 10, None, "tagentry0001"),  # the tag "flat-hunt" on place 1
        (12, 1, 5, 2, "Most visited", "smartbkmk001"),  # a saved search: not a page
    ]
    db.executemany(
        "INSERT INTO moz_bookmarks (id, type, fk, parent, title, guid, position, dateAdded) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
        [(*row[:4], row[4], row[5], micro(2026, 2, 20, 10, 0)) for row in bookmarks],
    )
    db.execute("INSERT INTO moz_keywords (keyword, place_id) VALUES ('flats', 1)")
    db.commit()
    db.close()
    return folder


def chrome_profile(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "Preferences").write_text('{"profile": {"name": "Maya"}}')
    db = sqlite3.connect(folder / "History")
    db.executescript(CHROME_SCHEMA)
    db.executemany(
        "INSERT INTO urls (id, url, title, visit_count, last_visit_time) VALUES (?, ?, ?, 1, 0)",
        [
            (1, "https://www.mudaja.pt/orcamento", "Pedir orçamento — MudaJá"),
            (2, "chrome://settings/", "Settings"),
        ],
    )
    db.executemany(
        "INSERT INTO visits (url, visit_time) VALUES (?, ?)",
        [(1, webkit(2026, 3, 3, 9, 30)), (2, webkit(2026, 3, 3, 9, 31))],
    )
    db.commit()
    db.close()
    bar = {
        "children": [
            {"date_added": str(webkit(2026, 1, 5, 10, 0)), "guid": "c1", "id": "5", "name": "MudaJá",
             "type": "url", "url": "https://www.mudaja.pt/"},
            {"children": [
                {"date_added": str(webkit(2026, 1, 6, 10, 0)), "guid": "c2", "id": "7", "name": "Porto parishes",
                 "type": "url", "url": "https://www.cm-porto.pt/freguesias"},
                {"date_added": "0", "guid": "c3", "id": "8", "name": "A bookmarklet", "type": "url",
                 "url": "javascript:alert(1)"},
            ], "date_added": "0", "guid": "f1", "id": "6", "name": "Porto", "type": "folder"},
        ],
        "date_added": "0", "guid": "bb", "id": "1", "name": "Bookmarks bar", "type": "folder",
    }  # fmt: skip
    other = {
        "children": [],
        "date_added": "0",
        "guid": "ot",
        "id": "2",
        "name": "Other bookmarks",
        "type": "folder",
    }
    (folder / "Bookmarks").write_text(
        json.dumps({"checksum": "0" * 32, "roots": {"bookmark_bar": bar, "other": other}, "version": 1})
    )
    # Also in a profile, and never to be read: saved passwords and cookies (SQLite files).
    for name in ("Login Data", "Cookies"):
        secret = sqlite3.connect(folder / name)
        secret.execute("CREATE TABLE logins (origin_url TEXT, username_value TEXT, password_value BLOB)")
        secret.execute("INSERT INTO logins VALUES ('https://bank.example', 'maya', x'00ff')")
        secret.commit()
        secret.close()
    return folder


def read(target: Path, **options) -> tuple[list, dict[str, str]]:
    return parse_all(BrowserConnector(str(target), **options))


def texts(doc) -> list[str]:
    return [e.text for e in doc.elements()]


# -- bookmark HTML exports --------------------------------------------------------------------


def test_the_chrome_export_matches_its_expected_parse():
    folder = data_dir("browser_bookmarks_html")
    parsed = netscape.parse((folder / "chrome_example_suhodolskiy.html").read_bytes())
    expected = json.loads((folder / "chrome_example_suhodolskiy.expected.json").read_text())
    assert [node.to_json() for node in parsed] == expected


def test_every_link_of_the_exports_with_its_folders():
    folder = data_dir("browser_bookmarks_html")
    links = {}
    for name in ("chrome_example_suhodolskiy.html", "firefox_osint_5nacks.html", "firefox_zh_aires1208.html"):
        html = (folder / name).read_bytes()
        links[name] = list(netscape.walk(netscape.parse(html)))
        assert len(links[name]) == html.upper().count(b"<A ")  # every <A> is a link, none lost
    assert [len(v) for v in links.values()] == [4, 323, 139]
    chrome = [(node.name, folders) for node, folders in links["chrome_example_suhodolskiy.html"]]
    assert chrome == [
        ("Google", ("Bookmarks Bar",)),
        ("The React documentation website", ("Bookmarks Bar", "Github")),
        ("The Go programming language", ("Bookmarks Bar", "Github", "Golang")),
        ("Golang Net html", ()),
    ]
    # As documents: every link but Firefox's saved searches (place: URLs), with its folder path.
    good, bad = read(folder / "firefox_osint_5nacks.html", timezone="UTC")
    assert bad == {} and len(good) == 322
    first = good[0]
    assert first.uri == "https://www.canada.ca/en/services/business/research.html"
    assert texts(first) == [
        "Bookmark: Canadian Business Research",
        "URL: https://www.canada.ca/en/services/business/research.html",
        "Folder: OSINTBookmarks > Company > Country Specific",
        "Added: Friday 21 February 2020",
    ]
    assert first.attributes == {
        "connector": "browser",
        "kind": "bookmark",
        "path": (folder / "firefox_osint_5nacks.html").as_posix(),
        "domain": "www.canada.ca",
        "field.browser": "html",
        "folder": "OSINTBookmarks/Company/Country Specific",
    }
    assert first.metadata["timestamp"] == 1582322829.0
    zh, bad = read(folder / "firefox_zh_aires1208.html", timezone="UTC")
    assert bad == {} and len(zh) == 136
    assert {d.metadata["folder"] for d in zh} >= {"Mozilla Firefox", "其他书签"}
    assert len({d.source_id for d in zh}) == 136


def test_the_example_export_with_descriptions_and_tags():
    path = ROOT / "examples" / "personal" / "bookmarks.html"
    good, bad = read(path, timezone="Europe/Lisbon")
    assert bad == {}
    assert [(d.uri, d.metadata["folder"]) for d in good] == [
        ("https://www.mudaja.pt/", "Bookmarks Bar > Move to Porto"),
        ("https://www.cm-porto.pt/freguesias", "Bookmarks Bar > Move to Porto"),
        ("https://www.cp.pt/passageiros/en/", "Bookmarks Bar > Move to Porto"),
        ("https://www.vertigoclimbing.pt/", "Bookmarks Bar > Climbing"),
    ]
    assert texts(good[0]) == [
        "Bookmark: MudaJá — mudanças Lisboa Porto",
        "URL: https://www.mudaja.pt/",
        "Folder: Bookmarks Bar > Move to Porto",
        "Added: Wednesday 11 February 2026",
        "Movers: quote 780 EUR for 14 March.",  # its <DD> description
    ]
    assert texts(good[3])[3] == "Tags: climbing, lisbon"
    assert good[3].attributes["field.tags"] == ["climbing", "lisbon"]


def test_bookmark_html_claimed_by_its_doctype_only(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><a href='https://example.org'>x</a></body></html>")
    exported = tmp_path / "bookmarks.html"
    exported.write_text(
        '<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p><DT><A HREF="https://example.org">x</A>\n</DL>'
    )
    assert not BrowserConnector.claims_file(page)
    assert BrowserConnector.claims_file(exported)


# -- Firefox and Chrome profiles --------------------------------------------------------------


def test_firefox_places_read_from_a_copy_while_firefox_holds_it_locked(tmp_path):
    profile = firefox_profile(tmp_path / "firefox" / "abcd.default-release")
    places = profile / "places.sqlite"
    # Firefox keeps places.sqlite open in EXCLUSIVE locking mode, with recent writes in its -wal.
    firefox = sqlite3.connect(places, isolation_level=None)
    firefox.execute("PRAGMA locking_mode = EXCLUSIVE")
    firefox.execute("PRAGMA wal_autocheckpoint = 0")
    firefox.execute(
        "INSERT INTO moz_historyvisits (place_id, visit_date, visit_type) VALUES (3, ?, 1)",
        (micro(2026, 3, 10, 19, 45),),
    )
    try:
        assert (profile / "places.sqlite-wal").stat().st_size > 0
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(places, timeout=0).execute("SELECT count(*) FROM moz_places").fetchone()
        before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in profile.iterdir()}
        assert BrowserConnector.accepts(str(profile))
        good, bad = read(profile, timezone="Europe/Lisbon")
        after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in profile.iterdir()}
    finally:
        firefox.close()
    assert bad == {}
    assert after == before  # nothing written, nothing added to the profile
    visits = {d.source_id.split("#", 1)[1]: d for d in good if d.attributes["kind"] == "visit"}
    assert sorted(visits) == [
        "visit/2026-03-02/https://www.idealista.pt/arrendar-casas/porto/",
        "visit/2026-03-06/https://www.cp.pt/passageiros/en/buy-tickets",
        "visit/2026-03-09/https://www.idealista.pt/arrendar-casas/porto/",
        "visit/2026-03-10/https://github.com/maya/climbing-log",  # only in the -wal
    ]
    flats = visits["visit/2026-03-02/https://www.idealista.pt/arrendar-casas/porto/"]
    assert flats.uri == "https://www.idealista.pt/arrendar-casas/porto/"
    assert flats.title == "Flats to rent in Porto — idealista (visited 2026-03-02)"
    assert texts(flats) == [
        "Visited 2 times on Monday 2 March 2026: 21:05, 22:40 (Europe/Lisbon)",
        "Page: Flats to rent in Porto — idealista",
        "URL: https://www.idealista.pt/arrendar-casas/porto/",
        "Site: www.idealista.pt",
    ]
    assert flats.metadata["timestamp"] == micro(2026, 3, 2, 21, 5) / 1e6
    assert flats.attributes == {
        "connector": "browser",
        "kind": "visit",
        "path": places.as_posix(),
        "domain": "www.idealista.pt",
        "field.browser": "firefox",
    }
    marks = {d.metadata["url"]: d for d in good if d.attributes["kind"] == "bookmark"}
    assert sorted(marks) == [
        "https://github.com/maya/climbing-log",
        "https://www.idealista.pt/arrendar-casas/porto/",
    ]
    assert texts(marks["https://www.idealista.pt/arrendar-casas/porto/"]) == [
        "Bookmark: Flats in Porto",
        "URL: https://www.idealista.pt/arrendar-casas/porto/",
        "Folder: Bookmarks Toolbar > Move to Porto",
        "Tags: flat-hunt",
        "Keyword: flats",
        "Added: Friday 20 February 2026",
    ]
    assert marks["https://github.com/maya/climbing-log"].attributes["folder"] == "Other Bookmarks"


def test_a_chrome_profile_gives_history_and_bookmarks_and_nothing_else(tmp_path):
    home = tmp_path / "home"
    profile = chrome_profile(home / "chrome" / "Default")
    (home / "notes.txt").write_text("Ask MudaJá for a Saturday slot.")
    from connectors.files import FilesConnector

    docs = list(FilesConnector(str(home), others=connectors(), timezone="Europe/Lisbon").load())
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc.attributes.get("kind", doc.connector), []).append(doc.uri)
    assert by_kind == {
        "visit": ["https://www.mudaja.pt/orcamento"],
        "bookmark": ["https://www.mudaja.pt/", "https://www.cm-porto.pt/freguesias"],
        "files": [(home / "notes.txt").as_posix()],
    }
    assert not any("Login Data" in d.source_id or "Cookies" in d.source_id for d in docs)
    visit = next(d for d in docs if d.attributes["kind"] == "visit")
    assert texts(visit)[0] == "Visited once on Tuesday 3 March 2026: 09:30 (Europe/Lisbon)"
    parish = next(d for d in docs if d.uri.endswith("freguesias"))
    assert texts(parish) == [
        "Bookmark: Porto parishes",
        "URL: https://www.cm-porto.pt/freguesias",
        "Folder: Bookmarks Bar > Porto",
        "Added: Tuesday 6 January 2026",
    ]
    assert parish.source_id == f"browser:{(profile / 'Bookmarks').as_posix()}#bookmark/c2"


def test_broken_browser_files_are_reported_and_the_rest_goes_on(tmp_path):
    profile = chrome_profile(tmp_path / "Default")
    (profile / "History").write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)  # a damaged database
    (profile / "Bookmarks").write_text('{"roots": ')  # cut short
    good, bad = read(profile)
    assert good == []
    assert bad == {
        (
            profile / "History"
        ).as_posix(): "browser: not a readable Chrome history database: file is not a database",
        (
            profile / "Bookmarks"
        ).as_posix(): "browser: not a Chrome Bookmarks file: Expecting value: line 1 column 11 (char 10)",
    }
    wrong = tmp_path / "places.sqlite"
    sqlite3.connect(wrong).execute("CREATE TABLE t (x)").connection.close()
    assert read(wrong)[1] == {
        wrong.as_posix(): "browser: not a Firefox places database (no moz_bookmarks, moz_historyvisits, moz_places table)"
    }


# -- who reads it -----------------------------------------------------------------------------


def test_browsing_history_is_for_the_owner_only(memex_home, tmp_path):
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    profile = firefox_profile(tmp_path / "profile")
    memex = Memex(
        Paths(memex_home),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    (tmp_path / "diary.txt").write_text("Looked at flats in Porto again; nothing under 900 EUR.")
    report = memex.ingest([str(profile), str(tmp_path / "diary.txt")])
    assert report.failures == [] and len(report.indexed) == 6  # 3 page-days, 2 bookmarks, the diary
    owner, guest = memex.policy.principal("owner"), memex.policy.principal("guest")
    question = "flats to rent in Porto"  # the page title also says "idealista": the canary
    owner_hits = Reads(memex).search(question, principal=owner, k=20)
    assert {h.uri for h in owner_hits} >= {"https://www.idealista.pt/arrendar-casas/porto/"}
    assert {h.access.labels for h in owner_hits if h.uri.startswith("https://")} == {
        frozenset({"personal", "browsing"})
    }
    guest_hits = Reads(memex).search(question, principal=guest, k=20)
    assert [h.uri for h in guest_hits] == [(tmp_path / "diary.txt").as_posix()]
    answer = Reads(memex).ask(question, principal=guest)
    prompt = json.dumps(answer.messages) + answer.text
    assert "idealista" not in prompt and all(c.source.startswith("/") for c in answer.citations)
    answer = Reads(memex).ask(question, principal=owner)
    assert "idealista" in answer.text
    memex.close()


def test_a_date_bounded_question_gets_only_the_pages_visited_then(memex_home, tmp_path):
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    profile = firefox_profile(tmp_path / "profile")
    memex = Memex(
        Paths(memex_home),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    assert memex.ingest([str(profile)], options={"timezone": "Europe/Lisbon"}).failures == []
    owner = memex.policy.principal("owner")
    question = "which flats and trains did I look at last week?"
    dates = Reads.find_dates(question, now=datetime(2026, 3, 11, 15, 30, tzinfo=LISBON))
    assert dates.describe() == "2026-03-02 to 2026-03-08 (last week)"
    hits = Reads(memex).search(question, principal=owner, k=20, dates=dates)
    # Monday's and Friday's visits; not Monday 9 March's, nor the bookmarks added in February.
    assert sorted(h.title for h in hits) == [
        "Buy train tickets | CP (visited 2026-03-06)",
        "Flats to rent in Porto — idealista (visited 2026-03-02)",
    ]
    everything = Reads(memex).search(question, principal=owner, k=20)
    assert len({h.source_id for h in everything}) == 5  # 3 page-days and 2 bookmarks
    memex.close()
