"""The canary sweep of tests/test_leaks.py, through the service's front doors: the JSON API
(search, ask, streamed ask, show), the OpenAI-compatible API (plain and streamed) and MCP, for
every user of the synthetic policy (13, one not in the policy), over the 2,016-chunk corpus
with 18 access classes. A sample of chunks per user (two of every class, so each user meets
chunks they may and may not read): no canary of an unreadable chunk in any response, streamed
event, error or audit entry."""

from __future__ import annotations

import dataclasses
import json
import random
import urllib.parse

import pytest
from fastapi.testclient import TestClient

from memex.access import Role, User
from memex.api.wiring import Memex
from memex.config import Paths
from memex.models.embeddings import HashingEmbedder
from memex.models.llm import FakeModel
from memex.service.app import create_app
from tests import canary_corpus
from tests.service_support import bearer, make_service
from tests.test_leaks import CANARY, EXPECTED


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    items = canary_corpus.build(2016)
    policy = canary_corpus.policy()
    memex = Memex(
        Paths(tmp_path_factory.mktemp("service-leaks")),
        policy=policy,
        embedder=HashingEmbedder(96),
        model=FakeModel(),  # echoes its prompt: whatever was retrieved shows in the answer
        writable=True,
    )
    chunks = [item.chunk for item in items]
    for start in range(0, len(chunks), 500):
        batch = chunks[start : start + 500]
        memex.index.upsert(batch, memex.embedder.embed([c.text for c in batch]))
    # an admin to read the audit log through the API (the synthetic policy has none)
    served_policy = dataclasses.replace(
        policy,
        roles={**policy.roles, "auditor": Role("auditor", admin=True)},
        users={**policy.users, "auditor": User("auditor", roles=("auditor",))},
    )
    service, tokens = make_service(memex, policy=served_policy, per_user=4)
    headers = {
        user: bearer(tokens.create(user, expires=None)[0]) for user in [*canary_corpus.USERS, "auditor"]
    }
    with TestClient(create_app(service), base_url="http://localhost") as client:
        yield client, items, headers
    service.close()
    memex.close()


def _sample(items, user: str, per_class: int):
    rng = random.Random(f"service-{user}")
    by_class: dict[str, list] = {}
    for item in items:
        by_class.setdefault(item.klass, []).append(item)
    return [item for klass in sorted(by_class) for item in rng.sample(by_class[klass], per_class)]


def _mcp(client, headers, tool, arguments):
    return client.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        },
        headers={**headers, "Accept": "application/json, text/event-stream"},
    )


@pytest.mark.slow
@pytest.mark.parametrize("user", canary_corpus.USERS)
def test_service_canary_sweep(sweep, user):
    _sweep(sweep, user, per_class=2)


@pytest.mark.parametrize("user", ["g2-member", "acl-user", "unknown-user"])
def test_service_canary_sweep_quick(sweep, user):
    """The same, one chunk of every class, for a group member, an access-list user and a
    stranger (the full sweep is marked slow)."""
    _sweep(sweep, user, per_class=1)


def _sweep(sweep, user: str, *, per_class: int) -> None:
    client, items, headers = sweep
    h = headers[user]
    known = user != "unknown-user"
    readable = {i.canary for i in items if i.klass in EXPECTED[user]}
    readable_ids = {i.chunk.chunk_id for i in items if i.klass in EXPECTED[user]}
    leaks: list[str] = []
    statuses: dict[str, set[int]] = {}
    found_self = readable_asked = 0

    def check(where: str, response) -> None:
        statuses.setdefault(where, set()).add(response.status_code)
        leaks.extend(f"{where}: {c}" for c in CANARY.findall(response.text) if c not in readable)

    for n, item in enumerate(_sample(items, user, per_class)):
        search = client.post("/api/search", json={"query": item.query, "k": 10}, headers=h)
        check("search", search)
        if search.status_code == 200:
            hits = search.json()["hits"]
            assert {hit["chunk_id"] for hit in hits} <= readable_ids
            if item.klass in EXPECTED[user]:
                readable_asked += 1
                found_self += bool(hits) and hits[0]["chunk_id"] == item.chunk.chunk_id
        check("ask", client.post("/api/ask", json={"question": item.query}, headers=h))
        check("ask-stream", client.post("/api/ask", json={"question": item.query, "stream": True}, headers=h))
        chat = {"model": "memex", "messages": [{"role": "user", "content": item.query}]}
        check("openai", client.post("/v1/chat/completions", json=chat, headers=h))
        check("openai-stream", client.post("/v1/chat/completions", json={**chat, "stream": True}, headers=h))
        shown = client.get("/api/sources/" + urllib.parse.quote(item.chunk.source_id, safe=""), headers=h)
        check("show", shown)
        if known:
            assert shown.status_code == (200 if item.klass in EXPECTED[user] else 404), (user, item.klass)
        if n % 3 == 0:
            check("mcp-search", _mcp(client, h, "search", {"query": item.query}))
            check("mcp-ask", _mcp(client, h, "ask", {"question": item.query}))
    audit = client.get("/api/audit", params={"limit": 100_000}, headers=headers["auditor"])
    assert audit.status_code == 200 and CANARY.findall(audit.text) == []  # ids and labels, never text
    assert leaks == []
    if known:
        assert statuses == {
            "search": {200},
            "ask": {200},
            "ask-stream": {200},
            "openai": {200},
            "openai-stream": {200},
            "show": {200, 404} if EXPECTED[user] else {404},
            "mcp-search": {200},
            "mcp-ask": {200},
        }
        # the sweep means something: the user's own chunks are found by their words
        assert found_self >= 0.9 * readable_asked
    else:
        assert set().union(*statuses.values()) == {403}
        entries = json.loads(audit.text)["entries"]
        assert [e for e in entries if e["principal"] == user] == []
