"""The database connector on a real PostgreSQL server (started here on loopback), loaded with the
Oracle HR sample copied row for row from its SQLite file: the same documents as from SQLite,
labels, incremental sync, and clear errors for bad credentials and unreachable servers."""

from __future__ import annotations

from collections import Counter

import pytest

from connectors.database import DatabaseConnector
from memex.api.reads import Reads
from memex.errors import ParseError
from tests.conftest import data_dir
from tests.postgres import copy_sqlite, running_postgres
from tests.test_database import HR_POLICY, row_counts, table_counts, text_of


@pytest.fixture(scope="module")
def pg():
    source = data_dir("sql_oracle_hr") / "hr.sqlite"
    with running_postgres() as server:
        counts = copy_sqlite(source, server, "hr")
        assert counts == table_counts(source)
        yield server


@pytest.fixture
def pg_hr(pg, monkeypatch):
    """A fresh copy of the HR database for a test that changes it; PGPASSWORD set."""
    import uuid

    name = f"hr_{uuid.uuid4().hex[:8]}"
    copy_sqlite(data_dir("sql_oracle_hr") / "hr.sqlite", pg, name)
    monkeypatch.setenv("PGPASSWORD", pg.password)
    yield pg.url(name), name
    with pg.admin() as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def documents(target: str, **options) -> dict[str, object]:
    return {d.source_id: d for d in DatabaseConnector(target, **options).load()}


def test_postgres_gives_the_same_documents_as_sqlite(pg, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", pg.password)
    from_pg = documents(pg.url("hr"))
    from_sqlite = documents(str(data_dir("sql_oracle_hr") / "hr.sqlite"))
    assert row_counts(from_pg.values()) == table_counts(data_dir("sql_oracle_hr") / "hr.sqlite")
    assert Counter(d.attributes["kind"] for d in from_pg.values()) == {"row": 216, "column": 180}
    assert sorted(from_pg) == sorted(from_sqlite)
    for source_id, doc in from_pg.items():
        twin = from_sqlite[source_id]
        assert (doc.title, text_of(doc)) == (twin.title, text_of(twin)), source_id
        assert {k: v for k, v in doc.attributes.items() if k != "path"} == {
            k: v for k, v in twin.attributes.items() if k != "path"
        }
    assert "path" not in from_pg["db:hr/employees/100"].attributes


@pytest.fixture
def hr_pg_memex(memex_home):
    """The HR test policy, for a PostgreSQL database named hr_*."""
    from memex.access.policyfile import parse_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    policy = parse_policy(HR_POLICY.replace("database: hr", 'database: "hr*"'), origin="hr-test-policy")
    memex = Memex(
        Paths(memex_home), policy=policy, embedder=HashingEmbedder(), model=FakeModel(), writable=True
    )
    yield memex
    memex.close()


def test_incremental_sync_on_postgres(hr_pg_memex, pg_hr):
    url, name = pg_hr
    import psycopg

    first = hr_pg_memex.ingest([url])
    assert first.failures == [] and (len(first.indexed), first.chunks_added) == (396, 396)
    unchanged = hr_pg_memex.ingest([url])
    assert (len(unchanged.indexed), unchanged.unchanged, unchanged.chunks_added) == (0, 396, 0)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        connection.execute("UPDATE employees SET salary = 25000 WHERE employee_id = 100")
        connection.execute("DELETE FROM job_history WHERE employee_id = 200")
        connection.execute("DELETE FROM employees WHERE employee_id = 200")
    synced = hr_pg_memex.ingest([url])
    assert (synced.indexed, synced.chunks_added) == ([f"db:{name}/employees/100#salary"], 1)
    assert sorted(synced.removed) == [
        f"db:{name}/employees/200",
        f"db:{name}/employees/200#salary",
        f"db:{name}/job_history/200,2005-09-17",
        f"db:{name}/job_history/200,2012-07-01",
    ]
    hana = hr_pg_memex.policy.principal("hana")
    assert (
        Reads(hr_pg_memex)
        .show(f"db:{name}/employees/100#salary", principal=hana)[0]
        .text.endswith("salary: 25000")
    )
    assert Reads(hr_pg_memex).show(f"db:{name}/employees/200", principal=hana) == []
    again = hr_pg_memex.ingest([url])
    assert (len(again.indexed), again.chunks_added, again.removed) == (0, 0, [])


def test_salaries_on_postgres_for_hr_only(hr_pg_memex, pg_hr):
    url, name = pg_hr
    report = hr_pg_memex.ingest([url])
    assert report.failures == [] and len(report.indexed) == 396
    hana, pat = hr_pg_memex.policy.principal("hana"), hr_pg_memex.policy.principal("pat")
    answer = Reads(hr_pg_memex).ask("What is Steven King's salary?", principal=hana)
    assert answer.citations[0].source == f"db:{name}/employees/100#salary" and "salary: 24000" in answer.text
    told = Reads(hr_pg_memex).ask("What is Steven King's salary?", principal=pat)
    assert all("#" not in c.source for c in told.citations)
    assert "24000" not in told.text and "salary:" not in told.text.replace(
        "What is Steven King's salary?", ""
    )


def unreadable(memex, target: str) -> str:
    """The reason an ingest of `target` gives when the target cannot be read at all: reported
    as the target's failure (the rest of a run goes on), nothing indexed, nothing removed."""
    before = memex.ledger.counts()
    report = memex.ingest([target])
    assert (report.indexed, report.removed, [f.kind for f in report.failures]) == ([], [], ["failed"])
    assert memex.ledger.counts() == before
    reason = report.failures[0].reason
    assert reason.startswith("stopped reading: "), reason
    return reason.removeprefix("stopped reading: ")


def test_a_declaration_takes_the_password_from_its_environment_variable(
    hr_pg_memex, pg, tmp_path, monkeypatch
):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("MEMEX_TEST_HR_PASSWORD", pg.password)
    declaration = tmp_path / "sources" / "hr.database.yaml"
    declaration.parent.mkdir()
    declaration.write_text(
        f"name: hr\nurl: {pg.url('hr')}\npassword_env: MEMEX_TEST_HR_PASSWORD\n"
        "tables: {employees: {}, departments: {}}\n"
    )
    report = hr_pg_memex.ingest([str(declaration)])
    assert report.failures == [] and len(report.indexed) == 107 + 142 + 27
    stored = b"".join(p.read_bytes() for p in hr_pg_memex.paths.root.rglob("*") if p.is_file())
    assert pg.password.encode() not in stored
    monkeypatch.setenv("MEMEX_TEST_HR_PASSWORD", "not-the-password")
    caught = unreadable(hr_pg_memex, str(declaration))
    assert caught == (
        f"cannot open postgresql+psycopg://memex@127.0.0.1:{pg.port}/hr: connection failed: connection "
        f'to server at "127.0.0.1", port {pg.port} failed: FATAL:  password authentication failed for '
        'user "memex"; check the user name and the password in the environment variable MEMEX_TEST_HR_PASSWORD'
    )


def test_bad_credentials_and_unreachable_servers_fail_with_nothing_written(hr_pg_memex, pg, monkeypatch):
    from tests.postgres import _free_port

    monkeypatch.setenv("PGPASSWORD", "wrong-password")
    caught = unreadable(hr_pg_memex, pg.url("hr"))
    assert "password authentication failed for user" in caught
    assert caught.endswith("; check the user name and the password in PGPASSWORD or ~/.pgpass")
    assert "wrong-password" not in caught
    port = _free_port()
    caught = unreadable(hr_pg_memex, f"postgresql+psycopg://memex@127.0.0.1:{port}/hr")
    assert caught.startswith(f"cannot open postgresql+psycopg://memex@127.0.0.1:{port}/hr: ")
    assert caught.endswith("; is the server running and reachable at that address?")
    monkeypatch.setenv("PGPASSWORD", pg.password)
    caught = unreadable(hr_pg_memex, pg.url("no_such_db"))
    assert 'database "no_such_db" does not exist; check the database name in the URL' in caught
    assert "carries a password" in unreadable(
        hr_pg_memex, f"postgresql+psycopg://memex:{pg.password}@127.0.0.1:{pg.port}/hr"
    )
    assert hr_pg_memex.ledger.counts() == {} and hr_pg_memex.ledger.roots() == []


def test_sessions_are_read_only(pg, tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", pg.password)
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "hr.database.yaml").write_text(
        f"url: {pg.url('hr')}\ntables:\n  grab: {{query: 'SELECT * FROM employees FOR UPDATE', key: employee_id}}\n"
    )
    with pytest.raises(ParseError) as caught:
        next(DatabaseConnector(str(folder)).load())
    assert str(caught.value).endswith(
        "the query declared for grab failed: cannot execute SELECT in a read-only transaction"
    )


def test_postgres_streams_through_a_server_side_cursor(pg, monkeypatch):
    """yield_per makes SQLAlchemy open a named (server-side) cursor; the rows arrive in batches."""
    import psycopg

    monkeypatch.setenv("PGPASSWORD", pg.password)
    opened = []
    original = psycopg.Connection.cursor

    def cursor(self, *args, **kwargs):
        made = original(self, *args, **kwargs)
        opened.append(type(made).__name__)
        return made

    monkeypatch.setattr(psycopg.Connection, "cursor", cursor)
    docs = documents(pg.url("hr"))
    assert len(docs) == 396
    assert opened.count("ServerCursor") == 7  # one per table


def test_a_declared_schema_with_foreign_keys_into_another(pg_hr, tmp_path):
    import psycopg

    url, name = pg_hr
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        connection.execute("CREATE SCHEMA crm")
        connection.execute(
            "CREATE TABLE crm.accounts (account_id integer PRIMARY KEY, name text NOT NULL,"
            " owner_id integer REFERENCES public.employees (employee_id), iban text)"
        )
        connection.execute(
            "INSERT INTO crm.accounts VALUES (1, 'Nordwind Traders', 145, 'PT50000201231234567890154')"
        )
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "crm.database.yml").write_text(f"name: crm\nurl: {url}\nschema: crm\n")
    docs = documents(str(folder))
    assert sorted(docs) == ["db:crm/accounts/1", "db:crm/accounts/1#iban"]
    assert text_of(docs["db:crm/accounts/1"]) == (
        "Account record (table accounts, account_id 1)\naccount_id: 1\nname: Nordwind Traders\n"
        "owner: John Singh (owner_id 145)"
    )
    assert docs["db:crm/accounts/1"].attributes["field.owner"] == "John Singh"
