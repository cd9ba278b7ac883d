"""The access matrix of `memex serve`: every endpoint x every kind of caller (the admin, users of
several roles, a revoked, an expired, a malformed and no token, another scheme, a token whose
user left the policy), with the exact status codes and the exact sources each may see, over the
Kestrel Labs folders ingested with the company policy (fake embedder and echoing fake model:
an answer repeats its whole prompt, so anything retrieved would show)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from memex.access import Principal
from memex.access.policyfile import load_policy
from memex.api.wiring import Memex
from memex.config import Paths
from memex.models.embeddings import HashingEmbedder
from memex.models.llm import FakeModel
from memex.service.app import create_app
from tests.conftest import EXAMPLES, POLICIES, without_media
from tests.service_support import make_service, parse_sse

FOLDERS = ("public", "handbook", "engineering", "finance", "hr", "sales", "board")
# Which folders each caller may read, written out by hand from policies/company.yaml.
READS = {
    "root-admin": {"public"},  # admin administers; it grants no content
    "alice": {"public", "handbook", "engineering"},
    "hana": {"public", "handbook", "hr"},
    "frank": {"public", "handbook", "finance"},
    "erin": {"public", "handbook", "engineering", "finance", "sales", "board"},
    "sam": {"public", "handbook", "sales"},
    "pat": {"public", "handbook"},
    "vic": {"public"},
}
USERS = list(READS)
INVALID = {  # caller -> (Authorization header, the 401 message)
    "revoked": (None, "invalid or unknown token"),
    "expired": (None, "token expired; ask an admin for a new one"),
    "malformed": ("Bearer mx_not-a-real-token", "invalid or unknown token"),
    "other-scheme": (None, "invalid or unknown token"),
    "no-token": ("", "missing bearer token (Authorization: Bearer mx_...)"),
}
REMOVED = "removed-user"  # a valid token whose user is no longer in the policy: 403
CALLERS = USERS + list(INVALID) + [REMOVED]
QUESTION = "Kestrel vacation budget salaries pricing board outage press release"


@dataclass
class Site:
    client: TestClient
    headers: dict[str, dict[str, str]]
    sources: dict[str, set[str]]  # folder -> source paths
    lines: dict[str, set[str]]  # folder -> distinctive lines of its chunks

    def status(self, method: str, path: str, caller: str, **kwargs) -> tuple[int, object]:
        response = self.client.request(method, path, headers=self.headers[caller], **kwargs)
        kind = response.headers.get("content-type", "")
        body = response.json() if kind.startswith("application/json") else response.text
        return response.status_code, body

    def readable(self, caller: str) -> set[str]:
        return {s for folder in READS.get(caller, ()) for s in self.sources[folder]}

    def forbidden_lines(self, caller: str) -> set[str]:
        allowed = set().union(*(self.lines[f] for f in READS[caller]))
        return {line for f in FOLDERS if f not in READS[caller] for line in self.lines[f]} - allowed


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    archive = root / "archive" / "kestrel"
    for folder in FOLDERS:
        shutil.copytree(EXAMPLES / folder, archive / folder, ignore=without_media)
    policy = load_policy(POLICIES / "company.yaml")
    memex = Memex(
        Paths(root / "home"), policy=policy, embedder=HashingEmbedder(), model=FakeModel(), writable=True
    )
    report = memex.ingest([str(archive)])
    assert report.failures == []
    oracle = Principal(
        name="oracle",
        known=True,
        labels=policy.labels,
        levels=frozenset(policy.levels),
        all_access_lists=True,
    )
    sources: dict[str, set[str]] = {f: set() for f in FOLDERS}
    lines: dict[str, set[str]] = {f: set() for f in FOLDERS}
    for hit in memex.index.search(None, principal=oracle, k=10_000):
        folder = Path(hit.uri).relative_to(archive).parts[0]
        sources[folder].add(hit.uri)
        lines[folder] |= {line.strip() for line in hit.text.splitlines() if len(line.strip()) >= 25}
    assert all(sources[f] for f in FOLDERS) and sum(map(len, sources.values())) == 12

    service, tokens = make_service(memex, per_user=4)
    headers = {}
    for user in USERS:
        token, _ = tokens.create(user, expires=None)
        headers[user] = {"Authorization": f"Bearer {token}"}
    revoked, info = tokens.create("erin", expires=None)
    tokens.revoke(info.id)
    expired, _ = tokens.create("erin", expires=time.time() - 1)
    removed, _ = tokens.create("zed", expires=None)  # zed is not (or no longer) in the policy
    erin = headers["erin"]["Authorization"].removeprefix("Bearer ")
    headers.update(
        {
            "revoked": {"Authorization": f"Bearer {revoked}"},
            "expired": {"Authorization": f"Bearer {expired}"},
            "malformed": {"Authorization": INVALID["malformed"][0]},
            "other-scheme": {"Authorization": f"Basic {erin}"},
            "no-token": {},
            REMOVED: {"Authorization": f"Bearer {removed}"},
        }
    )
    with TestClient(create_app(service), base_url="http://localhost") as client:
        yield Site(client, headers, sources, lines)
    service.close()
    memex.close()


def expected_denial(caller: str, openai: bool = False) -> tuple[int, object]:
    if caller == REMOVED:
        status, message = 403, "user 'zed' is not in the policy"
    else:
        status, message = 401, INVALID[caller][1]
    if openai:
        kind = "permission_error" if status == 403 else "invalid_request_error"
        return status, {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return status, {"error": message}


def test_health_and_the_page_need_no_token_and_show_no_data(site):
    for caller in CALLERS:
        assert site.status("GET", "/healthz", caller) == (200, {"status": "ok"}), caller
        status, page = site.status("GET", "/", caller)
        assert status == 200 and "<title>memex</title>" in page and "Kestrel" not in page, caller


def test_status(site):
    observed = {}
    for caller in CALLERS:
        status, body = site.status("GET", "/api/status", caller)
        observed[caller] = (status, body["indexed"]["sources"] if status == 200 else body)
    expected = {u: (200, len(site.readable(u))) for u in USERS} | {
        c: expected_denial(c) for c in CALLERS[len(USERS) :]
    }
    assert observed == expected


def test_status_shows_server_details_to_admins_only(site):
    _, admin = site.status("GET", "/api/status", "root-admin")
    _, alice = site.status("GET", "/api/status", "alice")
    assert {"home", "policy", "ledger", "roots", "failures", "generation"} <= set(admin)
    assert set(alice) == {"principal", "indexed", "models", "readers", "roles", "admin"}
    assert (alice["principal"], alice["roles"], alice["admin"]) == ("alice", ["engineer"], False)
    assert admin["generation"]["queue_size"] == 8


def test_search_returns_exactly_the_readable_sources(site):
    observed = {}
    for caller in CALLERS:
        status, body = site.status("POST", "/api/search", caller, json={"query": QUESTION, "k": 50})
        observed[caller] = (status, {h["source"] for h in body["hits"]} if status == 200 else body)
    expected = {u: (200, site.readable(u)) for u in USERS} | {
        c: expected_denial(c) for c in CALLERS[len(USERS) :]
    }
    assert observed == expected


def test_show_answers_readable_sources_and_404s_the_rest_alike(site):
    every = sorted(set().union(*site.sources.values()))
    observed, bodies = {}, set()
    for caller in CALLERS:
        for source in every:
            status, body = site.status("GET", "/api/sources/" + urllib.parse.quote(source, safe=""), caller)
            observed[caller, source] = status
            if status == 200:
                assert {c["source"] for c in body["chunks"]} == {source} and body["source"] == source
            elif status == 404:
                bodies.add(json.dumps(body))
    for caller in USERS:  # a source that never existed looks like a forbidden one
        status, body = site.status(
            "GET", "/api/sources/" + urllib.parse.quote("/nowhere/at/all.md", safe=""), caller
        )
        assert status == 404
        bodies.add(json.dumps(body))
    expected = {
        (caller, source): (200 if source in site.readable(caller) else 404)
        if caller in USERS
        else expected_denial(caller)[0]
        for caller in CALLERS
        for source in every
    }
    assert observed == expected
    assert bodies == {json.dumps({"error": "no such source, or you may not read it"})}


def test_the_audit_log_shows_admins_everything_and_everyone_else_their_own(site):
    searched = {u for u in USERS if site.readable(u)}  # whoever reads nothing is refused, not audited
    for user in searched:
        assert site.status("POST", "/api/search", user, json={"query": QUESTION})[0] == 200
    observed = {}
    for caller in CALLERS:
        status, body = site.status("GET", "/api/audit", caller)
        observed[caller] = (
            (status, {e["principal"] for e in body["entries"]}) if status == 200 else (status, body)
        )
    assert observed["root-admin"][0] == 200 and observed["root-admin"][1] >= searched
    for user in USERS[1:]:
        assert observed[user] == (200, {user} & searched or set()), user
    for caller in CALLERS[len(USERS) :]:
        assert observed[caller] == expected_denial(caller), caller


def _check_answer(site: Site, caller: str, text: str, sources: set[str]) -> None:
    assert sources <= site.readable(caller), caller
    leaked = [line for line in site.forbidden_lines(caller) if line in text]
    assert leaked == [], caller


def test_ask_json_and_streamed(site):
    observed = {}
    for caller in CALLERS:
        status, body = site.status("POST", "/api/ask", caller, json={"question": QUESTION, "k": 50})
        streamed_status, stream = site.status(
            "POST", "/api/ask", caller, json={"question": QUESTION, "k": 50, "stream": True}
        )
        observed[caller] = (status, streamed_status)
        if status != 200:
            assert body == expected_denial(caller)[1] and stream == body
            continue
        cited = {c["source"] for c in body["citations"]}
        _check_answer(site, caller, json.dumps(body), cited)
        events = parse_sse(stream)
        assert [name for name, _ in events][0] == "queued" and events[-1][0] == "answer"
        assert {name for name, _ in events[1:-1]} <= {"token"}
        final = json.loads(events[-1][1])
        _check_answer(site, caller, stream, {c["source"] for c in final["citations"]})
        assert cited, caller  # every user can read something relevant to the question
    assert observed == {u: (200, 200) for u in USERS} | {
        c: (expected_denial(c)[0],) * 2 for c in CALLERS[len(USERS) :]
    }


def test_openai_models_and_chat_completions(site):
    observed = {}
    for caller in CALLERS:
        models = site.status("GET", "/v1/models", caller)
        chat = site.status(
            "POST",
            "/v1/chat/completions",
            caller,
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]},
        )
        streamed = site.status(
            "POST",
            "/v1/chat/completions",
            caller,
            json={"model": "x", "stream": True, "messages": [{"role": "user", "content": QUESTION}]},
        )
        observed[caller] = (models[0], chat[0], streamed[0])
        if chat[0] != 200:
            denial = expected_denial(caller, openai=True)[1]
            assert models[1] == chat[1] == streamed[1] == denial
            continue
        assert models[1]["data"][0]["id"] == "memex"
        cited = {c["source"] for c in chat[1]["memex"]["citations"]}
        _check_answer(site, caller, json.dumps(chat[1]), cited)
        chunks = [json.loads(d) for _, d in parse_sse(streamed[1]) if d != "[DONE]"]
        assert parse_sse(streamed[1])[-1][1] == "[DONE]"
        _check_answer(site, caller, streamed[1], {c["source"] for c in chunks[-1]["memex"]["citations"]})
    denied = {c: (expected_denial(c)[0],) * 3 for c in CALLERS[len(USERS) :]}
    assert observed == {u: (200, 200, 200) for u in USERS} | denied


def _mcp(site: Site, caller: str, tool: str, arguments: dict) -> tuple[int, object]:
    headers = {**site.headers[caller], "Accept": "application/json, text/event-stream"}
    response = site.client.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        },
        headers=headers,
    )
    body = response.json()
    if response.status_code == 200:
        result = body["result"]
        assert result["isError"] is False, result
        return 200, json.loads(result["content"][0]["text"])
    return response.status_code, body


def test_mcp_search_and_ask(site):
    observed = {}
    for caller in CALLERS:
        status, found = _mcp(site, caller, "search", {"query": QUESTION, "k": 50})
        ask_status, answer = _mcp(site, caller, "ask", {"question": QUESTION})
        observed[caller] = (
            status,
            {h["source"] for h in found["hits"]} if status == 200 else found,
            ask_status,
        )
        if ask_status == 200:
            _check_answer(site, caller, json.dumps(answer), {c["source"] for c in answer["citations"]})
    expected = {u: (200, site.readable(u), 200) for u in USERS}
    expected |= {c: (*expected_denial(c), expected_denial(c)[0]) for c in CALLERS[len(USERS) :]}
    assert observed == expected


def test_every_request_is_audited_with_its_channel_principal_and_chunks(site):
    _, before = site.status("GET", "/api/audit", "root-admin", params={"limit": 1})
    last = before["entries"][0]["id"] if before["entries"] else 0  # the log may be empty
    site.status("POST", "/api/search", "hana", json={"query": "parental leave", "k": 3})
    site.status("POST", "/api/ask", "sam", json={"question": "pricing"})
    site.status(
        "POST",
        "/v1/chat/completions",
        "frank",
        json={"messages": [{"role": "user", "content": "Q2 2026 budget approved EUR"}]},
    )
    _mcp(site, "pat", "search", {"query": "office"})
    site.status("GET", "/api/sources/" + urllib.parse.quote(sorted(site.sources["hr"])[0], safe=""), "alice")
    _, after = site.status("GET", "/api/audit", "root-admin", params={"limit": 10})
    new = [e for e in after["entries"] if e["id"] > last]
    rows = [(e["principal"], e["channel"], e["action"], e["question"]) for e in reversed(new)]
    assert rows == [
        ("hana", "http", "search", "parental leave"),
        ("sam", "http", "ask", "pricing"),
        ("frank", "openai", "ask", "Q2 2026 budget approved EUR"),
        ("pat", "mcp", "search", "office"),
        ("alice", "http", "show", sorted(site.sources["hr"])[0]),
    ]
    token_ids = {c: h["Authorization"][10:22] for c, h in site.headers.items() if c in USERS}
    assert [e["actor"] for e in reversed(new)] == [
        f"{u} (token {token_ids[u]})" for u in ("hana", "sam", "frank", "pat", "alice")
    ]
    assert [len(e["chunk_ids"]) > 0 for e in reversed(new)] == [True, True, True, True, False]


def test_the_audit_log_holds_exactly_the_chunks_each_door_served(site):
    """Not just some ids: the search's hits in order, the chunks put before the model (one
    citation each), a shown source's chunks, and none for a source refused."""

    def last() -> tuple[str, str, str, str, list[str]]:
        _, body = site.status("GET", "/api/audit", "root-admin", params={"limit": 1})
        e = body["entries"][0]
        return e["principal"], e["channel"], e["action"], e["question"], e["chunk_ids"]

    _, found = site.status("POST", "/api/search", "hana", json={"query": "parental leave weeks", "k": 4})
    assert len(found["hits"]) == 4
    assert last() == (
        "hana",
        "http",
        "search",
        "parental leave weeks",
        [h["chunk_id"] for h in found["hits"]],
    )

    _, answer = site.status("POST", "/api/ask", "frank", json={"question": "Q2 budget approved", "k": 3})
    cited = [c["chunk_id"] for c in answer["citations"]]
    assert 1 <= len(cited) <= 3 and last() == ("frank", "http", "ask", "Q2 budget approved", cited)

    _, stream = site.status("POST", "/api/ask", "sam", json={"question": "pricing tiers", "stream": True})
    cited = [c["chunk_id"] for c in json.loads(parse_sse(stream)[-1][1])["citations"]]
    assert cited and last() == ("sam", "http", "ask", "pricing tiers", cited)

    chat = {"messages": [{"role": "user", "content": "harrier outage cause"}]}
    _, reply = site.status("POST", "/v1/chat/completions", "alice", json=chat)
    cited = [c["chunk_id"] for c in reply["memex"]["citations"]]
    assert cited and last() == ("alice", "openai", "ask", "harrier outage cause", cited)

    _, mcp = _mcp(site, "pat", "search", {"query": "office opening hours", "k": 2})
    assert last() == ("pat", "mcp", "search", "office opening hours", [h["chunk_id"] for h in mcp["hits"]])

    source = sorted(site.sources["hr"])[0]
    _, shown = site.status("GET", "/api/sources/" + urllib.parse.quote(source, safe=""), "hana")
    assert shown["chunks"] and last() == (
        "hana",
        "http",
        "show",
        source,
        [c["chunk_id"] for c in shown["chunks"]],
    )
    assert site.status("GET", "/api/sources/" + urllib.parse.quote(source, safe=""), "alice")[0] == 404
    assert last() == ("alice", "http", "show", source, [])
