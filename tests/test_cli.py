"""The command line, end to end, with the real bundled models (slow) and its error paths."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

MEMEX = [sys.executable, "-m", "memex.cli.main"]


def memex(*args: str, home: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEMEX_HOME": str(home)}
    result = subprocess.run([*MEMEX, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def report_size(home: Path) -> int:
    import sqlite3

    return sqlite3.connect(home / "ledger.sqlite").execute("SELECT COUNT(*) FROM sources").fetchone()[0]


def readable_in_ledger(home: Path, user: str) -> int:
    """How many indexed sources `user` may read, from the labels the ledger recorded (not the index)."""
    import sqlite3

    from memex.access import Access, allowed
    from memex.access.policyfile import load_policy

    principal = load_policy(home / "policy.yaml").principal(user)
    rows = sqlite3.connect(home / "ledger.sqlite").execute(
        "SELECT access FROM sources WHERE status = 'indexed'"
    )
    return sum(allowed(principal=principal, access=Access.from_dict(json.loads(a))) for (a,) in rows)


@pytest.fixture(scope="module")
def indexed_home(tmp_path_factory):
    """The example archive ingested once with the real embedding model, under the company policy."""
    import shutil

    from tests.conftest import EXAMPLES

    base = tmp_path_factory.mktemp("cli")
    archive = base / "kestrel"
    shutil.copytree(EXAMPLES, archive)
    home = base / "home"
    memex("init", "--policy", "company.yaml", home=home)
    report = json.loads(memex("ingest", str(archive), "--json", home=home).stdout)
    assert report["failed"] == 0 and report["indexed"] >= 12
    return home, archive


PHRASES = [
    ("Tuesdays are office days for the whole company", "handbook/employee-handbook.md", "alice"),
    ("assembly point is the square in front of the church", "handbook/office-guide.txt", "pat"),
    (
        "certificate for the LoRaWAN network server expired",
        "engineering/incident-2026-03-harrier-outage.md",
        "dev",
    ),
    ("quantised bird-call classifier", "engineering/architecture.md", "alice"),
    ("bank covenant with Banco Atlântico", "finance/budget-notes-2026.txt", "frank"),
    ("tops up the state parental allowance", "hr/parental-leave-policy.md", "hana"),
    ("Discounts above 20% need approval", "sales/pricing-2026.pptx", "sam"),
    ("Vogelwarte Sempach", "sales/pipeline-q3-2026.xlsx", "sam"),
    ("Nordlys Acoustics offered", "board/board-minutes-2026-06.pdf", "erin"),
    ("weatherproof IP67 case made from recycled aluminium", "public/press-release-falcon-2.html", "vic"),
]


@pytest.mark.slow
@pytest.mark.parametrize("phrase, path, user", PHRASES)
def test_search_ranks_the_file_with_the_phrase_first(indexed_home, phrase, path, user):
    home, archive = indexed_home
    hits = json.loads(memex("search", phrase, "--as", user, "--json", home=home).stdout)
    assert hits[0]["source"] == str(archive / path)
    assert set(hits[0]) >= {"chunk_id", "source", "title", "labels", "score", "text"}


@pytest.mark.slow
def test_search_only_returns_what_the_user_may_read(indexed_home):
    home, archive = indexed_home
    hits = json.loads(
        memex("search", "salary annual_salary_eur Dev Okafor", "--as", "alice", "--json", home=home).stdout
    )
    assert hits and not any("/hr/" in h["source"] for h in hits)
    hana = json.loads(
        memex("search", "salary annual_salary_eur Dev Okafor", "--as", "hana", "--json", home=home).stdout
    )
    top = {h["source"]: h for h in hana[:3]}
    assert top[str(archive / "hr/salaries-2026.csv")]["labels"] == ["hr", "staff"]


@pytest.mark.slow
def test_ask_json_cites_the_right_source(indexed_home):
    home, archive = indexed_home
    out = json.loads(
        memex("ask", "Who offered to acquire the company?", "--as", "erin", "--json", home=home).stdout
    )
    assert set(out) == {"question", "answer", "citations", "evidence", "dates", "dates_note", "check"}
    assert "Nordlys" in out["answer"], out["answer"]
    assert out["dates"] is None  # no time expression in the question
    assert out["citations"][0] == {
        "n": 1,
        "chunk_id": out["citations"][0]["chunk_id"],
        "source": str(archive / "board/board-minutes-2026-06.pdf"),
        "title": "board-minutes-2026-06.pdf",
        "section": "",
        "page": 1,
        "labels": ["executive", "staff"],
    }
    assert any("Nordlys Acoustics offered EUR 38 million" in e["sentence"] for e in out["evidence"])


@pytest.mark.slow
def test_ask_about_nothing_relevant_says_so(indexed_home):
    home, _ = indexed_home
    out = json.loads(
        memex("ask", "What is the boiling point of tungsten?", "--as", "alice", "--json", home=home).stdout
    )
    assert out == {
        "question": "What is the boiling point of tungsten?",
        "answer": "The archives you can read do not contain an answer to that question.",
        "citations": [],
        "evidence": [],
        "dates": None,
        "dates_note": None,
        "check": None,
    }


@pytest.mark.slow
def test_ask_with_another_model_file(indexed_home, tmp_path):
    home, _ = indexed_home
    missing = memex(
        "ask", "vacation?", "--model", str(tmp_path / "nope.gguf"), "--as", "alice", home=home, check=False
    )
    assert missing.returncode == 1
    assert f"model file {tmp_path}/nope.gguf does not exist; pass --model PATH.gguf" in missing.stderr
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really a model")
    result = memex("ask", "vacation days?", "--model", str(broken), "--as", "alice", home=home, check=False)
    assert result.returncode == 1
    assert f"cannot load {broken} as a GGUF model" in result.stderr


@pytest.mark.slow
def test_status_counts_only_what_the_user_can_read(indexed_home):
    home, _ = indexed_home
    alice = json.loads(memex("status", "--as", "alice", "--json", home=home).stdout)
    admin = json.loads(memex("status", "--json", home=home).stdout)
    assert alice["principal"] == "alice" and "failures" not in alice
    assert set(alice["indexed"]["by_label"]) == {"(none)", "staff", "engineering"}
    # handbook x2, engineering x2 and the public press release, the 17 staff rows of the company
    # database, and whatever else connectors add to the example: what the ledger's labels let her read
    assert alice["indexed"]["sources"] == readable_in_ledger(home, "alice") >= 5 + 17
    assert admin["principal"] == "root-admin"
    assert admin["indexed"]["sources"] == 1  # the admin role grants no content: only the press release
    assert admin["ledger"] == {"indexed": report_size(home)}
    text = memex("status", home=home).stdout  # the admin sees the total, not only their own "1"
    assert f"Sources: {report_size(home)} in the ledger ({report_size(home)} indexed)" in text
    assert f"You read: 1 source(s), {admin['indexed']['chunks']} chunk(s) as root-admin" in text


@pytest.mark.slow
def test_show_treats_forbidden_and_missing_alike(indexed_home):
    home, archive = indexed_home
    forbidden = memex("show", str(archive / "hr/salaries-2026.csv"), "--as", "alice", home=home, check=False)
    missing = memex("show", str(archive / "hr/no-such-file.csv"), "--as", "alice", home=home, check=False)
    assert forbidden.returncode == missing.returncode == 1
    assert forbidden.stderr.replace("salaries-2026", "X") == missing.stderr.replace("no-such-file", "X")
    shown = memex("show", str(archive / "hr/salaries-2026.csv"), "--as", "hana", home=home)
    assert "Dev Okafor; role: Senior Engineer" in shown.stdout


def test_as_needs_an_admin(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("labels: []\nusers:\n  me: {os_users: ['*']}\n  you: {}\n")
    home = tmp_path / "home"
    memex("init", "--policy", str(policy), home=home)
    result = memex("search", "x", "--as", "you", home=home, check=False)
    assert result.returncode == 1 and "only an admin may use --as" in result.stderr


def test_as_a_user_the_policy_does_not_have_says_so(tmp_path):
    home = tmp_path / "home"
    memex("init", "--policy", "company.yaml", home=home)
    result = memex("search", "x", "--as", "bob", "--json", home=home, check=False)
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error.startswith(f"there is no user 'bob' in the policy ({home}/policy.yaml); its users: alice, ")


def test_empty_index_says_to_ingest_first(tmp_path):
    home = tmp_path / "home"
    result = memex("search", "anything", "--json", home=home, check=False)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "error": "nothing you can read is indexed yet: run `memex ingest PATH` first",
        "type": "EmptyIndex",
    }


def test_invalid_policy_is_refused_with_line_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels: [a]\nroles:\n  r: {labels: [b]}\n")
    result = memex("policy", "check", str(bad), home=tmp_path / "home", check=False)
    assert result.returncode == 1
    assert f"{bad}:3: roles.r.labels: unknown label(s) b" in result.stderr


def test_policy_check_runs_the_bundled_tables(tmp_path):
    from tests.conftest import POLICIES

    for policy in sorted(POLICIES.glob("*.yaml")):
        out = json.loads(memex("policy", "check", str(policy), "--json", home=tmp_path / "h").stdout)
        assert out["failed"] == [] and out["cases"] >= 10, policy.name


def test_ingest_reports_failures_with_exit_code_2(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("A perfectly good note about bicycles.")
    (folder / "empty.md").write_text("")
    home = tmp_path / "home"
    result = memex("ingest", str(folder), "--json", home=home, check=False, timeout=900)
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["indexed"] == 1 and report["failures"] == [
        {"source": str(folder / "empty.md"), "kind": "failed", "reason": "the file is empty"}
    ]


def test_ingest_options_must_be_key_value(tmp_path):
    result = memex("ingest", str(tmp_path), "-o", "workspace", "--json", home=tmp_path / "h", check=False)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] == "--option wants KEY=VALUE, got 'workspace'"


@pytest.mark.slow
def test_ingest_options_reach_the_connector(tmp_path):
    import shutil

    from tests.conftest import EXAMPLES

    chat = tmp_path / "kestrel" / "chat"
    shutil.copytree(EXAMPLES / "chat", chat)
    home = tmp_path / "home"
    memex("init", "--policy", "company.yaml", home=home)
    result = memex("ingest", str(chat), "-o", "workspace=acme", "--json", home=home, check=False)
    # The option renamed the workspace, so the company's rules (for workspace kestrel) no longer
    # match: every window is refused, by name, and nothing is stored.
    report = json.loads(result.stdout)
    assert result.returncode == 2 and report["indexed"] == 0 and report["failures"]
    assert all(f["source"].startswith("slack://acme/") for f in report["failures"])
    assert all(f["kind"] == "refused" and "workspace=acme" in f["reason"] for f in report["failures"])


def test_a_reader_that_stops_early_gets_no_complaint(tmp_path):
    """`memex export | head -c 10`: memex goes on writing after head has gone."""
    script = (
        "import sys, memex.cli.main as cli\n"
        "def app():\n"
        "    for _ in range(100000):\n"
        "        sys.stdout.write('x' * 1000 + '\\n')\n"
        "cli.app = app\n"
        "cli.run()\n"
    )
    result = subprocess.run(
        f'set -o pipefail; {sys.executable} -c "$SCRIPT" | head -c 10',
        shell=True,
        executable="/bin/bash",
        env={**os.environ, "SCRIPT": script, "MEMEX_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.stdout, result.stderr) == ("x" * 10, "")
    assert result.returncode == 141  # as a program stopped by SIGPIPE, not 1 with a traceback


def test_help_lists_commands_in_the_order_of_use_without_type_placeholders():
    from typer.testing import CliRunner

    from memex.cli.main import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "120"}).stdout
    listed = re.findall(r"^│ ([a-z]+) ", top, flags=re.M)
    assert listed[:7] == ["init", "ingest", "ask", "search", "chat", "show", "status"], listed
    for command in (
        [],
        ["ingest"],
        ["ask"],
        ["chat"],
        ["search"],
        ["conversations"],
        ["models"],
        ["daemon", "start"],
    ):
        shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"}).stdout
        assert not re.search(r"<\w[\w\[\], |]*>", shown), (command, shown)
