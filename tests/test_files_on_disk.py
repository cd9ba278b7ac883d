"""What memex leaves on disk (issue 15, sections 2 and 8): MEMEX_HOME is its owner's only, whatever
the umask, and text removed by `memex forget` (or a deleted file read again) cannot be recovered
from any byte under MEMEX_HOME."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memex.store import filemodes, sqlite

CANARY = b"zebracanary5521quokka"


def bytes_under(home: Path, needle: bytes) -> list[str]:
    """Files under `home` holding `needle`, in any case."""
    found = []
    for folder, _, files in os.walk(home):
        for name in files:
            path = Path(folder) / name
            data = path.read_bytes()
            if needle in data or needle.upper() in data:
                found.append(str(path.relative_to(home)))
    return sorted(found)


def modes(home: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(home.stat().st_mode)}
    for folder, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if not path.is_symlink():
                out[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return out


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def cli():
    from memex.cli.main import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def ingested(memex_home, kestrel, cli, monkeypatch, loose_umask):
    """The Kestrel archive ingested through the CLI (hashing embedder: no model needed) with a
    canary file beside it, and a search and an ask recorded in the audit log."""
    from memex.models.embeddings import HashingEmbedder

    monkeypatch.setattr("memex.models.choice.SentenceTransformerEmbedder", lambda *a, **k: HashingEmbedder())
    (kestrel / "handbook" / "canary.txt").write_text(f"The locker code is {CANARY.decode()}.\n" * 3)
    assert cli("init", "--policy", "company.yaml").exit_code == 0
    result = cli("ingest", str(kestrel))
    assert result.exit_code == 0, result.output
    cli("search", "locker code", "--as", "pat")
    return kestrel


def test_memex_home_and_everything_in_it_is_owner_only_whatever_the_umask(ingested, memex_home):
    found = modes(memex_home)
    assert found["."] == 0o700
    for name in ("ledger.sqlite", "audit.sqlite", "policy.yaml", "store/lexical.sqlite"):
        assert found[name] == 0o600, name
    assert any(name.startswith("store/chroma/") for name in found)
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert loose == {}


def test_an_existing_loose_home_is_tightened_once_and_status_names_what_others_can_read(
    ingested, memex_home, cli, capsys
):
    os.chmod(memex_home, 0o755)
    os.chmod(memex_home / "audit.sqlite", 0o644)
    os.chmod(memex_home / "store", 0o755)
    assert filemodes.loose_paths(memex_home) == sorted(
        [str(memex_home), str(memex_home / "audit.sqlite"), str(memex_home / "store")]
    )
    result = cli("status", "--as", "pat")
    assert "readable" in result.stderr or "read or write" in result.stderr
    assert str(memex_home / "audit.sqlite") in result.stderr
    assert filemodes.loose_paths(memex_home) == []
    again = cli("status", "--as", "pat")
    assert "tightened" not in again.stderr and "warning" not in again.stderr


def test_status_warns_about_what_it_cannot_tighten(ingested, memex_home, cli, monkeypatch):
    os.chmod(memex_home / "ledger.sqlite", 0o666)
    monkeypatch.setattr(filemodes, "secure_home", lambda *a, **k: [])  # e.g. another account's file
    result = cli("status", "--as", "pat", "--json")
    assert str(memex_home / "ledger.sqlite") in result.stderr
    assert json.loads(result.stdout)["loose_permissions"] == [str(memex_home / "ledger.sqlite")]


def test_a_group_socket_gets_a_0710_home_and_no_more(memex_home, loose_umask):
    memex_home.mkdir(mode=0o755)
    (memex_home / "ledger.sqlite").write_text("")
    filemodes.secure_home(memex_home, socket_mode=0o660, note=lambda line: None)
    assert stat.S_IMODE(memex_home.stat().st_mode) == 0o710
    assert stat.S_IMODE((memex_home / "ledger.sqlite").stat().st_mode) == 0o600
    assert filemodes.loose_paths(memex_home, socket_mode=0o660) == []
    assert filemodes.loose_paths(memex_home) == [str(memex_home)]


def test_sqlite_files_are_0600_with_their_wal_and_shm(tmp_path, loose_umask):
    db = sqlite.connect(tmp_path / "x.sqlite")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    for name in ("x.sqlite", "x.sqlite-wal", "x.sqlite-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    db.close()


# -- section 8: deletion -------------------------------------------------------------------------
def test_forget_leaves_no_byte_of_the_text_under_memex_home(ingested, memex_home, cli):
    assert "store/lexical.sqlite" in bytes_under(memex_home, CANARY)  # the scan sees it when there
    result = cli("forget", str(ingested / "handbook" / "canary.txt"))
    assert result.exit_code == 0 and "Removed 1 source(s)" in result.output
    assert bytes_under(memex_home, CANARY) == []
    after = cli("search", "office days", "--as", "alice", "--json")
    assert after.exit_code == 0 and "employee-handbook.md" in after.stdout  # the store still works


def test_a_deleted_file_read_again_then_purged_leaves_nothing(ingested, memex_home, cli):
    (ingested / "handbook" / "canary.txt").unlink()
    assert cli("ingest", str(ingested)).exit_code == 0
    assert cli("forget", "--purge").exit_code == 0
    assert bytes_under(memex_home, CANARY) == []
