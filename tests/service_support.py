"""Helpers for the service tests: a Service over an injected Memex (fakes), tokens, and a live
uvicorn server on a free loopback port for clients that need a real socket (Chromium, MCP,
the OpenAI client)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memex.access import Policy
from memex.api.wiring import Memex
from memex.service.auth import Authenticator, PolicySource
from memex.service.core import Service
from memex.service.tokens import TokenStore


def make_service(
    memex: Memex,
    *,
    policy: Policy | None = None,
    policy_path: Path | None = None,
    **kwargs,
) -> tuple[Service, TokenStore]:
    tokens = TokenStore(memex.paths.root / "tokens.sqlite")
    # By default the service's identities and the index's last check use one policy in force.
    source = (
        memex.policy_source
        if policy is None and policy_path is None
        else PolicySource(policy or memex.policy, policy_path)
    )
    return Service(memex, Authenticator(tokens, source), **kwargs), tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread; yields its base URL (ending in /)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def parse_sse(text: str) -> list[tuple[str, str]]:
    """(event name, data) for each event of a text/event-stream body; comments are skipped."""
    events = []
    for block in text.split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def canary_memex(path: Path, *, n: int = 200, model=None) -> tuple[Memex, list]:
    """A Memex over the synthetic canary corpus (tests/canary_corpus.py), written straight into
    the index: fast, no parsing. Returns it and the corpus items."""
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel
    from tests import canary_corpus

    items = canary_corpus.build(n)
    memex = Memex(
        Paths(path),
        policy=canary_corpus.policy(),
        embedder=HashingEmbedder(96),
        model=model or FakeModel(),
        writable=True,
    )
    chunks = [item.chunk for item in items]
    for start in range(0, len(chunks), 500):
        batch = chunks[start : start + 500]
        memex.index.upsert(batch, memex.embedder.embed([c.text for c in batch]))
    return memex, items
