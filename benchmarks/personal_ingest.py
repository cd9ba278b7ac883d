"""How fast the personal connectors read calendars and browser history, and what a full ingest costs.

    python benchmarks/personal_ingest.py [--visits 50000] [--ingest]

1. The calendar connector alone on ../shared/data/calendar_ics (198 .ics files, the icalendar
   project's test calendars): files/s and documents/s, every document parsed (best of 3).
2. The browser connector alone on a synthetic Firefox places.sqlite of N visits to N/10 pages over
   a year (read from a private copy, grouped per page and day): visits/s and documents/s.
3. With --ingest: both through the whole pipeline (personal policy, hashing embedder): first
   ingest and unchanged re-ingest, documents/s.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.browser import BrowserConnector  # noqa: E402
from connectors.calendar import CalendarConnector  # noqa: E402
from memex.errors import ParseError  # noqa: E402

CALENDARS = ROOT.parent / "shared" / "data" / "calendar_ics"
SCHEMA = """
CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url LONGVARCHAR, title LONGVARCHAR);
CREATE TABLE moz_historyvisits (id INTEGER PRIMARY KEY, place_id INTEGER, visit_date INTEGER, visit_type INTEGER);
CREATE TABLE moz_bookmarks (id INTEGER PRIMARY KEY, type INTEGER, fk INTEGER, parent INTEGER, position INTEGER,
  title LONGVARCHAR, dateAdded INTEGER, guid TEXT);
"""
WORDS = "porto lisbon flat rent train movers climbing gym bank insurance recipe fado museum tram".split()


def best_of(n: int, fn):
    times, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def read_all(connectors) -> tuple[int, int]:
    """(documents parsed, documents refused) over every connector's documents."""
    good = bad = 0
    for connector in connectors:
        try:
            docs = list(connector.load())
        except (ParseError, OSError, ValueError):
            bad += 1
            continue
        for doc in docs:
            try:
                doc.elements()
                good += 1
            except ParseError:
                bad += 1
    return good, bad


def firefox_history(folder: Path, visits: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "prefs.js").write_text("\n")
    db = sqlite3.connect(folder / "places.sqlite")
    db.executescript(SCHEMA)
    rng = random.Random(7)
    pages = max(1, visits // 10)
    db.executemany(
        "INSERT INTO moz_places (id, url, title) VALUES (?, ?, ?)",
        (
            (
                i,
                f"https://site{i % 400}.example/{'-'.join(rng.sample(WORDS, 3))}/{i}",
                " ".join(rng.sample(WORDS, 5)),
            )
            for i in range(1, pages + 1)
        ),
    )
    start = 1_767_225_600 * 1_000_000  # 2026-01-01
    db.executemany(
        "INSERT INTO moz_historyvisits (place_id, visit_date, visit_type) VALUES (?, ?, 1)",
        ((rng.randint(1, pages), start + rng.randrange(365 * 86_400) * 1_000_000) for _ in range(visits)),
    )
    db.execute(
        "INSERT INTO moz_bookmarks (id, type, parent, title, guid) VALUES (1, 2, 0, '', 'root________')"
    )
    db.commit()
    db.close()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=50_000)
    parser.add_argument("--ingest", action="store_true")
    args = parser.parse_args()
    options = {"timezone": "UTC", "expand_from": "2024-01-01", "expand_until": "2027-01-01"}

    files = sorted(CALENDARS.rglob("*.ics"))
    seconds, (good, bad) = best_of(3, lambda: read_all(CalendarConnector(str(p), **options) for p in files))
    print(
        f"calendar: {len(files)} files, {good} documents, {bad} refused in {seconds:.2f} s: "
        f"{len(files) / seconds:.0f} files/s, {good / seconds:.0f} documents/s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        profile = firefox_history(Path(tmp) / "profile", args.visits)
        seconds, (good, bad) = best_of(3, lambda: read_all([BrowserConnector(str(profile), timezone="UTC")]))
        print(
            f"browser: {args.visits} visits -> {good} page-day documents in {seconds:.2f} s: "
            f"{args.visits / seconds:.0f} visits/s, {good / seconds:.0f} documents/s"
        )
        if args.ingest:
            from memex.access.policyfile import load_policy
            from memex.api.wiring import Memex
            from memex.config import Paths
            from memex.models.embeddings import HashingEmbedder

            memex = Memex(
                Paths(Path(tmp) / "home"),
                policy=load_policy(ROOT / "policies" / "personal.yaml"),
                embedder=HashingEmbedder(),
                writable=True,
            )
            for name, target, opts in (
                ("calendar_ics", str(CALENDARS), options),
                ("history", str(profile), {}),
            ):
                for run in ("first", "unchanged"):
                    start = time.perf_counter()
                    report = memex.ingest([target], options=opts)
                    took = time.perf_counter() - start
                    count = len(report.indexed) + report.unchanged + len(report.failures)
                    print(
                        f"ingest {name} ({run}): {len(report.indexed)} indexed, {report.unchanged} unchanged, "
                        f"{len(report.failures)} failures in {took:.1f} s: {count / took:.0f} documents/s"
                    )
            memex.close()


if __name__ == "__main__":
    main()
