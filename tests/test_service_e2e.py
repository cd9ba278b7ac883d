"""`memex serve` end to end with the real models, as an operator runs it: init, ingest, a token,
serve (embedded store; the bundled GGUF in a model process), ask over HTTP, stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES
from tests.service_support import bearer

BIN = Path(sys.executable).parent


def _cli(env, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "memex"), *args], env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_serve_the_example_company_with_the_real_models(tmp_path):
    archive = tmp_path / "archive" / "kestrel"
    shutil.copytree(EXAMPLES / "handbook", archive / "handbook")
    shutil.copytree(EXAMPLES / "hr", archive / "hr")
    env = {**os.environ, "MEMEX_HOME": str(tmp_path / "home")}
    _cli(env, "init", "--policy", "company.yaml")
    _cli(env, "ingest", str(archive))
    token = json.loads(_cli(env, "token", "create", "alice", "--expires", "1h", "--json").stdout)["token"]
    serve = subprocess.Popen(
        [str(BIN / "memex"), "serve", "--port", "0", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(serve.stdout.readline())
        url = started["url"]
        assert url.startswith("http://127.0.0.1:") and started["home"] == str(tmp_path / "home")
        with httpx.Client(base_url=url, headers=bearer(token), timeout=600) as http:
            assert "<title>memex</title>" in http.get("").text
            answer = http.post(
                "api/ask", json={"question": "How many vacation days do employees get?"}
            ).json()
            assert "25" in answer["answer"] or "twenty-five" in answer["answer"].lower(), answer["answer"]
            assert answer["citations"][0]["source"] == f"{archive}/handbook/employee-handbook.md"
            assert answer["citations"][0]["section"] == "Kestrel Labs Employee Handbook > Vacation"
            assert any(
                e["sentence"].startswith("Every employee gets 25 working days") for e in answer["evidence"]
            )
            assert all("/hr/" not in c["source"] for c in answer["citations"])  # alice is an engineer
            salaries = http.post("api/search", json={"query": "salary bands 2026", "k": 50}).json()["hits"]
            assert salaries and all("/hr/" not in h["source"] for h in salaries)
            chat = http.post(
                "v1/chat/completions",
                json={"model": "memex", "messages": [{"role": "user", "content": "How many vacation days?"}]},
            ).json()
            assert (
                f"Sources:\n[1] {archive}/handbook/employee-handbook.md"
                in chat["choices"][0]["message"]["content"]
            )
        # the embedded store has one owner while the service runs: a second writer is told why
        busy = _cli(env, "ingest", str(archive), check=False)
        assert busy.returncode == 3 and "Chroma server" in busy.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(60)
    assert code == 0, serve.stderr.read()
    assert serve.stdout.read() == ""  # --json: one line, the address


@pytest.mark.slow  # loads the real embedder
def test_serve_https_under_a_path_as_behind_a_proxy(tmp_path):
    """--ssl-certfile/--ssl-keyfile serve HTTPS only; --root-path makes the announced address
    carry the prefix while requests arrive with it stripped, as a proxy forwards them; the page
    refers to everything relatively, so it works under the prefix."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {**os.environ, "MEMEX_HOME": str(tmp_path / "home")}
    _cli(env, "init", "--policy", "company.yaml")
    token = json.loads(_cli(env, "token", "create", "alice", "--json").stdout)["token"]
    serve = subprocess.Popen(
        [str(BIN / "memex"), "serve", "--port", "0", "--json", "--ssl-certfile", str(cert),
         "--ssl-keyfile", str(key), "--root-path", "/memex", "--llm", "http://127.0.0.1:9/v1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = json.loads(serve.stdout.readline())["url"]
        port = int(url.split(":")[2].split("/")[0])
        assert url == f"https://127.0.0.1:{port}/memex/"
        direct = f"https://127.0.0.1:{port}/"  # what the proxy forwards to: the prefix stripped
        with httpx.Client(base_url=direct, verify=str(cert), timeout=120) as https:
            deadline = time.monotonic() + 120
            while True:
                try:
                    health = https.get("healthz")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline and serve.poll() is None, serve.stderr.read()
                    time.sleep(0.5)
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            page = https.get("").text
            assert 'href="static/style.css"' in page and 'src="static/app.js"' in page
            assert https.get("static/app.js").status_code == 200
            found = https.post("api/search", json={"query": "vacation"}, headers=bearer(token))
            # Nothing is indexed: the same refusal as at every door (memex.api.reads, EmptyIndex).
            assert found.status_code == 404 and "nothing you can read is indexed yet" in found.json()["error"]
            assert https.post("api/search", json={"query": "vacation"}).status_code == 401
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(60)
    assert code == 0, serve.stderr.read()
