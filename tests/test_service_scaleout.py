"""Scale-out with existing engines, for real: a Chroma server (`chroma run`) as the store and
llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`) as the model, both started
on loopback by the tests. Also: two memex processes on one MEMEX_HOME with a Chroma server (one
ingesting, one serving) without a lock, a lost update or a damaged file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from memex.api.wiring import Memex
from memex.config import Paths, Settings
from memex.models.embeddings import HashingEmbedder
from memex.models.llm import FakeModel, OpenAICompatibleModel, default_model_path
from memex.service.app import create_app
from tests.conftest import EXAMPLES, ROOT, without_media
from tests.service_support import bearer, free_port, make_service, parse_sse

BIN = Path(sys.executable).parent


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    process = subprocess.Popen(
        [
            str(BIN / "chroma"),
            "run",
            "--path",
            str(tmp_path / "chroma-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/v2/heartbeat", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()


# `python -m llama_cpp.server`, with the weights loaded as memex loads them (no AMX repacking,
# which crashes on virtual machines with AMX: see memex.models.llm.no_amx_repacking).
LLAMA_SERVER = (
    "import runpy, sys\n"
    "from memex.models.llm import no_amx_repacking\n"
    "with no_amx_repacking():\n"
    "    runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


def _start_llama(port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("a")
    process = subprocess.Popen(
        [
            sys.executable, "-c", LLAMA_SERVER, "--model", str(default_model_path()),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    _wait_for(f"http://127.0.0.1:{port}/v1/models", process)
    return process


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive" / "kestrel"
    shutil.copytree(EXAMPLES / "handbook", root / "handbook")
    shutil.copytree(EXAMPLES / "engineering", root / "engineering", ignore=without_media)
    (root / "hr").mkdir()
    shutil.copy(EXAMPLES / "hr" / "parental-leave-policy.md", root / "hr")
    return root


def _memex(home: Path, policy, store_url: str, *, writable: bool = True) -> Memex:
    return Memex(
        Paths(home),
        policy=policy,
        settings=Settings(store_url=store_url),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=writable,
    )


def test_a_chroma_server_as_the_store(tmp_path, archive, chroma_server, company_policy):
    import chromadb

    home = tmp_path / "home"
    memex = _memex(home, company_policy, chroma_server)
    report = memex.ingest([str(archive)])
    assert (report.failures, len(report.indexed)) == ([], 5)
    assert not (home / "store" / "chroma").exists()  # nothing embedded
    assert not (home / "store.lock").exists()  # no embedded-store lock with a server
    server = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
    names = sorted(c.name if hasattr(c, "name") else c for c in server.list_collections())
    # the global collection and one partition per (labels, level): staff, staff+engineering, staff+hr
    assert (
        names[0] == "memex_chunks" and len(names) == 4 and all(n.startswith("memex_part_") for n in names[1:])
    )
    stored = (
        sqlite3.connect(home / "store" / "lexical.sqlite")
        .execute("SELECT COUNT(*) FROM chunks")
        .fetchone()[0]
    )
    assert server.get_collection("memex_chunks").count() == stored > 0

    service, tokens = make_service(memex)
    alice, _ = tokens.create("alice", expires=None)
    hana, _ = tokens.create("hana", expires=None)
    with TestClient(create_app(service), base_url="http://localhost") as client:

        def sources(token: str) -> set[str]:
            found = client.post(
                "/api/search",
                json={"query": "vacation leave outage architecture", "k": 50},
                headers=bearer(token),
            )
            return {Path(h["source"]).relative_to(archive).parts[0] for h in found.json()["hits"]}

        assert sources(alice) == {"handbook", "engineering"}
        assert sources(hana) == {"handbook", "hr"}
        before = (sources(alice), sources(hana))
        with service.reads.lock:
            rebuilt = memex.rebuild()  # reset: the server's collections are emptied and refilled
        assert (rebuilt.failures, len(rebuilt.indexed)) == ([], 5)
        assert (sources(alice), sources(hana)) == before
        assert len(server.list_collections()) == 4
    service.close()
    memex.close()


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from memex.api.wiring import Memex
    from memex.config import Paths, Settings
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel
    from memex.access.policyfile import load_policy

    home, store, policy, target = sys.argv[1:5]
    memex = Memex(Paths(Path(home)), policy=load_policy(policy), settings=Settings(store_url=store),
                  embedder=HashingEmbedder(), model=FakeModel(), writable=True)
    if __name__ == "__main__":
        report = memex.ingest([target])
        print(len(report.indexed), len(report.failures))
        memex.close()
    """
)


def test_two_processes_on_one_home_with_a_chroma_server(tmp_path, archive, chroma_server, company_policy):
    home = tmp_path / "home"
    memex = _memex(home, company_policy, chroma_server)
    assert memex.ingest([str(archive / "handbook")]).failures == []
    more = tmp_path / "more" / "kestrel" / "handbook"
    more.mkdir(parents=True)
    for n in range(40):  # enough for the writer to take a while
        (more / f"memo-{n:02d}.md").write_text(
            f"# Memo {n}\n\nThe falcon memo number {n} says zephyr{n:02d}.\n"
        )
    service, tokens = make_service(memex)
    pat, _ = tokens.create("pat", expires=None)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    with TestClient(create_app(service), base_url="http://localhost") as client:
        writer = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(home),
                chroma_server,
                str(ROOT / "policies" / "company.yaml"),
                str(more),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        statuses, seen = [], set()
        while writer.poll() is None:
            response = client.post(
                "/api/search", json={"query": "falcon memo zephyr", "k": 50}, headers=bearer(pat)
            )
            statuses.append(response.status_code)
            seen.add(len([h for h in response.json()["hits"] if "memo-" in h["source"]]))
        out, err = writer.communicate()
        assert writer.returncode == 0, err
        assert out.split() == ["40", "0"]
        final = client.post("/api/search", json={"query": "falcon memo zephyr", "k": 50}, headers=bearer(pat))
        memos = {Path(h["source"]).name for h in final.json()["hits"] if "memo-" in h["source"]}
    assert set(statuses) == {200} and len(statuses) > 0
    assert memos == {f"memo-{n:02d}.md" for n in range(40)}  # the serving process sees the other's writes
    for name in ("store/lexical.sqlite", "ledger.sqlite", "audit.sqlite"):
        db = sqlite3.connect(home / name)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",), name
        db.close()
    lexical = (
        sqlite3.connect(home / "store" / "lexical.sqlite")
        .execute("SELECT COUNT(*) FROM chunks")
        .fetchone()[0]
    )
    ledger = sqlite3.connect(home / "ledger.sqlite").execute("SELECT COUNT(*) FROM sources").fetchone()[0]
    import chromadb

    server = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
    assert server.get_collection("memex_chunks").count() == lexical
    assert ledger == 42  # the handbook's two files and the 40 memos
    service.close()
    memex.close()


@pytest.mark.slow  # a minute or more on a busy 2-core machine
def test_a_llama_cpp_server_as_the_model(tmp_path, archive, company_policy):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    llama = _start_llama(port, tmp_path / "llama.log")
    memex = Memex(
        Paths(tmp_path / "home"),
        policy=company_policy,
        settings=Settings(max_answer_tokens=32),  # short answers: the shared CPU is slow
        embedder=HashingEmbedder(),
        writable=True,
    )
    assert memex.ingest([str(archive)]).failures == []
    service, tokens = make_service(memex, model_factory=lambda: OpenAICompatibleModel(url))
    alice, _ = tokens.create("alice", expires=None)
    question = {"question": "How many vacation days do employees get per year?", "k": 2}
    try:
        with TestClient(create_app(service), base_url="http://localhost") as client:
            answered = client.post("/api/ask", json=question, headers=bearer(alice))
            assert answered.status_code == 200, answered.text
            body = answered.json()
            assert (
                body["answer"].strip()
                and body["answer"] != "The archives you can read do not contain an answer to that question."
            )
            assert Path(body["citations"][0]["source"]).relative_to(archive).parts[:1] == ("handbook",)
            streamed = parse_sse(
                client.post("/api/ask", json={**question, "stream": True}, headers=bearer(alice)).text
            )
            assert [name for name, _ in streamed][:: len(streamed) - 1] == ["queued", "answer"]
            assert "token" in {name for name, _ in streamed}
            _stop(llama)  # the model server goes away: 503, the service stays up
            down = client.post("/api/ask", json=question, headers=bearer(alice))
            assert (down.status_code, down.json()) == (
                503,
                {"error": "the model is unavailable; try again shortly"},
            )
            assert (
                client.post("/api/search", json={"query": "vacation"}, headers=bearer(alice)).status_code
                == 200
            )
            llama = _start_llama(port, tmp_path / "llama.log")  # back: answers again
            assert client.post("/api/ask", json=question, headers=bearer(alice)).status_code == 200
    finally:
        _stop(llama)
        service.close()
        memex.close()


def _serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [str(BIN / "memex"), "serve", "--port", "0", "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import json

    line = process.stdout.readline()
    if not line:
        raise RuntimeError(process.stderr.read())
    url = json.loads(line)["url"]
    _wait_for(url + "healthz", process, 300)
    return process, url


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(BIN / "memex"), *args], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_memex_serve_with_both_servers_and_the_real_embedder(tmp_path, archive, chroma_server):
    """The command line end to end: init, ingest (real embedder) into the Chroma server, a
    token, `memex serve --store URL --llm URL`, an answer over HTTP, Ctrl-C."""
    import json

    env = {**os.environ, "MEMEX_HOME": str(tmp_path / "home")}
    _cli(env, "init", "--policy", "company.yaml")
    (tmp_path / "home" / "config.toml").write_text(f'store_url = "{chroma_server}"\n')
    _cli(env, "ingest", str(archive))
    token = json.loads(_cli(env, "token", "create", "alice", "--json"))["token"]
    port = free_port()
    llama = _start_llama(port, tmp_path / "llama.log")
    try:
        serve, url = _serve(["--store", chroma_server, "--llm", f"http://127.0.0.1:{port}/v1"], env)
        try:
            answer = httpx.post(
                url + "api/ask",
                json={"question": "How many vacation days do employees get?"},
                headers=bearer(token),
                timeout=300,
            ).json()
            assert answer["citations"][0]["source"] == f"{archive}/handbook/employee-handbook.md"
            assert any("25 working days of paid vacation" in e["sentence"] for e in answer["evidence"])
            assert {c["source"] for c in answer["citations"]} <= {
                str(p) for p in archive.rglob("*") if "/hr/" not in str(p)
            }
        finally:
            serve.send_signal(2)  # Ctrl-C
            assert serve.wait(30) == 0
    finally:
        _stop(llama)
