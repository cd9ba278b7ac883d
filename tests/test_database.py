"""The database connector on SQLite: declarations, rendering, counts per table on the shared sample
databases, row- and column-level labels, salaries that never reach staff, incremental sync, and
clear errors for bad declarations and bad data."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from connectors.database import DatabaseConnector
from connectors.database.declaration import parse_declaration
from memex.api.reads import Reads
from memex.errors import ParseError
from memex.ingest.plugins import connectors
from tests.conftest import EXAMPLES, data_dir

HR_POLICY = """
version: 1
labels: [staff, hr, finance]
levels: [internal, confidential]
roles:
  staff: {labels: [staff], level: internal}
  hr: {inherits: [staff], labels: [hr], level: confidential}
  finance: {inherits: [staff], labels: [finance]}
users:
  hana: {roles: [hr]}
  pat: {roles: [staff]}
  frank: {roles: [finance]}
sources:
  - name: hr-database
    match: {connector: database, database: hr}
    labels: [staff]
  - name: hr-pay
    match: {connector: database, database: hr, column: ["*salary*", commission_pct]}
    labels: [hr]
    level: confidential
  - name: finance-rows
    match: {connector: database, database: hr, table: employees, field.department: Finance}
    labels: [finance]
cases:
  - {user: hana, labels: [staff, hr], level: confidential, expect: allow}
  - {user: pat, labels: [staff, hr], level: confidential, expect: deny}
  - {user: frank, labels: [staff, finance], expect: allow}
  - {user: pat, labels: [staff, finance], expect: deny}
"""

# Columns that hold pay in the HR sample: never in anything a staff user gets. (Commission rates,
# 0.1 to 0.4, are too common as numbers to sweep for; their documents and the word are checked.)
HR_PAY_COLUMNS = {"employees": ("salary", "commission_pct"), "jobs": ("min_salary", "max_salary")}
HR_SALARY_COLUMNS = {"employees": ("salary",), "jobs": ("min_salary", "max_salary")}
NUMBER = re.compile(r"\b\d+\b")


def shown(hit) -> str:
    """What a hit shows a person (not its chunk id, which is hex, nor its score)."""
    return f"{hit.source_id}\n{hit.uri}\n{hit.title}\n{hit.section}\n{hit.text}"


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            n: db.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0]
            for n in names
            if not n.startswith("sqlite_")
        }


def row_counts(docs) -> dict[str, int]:
    counts = Counter(d.attributes["table"] for d in docs if d.attributes["kind"] == "row")
    return dict(counts)


def text_of(doc) -> str:
    return "\n".join(e.text for e in doc.elements())


@pytest.fixture
def hr_db(tmp_path) -> Path:
    """A private, writable copy of the Oracle HR sample."""
    target = tmp_path / "hr" / "hr.sqlite"
    target.parent.mkdir()
    shutil.copyfile(data_dir("sql_oracle_hr") / "hr.sqlite", target)
    return target


@pytest.fixture
def hr_memex(memex_home):
    from memex.access.policyfile import parse_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    memex = Memex(
        Paths(memex_home),
        policy=parse_policy(HR_POLICY, origin="hr-test-policy"),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    yield memex
    memex.close()


# --- the shared sample databases ---------------------------------------------------------------


@pytest.mark.parametrize(
    "folder, file, extra",
    [
        ("sql_chinook", "Chinook_Sqlite.sqlite", {"Employee": 8}),  # BirthDate
        ("sql_northwind", "northwind.sqlite", {"Employees": 18}),  # BirthDate, HomePhone
        ("sql_oracle_hr", "hr.sqlite", {"employees": 142, "jobs": 38}),  # pay columns with a value
    ],
)
def test_every_row_of_every_table_is_a_document_when_every_table_is_asked_for(folder, file, extra):
    path = data_dir(folder) / file
    docs = list(DatabaseConnector(str(path), tables="*").load())
    counts = table_counts(path)
    assert row_counts(docs) == {table: n for table, n in counts.items() if n}
    columns = Counter(d.attributes["table"] for d in docs if d.attributes["kind"] == "column")
    assert dict(columns) == extra
    assert len({d.source_id for d in docs}) == len(docs)


def test_hr_counts_match_the_database_exactly():
    counts = table_counts(data_dir("sql_oracle_hr") / "hr.sqlite")
    assert counts == {
        "regions": 5,
        "countries": 25,
        "locations": 23,
        "departments": 27,
        "jobs": 19,
        "employees": 107,
        "job_history": 10,
    }


def test_a_row_reads_as_a_record_with_foreign_keys_named():
    docs = {d.source_id: d for d in DatabaseConnector(str(data_dir("sql_oracle_hr") / "hr.sqlite")).load()}
    neena = docs["db:hr/employees/101"]
    assert neena.title == "Employee record: Neena Yang"
    assert neena.uri == "db:hr/employees/101"
    assert text_of(neena) == (
        "Employee record (table employees, employee_id 101)\n"
        "employee_id: 101\nfirst_name: Neena\nlast_name: Yang\nemail: NYANG\n"
        "phone_number: 1.515.555.0101\nhire_date: 2015-09-21\n"
        "job: Administration Vice President (job_id AD_VP)\n"
        "manager: Steven King (manager_id 100)\n"
        "department: Executive (department_id 90)"
    )
    assert neena.attributes["field.department"] == "Executive"
    assert neena.attributes["path"] == (data_dir("sql_oracle_hr") / "hr.sqlite").resolve().as_posix()
    assert not any("salary" in key for key in neena.attributes)
    salary = docs["db:hr/employees/101#salary"]
    assert salary.title == "Employee record: Neena Yang (salary)"
    assert salary.attributes["column"] == "salary" and salary.attributes["kind"] == "column"
    assert text_of(salary) == (
        "Employee record (table employees, employee_id 101), restricted column salary\nNeena Yang, salary: 17000"
    )
    history = docs["db:hr/job_history/101,2007-09-21"]
    assert history.title == "Job history record: Neena Yang (employee_id 101, start_date 2007-09-21)"


def test_binary_columns_are_skipped_with_a_note(caplog):
    docs = {
        d.source_id: d for d in DatabaseConnector(str(data_dir("sql_northwind") / "northwind.sqlite")).load()
    }
    nancy = docs["db:northwind/Employees/1"]
    assert nancy.metadata["not_indexed"] == ["Photo"]
    assert "Photo:" not in text_of(nancy)
    assert "PhotoPath: http://accweb/emmployees/davolio.bmp" in text_of(nancy)
    assert "BirthDate" not in text_of(nancy) and docs["db:northwind/Employees/1#BirthDate"]
    assert "northwind: Employees.Photo: binary column(s), not indexed" in caplog.text
    assert "northwind: Categories.Picture: binary column(s), not indexed" in caplog.text


# --- the connector contract --------------------------------------------------------------------


def test_what_the_connector_claims(tmp_path):
    sqlite3.connect(tmp_path / "real.db").execute("CREATE TABLE t (x)")
    (tmp_path / "fake.db").write_bytes(b"not a database at all, just bytes")
    (tmp_path / "real.txt").write_bytes((tmp_path / "real.db").read_bytes())
    (tmp_path / "crm.database.yaml").write_text("url: sqlite:///real.db\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert DatabaseConnector.claims_file(tmp_path / "real.db")
    assert not DatabaseConnector.claims_file(tmp_path / "fake.db")  # the header, not the suffix
    assert not DatabaseConnector.claims_file(tmp_path / "real.txt")  # nor a header in any file
    assert DatabaseConnector.claims_file(tmp_path / "crm.database.yaml")
    assert DatabaseConnector.claims_folder(tmp_path) and not DatabaseConnector.claims_folder(plain)
    assert DatabaseConnector.accepts("postgresql+psycopg://memex@db.example:5432/crm")
    assert DatabaseConnector.accepts("sqlite:///x.db")
    assert not DatabaseConnector.accepts("imaps://mail.example/INBOX")
    assert not DatabaseConnector.accepts(str(tmp_path / "real.txt"))


def test_a_sqlite_file_given_directly_uses_the_declaration_beside_it():
    declared = list(DatabaseConnector(str(EXAMPLES / "database" / "kestrel.sqlite")).load())
    via_folder = list(DatabaseConnector(str(EXAMPLES / "database")).load())
    assert [d.source_id for d in declared] == [d.source_id for d in via_folder]
    assert "db:kestrel/employees/3#salary_eur" in {d.source_id for d in declared}


def test_the_example_database_is_found_in_a_folder_walk():
    from connectors.files import FilesConnector

    docs = [d for d in FilesConnector(str(EXAMPLES), others=connectors()).load() if d.connector == "database"]
    assert row_counts(docs) == {"departments": 6, "employees": 7, "customers": 5, "deals": 5}
    assert sorted(d.source_id for d in docs if d.attributes["kind"] == "column" and "/3#" in d.source_id) == [
        "db:kestrel/employees/3#birth_date",
        "db:kestrel/employees/3#bonus_target_pct",
        "db:kestrel/employees/3#salary_eur",
    ]
    everything = "\n".join(text_of(d) + d.title + json.dumps(dict(d.attributes)) for d in docs)
    assert "Avenida Almirante Reis" not in everything  # home_address: excluded, never read
    deal = next(d for d in docs if d.source_id == "db:kestrel/deals/5")
    assert deal.title == "Sales deal: Museu Natural de Lisboa (deal_id 5)"
    assert "customer: Museu Natural de Lisboa (customer_id 5)\nowner: Sam Rivera (owner_id 6)" in text_of(
        deal
    )


# --- labels: rows, columns, and what each user gets --------------------------------------------


def test_hr_asks_a_salary_and_gets_that_row_cited(hr_memex, hr_db):
    report = hr_memex.ingest([str(hr_db)])
    assert report.failures == [] and len(report.indexed) == 396
    hana = hr_memex.policy.principal("hana")
    answer = Reads(hr_memex).ask("What is Steven King's salary?", principal=hana)
    assert answer.citations[0].source == "db:hr/employees/100#salary"
    assert sorted(answer.citations[0].labels) == ["hr", "staff"]
    prompt = "\n".join(m["content"] for m in hr_memex.model.prompts[-1])
    assert "Employee record: Steven King (salary)" in prompt and "salary: 24000" in prompt
    assert "salary: 24000" in answer.text


def test_no_salary_ever_reaches_a_staff_user(hr_memex, hr_db):
    """Every salary of the HR sample against everything a staff user gets back: hits, titles,
    prompts, answers, citations, evidence, exports."""
    hr_memex.ingest([str(hr_db)])
    pat = hr_memex.policy.principal("pat")
    with sqlite3.connect(hr_db) as db:
        people = db.execute("SELECT first_name, last_name FROM employees ORDER BY employee_id").fetchall()
        pay: set[str] = set()
        for table, columns in HR_SALARY_COLUMNS.items():
            for column in columns:
                pay |= {str(int(v)) for (v,) in db.execute(f"SELECT {column} FROM {table}") if v is not None}
        # Numbers that also occur in columns staff may read (ids, postal codes, phones) cannot
        # tell a leak apart: those are checked through the "salary" word and the documents instead.
        legit: set[str] = set()
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
            for column in set(columns) - set(HR_PAY_COLUMNS.get(table, ())):
                for (value,) in db.execute(f"SELECT {column} FROM {table}"):
                    legit |= set(NUMBER.findall(str(value)))
    telling = pay - legit
    assert len(pay) == 68 and len(telling) == 57  # the other 11 are also location ids (1000-3200)
    returned: list[str] = []
    questions = [f"What is {first} {last}'s salary?" for first, last in people]
    questions += ["salary", "commission", "pay of the sales representatives", "min_salary max_salary"]
    for question in questions:
        for hit in Reads(hr_memex).search(question, principal=pat, k=50):
            assert "#" not in hit.source_id  # no restricted column's document, whatever its text
            returned.append(shown(hit))
        prompts = len(hr_memex.model.prompts)
        answer = Reads(hr_memex).ask(question, principal=pat)
        for messages in hr_memex.model.prompts[prompts:]:  # none when nothing relevant was found
            returned.append("\n".join(m["content"] for m in messages).replace(question, ""))
        returned.append(answer.text.replace(question, ""))
        returned += [f"{c.source}\n{c.title}\n{c.section}" for c in answer.citations]
        returned += [e.sentence for e in answer.evidence]
    exported = [shown(h) for h in Reads(hr_memex).export(principal=pat)]
    assert len(exported) == 210  # every row of the seven tables but the six in Finance, nothing else
    returned += exported
    everything = "\n".join(returned)
    assert set(NUMBER.findall(everything)) & telling == set()
    assert re.search(r"salary|commission", everything, re.IGNORECASE) is None
    # ... and the same sweep finds them for HR, but for three that only people in Finance earn: the
    # row rule labels a row's column documents too, and hana lacks `finance`.
    hana_export = "\n".join(
        shown(h) for h in Reads(hr_memex).export(principal=hr_memex.policy.principal("hana"))
    )
    assert telling - set(NUMBER.findall(hana_export)) == {"6900", "7700", "7800"}


def test_rows_can_be_labelled_by_a_field(hr_memex, hr_db):
    hr_memex.ingest([str(hr_db)])
    finance = {"db:hr/employees/108", "db:hr/employees/109", "db:hr/employees/110", "db:hr/employees/111",
               "db:hr/employees/112", "db:hr/employees/113"}  # fmt: skip

    def employees(user):
        principal = hr_memex.policy.principal(user)
        hits = Reads(hr_memex).search("Employee record department Finance", principal=principal, k=500)
        return {
            h.source_id for h in hits if h.source_id.startswith("db:hr/employees/") and "#" not in h.source_id
        }

    assert employees("frank") >= finance
    assert employees("pat") & finance == set()
    assert len(employees("frank")) == 107 and len(employees("pat")) == 101


# --- incremental sync --------------------------------------------------------------------------


def test_changed_new_and_deleted_rows_are_reflected_and_nothing_else_is_touched(hr_memex, hr_db):
    first = hr_memex.ingest([str(hr_db)])
    assert (len(first.indexed), first.chunks_added) == (396, 396)
    again = hr_memex.ingest([str(hr_db)])
    assert (len(again.indexed), again.unchanged, again.chunks_added, again.chunks_removed) == (0, 396, 0, 0)

    with sqlite3.connect(hr_db) as db:
        db.execute(
            "UPDATE employees SET phone_number = '1.515.555.9999', salary = 8400 WHERE employee_id = 206"
        )
    changed = hr_memex.ingest([str(hr_db)])
    assert sorted(changed.indexed) == ["db:hr/employees/206", "db:hr/employees/206#salary"]
    assert (changed.chunks_added, changed.chunks_removed, changed.removed) == (2, 2, [])
    hana = hr_memex.policy.principal("hana")
    assert (
        "phone_number: 1.515.555.9999" in Reads(hr_memex).show("db:hr/employees/206", principal=hana)[0].text
    )
    assert "salary: 8400" in Reads(hr_memex).show("db:hr/employees/206#salary", principal=hana)[0].text

    # A new name shows wherever the row is named: rows pointing at it change with it.
    with sqlite3.connect(hr_db) as db:
        db.execute("UPDATE employees SET last_name = 'Higgins-Ortiz' WHERE employee_id = 205")
    renamed = hr_memex.ingest([str(hr_db)])
    assert sorted(renamed.indexed) == [
        "db:hr/employees/205",
        "db:hr/employees/205#salary",
        "db:hr/employees/206",
    ]
    assert (
        "manager: Shelley Higgins-Ortiz (manager_id 205)"
        in Reads(hr_memex).show("db:hr/employees/206", principal=hana)[0].text
    )

    with sqlite3.connect(hr_db) as db:
        db.execute("DELETE FROM employees WHERE employee_id = 206")
        db.execute(
            "INSERT INTO employees VALUES (207, 'Ana', 'Lopes', 'ALOPES', '1.515.555.0207', '2026-01-05',"
            " 'AC_ACCOUNT', 8100, NULL, 205, 110)"
        )
    synced = hr_memex.ingest([str(hr_db)])
    assert sorted(synced.removed) == ["db:hr/employees/206", "db:hr/employees/206#salary"]
    assert sorted(synced.indexed) == ["db:hr/employees/207", "db:hr/employees/207#salary"]
    assert Reads(hr_memex).show("db:hr/employees/206", principal=hana) == []
    assert hr_memex.ledger.counts() == {"indexed": 396}
    final = hr_memex.ingest([str(hr_db)])
    assert (len(final.indexed), final.chunks_added, final.removed) == (0, 0, [])


def test_updated_at_is_the_fingerprint_when_declared(fake_memex, kestrel):
    database = kestrel / "database" / "kestrel.sqlite"
    fake_memex.ingest([str(kestrel / "database")])
    with sqlite3.connect(database) as db:
        # Without a new updated_at the row counts as unchanged (that is what declaring it means)...
        db.execute("UPDATE employees SET job_title = 'Staff Engineer' WHERE employee_id = 3")
    assert fake_memex.ingest([str(kestrel / "database")]).indexed == []
    with sqlite3.connect(database) as db:
        db.execute("UPDATE employees SET updated_at = '2026-10-01T08:00:00' WHERE employee_id = 3")
    report = fake_memex.ingest([str(kestrel / "database")])
    assert report.indexed == ["db:kestrel/employees/3"] and report.chunks_added == 1
    dev = Reads(fake_memex).show("db:kestrel/employees/3", principal=fake_memex.policy.principal("alice"))
    assert "job_title: Staff Engineer" in dev[0].text
    assert dev[0].metadata["timestamp"] == 1790841600.0  # 2026-10-01T08:00:00 UTC


# --- the example company: who sees what ---------------------------------------------------------


def test_example_database_labels_for_each_user(fake_memex, kestrel):
    report = fake_memex.ingest([str(kestrel)])
    assert report.failures == []

    def readable(user: str) -> set[str]:
        principal = fake_memex.policy.principal(user)
        return {
            h.source_id
            for h in Reads(fake_memex).export(principal=principal)
            if h.source_id.startswith("db:")
        }

    directory = {f"db:kestrel/employees/{n}" for n in range(1, 8)} | {
        f"db:kestrel/departments/{n}" for n in range(1, 7)
    }
    customers = {f"db:kestrel/customers/{n}" for n in range(1, 5)}
    sales = {f"db:kestrel/deals/{n}" for n in range(1, 6)} | {"db:kestrel/customers/5"}
    pay = {
        f"db:kestrel/employees/{n}#{c}"
        for n in range(1, 8)
        for c in ("salary_eur", "bonus_target_pct", "birth_date")
    }
    assert readable("pat") == readable("alice") == readable("frank") == directory | customers
    assert readable("sam") == readable("erin") == directory | customers | sales
    assert readable("hana") == directory | customers | pay
    assert readable("vic") == set()


@pytest.mark.parametrize("user, sees", [("hana", True), ("pat", False), ("erin", False), ("sam", False)])
def test_only_hr_is_told_a_salary_from_the_example(fake_memex, kestrel, user, sees):
    fake_memex.ingest([str(kestrel / "database")])
    answer = Reads(fake_memex).ask(
        "What is Dev Okafor's salary?", principal=fake_memex.policy.principal(user)
    )
    sources = [c.source for c in answer.citations]
    told = "87250" in answer.text or "87250" in json.dumps(answer.to_json())
    assert told is sees
    assert ("db:kestrel/employees/3#salary_eur" in sources) is sees


# --- bad declarations and bad data: clear errors, nothing half-read ------------------------------


def declare(folder: Path, text: str, *, database: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if database is not None:
        shutil.copyfile(database, folder / "hr.sqlite")
    path = folder / "hr.database.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("url: sqlite:///hr.sqlite\ntables: {employees: {}, salaries: {}}\n",
         "tables.salaries: sqlite:///{folder}/hr.sqlite has no table salaries (tables: countries, departments, employees, job_history, jobs, locations, regions)"),
        ("url: sqlite:///hr.sqlite\ntables: {employees: {text: [first_name, nickname]}}\n",
         "tables.employees.text: employees has no column nickname (columns: employee_id, first_name"),
        ("url: sqlite:///hr.sqlite\ntables: {employees: {restricted: {wage: separate}}}\n",
         "tables.employees.restricted: employees has no column wage"),
        ("url: sqlite:///hr.sqlite\ntables: {employees: {text: [first_name, salary]}}\n",
         "tables.employees.text: column salary is restricted or binary; it is never in the text"),
        ("url: sqlite:///hr.sqlite\ntables: {employees: {title: [salary]}}\n",
         "tables.employees.title: column salary is restricted (separate), so it cannot be used here"),
        ("url: sqlite:///hr.sqlite\ntables: {pay: {query: 'SELECT salary FROM nope', key: salary}}\n",
         "sqlite:///{folder}/hr.sqlite: the query declared for pay failed: no such table: nope"),
        ("url: sqlite:///hr.sqlite\ntables: {departments: {follow: [manager_id]}}\n",
         "tables.departments.follow: manager_id is not a declared foreign key; say what it points at"),
        ("url: sqlite:///missing.sqlite\n", "no database file {folder}/missing.sqlite"),
        ("url: sqlite:///hr.sqlite\ntables: {employees: {colour: blue}}\n",
         "tables.employees: unknown key(s) colour (known: follow, key, meaning, query, restricted, text, title, updated_at)"),
        ("url: sqlite:///hr.sqlite\nrestricted: {salary: hide}\n",
         "restricted.salary: 'hide' is not one of separate, exclude, keep"),
        ("tables: {employees: {}}\n", "url: is required"),
        ("url: [oops\n", "not valid YAML"),
        ("url: postgresql+psycopg://memex:hunter2@127.0.0.1:1/hr\n",
         "the database URL carries a password; memex never takes passwords in URLs"),
        ("url: postgresql+psycopg://memex@127.0.0.1:1/hr\npassword_env: MEMEX_TEST_UNSET_PASSWORD\n",
         "the environment variable MEMEX_TEST_UNSET_PASSWORD (password_env) is not set"),
    ],
)  # fmt: skip
def test_a_bad_declaration_fails_whole_with_a_clear_reason(tmp_path, text, message, monkeypatch):
    monkeypatch.delenv("MEMEX_TEST_UNSET_PASSWORD", raising=False)
    folder = tmp_path / "db"
    declare(folder, text, database=data_dir("sql_oracle_hr") / "hr.sqlite")
    documents = DatabaseConnector(str(folder)).load()
    with pytest.raises(ParseError) as caught:
        next(documents)  # not one document before the error
    assert message.format(folder=folder.resolve()) in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_bad_declaration_in_a_folder_walk_is_reported_and_the_rest_is_indexed(fake_memex, kestrel):
    crm = kestrel / "handbook" / "crm"  # where a policy rule labels it, so the reason shows
    declare(crm, "url: sqlite:///crm.sqlite\n")
    report = fake_memex.ingest([str(kestrel)])
    assert [(f.uri, f.kind, f.reason) for f in report.failures] == [
        (str(crm), "failed", f"database: {crm}/hr.database.yaml: no database file {crm}/crm.sqlite")
    ]
    assert "db:kestrel/employees/1" in report.indexed


def test_a_table_without_a_rule_is_refused_by_the_policy(fake_memex, hr_db):
    report = fake_memex.ingest([str(hr_db)])
    assert report.indexed == [] and len(report.failures) == 396
    assert {f.kind for f in report.failures} == {"refused"}
    assert "no source rule in" in report.failures[0].reason
    assert "connector=database database=hr" in report.failures[0].reason


def test_a_declared_query_with_an_explicit_key_and_links(tmp_path):
    declare(
        tmp_path / "db",
        """
url: sqlite:///hr.sqlite
tables:
  people:
    meaning: Person in Sales
    query: >
      SELECT e.employee_id, e.first_name || ' ' || e.last_name AS full_name, e.manager_id, e.salary
      FROM employees e JOIN departments d ON d.department_id = e.department_id
      WHERE d.department_name = 'Sales' AND e.email LIKE '%' AND '10:30' <> ''
    key: employee_id
    follow: {manager_id: employees}
  departments:
    follow: {manager_id: employees.employee_id}
""",
        database=data_dir("sql_oracle_hr") / "hr.sqlite",
    )
    docs = {d.source_id: d for d in DatabaseConnector(str(tmp_path / "db")).load()}
    assert row_counts(docs.values()) == {"people": 34, "departments": 27}
    person = docs["db:hr/people/145"]
    assert person.title == "Person in Sales: John Singh"
    assert text_of(person) == (
        "Person in Sales (table people, employee_id 145)\nemployee_id: 145\nfull_name: John Singh\n"
        "manager: Steven King (manager_id 100)"
    )
    assert text_of(docs["db:hr/people/145#salary"]).endswith("salary: 14000")
    assert "manager: Michael Martinez (manager_id 201)" in text_of(docs["db:hr/departments/20"])


def test_odd_values_never_stop_a_table(tmp_path):
    path = tmp_path / "odd.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, blob_in_text TEXT, score REAL)")
        db.execute("INSERT INTO notes VALUES (1, CAST(X'66e96c6c' AS TEXT), X'00ff', 2.5)")
        db.execute("INSERT INTO notes VALUES (2, '  ', NULL, 3.0)")
        db.execute("CREATE TABLE nokey (a TEXT, b TEXT)")
        db.executemany("INSERT INTO nokey VALUES (?, ?)", [("x", "y"), ("x", "y"), ("z", None)])
    docs = {d.source_id: d for d in DatabaseConnector(str(path)).load()}
    first = docs["db:odd/notes/1"]
    assert text_of(first) == "Note record (table notes, id 1)\nid: 1\nbody: f\ufffdll\nscore: 2.5"
    assert first.metadata["not_indexed"] == ["blob_in_text"]
    assert text_of(docs["db:odd/notes/2"]) == "Note record (table notes, id 2)\nid: 2\nscore: 3"
    keyless = {s for s in docs if s.startswith("db:odd/nokey/#")}
    twice = [s for s in keyless if s.endswith("~2")]
    assert len(keyless) == 3 and len(twice) == 1 and twice[0][:-2] in keyless  # identical rows stay apart


def test_large_tables_stream_with_bounded_memory(tmp_path):
    """The connector holds a batch and the foreign-key name caches, not the table."""
    import tracemalloc

    path = tmp_path / "big.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO owners VALUES (?, ?)", [(i, f"Owner {i}") for i in range(100)])
        db.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id), body TEXT)"
        )
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?)",
            [(i, i % 100, f"event {i} " + "x" * 200) for i in range(30_000)],
        )

    def peak(rows: int) -> tuple[int, int]:
        tracemalloc.start()
        seen = 0
        for _ in DatabaseConnector(str(path), tables="+events").load():
            seen += 1
            if seen == rows:
                break
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return seen, top

    peak(10)  # imports and first-use caches out of the way
    small, small_peak = peak(3_000)
    large, large_peak = peak(30_100)
    assert (small, large) == (3_000, 30_100)
    assert large_peak < small_peak * 1.5 and large_peak < 20 * 2**20


def test_declarations_parse_to_what_they_say():
    declaration = parse_declaration(
        {
            "name": "crm",
            "url": "sqlite:///crm.sqlite",
            "restricted": {"*iban*": "separate", "notes": "exclude"},
            "tables": {
                "*": {"follow": False},
                "audit": False,
                "people": {"key": "id", "restricted": {"iban": "keep"}},
            },
        },
        origin="crm.database.yaml",
    )
    people = declaration.spec("people")
    assert declaration.skipped == frozenset({"audit"}) and people.key == ("id",)
    assert declaration.action(people, "iban") == "keep"  # the table's own word first
    assert declaration.action(people, "Salary_EUR") == "separate"  # built-in, any case
    assert declaration.action(people, "customer_iban") == "separate"  # the declaration's glob
    assert declaration.action(people, "notes") == "exclude"
    assert declaration.action(people, "password_hash") == "exclude"
    assert declaration.action(people, "name") == "keep"
    assert declaration.every_table.follow is False
    changed = parse_declaration(
        {"url": "sqlite:///crm.sqlite", "restricted": {"notes": "separate"}}, origin="x"
    )
    assert changed.digest() != parse_declaration({"url": "sqlite:///crm.sqlite"}, origin="x").digest()


@pytest.mark.slow
def test_real_models_tell_hr_a_salary_from_its_row_and_staff_nothing(
    memex_home, company_policy, real_embedder, real_model
):
    from memex.api.wiring import Memex
    from memex.config import Paths

    memex = Memex(
        Paths(memex_home), policy=company_policy, embedder=real_embedder, model=real_model, writable=True
    )
    try:
        assert memex.ingest([str(EXAMPLES / "database")]).failures == []
        hana = Reads(memex).ask("What is Dev Okafor's salary?", principal=memex.policy.principal("hana"))
        assert hana.citations[0].source == "db:kestrel/employees/3#salary_eur"
        assert (hana.evidence[0].n, hana.evidence[0].sentence) == (1, "Dev Okafor, salary_eur: 87250")
        assert hana.text.strip()
        pat = Reads(memex).ask("What is Dev Okafor's salary?", principal=memex.policy.principal("pat"))
        # pat is given the row she may read (the model may cite it or decline), never the column.
        assert [h.source_id for h in pat.hits][:1] == ["db:kestrel/employees/3"]
        assert all("#" not in h.source_id for h in pat.hits) and all(
            "#" not in c.source for c in pat.citations
        )
        assert "87250" not in json.dumps(pat.to_json()) and "87,250" not in pat.text
    finally:
        memex.close()


def test_a_declaration_can_be_given_for_a_url_or_a_file(tmp_path):
    declaration = tmp_path / "decl" / "people.database.yaml"
    declaration.parent.mkdir()
    declaration.write_text(
        "name: people\nurl: sqlite:///nowhere.sqlite\ntables: {regions: {meaning: World region}}\n"
    )
    hr = data_dir("sql_oracle_hr") / "hr.sqlite"
    for target in (str(hr), f"sqlite:///{hr}"):
        docs = list(DatabaseConnector(target, declaration=str(declaration)).load())
        assert [d.title for d in docs][:2] == ["World region: Europe", "World region: Americas"]
        assert {d.source_id.rsplit("/", 1)[0] for d in docs} == {"db:people/regions"} and len(docs) == 5
