"""memex in the background (issue 17): the first command starts it, later commands are answered
by it, an ingest is handed to it with its progress streamed back, reads go on while it ingests,
Ctrl-C keeps what was read, it stops when idle, and --no-daemon / `daemon = false` do without.

The commands run as separate processes (other terminals) against a daemon with the hashing
embedder and the echoing fake model (MEMEX_TEST_FAKE_MODELS = its MEMEX_HOME)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memex import config
from memex.daemon import process as daemon_process
from memex.daemon.rpc import Peer
from tests.conftest import memex_with_fakes
from tests.watch_support import Running, stop_daemon, wait_until

MEMEX = str(Path(sys.executable).with_name("memex"))


@pytest.fixture
def home(memex_home, monkeypatch):
    """A home whose commands start memex in the background (as for a user), stopped after."""
    monkeypatch.delenv("MEMEX_NO_DAEMON", raising=False)
    monkeypatch.setenv(daemon_process.TEST_MODELS_ENV, str(memex_home))
    paths = config.Paths(memex_home)
    yield paths
    stop_daemon(paths)


def memex(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MEMEX, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout
    )


def many_files(root: Path, n: int) -> Path:
    """`n` small notes, each with a word of its own (`noteN`), for an ingest that takes a while."""
    for i in range(n):
        folder = root / f"part{i // 500}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note{i}.txt").write_text(f"Meeting note{i}: the budget review of project {i} moved.\n")
    return root


def indexed_count(paths: config.Paths) -> int:
    with sqlite3.connect(f"file:{paths.ledger}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM sources WHERE status = 'indexed'").fetchone()[0]


def test_the_first_command_starts_memex_in_the_background_and_later_ones_use_it(home, kestrel):
    assert daemon_process.running_pid(home) is None
    ingest = memex("ingest", str(kestrel), "--json")
    assert ingest.returncode == 0, ingest.stderr
    assert "starting memex in the background" in ingest.stderr
    assert json.loads(ingest.stdout)["indexed"] >= 12
    pid = daemon_process.running_pid(home)
    assert pid is not None and pid > 0

    search = memex("search", "vacation days", "--json", "-k", "3")
    assert search.returncode == 0, search.stderr
    assert "starting memex" not in search.stderr  # it was running
    assert "employee-handbook.md" in json.loads(search.stdout)[0]["source"]
    assert daemon_process.status(home)["pid"] == pid  # the same one answered

    again = memex("ingest", str(kestrel), "--json")  # a true no-op, through the daemon
    report = json.loads(again.stdout)
    assert (report["indexed"], report["removed"], report["chunks_added"]) == (0, 0, 0)


def test_no_daemon_and_the_setting_do_without_it(home, kestrel):
    plain = memex("--no-daemon", "ingest", str(kestrel), "--json")
    assert plain.returncode == 0, plain.stderr
    assert daemon_process.running_pid(home) is None
    assert memex("search", "vacation", "--json", env={"MEMEX_NO_DAEMON": "1"}).returncode == 0
    assert daemon_process.running_pid(home) is None

    home.config.write_text("daemon = false\n")
    search = memex("search", "vacation", "--json")
    assert search.returncode == 0, search.stderr
    assert "starting memex" not in search.stderr
    assert daemon_process.running_pid(home) is None


def test_it_stops_when_idle_unless_it_watches_folders(home, kestrel, tmp_path):
    home.root.mkdir(parents=True, exist_ok=True)
    home.config.write_text("daemon_idle_minutes = 0.03\n")  # about 2 s
    assert memex("search", "vacation", "--json").returncode in (0, 1)  # empty index: still started
    pid = daemon_process.running_pid(home)
    assert pid is not None
    assert wait_until(lambda: daemon_process.running_pid(home) is None, timeout=30)
    assert "no request for" in home.daemon_log.read_text()

    folder = tmp_path / "watched"
    folder.mkdir()
    assert memex("search", "vacation").returncode in (0, 1)
    watch = memex("watch", str(folder))
    assert watch.returncode == 0, watch.stderr
    time.sleep(5)
    assert daemon_process.running_pid(home) is not None  # a watcher does not time out


def test_ingest_progress_is_streamed_with_totals(home, tmp_path):
    from memex.daemon.client import ingest_through_daemon

    root = many_files(tmp_path / "notes", 300)
    calls: list[tuple] = []

    class Recorder:
        def begin(self, stage, total):
            calls.append(("begin", stage, total))

        def grow(self, stage, n):
            calls.append(("grow", stage, n))

        def advance(self, stage, n=1):
            calls.append(("advance", stage, n))

    notes: list[str] = []
    result = ingest_through_daemon(
        [str(root)], retry_failed=False, options={}, policy=None, progress=Recorder(), on_note=notes.append
    )
    assert result["indexed"] == 300
    assert ("begin", f"reading {root}", 300) in calls  # a total before the first file is read
    read = sum(c[2] for c in calls if c[0] == "advance" and c[1] == f"reading {root}")
    assert read == 300
    grown = sum(c[2] for c in calls if c[0] == "grow" and c[1] == "embedding")
    embedded = sum(c[2] for c in calls if c[0] == "advance" and c[1] == "embedding")
    assert grown == embedded == result["chunks_added"]  # one embedding bar, never restarted
    assert not any(c[0] == "begin" and c[1] == "embedding" for c in calls)


def test_reads_go_on_while_an_ingest_runs(home, tmp_path, kestrel):
    assert memex("ingest", str(kestrel), "--json").returncode == 0
    root = many_files(tmp_path / "big", 4000)
    ingest = subprocess.Popen(
        [MEMEX, "ingest", str(root), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert wait_until(
            lambda: (daemon_process.status(home).get("busy") or "").startswith("ingest"), timeout=60
        )
        started = time.monotonic()
        search = memex("search", "vacation days", "--json", "-k", "3")
        took = time.monotonic() - started
        assert search.returncode == 0, search.stderr
        assert "employee-handbook.md" in json.loads(search.stdout)[0]["source"]
        assert ingest.poll() is None, "the ingest ended before the search: make the folder bigger"
        assert took < 10
    finally:
        out, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    assert json.loads(out)["indexed"] == 4000


def test_ctrl_c_keeps_what_was_read_and_the_next_run_reads_the_rest(home, tmp_path, kestrel):
    assert memex("ingest", str(kestrel), "--json").returncode == 0  # the daemon runs
    before = indexed_count(home)
    root = many_files(tmp_path / "big", 3000)
    ingest = subprocess.Popen(
        [MEMEX, "ingest", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert wait_until(lambda: indexed_count(home) > before + 300, timeout=120)
    ingest.send_signal(signal.SIGINT)
    out, err = ingest.communicate(timeout=120)
    assert ingest.returncode == 130, err
    assert "stopping after the document being read" in err
    assert "Stopped at your request" in out
    kept = indexed_count(home) - before
    assert 300 < kept < 3000
    assert f"Indexed {kept} source(s)" in out  # the report says what was kept, all of it
    assert indexed_count(home) - before == kept  # and nothing was removed
    rest = memex("ingest", str(root), "--json")
    report = json.loads(rest.stdout)
    assert (report["indexed"], report["unchanged"], report["removed"]) == (3000 - kept, kept, 0)
    assert daemon_process.running_pid(home) is not None  # the daemon went on


def test_only_the_daemons_own_account_may_hand_it_an_ingest(memex_home, tmp_path):
    root = many_files(tmp_path / "notes", 3)
    with memex_with_fakes(memex_home) as owned, Running(owned, []) as running:
        frames: list[dict] = []
        other = Peer(1, os.getuid() + 4242, 4242, "alice")
        running.service.handle(
            {"command": "ingest", "params": {"targets": [str(root)]}}, other, frames.append
        )
        assert "only the account the memex daemon runs as" in frames[-1]["error"]
        frames.clear()  # nor stop one (ids are small numbers, easy to guess)
        running.service.handle({"command": "cancel-ingest", "params": {"job": 1}}, other, frames.append)
        assert "only the account the memex daemon runs as" in frames[-1]["error"]
        own = Peer(1, os.getuid(), os.getgid(), "owner")
        frames.clear()
        done = threading.Event()

        def hand_over():
            running.service.handle(
                {"command": "ingest", "params": {"targets": [str(root)]}}, own, frames.append
            )
            done.set()

        threading.Thread(target=hand_over, daemon=True).start()
        assert done.wait(60)
        assert frames[0] == {"job": 1}
        assert frames[-1]["result"]["indexed"] == 3
