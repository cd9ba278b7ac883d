"""A policy edit is in force at once (issue 15, section 4). Tightening a source rule in
policy.yaml hides what it now hides from the first request after the edit, through every read
path (the Memex facade the CLI uses, the service's JSON API, OpenAI endpoint and MCP, the daemon
socket); the process that owns the store relabels online, after which the counts agree; and a
loosened rule widens nothing until that relabel (the stored labels still apply). The store lock
names the process that really holds it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from memex.access.policyfile import PolicySource, load_policy
from memex.api.reads import Reads
from memex.api.wiring import Memex
from memex.config import Paths
from memex.errors import StoreBusy
from memex.models.embeddings import HashingEmbedder
from memex.models.llm import FakeModel
from memex.service.app import create_app
from memex.store.labelling import LABELLED_UNDER
from tests.conftest import EXAMPLES, POLICIES, without_media
from tests.service_support import make_service

HANDBOOK_HR_ONLY = """\
  - name: handbook-now-hr-only
    match: {path: "**/kestrel/handbook/**"}
    labels: [hr]
    level: confidential
"""
QUERY = "Kestrel office handbook leave engineering outage architecture"


def tighten(policy: Path) -> None:
    """The handbook folder becomes HR-only (a rule is added: rules only ever narrow)."""
    text = policy.read_text()
    policy.write_text(text.replace("sources:\n", "sources:\n" + HANDBOOK_HR_ONLY, 1))


def loosen(policy: Path) -> None:
    """The engineering folder loses its engineering label: all staff may read it."""
    text = policy.read_text()
    old = 'match: {path: "**/kestrel/engineering/**"}'
    assert old in text
    policy.write_text(text.replace(old, 'match: {path: "**/kestrel/no-such-folder/**"}', 1))


@pytest.fixture
def archive(tmp_path) -> Path:
    root = tmp_path / "archive" / "kestrel"
    for folder in ("handbook", "engineering", "hr"):
        shutil.copytree(EXAMPLES / folder, root / folder, ignore=without_media)
    return root


@pytest.fixture
def home(memex_home) -> Path:
    memex_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(POLICIES / "company.yaml", memex_home / "policy.yaml")
    return memex_home


def _memex(home: Path) -> Memex:
    path = home / "policy.yaml"
    return Memex(
        Paths(home),
        policy=PolicySource(load_policy(path), path),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )


def reader(memex: Memex) -> Reads:
    """Reads through a view that does not own the store (as the daemon's readers and the CLI
    beside a daemon): it never relabels, so the index's last check alone must hide."""
    view = Memex(
        memex.paths, policy=memex.policy_source, embedder=memex.embedder, model=memex.model, index=memex.index
    )
    return Reads(view)


def folders(hits, archive: Path) -> set[str]:
    return {Path(hit.uri).relative_to(archive).parts[0] for hit in hits}


def test_a_tightened_rule_hides_at_the_first_request_and_top_k_stays_k(home, archive):
    with _memex(home) as memex:
        memex.ingest([str(archive)])
        alice = lambda: memex.policy.principal("alice")  # noqa: E731  (the policy in force)
        before = reader(memex).search(QUERY, principal=alice(), k=8)
        assert folders(before, archive) == {"handbook", "engineering"}
        handbook_file = str(archive / "handbook" / "employee-handbook.md")
        assert reader(memex).show(handbook_file, principal=alice())
        readable_engineering = [
            h for h in memex.index.search(None, principal=alice(), k=10_000) if "/engineering/" in h.uri
        ]

        tighten(home / "policy.yaml")
        assert memex.labels_stale()
        during = reader(memex).search(QUERY, principal=alice(), k=8)
        assert folders(during, archive) == {"engineering"}
        assert len(during) == min(8, len(readable_engineering))  # over-fetched: k stays k
        assert reader(memex).show(handbook_file, principal=alice()) == []
        assert {h.uri for h in reader(memex).export(principal=alice())} == {
            h.uri for h in readable_engineering
        }
        hana = memex.policy.principal("hana")  # HR: the handbook is still hers
        assert "handbook" in folders(reader(memex).search(QUERY, principal=hana, k=8), archive)

        # The owner relabels online; then the counts agree with what is served.
        assert memex.keep_labels_current() == 2  # the two handbook files
        assert not memex.labels_stale()
        assert memex.index.count(principal=alice())["chunks"] == len(readable_engineering)
        after = reader(memex).search(QUERY, principal=alice(), k=8)
        assert {h.chunk_id for h in after} == {h.chunk_id for h in during}
        record = memex.ledger.get(memex.ledger.find(handbook_file)[0])
        assert record.access.labels == {"staff", "hr"} and "handbook-now-hr-only" in record.rules


def test_a_loosened_rule_widens_nothing_until_relabelled(home, archive):
    with _memex(home) as memex:
        memex.ingest([str(archive)])
        pat = lambda: memex.policy.principal("pat")  # noqa: E731  (staff only)
        assert folders(reader(memex).search(QUERY, principal=pat(), k=8), archive) == {"handbook"}

        loosen(home / "policy.yaml")
        assert folders(reader(memex).search(QUERY, principal=pat(), k=8), archive) == {"handbook"}
        assert memex.keep_labels_current() == 2  # the two engineering files
        assert folders(reader(memex).search(QUERY, principal=pat(), k=8), archive) == {
            "handbook",
            "engineering",
        }


def test_a_source_no_rule_matches_any_more_is_served_to_nobody(home, archive):
    with _memex(home) as memex:
        memex.ingest([str(archive)])
        erin = lambda: memex.policy.principal("erin")  # noqa: E731  (the CEO reads engineering)
        assert "engineering" in folders(Reads(memex).search(QUERY, principal=erin(), k=8), archive)
        policy = home / "policy.yaml"
        text = policy.read_text().replace('"**/kestrel/engineering/**", ', "", 1)
        policy.write_text(
            text.replace('match: {path: "**/kestrel/engineering/**"}', 'match: {path: "/x/**"}')
        )
        assert "engineering" not in folders(Reads(memex).search(QUERY, principal=erin(), k=8), archive)
        memex.keep_labels_current()
        assert not [r for r in memex.ledger.records() if "/engineering/" in r.uri]  # default deny


def test_ingest_relabels_everything_stored_first(home, archive):
    with _memex(home) as memex:
        memex.ingest([str(archive / "handbook")])
        memex.ingest([str(archive / "engineering")])
        tighten(home / "policy.yaml")
        memex.ingest([str(archive / "engineering")])  # does not read the handbook, relabels it
        digest = memex.ledger.state(LABELLED_UNDER)
        assert digest and not memex.labels_stale()
        alice = memex.policy.principal("alice")
        assert memex.index.count(principal=alice)["sources"] == 2


# -- the service: JSON API, OpenAI endpoint, MCP -------------------------------------------------
def _mcp_search(client, headers, query):
    response = client.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": query, "k": 8}},
        },
        headers={**headers, "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 200, response.text
    return json.loads(response.json()["result"]["content"][0]["text"])["hits"]


def test_every_door_of_the_service_applies_an_edit_at_once(home, archive):
    memex = _memex(home)
    memex.ingest([str(archive)])
    handbook_lines = {
        line.strip()
        for path in (archive / "handbook").iterdir()
        for line in path.read_text().splitlines()
        if len(line.strip()) >= 30
    }
    service, tokens = make_service(memex)
    token, _ = tokens.create("alice", expires=None)
    headers = {"Authorization": f"Bearer {token}"}

    def doors(client) -> dict[str, set[str]]:
        found = client.post("/api/search", json={"query": QUERY, "k": 8}, headers=headers).json()["hits"]
        mcp = _mcp_search(client, headers, QUERY)
        chat = client.post(
            "/v1/chat/completions",
            json={"model": "memex", "messages": [{"role": "user", "content": QUERY}]},
            headers=headers,
        ).json()
        answer = chat["choices"][0]["message"]["content"]
        shown = client.get(
            "/api/sources/" + str(archive / "handbook" / "employee-handbook.md").replace("/", "%2F"),
            headers=headers,
        )
        return {
            "api": folders([_Uri(h["source"]) for h in found], archive),
            "mcp": folders([_Uri(h["source"]) for h in mcp], archive),
            "openai": {"handbook"} if any(line in answer for line in handbook_lines) else set(),
            "show": {"handbook"} if shown.status_code == 200 else set(),
        }

    with TestClient(create_app(service), base_url="http://localhost") as client:
        seen = doors(client)
        assert all("handbook" in folders for folders in seen.values()), seen
        chunks_before = client.get("/api/status", headers=headers).json()["indexed"]["chunks"]

        tighten(home / "policy.yaml")
        seen = doors(client)
        assert not any("handbook" in folders for folders in seen.values()), seen
        # the first request relabelled online: the counts agree with what is served
        assert not memex.labels_stale()
        status = client.get("/api/status", headers=headers).json()["indexed"]
        assert status["chunks"] < chunks_before and "hr" not in status["by_label"]
    service.close()
    memex.close()


class _Uri:
    def __init__(self, uri: str) -> None:
        self.uri = uri


# -- the daemon socket ---------------------------------------------------------------------------
def test_the_daemon_applies_an_edit_at_the_first_read(home, archive):
    from memex.daemon.rpc import Peer
    from tests.watch_support import Running, wait_until

    def search(service) -> set[str]:
        frames: list[dict] = []
        service.handle(
            {"command": "search", "params": {"query": QUERY, "k": 8}, "as_user": "alice"},  # an admin testing
            Peer(1, 4242, 4242, "alice"),
            frames.append,
        )
        return folders([_Uri(h["source"]) for h in frames[-1]["result"]], archive)

    memex = _memex(home)
    with Running(memex, [archive]) as running:
        assert search(running.service) == {"handbook", "engineering"}
        tighten(home / "policy.yaml")
        assert search(running.service) == {"engineering"}  # the first read after the edit
        # the daemon's loop relabels online, without a restart
        assert wait_until(lambda: running.of("relabelled"), timeout=30), running.events
        assert running.last_event("relabelled")["sources"] == 2
        assert not running.reader.labels_stale()
        assert search(running.service) == {"engineering"}
    memex.close()


# -- the store lock names the process that really holds it ----------------------------------------
def test_the_lock_names_its_real_holder_not_a_stale_pid(home):
    lock = home / "store.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from memex.store.locking import StoreLock; "
            f"StoreLock(Path({str(lock)!r}), exclusive=False).acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lock.write_text(
            json.dumps({"pid": 999_999_999, "command": "memex ingest"})
        )  # left by a writer long gone
        with pytest.raises(StoreBusy) as caught:
            _memex(home).ingest([])
        assert f"in use by process {holder.pid} (" in str(caught.value)
        assert "999999999" not in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
