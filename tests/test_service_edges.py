"""The service's outer edge: a body size limit applied before the body is read or the token is
checked, a NUL byte in a path is a 404, and only allowed Host names (and, for MCP, origins)
are answered."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from memex.service.app import create_app
from memex.service.guard import LOCAL_HOSTS, allowed_hosts
from tests.canary_corpus import POLICY  # noqa: F401 (the corpus module the site fixture needs)
from tests.service_support import bearer, canary_memex, make_service

LIMIT = 4096


@pytest.fixture
def service(tmp_path):
    memex, _ = canary_memex(tmp_path / "home", n=5)
    service, tokens = make_service(memex)
    service.token, _ = tokens.create("only-a", expires=None)
    yield service
    service.close()
    memex.close()


@pytest.fixture
def client(service):
    with TestClient(create_app(service, max_body_bytes=LIMIT), base_url="http://localhost") as client:
        yield client


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read_or_the_token_checked(service):
    app = create_app(service, max_body_bytes=LIMIT)
    sent: list[dict] = []

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/search",
        "raw_path": b"/api/search",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-length", b"209715200")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8765),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert sent[1]["body"] == b'{"error": "the request body is larger than 4,096 bytes"}'


@pytest.mark.parametrize("path", ["/api/search", "/v1/chat/completions", "/mcp"])
def test_bodies_over_the_limit_get_413_declared_or_streamed(client, path):
    big = b'{"query": "' + b"x" * LIMIT + b'"}'
    json_type = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    declared = client.post(path, content=big, headers=json_type)  # no token: refused by its size
    streamed = client.post(  # chunked, no Content-Length: counted as it arrives
        path, content=iter([big[:1000], big[1000:]]), headers={**json_type, **bearer(client.app_token)}
    )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert "larger than 4,096 bytes" in response.text
    small = client.post("/api/search", json={"query": "anything"}, headers=bearer(client.app_token))
    assert small.status_code == 200


@pytest.fixture(autouse=True)
def _token_on_client(request):
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        client.app_token = request.getfixturevalue("service").token


@pytest.mark.parametrize("path", ["/api/sources/%00", "/static/%00app.js", "/%00", "/v1/models%00"])
def test_a_nul_byte_in_a_path_is_not_found(client, path):
    response = client.get(path, headers=bearer(client.app_token))
    assert response.status_code == 404
    assert "Traceback" not in response.text and "internal error" not in response.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.2", "localhost.evil.example"])
def test_a_host_not_allowed_gets_400(client, host):
    response = client.get("/api/status", headers={**bearer(client.app_token), "host": host})
    assert response.status_code == 400
    assert response.json() == {"error": f"this service does not answer to the host {host!r}"}


@pytest.mark.parametrize("host", ["localhost", "localhost:8765", "127.0.0.1:8765", "[::1]:8765"])
def test_loopback_hosts_are_answered(client, host):
    response = client.get("/api/status", headers={**bearer(client.app_token), "host": host})
    assert response.status_code == 200


def test_the_allowed_hosts_are_the_listening_address_loopback_and_those_given():
    assert allowed_hosts("127.0.0.1") == LOCAL_HOSTS
    assert allowed_hosts("0.0.0.0", ["Memex.Kestrel.example:443"]) == (*LOCAL_HOSTS, "memex.kestrel.example")
    assert allowed_hosts("10.0.0.5") == (*LOCAL_HOSTS, "10.0.0.5")
    assert allowed_hosts("fd00::5") == (*LOCAL_HOSTS, "[fd00::5]")


def test_mcp_refuses_other_hosts_and_origins(service):
    hosts = allowed_hosts("0.0.0.0", ["memex.kestrel.example"])
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {**bearer(service.token), "accept": "application/json, text/event-stream"}
    with TestClient(create_app(service, hosts=hosts), base_url="http://memex.kestrel.example") as client:
        ok = client.post("/mcp", json=call, headers=headers)
        assert ok.status_code == 200, ok.text
        assert {t["name"] for t in ok.json()["result"]["tools"]} == {"search", "ask"}
        same_site = client.post(
            "/mcp", json=call, headers={**headers, "origin": "https://memex.kestrel.example"}
        )
        assert same_site.status_code == 200
        rebound = client.post("/mcp", json=call, headers={**headers, "origin": "http://evil.example"})
        assert rebound.status_code == 403
        other_host = client.post("/mcp", json=call, headers={**headers, "host": "evil.example"})
        assert other_host.status_code == 400
