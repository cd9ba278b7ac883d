"""Which tables of a database are read: link tables (only keys) and tables over the row limit are
skipped unless asked for (-o tables=..., -o max_rows=N, a declaration), a link table's links are
listed in the rows it links, and one line says what is read and skipped before a row is read."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from connectors.database import DatabaseConnector, Plan, plan
from connectors.database.selection import MAX_ROWS
from memex.errors import ParseError
from tests.conftest import data_dir, memex_with_fakes
from tests.test_database import row_counts, text_of

LOGGER = "memex.connectors.database"


def chinook() -> Path:
    return data_dir("sql_chinook") / "Chinook_Sqlite.sqlite"


@pytest.fixture
def club(tmp_path) -> Path:
    """A small club database: people, groups, a link table between them, and a log of visits."""
    path = tmp_path / "club" / "club.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE people (person_id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE groups (group_id INTEGER PRIMARY KEY, title TEXT);
            CREATE TABLE memberships (
                person_id INTEGER REFERENCES people(person_id),
                group_id INTEGER REFERENCES groups(group_id),
                PRIMARY KEY (person_id, group_id));
            CREATE TABLE visits (visit_id INTEGER PRIMARY KEY,
                person_id INTEGER REFERENCES people(person_id), at TEXT);
            INSERT INTO people VALUES (1, 'Ana Lopes'), (2, 'Ben Okafor'), (3, 'Cai Wen');
            INSERT INTO groups VALUES (1, 'Chess'), (2, 'Climbing');
            INSERT INTO memberships VALUES (1, 1), (1, 2), (2, 2);
            """
        )
        db.executemany(
            "INSERT INTO visits VALUES (?, ?, ?)",
            [(i, 1 + i % 3, f"2026-01-{1 + i % 28:02d}") for i in range(30)],
        )
    return path


def write_declaration(folder: Path, text: str) -> Path:
    path = folder / "club.database.yaml"
    path.write_text(text)
    return path


# --- link tables ----------------------------------------------------------------------------


def test_a_link_table_is_skipped_by_default_and_its_links_are_listed_in_the_rows_it_links():
    docs = {d.source_id: d for d in DatabaseConnector(str(chinook())).load()}
    assert "PlaylistTrack" not in row_counts(docs.values())
    assert row_counts(docs.values())["Track"] == 3503
    assert text_of(docs["db:Chinook_Sqlite/Track/1"]).endswith(
        "UnitPrice: 0.99\nPlaylist via PlaylistTrack: Heavy Metal Classic, Music"
    )
    grunge = text_of(docs["db:Chinook_Sqlite/Playlist/16"])
    assert grunge.startswith(
        "Playlist record (table Playlist, PlaylistId 16)\nPlaylistId: 16\nName: Grunge\n"
    )
    assert grunge.endswith(
        "Track via PlaylistTrack: Alive, Black Hole Sun, Come As You Are, Daughter, Drain You, Evenflow, "
        "Hunger Strike, In Bloom, Jeremy, Lithium, Man In The Box, On A Plain, Outshined, Plush, "
        "Smells Like Teen Spirit"
    )
    music = text_of(docs["db:Chinook_Sqlite/Playlist/1"])  # 3,290 links, 3,052 distinct names
    assert music.endswith(", and 3,032 more")

    # Not asked for in a list of tables: the same.
    chosen = {d.source_id: d for d in DatabaseConnector(str(chinook()), tables="Playlist,Track").load()}
    assert row_counts(chosen.values()) == {"Playlist": 18, "Track": 3503}
    assert text_of(chosen["db:Chinook_Sqlite/Track/1"]) == text_of(docs["db:Chinook_Sqlite/Track/1"])
    (listed,) = plan(str(chinook()), tables="Playlist,Track")
    assert (
        "PlaylistTrack (8,715 rows, not asked for; its links are listed in the Playlist and Track rows)"
        in (listed.line())
    )


@pytest.mark.parametrize(
    "tables, expected",
    [
        ("+PlaylistTrack", {"PlaylistTrack": 8715, "Track": 3503, "Album": 347}),
        ("+playlisttrack", {"PlaylistTrack": 8715, "Track": 3503, "Album": 347}),  # as SQL: any case
        ("PlaylistTrack,Genre", {"PlaylistTrack": 8715, "Genre": 25}),  # exactly these
        ("*", {"PlaylistTrack": 8715, "Track": 3503, "Album": 347}),
    ],
)
def test_a_link_table_is_read_when_asked_for(tables, expected):
    docs = {d.source_id: d for d in DatabaseConnector(str(chinook()), tables=tables).load()}
    counts = row_counts(docs.values())
    assert {t: counts.get(t) for t in expected} == expected
    if "+" not in tables and "*" not in tables:
        assert counts == expected
    first = docs["db:Chinook_Sqlite/PlaylistTrack/1,3402"]
    assert first.title == "Playlist track record: Music (PlaylistId 1, TrackId 3402)"
    if "Track" in counts:  # read on its own, a link table is not also listed in the rows it links
        assert "via PlaylistTrack" not in text_of(docs["db:Chinook_Sqlite/Track/1"])


def test_what_counts_as_a_link_table(tmp_path):
    path = tmp_path / "shapes.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE a (a_id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE b (b_id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE ab (a_id INTEGER REFERENCES a(a_id), b_id INTEGER REFERENCES b(b_id),
                             PRIMARY KEY (a_id, b_id));
            CREATE TABLE ab_dated (a_id INTEGER REFERENCES a(a_id), b_id INTEGER REFERENCES b(b_id),
                                   since TEXT, PRIMARY KEY (a_id, b_id));
            CREATE TABLE ab_undeclared (AId INTEGER, BId INTEGER, PRIMARY KEY (AId, BId));
            CREATE TABLE tags (tag TEXT PRIMARY KEY);
            CREATE TABLE word_pairs (left_word TEXT, right_word TEXT, PRIMARY KEY (left_word, right_word));
            """
        )
    (found,) = plan(str(path))
    assert {t.table: t.reason for t in found.tables} == {
        "a": "default",
        "b": "default",
        "ab": "link table",  # only keys, two foreign keys
        "ab_dated": "default",  # a column of its own: a row says something
        "ab_undeclared": "link table",  # no foreign keys declared, but two id columns in the key
        "tags": "default",  # one key column: the key is the content
        "word_pairs": "default",  # a two-column key of words, not of ids
    }


# --- the row limit ---------------------------------------------------------------------------


def test_tables_over_the_row_limit_are_skipped_unless_asked_for(club, tmp_path):
    big = tmp_path / "big.sqlite"
    with sqlite3.connect(big) as db:
        db.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, value REAL)")
        db.executemany("INSERT INTO readings VALUES (?, ?)", [(i, i / 2) for i in range(MAX_ROWS + 1)])
        db.execute("CREATE TABLE sensors (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO sensors VALUES (?, ?)", [(i, f"sensor {i}") for i in range(MAX_ROWS)])
    assert MAX_ROWS == 5_000
    assert row_counts(DatabaseConnector(str(big)).load()) == {"sensors": MAX_ROWS}  # the limit is read
    assert row_counts(DatabaseConnector(str(big), tables="+readings").load()) == {
        "sensors": MAX_ROWS,
        "readings": MAX_ROWS + 1,
    }
    assert row_counts(DatabaseConnector(str(big), max_rows="5001").load())["readings"] == MAX_ROWS + 1
    assert row_counts(DatabaseConnector(str(club), max_rows="29").load()) == {"people": 3, "groups": 2}
    assert row_counts(DatabaseConnector(str(club), max_rows="30").load())["visits"] == 30


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_rows": "lots"}, "option max_rows='lots' is not a number of rows (1 or more)"),
        ({"max_rows": "0"}, "option max_rows='0' is not a number of rows (1 or more)"),
        ({"tables": ","}, "option tables=',' names no table (e.g. -o tables=Album,Track or -o tables=*)"),
        (
            {"tables": "members,visit"},
            "club.sqlite: -o tables=members,visit: no such table (tables: groups, memberships, people, visits)",
        ),
    ],
)
def test_bad_choices_fail_before_anything_is_read(club, options, message):
    with pytest.raises(ParseError) as caught:
        next(DatabaseConnector(str(club), **options).load())
    assert str(caught.value) == message


# --- what is said before a row is read ----------------------------------------------------------


def test_one_line_says_what_is_read_and_skipped_before_the_first_row(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    documents = DatabaseConnector(str(chinook())).load()
    try:
        first = next(documents)
    finally:
        documents.close()
    assert first.source_id == "db:Chinook_Sqlite/Album/1"
    (record,) = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert record.getMessage() == (
        "Chinook_Sqlite.sqlite: reading 10 of 11 tables (6,892 rows): Album (347), Artist (275), "
        "Customer (59), Employee (8), Genre (25), Invoice (412), InvoiceLine (2,240), MediaType (5), "
        "Playlist (18), Track (3,503); skipping PlaylistTrack (8,715 rows, only keys: a link table; its "
        "links are listed in the Playlist and Track rows); add a table with -o tables=+NAME, read every "
        "table with -o tables=*, or choose in a declaration file (README: Databases)"
    )
    assert isinstance(record.plan, Plan) and record.plan.line() == record.getMessage()


def test_the_plan_without_reading(club, tmp_path):
    (default,) = plan(str(club))
    assert [(t.table, t.rows) for t in default.read] == [("groups", 2), ("people", 3), ("visits", 30)]
    assert [(t.table, t.rows, t.reason, t.linked) for t in default.skipped] == [
        ("memberships", 3, "link table", ("people", "groups"))
    ]
    assert default.rows == 35 and DatabaseConnector(str(club)).count() == 35
    assert DatabaseConnector(str(tmp_path / "gone.database.yaml")).count() is None  # load says why
    (small,) = plan(str(club), max_rows="10", tables="+memberships,nothing")
    assert small.line() == (
        "club.sqlite: reading 3 of 4 tables (8 rows): groups (2), memberships (3), people (3); "
        "skipping visits (30 rows, more than 10 rows, see -o max_rows=N); no table nothing here "
        "(asked for with -o tables); add a table with -o tables=+NAME, read every table with "
        "-o tables=*, or choose in a declaration file (README: Databases)"
    )
    hr = data_dir("sql_oracle_hr") / "hr.sqlite"
    assert DatabaseConnector(str(hr)).count() == len(list(DatabaseConnector(str(hr)).load())) == 396
    (everything,) = plan(str(hr))
    assert everything.line() == (
        "hr.sqlite: reading all 7 tables (216 rows): countries (25), departments (27), employees (107), "
        "job_history (10), jobs (19), locations (23), regions (5)"
    )


# --- declarations ------------------------------------------------------------------------------


def test_a_declaration_reads_what_it_declares(club):
    declaration = write_declaration(
        club.parent,
        "url: sqlite:///club.sqlite\ntables:\n  memberships: {}\n  visits: {}\n  groups: false\n",
    )
    docs = list(DatabaseConnector(str(club), max_rows="10").load())
    assert row_counts(docs) == {"memberships": 3, "visits": 30}  # declared: read, link or not, large or not
    (declared,) = plan(str(club), tables="+groups")
    assert [(t.table, t.reason) for t in declared.tables] == [
        ("memberships", "declared"),
        ("visits", "declared"),
        ("groups", "false in the declaration"),  # false stays false, whatever -o tables says
        ("people", "not in the declaration"),
    ]
    assert declared.line().endswith(f"or choose in {declaration} (README: Databases)")

    write_declaration(club.parent, "url: sqlite:///club.sqlite\ntables:\n  '*': {}\n")
    assert row_counts(DatabaseConnector(str(club), max_rows="10").load()) == {"people": 3, "groups": 2}


# --- ingest: no-op when unchanged, links kept current --------------------------------------------


def test_an_unchanged_reingest_is_a_noop_and_a_new_link_changes_the_two_rows_it_links(memex_home, club):
    memex = memex_with_fakes(memex_home)
    try:
        first = memex.ingest([str(club)])
        assert first.failures == [] and len(first.indexed) == 35
        again = memex.ingest([str(club)])
        assert (again.indexed, again.unchanged, again.chunks_added, again.removed) == ([], 35, 0, [])
        with sqlite3.connect(club) as db:
            db.execute("INSERT INTO memberships VALUES (3, 1)")
        linked = memex.ingest([str(club)])
        assert sorted(linked.indexed) == ["db:club/groups/1", "db:club/people/3"]
        owner = memex.policy.principal("owner")
        from memex.api.reads import Reads

        shown = Reads(memex).show("db:club/groups/1", principal=owner)[0].text
        assert "people via memberships: Ana Lopes, Cai Wen" in shown
        everything = memex.ingest([str(club)], options={"tables": "*"})
        assert sorted(everything.indexed)[:4] == [
            "db:club/groups/1",
            "db:club/groups/2",
            "db:club/memberships/1,1",
            "db:club/memberships/1,2",
        ]
        back = memex.ingest([str(club)])  # the default again: the link rows go, the links come back
        assert sorted(back.removed) == [f"db:club/memberships/{k}" for k in ("1,1", "1,2", "2,2", "3,1")]
    finally:
        memex.close()
