"""A newcomer's first hour (issue 17), scripted: a mixed archive (documents, an mbox, the same
message saved twice, an Outlook calendar, a SQLite database with a link table) ingested as a user
would, then each mistake people made, with the message they should read and the exit code.

Commands run as separate processes with memex in the background, as for a user; the daemon uses
the hashing embedder and the echoing fake model (MEMEX_TEST_FAKE_MODELS = its MEMEX_HOME)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memex import config
from memex.daemon import process as daemon_process
from tests.conftest import EXAMPLES, POLICIES, data_dir
from tests.watch_support import stop_daemon

MEMEX = str(Path(sys.executable).with_name("memex"))
MESSAGE = (
    "From: Erin Duarte <erin@kestrel.example>\nTo: Frank <frank@kestrel.example>\n"
    "Subject: Contingency\nMessage-ID: <contingency-1@kestrel.example>\n"
    "Date: Thu, 12 Mar 2026 18:40:00 +0000\n\n"
)
OUTLOOK = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Microsoft Corporation//Outlook 16.0//EN\r\n"
    "BEGIN:VEVENT\r\nUID:standup-1\r\nSUMMARY:Platform standup\r\nDTSTART:20260302T093000Z\r\n"
    "DTEND:20260302T094500Z\r\nRRULE:FREQ=WEEKLY;BYDAY=MO, TU, WE, TH, FR\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


BROKEN = 25  # files that cannot be read
ENV: dict[str, str] = {}  # the newcomer's: their MEMEX_HOME (set by `life`), memex in the background


def memex(*args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([MEMEX, *args], capture_output=True, text=True, timeout=300, env=ENV)
    if check is not None:
        assert done.returncode == check, f"memex {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    """The archive, ingested once by `memex ingest` with memex in the background."""
    base = tmp_path_factory.mktemp("newcomer")
    home = base / "home"
    archive = base / "life"
    shutil.copytree(EXAMPLES, archive / "kestrel")
    saved = archive / "saved-mail"
    saved.mkdir()
    (saved / "a-contingency.eml").write_text(MESSAGE + "Keep the contingency at EUR 45,000.\n")
    (saved / "b-contingency-export.eml").write_text(
        MESSAGE + "Keep the contingency at EUR 45,000. Sent from my phone\n"
    )
    (archive / "calendar").mkdir()
    (archive / "calendar" / "outlook.ics").write_bytes(OUTLOOK.encode())
    shutil.copy(data_dir("sql_chinook") / "Chinook_Sqlite.sqlite", archive / "Chinook.sqlite")
    (archive / "downloads").mkdir()
    for n in range(BROKEN):  # interrupted downloads
        (archive / "downloads" / f"broken-{n:02d}.pdf").write_bytes(b"%PDF-1.4\n" + bytes(n + 1))
    ENV.clear()
    ENV.update({k: v for k, v in os.environ.items() if k != "MEMEX_NO_DAEMON"})
    ENV.update({"MEMEX_HOME": str(home), daemon_process.TEST_MODELS_ENV: str(home)})
    try:
        memex("init", "--policy", str(POLICIES / "personal.yaml"))
        first = memex("ingest", str(archive), check=2)  # the broken downloads: exit code 2
        yield config.Paths(home), archive, first
    finally:
        stop_daemon(config.Paths(home))


def test_the_first_ingest_says_what_it_does(life):
    paths, archive, first = life
    assert "starting memex in the background" in first.stderr
    # The database: what is read and what is skipped, before a row is read.
    assert re.search(r"Chinook\.sqlite: reading \d+ of 11 tables", " ".join(first.stderr.split()))
    assert "skipping PlaylistTrack (8,715 rows, only keys: a link table" in " ".join(first.stderr.split())
    out = first.stdout
    assert re.search(rf"Indexed \d+ source\(s\), 0 unchanged, {BROKEN} not indexed, 0 removed", out)
    assert "duplicate: " in out and "b-contingency-export.eml: the same source as" in out
    assert "removed:" not in out  # a first run removes nothing


def test_an_unchanged_archive_is_a_true_no_op(life):
    paths, archive, _ = life
    again = json.loads(memex("ingest", str(archive), "--json", check=2).stdout)
    assert (again["indexed"], again["removed"], again["chunks_added"], again["chunks_removed"]) == (
        0,
        0,
        0,
        0,
    )
    assert again["unchanged"] > 1000


def test_an_outlook_calendar_with_spaces_in_its_rule_is_read(life):
    hits = json.loads(memex("search", "Platform standup", "--json", "-k", "3").stdout)
    assert hits and "/calendar/outlook.ics#" in hits[0]["source"], hits  # its occurrences were read
    assert "Platform standup" in hits[0]["text"]


def test_a_user_not_in_the_policy_is_named_as_such(life):
    done = memex("search", "budget", "--as", "bob", check=None)
    assert done.returncode != 0
    assert "there is no user 'bob' in the policy" in done.stderr
    assert "ingest" not in done.stderr  # not "nothing indexed yet"


def test_show_takes_a_mailbox_or_a_database_file(life):
    paths, archive, _ = life
    mbox = memex("show", str(archive / "kestrel" / "mail" / "kestrel-2026.mbox")).stdout
    assert "Q2 2026 budget" in mbox
    rows = memex("show", str(archive / "Chinook.sqlite"), "--json").stdout
    assert len(json.loads(rows)) > 100


def test_status_gives_the_totals_and_a_short_list_of_what_was_skipped(life):
    status = memex("status").stdout
    assert re.search(r"Sources: +\d+ in the ledger", status)
    assert f"Not indexed: {BROKEN}" in status
    listed = [line for line in status.splitlines() if "/downloads/broken-" in line]
    assert len(listed) == 10  # not all of them, every time
    assert f"... and {BROKEN - 10} more: memex status --json lists them all" in status


def test_output_cut_short_exits_quietly(life):
    done = subprocess.Popen([MEMEX, "export"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    done.stdout.readline()
    done.stdout.close()
    err = done.stderr.read()
    assert done.wait(timeout=60) == 141 and err == b""


def test_help_lists_commands_in_the_order_of_use_without_type_placeholders(life):
    text = memex("--help").stdout
    order = [
        re.search(rf"│ {name} ", text).start()
        for name in ("init", "ingest", "ask", "search", "chat", "show", "status")
    ]
    assert order == sorted(order)
    for command in ("ingest", "search", "ask"):
        assert not re.search(r"<(bool|int|list\[str\]|str)>", memex(command, "--help").stdout)


def test_a_writer_that_cannot_be_handed_over_names_the_owner(life):
    paths, archive, _ = life
    pid = daemon_process.running_pid(paths)
    forget = memex("--no-daemon", "forget", str(archive / "saved-mail"), check=3)
    assert f"is in use by process {pid} (memex daemon)" in forget.stderr
