"""The new leak cases of issue 15 through the service's doors, not only the core: a symbolic link
in a low folder pointing at an HR file or out of the archive, and mail sent to a crafted
recipient. The JSON API (search, ask, streamed ask, sources), the OpenAI endpoint and MCP answer
as the token's user; none of them serves the canaries to a user who may not read them, and the
user who may read the HR file gets it (so the test can fail)."""

from __future__ import annotations

import asyncio
import json
import urllib.parse

import pytest
from fastapi.testclient import TestClient

from memex.service.app import create_app
from tests.service_support import bearer, live_server, make_service
from tests.test_links import HR_CANARY, OUTSIDE_CANARY
from tests.test_metadata_access import PAYROLL

MAIL_CANARY = "88,400"
QUERIES = ("Harrier salary band HRLINK7731", "private key OUTLINK4409", "new salary bands grade 7 engineers")


@pytest.fixture
def doors(fake_memex, kestrel, tmp_path):
    (kestrel / "hr" / "bands.txt").write_text(f"Pay bands 2026. {HR_CANARY}.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_ed25519.txt").write_text(f"Do not share. {OUTSIDE_CANARY}.\n")
    (kestrel / "public" / "bands.txt").symlink_to("../hr/bands.txt")
    (kestrel / "public" / "notes.txt").symlink_to(outside / "id_ed25519.txt")
    (kestrel / "mail" / "bands.eml").write_text(PAYROLL)
    fake_memex.ingest([str(kestrel)])
    service, tokens = make_service(fake_memex)
    paths = [kestrel / "public" / "bands.txt", kestrel / "public" / "notes.txt", kestrel / "hr" / "bands.txt"]
    yield service, tokens, paths
    service.close()


def _served(client: TestClient, token: str, paths) -> str:
    texts = []
    for query in QUERIES:
        texts.append(client.post("/api/search", json={"query": query, "k": 50}, headers=bearer(token)).text)
        texts.append(client.post("/api/ask", json={"question": query}, headers=bearer(token)).text)
        texts.append(
            client.post("/api/ask", json={"question": query, "stream": True}, headers=bearer(token)).text
        )
        body = {"model": "memex", "messages": [{"role": "user", "content": query}]}
        texts.append(client.post("/v1/chat/completions", json=body, headers=bearer(token)).text)
    for path in paths:
        quoted = urllib.parse.quote(str(path), safe="")
        texts.append(client.get(f"/api/sources/{quoted}", headers=bearer(token)).text)
    return "\n".join(texts)


def test_links_and_crafted_recipients_leak_through_no_door(doors):
    service, tokens, paths = doors
    with TestClient(create_app(service), base_url="http://127.0.0.1") as client:
        for user in ("pat", "vic", "alice"):
            token, _ = tokens.create(user, expires=None)
            served = _served(client, token, paths)
            for canary in (HR_CANARY, OUTSIDE_CANARY, MAIL_CANARY):
                assert canary not in served, (user, canary)
        token, _ = tokens.create("hana", expires=None)
        served = _served(client, token, paths)
    assert HR_CANARY in served and MAIL_CANARY in served  # hana may read both
    assert OUTSIDE_CANARY not in served  # nobody: it was never read


def test_links_and_crafted_recipients_leak_through_no_mcp_tool(doors):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    service, tokens, _ = doors

    async def calls(url: str, key: str) -> str:
        import httpx2

        out = []
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            async with streamable_http_client(url + "mcp", http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    for query in QUERIES:
                        for tool, args in (
                            ("search", {"query": query, "k": 50}),
                            ("ask", {"question": query}),
                        ):
                            result = await session.call_tool(tool, args)
                            out.append(json.dumps([c.text for c in result.content]))
        return "\n".join(out)

    with live_server(create_app(service)) as url:
        pat = asyncio.run(calls(url, tokens.create("pat", expires=None)[0]))
        hana = asyncio.run(calls(url, tokens.create("hana", expires=None)[0]))
    for canary in (HR_CANARY, OUTSIDE_CANARY, MAIL_CANARY):
        assert canary not in pat, canary
    assert HR_CANARY in hana and MAIL_CANARY in hana
