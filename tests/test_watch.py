"""The watcher keeps the index equal to the disk, whatever way files are saved, moved or deleted.

Each test runs the daemon's loop (memex.daemon.watcher.Service) in a thread over a fake Memex (hashing
embedder), changes files the way editors and tools do, and waits until the ledger's indexed
sources, with their content hashes, equal the files on disk, and the store equals the ledger.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from memex.api.reads import Reads
from memex.daemon.watch import coalesce
from tests.watch_support import QUIET, Running, consistent, disk_state, index_state, wait_until


@pytest.fixture
def folder(tmp_path) -> Path:
    """A watched folder whose files the company policy labels (staff, internal)."""
    root = tmp_path / "kestrel"
    (root / "handbook").mkdir(parents=True)
    (root / "handbook" / "welcome.md").write_text("# Welcome\n\nThe Lisbon office opens at nine.\n")
    (root / "handbook" / "travel.txt").write_text("Book trains, not planes, under 600 km.\n")
    return root


def converged(memex, root: Path, timeout: float = 20.0) -> bool:
    return wait_until(lambda: index_state(memex) == disk_state(root) and consistent(memex), timeout)


def assert_converged(memex, root: Path, timeout: float = 20.0) -> None:
    assert converged(memex, root, timeout), (sorted(index_state(memex)), sorted(disk_state(root)))


def search_uris(memex, query: str, user: str = "alice") -> list[str]:
    hits = Reads(memex).search(query, principal=memex.policy.principal(user), k=20, mode="lexical")
    return sorted({hit.uri for hit in hits})


def test_startup_reconcile_then_a_new_file_is_searchable(fake_memex, folder):
    with Running(fake_memex, [folder]) as running:
        assert_converged(fake_memex, folder)
        note = folder / "handbook" / "harrier.md"
        note.write_text("The harrier outage ended when the certificate was renewed.\n")
        assert_converged(fake_memex, folder)
        assert note.as_posix() in search_uris(running.reader, "harrier certificate renewed")
        assert running.crashed is None


def test_in_place_write_without_truncating(fake_memex, folder):
    path = folder / "handbook" / "travel.txt"
    with Running(fake_memex, [folder]):
        with open(path, "r+b") as handle:
            handle.write(b"Take")  # same length: only bytes change
        assert_converged(fake_memex, folder)
        assert index_state(fake_memex)[path.as_posix()] == disk_state(folder)[path.as_posix()]


def test_truncate_and_write(fake_memex, folder):
    path = folder / "handbook" / "welcome.md"
    with Running(fake_memex, [folder]) as running:
        with open(path, "w") as handle:
            handle.write("# Welcome\n\nThe Lisbon office moved to the Alfama.\n")
        assert_converged(fake_memex, folder)
        assert search_uris(running.reader, "Alfama") == [path.as_posix()]


def _gedit(path: Path, text: str) -> None:
    temporary = path.with_name(f".goutputstream-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _vim(path: Path, text: str) -> None:
    """vim with backupcopy=no: probe file 4913, rename to FILE~, write FILE anew, drop FILE~."""
    probe = path.with_name("4913")
    probe.write_text("")
    probe.unlink()
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    path.write_text(text)
    backup.unlink()


def _jetbrains(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + "___jb_tmp___")
    old = path.with_name(path.name + "___jb_old___")
    temporary.write_text(text)
    os.rename(path, old)
    os.rename(temporary, path)
    old.unlink()


def _sed(path: Path, text: str) -> None:
    """GNU sed -i: writes ./sedXXXXXX next to the file, then renames it over the file."""
    original = path.read_text()
    first = original.splitlines()[0]
    subprocess.run(["sed", "-i", f"1s/.*/{text.strip()}/", str(path)], check=True)
    assert path.read_text().startswith(text.strip()) and first not in path.read_text()


def _python_tempfile(path: Path, text: str) -> None:
    """tempfile.NamedTemporaryFile in the same folder (a name like tmpab12cd34, not ignored)
    and os.replace: the temporary file must never be indexed."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as handle:
        handle.write(text)
        handle.flush()
        time.sleep(QUIET * 0.5)
    os.replace(handle.name, path)


@pytest.mark.parametrize("save", [_gedit, _vim, _jetbrains, _sed, _python_tempfile])
def test_atomic_saves(fake_memex, folder, save):
    path = folder / "handbook" / "travel.txt"
    with Running(fake_memex, [folder]) as running:
        assert_converged(fake_memex, folder)
        before = len(running.indexed_ever())
        for n in range(3):
            save(path, f"Travel rule {n}: trains under 600 km\n")
            assert_converged(fake_memex, folder)
        indexed = set(running.indexed_ever())
        assert indexed <= set(disk_state(folder)), indexed  # no temporary file, ever
        assert running.indexed_ever()[before:] == [path.as_posix()] * 3, running.events


def test_rename_and_delete(fake_memex, folder):
    old, new = folder / "handbook" / "travel.txt", folder / "handbook" / "travel-policy.txt"
    with Running(fake_memex, [folder]) as running:
        os.rename(old, new)
        assert_converged(fake_memex, folder)
        assert search_uris(running.reader, "trains planes") == [new.as_posix()]
        new.unlink()
        assert_converged(fake_memex, folder)
        assert search_uris(running.reader, "trains planes") == []


def test_folder_moves_and_deletes(fake_memex, folder, tmp_path):
    sub = folder / "handbook" / "it"
    (sub / "deep").mkdir(parents=True)
    for n in range(5):
        (sub / f"laptop-{n}.txt").write_text(f"Laptop rule {n}: encrypt the disk.\n")
    (sub / "deep" / "vpn.txt").write_text("The VPN is required in cafes.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    with Running(fake_memex, [folder]):
        assert_converged(fake_memex, folder)
        os.rename(sub, folder / "handbook" / "computers")  # within the watched folder
        assert_converged(fake_memex, folder)
        os.rename(folder / "handbook" / "computers", outside / "computers")  # out of it
        assert_converged(fake_memex, folder)
        os.rename(outside / "computers", folder / "handbook" / "returned")  # back in
        assert_converged(fake_memex, folder)
        assert len(index_state(fake_memex)) == 8
        shutil.rmtree(folder / "handbook" / "returned")
        assert_converged(fake_memex, folder)
        assert len(index_state(fake_memex)) == 2


def test_a_large_file_copied_in_pieces_is_indexed_once_complete(fake_memex, folder):
    path = folder / "handbook" / "manual.txt"
    pieces = [f"Section {n}. " + "The Falcon 2 sensor records bird calls. " * 2000 + "\n" for n in range(6)]
    with Running(fake_memex, [folder]) as running:
        with open(path, "w") as handle:
            for piece in pieces:
                handle.write(piece)
                handle.flush()
                os.fsync(handle.fileno())
                time.sleep(QUIET * 3)  # longer than the quiet period, shorter than open_quiet
        assert_converged(fake_memex, folder)
        assert running.indexed_ever().count(path.as_posix()) == 1  # never a partial copy


def test_an_event_storm_is_coalesced(fake_memex, folder):
    storm = folder / "handbook" / "unzipped"
    with Running(fake_memex, [folder]) as running:
        storm.mkdir()
        for n in range(300):
            (storm / f"page-{n:03d}.txt").write_text(f"Page {n} of the unzipped archive.\n")
        assert_converged(fake_memex, folder, timeout=60)
        batches = running.of("batch")
        assert sum(len(b["indexed"]) for b in batches) == 300
        assert len(batches) <= 10, [len(b["indexed"]) for b in batches]


def test_ignored_files_are_never_indexed(fake_memex, folder):
    fake_memex.settings = fake_memex.settings.__class__(ignore=("*.log",))
    hb = folder / "handbook"
    with Running(fake_memex, [folder]) as running:
        for name in ["a.txt.swp", "notes.txt~", "film.part", "x.crdownload", ".hidden.txt", "run.log"]:
            (hb / name).write_text("ignored content\n")
        (hb / ".git").mkdir()
        (hb / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        (hb / "real.txt").write_text("real content\n")
        assert wait_until(lambda: (hb / "real.txt").as_posix() in index_state(fake_memex))
        running.settle()
        assert sorted(index_state(fake_memex)) == sorted(
            p.as_posix() for p in [hb / "real.txt", hb / "travel.txt", hb / "welcome.md"]
        )


# -- hostile files -------------------------------------------------------------------------------
def test_hostile_files_are_killed_and_reported_while_others_are_indexed(fake_memex, folder, monkeypatch):
    """A parser that hangs and one that exhausts memory are killed by the sandbox; both files are
    recorded as failed with their reasons (memex status lists them), the daemon goes on indexing
    the other files, and a failed file is not read again until it changes."""
    from functools import partial

    import connectors.files as files
    from memex.ingest.sandbox import Limits, ParserPool
    from tests import hostile

    real = files.parse_file
    saboteurs = {"hang.txt": hostile.hang, "bomb.txt": hostile.eat_memory}
    monkeypatch.setattr(files, "partial", lambda fn, path: saboteurs.get(path.name) or partial(real, path))
    fake_memex._pool = ParserPool(limits=Limits(timeout=3, memory_mb=1024))
    hb = folder / "handbook"
    with Running(fake_memex, [folder]) as running:
        (hb / "hang.txt").write_text("this file makes the parser hang\n")
        (hb / "bomb.txt").write_text("this file makes the parser eat all memory\n")
        for n in range(5):
            (hb / f"good-{n}.txt").write_text(f"Good file {n} about the Falcon 2 sensor.\n")
        assert wait_until(lambda: len(index_state(fake_memex)) == 7, timeout=40), "\n".join(
            map(str, running.events)
        )
        (hb / "after.txt").write_text("Written after the hostile files: the harrier outage report.\n")
        assert wait_until(lambda: (hb / "after.txt").as_posix() in index_state(fake_memex), timeout=20)
        running.settle(timeout=30)
        reasons = {
            (hb / "hang.txt").as_posix(): "refused: parsing took longer than 3 s",
            (hb / "bomb.txt").as_posix(): "refused: parsing needs more than the 1024 MB memory limit",
        }
        failed = {r.uri: r.error for r in fake_memex.ledger.records(status="failed")}
        assert failed == {uri: f"failed: {reason}" for uri, reason in reasons.items()}
        status = Reads(running.reader).status(principal=fake_memex.policy.principal("root-admin"))
        assert sorted((f["source"], f["reason"]) for f in status["failures"]) == sorted(failed.items())
        reported = [(f["source"], f["reason"]) for e in running.of("batch") for f in e["failed"]]
        assert sorted(reported) == sorted(reasons.items())
        # Not retried while unchanged: a reconcile reads nothing (no 3 s hang).
        reconciles = running.service.counts["reconciles"]
        running.service.request_reconcile()
        assert wait_until(lambda: running.service.counts["reconciles"] == reconciles + 1, timeout=20)
        last = running.service.last
        assert last["event"] == "reconcile" and last["seconds"] < 2.5, last
        assert (last["indexed"], last["failed"], last["unchanged"]) == ([], [], 8), last
        assert running.thread.is_alive() and running.crashed is None
        assert sorted(index_state(fake_memex)) == sorted(
            p for p in disk_state(folder) if not p.endswith(("hang.txt", "bomb.txt"))
        )
        assert consistent(fake_memex)
        # Changed (and now harmless), it is read again and indexed.
        del saboteurs["bomb.txt"]
        (hb / "bomb.txt").write_text("Fixed: the Falcon 2 sensor manual.\n")
        assert wait_until(lambda: (hb / "bomb.txt").as_posix() in index_state(fake_memex), timeout=20)
        assert [r.uri for r in fake_memex.ledger.records(status="failed")] == [(hb / "hang.txt").as_posix()]


# -- down time -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_changes_made_while_the_daemon_was_down_converge(fake_memex, folder):
    """Stop the daemon, add, modify, delete and rename 1,000 files, start it: the index equals
    the disk, with no duplicate source, citation or chunk."""
    bulk = folder / "handbook" / "bulk"
    bulk.mkdir()
    for n in range(1000):
        (bulk / f"note-{n:04d}.txt").write_text(f"Note {n}: token{n}x about the Lisbon office.\n")
    with Running(fake_memex, [folder]):
        assert_converged(fake_memex, folder, timeout=180)
    for n in range(0, 250):
        (bulk / f"note-{n:04d}.txt").write_text(f"Note {n} rewritten: token{n}y while nobody watched.\n")
    for n in range(250, 500):
        (bulk / f"note-{n:04d}.txt").unlink()
    for n in range(500, 750):
        os.rename(bulk / f"note-{n:04d}.txt", bulk / f"renamed-{n:04d}.txt")
    for n in range(1000, 1250):
        (bulk / f"note-{n:04d}.txt").write_text(f"Note {n}: token{n}x added while nobody watched.\n")
    with Running(fake_memex, [folder]) as running:
        assert_converged(fake_memex, folder, timeout=180)
        assert len(index_state(fake_memex)) == 1000 + 2
        uris = [r.uri for r in fake_memex.ledger.records(status="indexed")]
        assert len(uris) == len(set(uris)) == 1002
        chunk_ids = running.reader.index.chunk_ids()
        assert chunk_ids == fake_memex.ledger.all_chunk_ids() and len(chunk_ids) == 1002
        assert search_uris(running.reader, "token600x") == [(bulk / "renamed-0600.txt").as_posix()]
        assert search_uris(running.reader, "token7y") == [(bulk / "note-0007.txt").as_posix()]
        assert search_uris(running.reader, "token7x") == []
        assert search_uris(running.reader, "token300x") == []


# -- where events are not delivered ----------------------------------------------------------------
def test_scanning_keeps_a_folder_current_without_events(fake_memex, folder):
    """Polling (network file systems, `watch_polling = true`): saves, renames and deletions are
    found by scanning."""
    with Running(fake_memex, [folder], watch_polling=True) as running:
        assert [w["mode"] for w in running.service.status()["watched"]] == ["scanning"]
        note = folder / "handbook" / "harrier.md"
        note.write_text("The harrier outage ended when the certificate was renewed.\n")
        assert_converged(fake_memex, folder)
        os.rename(note, folder / "handbook" / "outage.md")
        (folder / "handbook" / "travel.txt").unlink()
        assert_converged(fake_memex, folder)
        assert sorted(index_state(fake_memex)) == sorted(
            (folder / "handbook" / n).as_posix() for n in ("outage.md", "welcome.md")
        )


def test_past_the_inotify_limit_the_folder_is_scanned_and_the_sysctl_named(fake_memex, folder, monkeypatch):
    from memex.daemon import watch

    def no_watches(self, root, sink):
        raise watch.WatchLimit(28, "No space left on device")

    monkeypatch.setattr(watch.Observers, "_inotify", no_watches)
    with Running(fake_memex, [folder]) as running:
        (mode,) = running.service.status()["watched"]
        assert (mode["mode"], mode["reason"]) == (
            "scanning",
            "the inotify watch limit was reached (fs.inotify.max_user_watches)",
        )
        (note,) = running.of("note")
        assert "sudo sysctl fs.inotify.max_user_watches=524288" in note["message"]
        (folder / "handbook" / "new.txt").write_text("Found by scanning.\n")
        assert_converged(fake_memex, folder)


def test_a_kernel_queue_overflow_triggers_a_reconcile(fake_memex, folder):
    """watchdog only logs an overflow (events were lost): the daemon reconciles the folder."""
    import logging

    with Running(fake_memex, [folder]) as running:
        reconciles = running.service.counts["reconciles"]
        logging.getLogger("watchdog.observers.inotify_c").warning("Inotify event queue overflowed")
        assert wait_until(lambda: running.service.counts["reconciles"] == reconciles + 1, timeout=20)


def test_ledger_at_path_finds_a_folder_its_contents_and_parts_but_not_its_neighbours(fake_memex, tmp_path):
    hb = tmp_path / "kestrel" / "handbook"
    for name in ["b/f.txt", "b/deep/g.txt", "bc/h.txt", "b.txt", "b-c.txt"]:
        (hb / name).parent.mkdir(parents=True, exist_ok=True)
        (hb / name).write_text(f"{name} of the Lisbon office.\n")
    fake_memex.ingest([str(hb)])
    by_uri = {r.uri: r.source_id for r in fake_memex.ledger.records(status="indexed")}

    def at(path: str) -> list[str]:
        ids = fake_memex.ledger.at_path((hb / path).as_posix())
        return sorted(uri.rsplit("handbook/", 1)[1] for uri, sid in by_uri.items() if sid in ids)

    assert len(by_uri) == 5
    assert at("b") == ["b/deep/g.txt", "b/f.txt"]
    assert at("b/") == ["b/deep/g.txt", "b/f.txt"]
    assert at("b.txt") == ["b.txt"]
    assert at("bc") == ["bc/h.txt"]
    assert at("b/f.txt") == ["b/f.txt"]
    assert at("nothing") == []


# -- settling, on a fake clock ---------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _debouncer(stats: dict):
    from memex.daemon.watch import Debouncer

    clock = _Clock()
    return Debouncer(quiet=0.5, open_quiet=5.0, clock=clock, stat=lambda p: stats.get(p)), clock


def test_a_closed_file_is_ready_after_the_quiet_period():
    debouncer, clock = _debouncer({"/w/a.txt": (10, 1, 7)})
    debouncer.touch("/w/a.txt", stable=True)
    clock.now += 0.49
    assert debouncer.ready() == []
    clock.now += 0.02
    assert debouncer.ready() == ["/w/a.txt"] and len(debouncer) == 0


def test_a_file_still_open_for_writing_waits_and_a_growing_file_is_never_ready():
    stats = {"/w/big.iso": (100, 1, 7)}
    debouncer, clock = _debouncer(stats)
    debouncer.touch("/w/big.iso", writing=True)  # modified, not closed
    clock.now += 4.9
    assert debouncer.ready() == []  # quiet for 4.9 s, but open for writing: waits open_quiet
    clock.now += 0.2
    assert debouncer.ready() == []  # first look at its size
    stats["/w/big.iso"] = (200, 2, 7)  # it grew without an event (a slow copy)
    clock.now += 0.5
    assert debouncer.ready() == []
    clock.now += 0.5
    assert debouncer.ready() == ["/w/big.iso"]  # unchanged over a whole quiet period


def test_a_folder_waits_for_what_is_pending_inside_it():
    stats = {"/w/new": (-1, 0, 1), "/w/new/a.txt": (5, 1, 2)}
    debouncer, clock = _debouncer(stats)
    debouncer.touch("/w/new", stable=True)
    debouncer.touch("/w/new/a.txt", writing=True)
    clock.now += 1.0
    assert debouncer.ready() == []  # the folder is settled, the file in it is still written
    debouncer.touch("/w/new/a.txt", stable=True)  # closed
    clock.now += 0.6
    assert debouncer.ready() == ["/w/new", "/w/new/a.txt"]
    assert coalesce(["/w/new", "/w/new/a.txt", "/w/newer.txt"]) == ["/w/new", "/w/newer.txt"]
