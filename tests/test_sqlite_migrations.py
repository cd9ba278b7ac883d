"""Numbered migrations are applied exactly once, even when several connections open a new
database at the same moment (the daemon's writing loop and its reading view do)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from memex.daemon.process import describe
from memex.store import sqlite


def m001_slow_initial(db):
    time.sleep(0.2)  # wide enough that every other opener reads "not applied" meanwhile
    sqlite.script(db, "CREATE TABLE things (id INTEGER PRIMARY KEY)")


def test_connections_opened_at_once_apply_each_migration_once(tmp_path: Path):
    path = tmp_path / "race.sqlite"
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            sqlite.connect(path, migrations=[m001_slow_initial]).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    db = sqlite.connect(path, migrations=[m001_slow_initial])
    assert db.execute("SELECT name FROM migrations").fetchall() == [("m001_slow_initial",)]


def test_an_error_event_without_a_folder_still_makes_a_log_line():
    assert (
        describe({"event": "error", "message": "relabelling failed: boom"})
        == "error: relabelling failed: boom"
    )
    assert describe({"event": "error", "root": "/r", "message": "scan failed"}) == "error: /r: scan failed"
