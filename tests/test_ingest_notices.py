"""What an ingest says besides its progress (issue 17): third-party warnings land in the report
with the file they came from (shown with --verbose, counted without), not through the progress
bars; a connector's notice (a database's plan) reaches the person before the rows are read."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import sys
import warnings

import pytest
from typer.testing import CliRunner

from memex.ingest.notices import captured
from memex.ingest.sandbox import ParserPool
from tests.conftest import data_dir, memex_with_fakes


def noisy() -> str:
    """A parse that warns three ways, as real parsers do."""
    warnings.warn("the file encoding was guessed", UserWarning, stacklevel=1)
    logging.getLogger("someparser").warning("skipping a broken table cell")
    print("[WARNING] could not load include file", file=sys.stderr)
    return "text"


def test_a_parser_process_returns_what_it_warned_with_its_result():
    with ParserPool() as pool:
        [(key, value)] = list(pool.map([("k", noisy)]))
        said = pool.take_warnings(key)
    assert value == "text"
    assert any("UserWarning: the file encoding was guessed" in s for s in said)
    assert any("someparser: skipping a broken table cell" in s for s in said)
    assert any("could not load include file" in s for s in said)
    assert pool.take_warnings(key) == []  # taken once


def test_in_process_capture_keeps_the_terminal_clean(capsys):
    value, said = captured(noisy)
    assert value == "text" and len(said) == 3
    assert capsys.readouterr().err == ""


@pytest.fixture
def noisy_files(tmp_path):
    """Real documents whose parsers warn (a missing include, a guessed encoding)."""
    documents = data_dir("documents_unstructured")
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("README-w-include.org", "fake-html-cp1252.html", "README.md"):
        shutil.copy(documents / name, folder / name)
    return folder


def test_warnings_go_into_the_report_with_their_file(memex_home, noisy_files, capfd):
    with memex_with_fakes(memex_home) as memex:
        report = memex.ingest([str(noisy_files)])
    assert report.ok and len(report.indexed) == 3
    by_file = {uri.rsplit("/", 1)[-1] for uri, _ in report.warnings}
    assert by_file == {"README-w-include.org", "fake-html-cp1252.html"}
    assert any("Could not load include file" in text for _, text in report.warnings)
    assert "include file" not in capfd.readouterr().err  # nothing printed through the bars


def test_the_cli_counts_warnings_and_verbose_shows_them(memex_home, noisy_files, monkeypatch):
    from memex.cli.main import app
    from memex.models.embeddings import HashingEmbedder

    monkeypatch.setattr("memex.models.choice.SentenceTransformerEmbedder", lambda *a, **k: HashingEmbedder())
    runner = CliRunner()
    quiet = runner.invoke(app, ["ingest", str(noisy_files)], catch_exceptions=False)
    assert quiet.exit_code == 0, quiet.output
    assert "warning(s) from parsers and libraries about 2 file(s)" in quiet.output
    assert "Could not load include file" not in quiet.output
    (noisy_files / "README-w-include.org").write_text(
        (noisy_files / "README-w-include.org").read_text() + "\nmore\n"
    )
    loud = runner.invoke(app, ["ingest", str(noisy_files), "--verbose"], catch_exceptions=False)
    assert "README-w-include.org: pypandoc: Could not load include file" in loud.output


def test_a_database_plan_is_told_before_its_rows_are_read(memex_home, tmp_path):
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
            "CREATE TABLE bundle (id INTEGER PRIMARY KEY, title TEXT);"
            "CREATE TABLE bundle_product (bundle_id INTEGER REFERENCES bundle(id),"
            " product_id INTEGER REFERENCES product(id), PRIMARY KEY (bundle_id, product_id));"
            "INSERT INTO product VALUES (1, 'Chai', 18.0), (2, 'Chang', 19.0);"
            "INSERT INTO bundle VALUES (1, 'Tea box');"
            "INSERT INTO bundle_product VALUES (1, 1), (1, 2);"
        )
    noted: list[str] = []

    class Notes:
        def begin(self, stage, total):
            pass

        def advance(self, stage, n=1):
            pass

        def grow(self, stage, n):
            pass

        def note(self, text):
            noted.append(text)

    with memex_with_fakes(memex_home) as memex:
        report = memex.ingest([str(db)], progress=Notes())
    [line] = [n for n in noted if "shop.sqlite" in n]
    assert "skipping bundle_product" in line and "link table" in line
    assert report.notices == noted
