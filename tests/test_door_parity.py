"""Door parity: the same questions, mistakes and permission cases through every door of memex,
and the answers compared across the doors (not with constants of their own).

The doors, each in the way a person uses it:
  cli     `memex ... --json` in-process (typer's runner), no daemon: the CLI opens the store
          itself (the hashing embedder and the echoing fake model injected into its Memex.open)
  daemon  the same CLI while a background daemon owns the store (a real `memex.daemon.process`
          with MEMEX_TEST_FAKE_MODELS): the command goes through the daemon's Unix socket
  http    the service's JSON API (/api/search, /api/ask, /api/sources, /api/status, /api/audit)
  openai  the service's /v1/chat/completions
  mcp     the service's MCP tools `search` and `ask` (the official client, streamable HTTP)

The service runs under uvicorn on a loopback port (one app for http, openai and mcp), with a
store it owns, as `memex serve` does. Only one of the three may own the store at a time, so the
module runs them one after the other over one MEMEX_HOME (CLI, then service, then daemon) and
collects every door's outcome for every case in a table; each test compares one case's row.

The archive is the Kestrel example without its public folder, so that vic (public only) can read
nothing: EmptyIndex.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from memex.daemon import process as daemon_process
from tests.conftest import EXAMPLES, POLICIES, memex_with_fakes, without_media
from tests.service_support import bearer, live_server, make_service
from tests.watch_support import stop_daemon

COMPANY = POLICIES / "company.yaml"
ADMIN = "root-admin"  # who the OS account running the tests is (os_users: ["*"])

SEARCH_DOORS = ("cli", "daemon", "http", "mcp")
ASK_DOORS = ("cli", "daemon", "http", "openai", "mcp")
READ_DOORS = ("cli", "daemon", "http")  # show, status and audit: MCP and OpenAI have none

EMPTY = "nothing you can read is indexed yet: run `memex ingest PATH` first"
K_RANGE = "k must be a whole number from 1 to 1000"
HTTP_NOT_FOUND = "no such source, or you may not read it"
EXIT_CODE = {"BadRequest": 2, "EmptyIndex": 1, "NotFound": 1}
HTTP_STATUS = {"BadRequest": 400, "EmptyIndex": 404, "NotFound": 404}
OPENAI_TYPE = {"BadRequest": "invalid_request_error", "EmptyIndex": "not_found_error"}

HR_FILE = "{archive}/hr/parental-leave-policy.md"
HR_TEXT = "tops up the state parental allowance"  # a phrase of HR_FILE, for hana only
ENGINEERING_CHAT = "slack://kestrel/#engineering/2026-03-13T10:15"  # engineers only
VOLATILE_STATUS = ("loose_permissions", "generation", "roots")  # door-local or phase-local


@dataclass(frozen=True)
class Case:
    name: str
    action: str  # search | ask | show | status | audit
    user: str
    params: dict[str, Any] = field(default_factory=dict)
    doors: tuple[str, ...] = SEARCH_DOORS
    error: str | None = None  # the error every door must report (its type), or None
    message: str | None = None  # ... and its text, the same everywhere


SEARCHES = [
    Case(f"search-{tag}-{user}", "search", user, {"query": query, "k": 8})
    for tag, query, users in [
        ("parental", "parental leave policy weeks", ("pat", "hana")),
        ("lorawan", "LoRaWAN certificate outage", ("pat", "alice")),
        ("salary", "salary", ("hana", "erin")),
    ]
    for user in users
] + [
    Case(
        "search-lexical-alice",
        "search",
        "alice",
        {"query": "harrier runbook", "k": 5, "mode": "lexical"},
        READ_DOORS,
    )
]

ASKS = [
    Case("ask-parental-hana", "ask", "hana", {"question": "parental leave policy"}, ASK_DOORS),
    Case("ask-parental-pat", "ask", "pat", {"question": "parental leave policy"}, ASK_DOORS),
    Case(
        "ask-lorawan-alice",
        "ask",
        "alice",
        {"question": "certificate for the LoRaWAN network server expired"},
        ASK_DOORS,
    ),
    Case(
        "ask-office-pat",
        "ask",
        "pat",
        {"question": "Tuesdays are office days for the whole company", "k": 3},
        READ_DOORS,
    ),
]


def _error(name: str, action: str, user: str, params: dict, doors, error: str, message: str) -> Case:
    return Case(name, action, user, params, tuple(doors), error, message)


ERRORS = [
    _error(
        "search-empty",
        "search",
        "pat",
        {"query": ""},
        SEARCH_DOORS,
        "BadRequest",
        "query must be a non-empty string",
    ),
    _error(
        "search-blank",
        "search",
        "pat",
        {"query": "   "},
        SEARCH_DOORS,
        "BadRequest",
        "query must be a non-empty string",
    ),
    _error(
        "search-too-long",
        "search",
        "pat",
        {"query": "x" * 4001},
        SEARCH_DOORS,
        "BadRequest",
        "query is too long (at most 4000 characters)",
    ),
    _error("search-k-0", "search", "pat", {"query": "salary", "k": 0}, SEARCH_DOORS, "BadRequest", K_RANGE),
    _error(
        "search-k-5000", "search", "pat", {"query": "salary", "k": 5000}, SEARCH_DOORS, "BadRequest", K_RANGE
    ),
    _error(
        "search-bad-mode",
        "search",
        "pat",
        {"query": "salary", "mode": "fuzzy"},
        READ_DOORS,
        "BadRequest",
        "mode must be one of hybrid, dense, lexical",
    ),
    _error(
        "ask-empty",
        "ask",
        "pat",
        {"question": ""},
        ASK_DOORS,
        "BadRequest",
        "question must be a non-empty string",
    ),
    _error(
        "ask-blank",
        "ask",
        "pat",
        {"question": " \n "},
        ASK_DOORS,
        "BadRequest",
        "question must be a non-empty string",
    ),
    _error("ask-k-5000", "ask", "pat", {"question": "salary", "k": 5000}, READ_DOORS, "BadRequest", K_RANGE),
    _error("ask-k-0", "ask", "pat", {"question": "salary", "k": 0}, READ_DOORS, "BadRequest", K_RANGE),
    _error("search-reads-nothing", "search", "vic", {"query": "salary"}, SEARCH_DOORS, "EmptyIndex", EMPTY),
    _error("ask-reads-nothing", "ask", "vic", {"question": "salary"}, ASK_DOORS, "EmptyIndex", EMPTY),
]
SHOWS = [
    Case("show-hr-hana", "show", "hana", {"source": HR_FILE}, READ_DOORS),
    Case("show-hr-pat", "show", "pat", {"source": HR_FILE}, READ_DOORS, "NotFound"),
    Case(
        "show-missing-pat", "show", "pat", {"source": "{archive}/hr/no-such-file.md"}, READ_DOORS, "NotFound"
    ),
    Case("show-chat-alice", "show", "alice", {"source": ENGINEERING_CHAT}, READ_DOORS),
    Case("show-chat-pat", "show", "pat", {"source": ENGINEERING_CHAT}, READ_DOORS, "NotFound"),
]

STATUSES = [Case(f"status-{user}", "status", user, {}, READ_DOORS) for user in ("pat", "hana", "vic", ADMIN)]

AUDITS = [
    Case(f"audit-{user}", "audit", user, {"limit": 1000}, READ_DOORS) for user in ("pat", "alice", ADMIN)
]

CASES = SEARCHES + ASKS + ERRORS + SHOWS + STATUSES  # the audit cases run last, in each phase


# -- the doors ---------------------------------------------------------------------------------------
def _source(case: Case, archive: Path) -> str:
    return case.params["source"].format(archive=archive)


def _cli_args(case: Case, archive: Path) -> list[str]:
    p = case.params
    if case.action == "search":
        args = ["search", p["query"], "-k", str(p.get("k", 10))] + (
            ["--mode", p["mode"]] if "mode" in p else []
        )
    elif case.action == "ask":
        args = ["ask", p["question"]] + (["-k", str(p["k"])] if "k" in p else [])
    elif case.action == "show":
        args = ["show", _source(case, archive)]
    elif case.action == "status":
        args = ["status"]
    else:
        args = ["audit", "--limit", str(p["limit"])]
    return ["--policy", str(COMPANY), *args, *([] if case.user == ADMIN else ["--as", case.user]), "--json"]


def cli(case: Case, archive: Path, home: Path) -> dict[str, Any]:
    """`memex ... --json` as a person runs it; its outcome as {ok, value} or {ok, message, code, type}."""
    from memex.cli.main import app

    run = CliRunner().invoke(
        app, _cli_args(case, archive), env={"MEMEX_HOME": str(home)}, catch_exceptions=False
    )
    data = json.loads(run.stdout)
    if run.exit_code == 0:
        return {"ok": True, "value": data}
    return {"ok": False, "message": data["error"], "code": run.exit_code, "type": data["type"]}


def http(case: Case, archive: Path, client: httpx.Client, token: str) -> dict[str, Any]:
    p, headers = case.params, bearer(token)
    if case.action == "search":
        response = client.post("/api/search", json=p, headers=headers)
    elif case.action == "ask":
        response = client.post("/api/ask", json=p, headers=headers)
    elif case.action == "show":
        response = client.get(
            f"/api/sources/{urllib.parse.quote(_source(case, archive), safe='')}", headers=headers
        )
    elif case.action == "status":
        response = client.get("/api/status", headers=headers)
    else:
        response = client.get("/api/audit", params=p, headers=headers)
    body = response.json()
    if response.status_code != 200:
        return {"ok": False, "message": body.get("error", body), "code": response.status_code, "type": None}
    if case.action == "show":  # the chunks, as the CLI lists them; the source once, beside them
        assert (
            body["source"] == body["chunks"][0]["source"]
            and body["source_id"] == body["chunks"][0]["source_id"]
        )
    key = {"search": "hits", "show": "chunks", "audit": "entries"}.get(case.action)
    return {"ok": True, "value": body[key] if key else body}


def openai(case: Case, client: httpx.Client, token: str) -> dict[str, Any]:
    chat = {"model": "memex", "messages": [{"role": "user", "content": case.params["question"]}]}
    response = client.post("/v1/chat/completions", json=chat, headers=bearer(token))
    body = response.json()
    if response.status_code != 200:
        error = body.get("error")
        if not isinstance(error, dict):  # not OpenAI's shape: the test of the case says so
            return {"ok": False, "message": body, "code": response.status_code, "type": None}
        return {"ok": False, "message": error["message"], "code": response.status_code, "type": error["type"]}
    return {"ok": True, "value": body}


def mcp(url: str, token: str, cases: list[Case]) -> dict[str, dict[str, Any]]:
    """Each case as an MCP tool call (one session for all), by case name."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def calls() -> dict[str, dict[str, Any]]:
        import httpx2

        out = {}
        async with httpx2.AsyncClient(headers=bearer(token)) as client:
            async with streamable_http_client(url + "mcp", http_client=client) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    for case in cases:
                        args = dict(case.params)
                        result = await session.call_tool(case.action, args)
                        [content] = result.content
                        if result.is_error:
                            out[case.name] = {
                                "ok": False,
                                "message": content.text,
                                "code": "tool error",
                                "type": None,
                            }
                        else:
                            data = json.loads(content.text)
                            out[case.name] = {
                                "ok": True,
                                "value": data["hits"] if case.action == "search" else data,
                            }
        return out

    return asyncio.run(calls())


# -- the phases ----------------------------------------------------------------------------------------
@dataclass
class Table:
    archive: Path
    home: Path
    results: dict[str, dict[str, dict[str, Any]]]  # case -> door -> outcome
    audits: dict[str, dict[str, list[dict[str, Any]]]]  # case -> door -> entries


def _fake_open(**kwargs):
    from memex.api.wiring import Memex
    from memex.cli.context import state
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    return Memex.open(policy_path=state["policy"], embedder=HashingEmbedder(), model=FakeModel(), **kwargs)


def _no_open(**kwargs):
    raise AssertionError("the CLI opened the store itself while a daemon owns it")


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Table:
    from memex import config
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.cli import context
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel
    from memex.service.app import create_app

    base = tmp_path_factory.mktemp("parity")
    archive = base / "archive" / "kestrel"
    shutil.copytree(EXAMPLES, archive, ignore=without_media)
    shutil.rmtree(archive / "public")  # vic (public only) reads nothing
    home = base / "home"
    writer = memex_with_fakes(home, "company.yaml")
    try:
        report = writer.ingest([str(archive)])
    finally:
        writer.close()
    assert report.failures == [] and len(report.indexed) > 20, report.to_json()
    table = Table(archive, home, {c.name: {} for c in CASES}, {c.name: {} for c in AUDITS})

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMEX_HOME", str(home))
        patch.delenv("MEMEX_POLICY", raising=False)
        # 1. The CLI on its own: it opens the store (shared) for each command.
        patch.setattr(context, "open_memex", _fake_open)
        for case in CASES + AUDITS:
            if "cli" in case.doors:
                _record(table, case, "cli", cli(case, archive, home))

        # 2. The service, owning the store as `memex serve` does.
        memex = Memex(
            config.Paths(home),
            policy=load_policy(COMPANY),
            embedder=HashingEmbedder(),
            model=FakeModel(),
            writable=True,
        )
        service, tokens = make_service(memex)
        try:
            users = sorted({case.user for case in CASES + AUDITS})
            keys = {user: tokens.create(user, expires=None)[0] for user in users}
            with live_server(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
                for case in CASES:
                    if "http" in case.doors:
                        _record(table, case, "http", http(case, archive, client, keys[case.user]))
                    if "openai" in case.doors:
                        _record(table, case, "openai", openai(case, client, keys[case.user]))
                for user in users:
                    asked = [case for case in CASES if "mcp" in case.doors and case.user == user]
                    for name, outcome in mcp(url, keys[user], asked).items():
                        table.results[name]["mcp"] = outcome
                for case in AUDITS:  # last: the log with every read of this phase in it
                    _record(table, case, "http", http(case, archive, client, keys[case.user]))
        finally:
            service.close()
            memex.close()

        # 3. The CLI while a daemon owns the store: through its socket.
        patch.setattr(context, "open_memex", _no_open)
        patch.setenv(daemon_process.TEST_MODELS_ENV, str(home))
        paths = config.Paths(home)
        watched = base / "watched"  # the daemon needs a folder; the archive is already in
        watched.mkdir()
        pid = daemon_process.start(paths, folders=[str(watched)], policy_path=COMPANY)
        try:
            for case in CASES + AUDITS:
                if "daemon" in case.doors:
                    _record(table, case, "daemon", cli(case, archive, home))
            assert daemon_process.running_pid(paths) == pid  # it answered; the CLI opened nothing
        finally:
            stop_daemon(paths)
        assert "Traceback" not in paths.daemon_log.read_text()
    return table


def _record(table: Table, case: Case, door: str, outcome: dict[str, Any]) -> None:
    if case.action == "audit":
        assert outcome["ok"], (case.name, door, outcome)
        table.audits[case.name][door] = outcome["value"]
    else:
        table.results[case.name][door] = outcome


def _row(table: Table, case: Case) -> dict[str, dict[str, Any]]:
    row = table.results[case.name]
    assert sorted(row) == sorted(case.doors), f"{case.name}: doors that answered {sorted(row)}"
    return row


def _sources(outcome: dict[str, Any]) -> list[str]:
    return [hit["source"] for hit in outcome["value"]] if outcome["ok"] else [f"error: {outcome['message']}"]


# -- the same search results ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", SEARCHES, ids=lambda c: c.name)
def test_search_gives_the_same_hits_through_every_door(table, case):
    row = _row(table, case)
    reference = row["cli"]
    assert reference["ok"] and reference["value"], reference
    for door in case.doors:
        assert _sources(row[door]) == _sources(reference), f"{door} ranks other sources than the CLI"
        assert row[door] == reference, f"{door}'s hits differ from the CLI's (text, labels or scores)"


def test_search_results_differ_with_the_users_rights(table):
    """The parity above is not that of identical answers: the users' hits differ, HR's files
    (and HR's part of the database) only in hana's."""
    for tag, a, b in [("parental", "pat", "hana"), ("lorawan", "pat", "alice"), ("salary", "hana", "erin")]:
        first, second = table.results[f"search-{tag}-{a}"]["cli"], table.results[f"search-{tag}-{b}"]["cli"]
        assert _sources(first) != _sources(second), (tag, a, b)
    for case in SEARCHES:
        for door, outcome in table.results[case.name].items():
            labels = {label for hit in outcome["value"] for label in hit["labels"]}
            assert ("hr" in labels) == (case.user == "hana"), (case.name, door, labels)


# -- the same answers ------------------------------------------------------------------------------
def _openai_text(answer: dict[str, Any]) -> str:
    """The OpenAI door's content for an answer: its text, then its numbered sources and evidence."""
    lines = []
    if answer["citations"]:
        lines.append("Sources:")
        for c in answer["citations"]:
            where = [
                c["source"],
                *([c["section"]] if c["section"] else []),
                *([f"page {c['page']}"] if c["page"] is not None else []),
            ]
            lines.append(f"[{c['n']}] {', '.join(where)}")
    if answer["evidence"]:
        lines += ["", "Evidence:", *(f"[{e['n']}] {e['sentence']}" for e in answer["evidence"])]
    return answer["answer"] + ("\n\n" + "\n".join(lines) if lines else "")


@pytest.mark.parametrize("case", ASKS, ids=lambda c: c.name)
def test_ask_gives_the_same_answer_and_sources_through_every_door(table, case):
    row = _row(table, case)
    reference = row["cli"]
    assert reference["ok"], reference
    answer = reference["value"]
    # pat may read nothing about parental leave (HR's file is hana's): her answer is the refusal,
    # which must be the same through every door too.
    assert answer["answer"].strip() and (answer["citations"] or case.name == "ask-parental-pat"), answer
    for door in case.doors:
        outcome = row[door]
        assert outcome["ok"], (door, outcome)
        if door == "openai":
            body = outcome["value"]
            assert body["memex"] == {"citations": answer["citations"], "evidence": answer["evidence"]}, door
            assert body["choices"][0]["message"]["content"] == _openai_text(answer), door
        else:
            cited = [c["source"] for c in outcome["value"]["citations"]]
            assert cited == [c["source"] for c in answer["citations"]], f"{door} cites other sources"
            assert outcome["value"]["answer"] == answer["answer"], f"{door} answers other text"
            assert outcome["value"] == answer, f"{door}'s answer differs (evidence, check, dates)"


def test_answers_cite_what_the_asker_may_read(table):
    hr_file = HR_FILE.format(archive=table.archive)
    for name, cites_hr in [("ask-parental-hana", True), ("ask-parental-pat", False)]:
        for door, outcome in table.results[name].items():
            answer = outcome["value"]["memex"] if door == "openai" else outcome["value"]
            assert (hr_file in {c["source"] for c in answer["citations"]}) == cites_hr, (name, door)
            assert (HR_TEXT in json.dumps(outcome["value"])) == cites_hr, (name, door)


# -- the same errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "case",
    ERRORS,
    ids=lambda c: c.name,
)
def test_the_same_mistake_gets_the_same_error_through_every_door(table, case):
    row = _row(table, case)
    for door in case.doors:
        outcome = row[door]
        assert not outcome["ok"], f"{door} answered instead of refusing: {str(outcome)[:300]}"
        if door != "mcp":
            assert outcome["message"] == case.message, door
        if door in ("cli", "daemon"):
            assert (outcome["type"], outcome["code"]) == (case.error, EXIT_CODE[case.error]), door
        elif door == "http":
            assert outcome["code"] == HTTP_STATUS[case.error], door
        elif door == "openai":
            assert (outcome["code"], outcome["type"]) == (HTTP_STATUS[case.error], OPENAI_TYPE[case.error]), (
                door
            )
        else:  # the MCP SDK puts its own words before a tool's error; the rest is memex's
            assert outcome["code"] == "tool error", door
            assert outcome["message"] == f"Error executing tool {case.action}: {case.message}", door


# -- the same permission cases ---------------------------------------------------------------------
@pytest.mark.parametrize("case", SHOWS, ids=lambda c: c.name)
def test_show_answers_alike_and_never_shows_what_the_user_may_not_read(table, case):
    row = _row(table, case)
    source = _source(case, table.archive)
    if case.error is None:
        reference = row["cli"]
        assert reference["ok"] and reference["value"], reference
        assert {hit["source"] for hit in reference["value"]} == {source}
        for door in case.doors:
            assert row[door] == reference, f"{door} shows other chunks than the CLI"
        if source.endswith(".md"):
            assert HR_TEXT in " ".join(hit["text"] for hit in reference["value"])
        return
    for door in ("cli", "daemon"):  # the CLI's word for an empty show, through both
        assert row[door] == {
            "ok": False,
            "message": HTTP_NOT_FOUND,
            "code": EXIT_CODE["NotFound"],
            "type": "NotFound",
        }, door
    assert row["http"] == {"ok": False, "message": HTTP_NOT_FOUND, "code": 404, "type": None}
    assert HR_TEXT not in json.dumps(row)


def test_a_source_one_may_not_read_looks_like_one_that_does_not_exist(table):
    hidden, missing = table.results["show-hr-pat"], table.results["show-missing-pat"]
    names = [_source(c, table.archive) for c in SHOWS if c.name in ("show-hr-pat", "show-missing-pat")]
    for door in READ_DOORS:
        assert json.dumps(hidden[door]).replace(names[0], "SOURCE") == json.dumps(missing[door]).replace(
            names[1], "SOURCE"
        ), door


@pytest.mark.parametrize("case", STATUSES, ids=lambda c: c.name)
def test_status_is_the_same_and_admins_alone_see_where_the_files_are(table, case):
    row = _row(table, case)
    shown = {}
    for door in case.doors:
        assert row[door]["ok"], (door, row[door])
        shown[door] = {k: v for k, v in row[door]["value"].items() if k not in VOLATILE_STATUS}
    reference = shown["cli"]
    for door in case.doors:
        assert shown[door] == reference, f"{door}'s status differs from the CLI's"
    admin = case.user == ADMIN
    assert reference["principal"] == case.user and reference["admin"] is admin
    for door in case.doors:
        status = row[door]["value"]
        assert ("home" in status, "policy" in status, "ledger" in status) == (admin, admin, admin), door
        assert str(table.home) not in json.dumps(status) or admin, (
            f"{door} tells a non-admin where the files are"
        )
        if admin:
            assert status["home"] == str(table.home) and status["policy"] == str(COMPANY), door
            assert str(table.archive) in {root["root"] for root in status["roots"]}, door
    # vic reads only public files, the admin role grants no content: there are none here
    assert (reference["indexed"]["chunks"] > 0) == (case.user not in ("vic", ADMIN))


def test_the_audit_log_reads_alike_and_non_admins_see_only_their_own(table):
    """Each phase appends the reads of its doors; the log each door shows is the log the door
    before it showed, with the new phase's entries (theirs alone, for a non-admin) on top."""
    order = ("cli", "http", "daemon")
    channels = {"cli": {"cli"}, "http": {"http", "openai", "mcp"}, "daemon": {"daemon"}}
    for case in AUDITS:
        seen = table.audits[case.name]
        assert sorted(seen) == sorted(order), case.name
        previous: list[dict[str, Any]] = []
        for door in order:
            entries = seen[door]
            new = entries[: len(entries) - len(previous)]
            assert entries[len(new) :] == previous, (
                f"{case.name}: {door} shows another log than the door before"
            )
            assert new, f"{case.name}: {door} shows none of the reads made through its phase"
            assert {e["channel"] for e in new} == channels[door], (case.name, door)
            if case.user != ADMIN:
                assert {e["principal"] for e in entries} == {case.user}, (case.name, door)
            previous = entries
        if case.user == ADMIN:
            assert {"pat", "alice", "hana", "erin"} <= {e["principal"] for e in previous}
    # the actor says who asked, and through what
    pat = table.audits["audit-pat"]["daemon"]
    assert {e["actor"] for e in pat if e["channel"] in ("cli", "daemon")} == {f"{ADMIN} (as pat)"}
    assert {e["actor"].split(" (token ")[0] for e in pat if e["channel"] in ("http", "openai", "mcp")} == {
        "pat"
    }
