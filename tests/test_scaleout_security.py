"""The scale-out servers are reached safely (issue 15, section 3): the URL's scheme is honoured
(TLS, verified against a CA file), credentials come from the environment, and a server beyond
loopback without TLS and credentials is refused unless the operator allows it. For real: a Chroma
server on loopback behind a TLS proxy that requires a bearer token (tests/tls_proxy.py), and a
model server behind the same kind of proxy."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from memex.api.reads import Reads
from memex.api.wiring import Memex
from memex.config import Paths, Settings
from memex.errors import ConfigError, ModelError
from memex.models.embeddings import HashingEmbedder
from memex.models.llm import FakeModel, OpenAICompatibleModel
from memex.remote import llm_endpoint, store_endpoint
from tests.conftest import EXAMPLES
from tests.dovecot import _certificate
from tests.service_support import free_port
from tests.test_service_scaleout import BIN, _stop, _wait_for
from tests.tls_proxy import TokenProxy

TOKEN = "store-token-0123456789abcdef"


# -- the rules, as a table -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "env", "allow", "refused"),
    [
        ("http://127.0.0.1:8000", {}, False, False),  # loopback: this machine only
        ("http://localhost:8000", {}, False, False),
        ("http://[::1]:8000", {}, False, False),
        ("http://10.0.0.5:8000", {}, False, True),  # the README's old layout: clear text, no token
        ("http://10.0.0.5:8000", {"MEMEX_STORE_TOKEN": TOKEN}, False, True),  # a token in clear text
        ("https://vectors.internal:8443", {}, False, True),  # TLS, but anyone may read
        ("https://vectors.internal:8443", {"MEMEX_STORE_TOKEN": TOKEN}, False, False),
        ("http://10.0.0.5:8000", {}, True, False),  # the operator says the network is trusted
        ("http://127.0.0.1.example.com:8000", {}, False, True),  # a name is not an address
    ],
)
def test_a_store_beyond_loopback_needs_tls_and_a_token(url, env, allow, refused):
    if refused:
        with pytest.raises(ConfigError) as caught:
            store_endpoint(url, allow_insecure=allow, environ=env)
        assert "allow_insecure_store = true" in str(caught.value)
        assert "MEMEX_STORE_TOKEN" in str(caught.value)
        assert TOKEN not in str(caught.value)
    else:
        server = store_endpoint(url, allow_insecure=allow, environ=env)
        assert server.tls == url.startswith("https://")
        assert server.headers == ({"Authorization": f"Bearer {TOKEN}"} if env else {})
        assert TOKEN not in repr(server)


def test_the_store_settings_are_checked_before_anything_is_sent(tmp_path):
    memex = Memex(
        Paths(tmp_path / "home"),
        policy=None,  # type: ignore[arg-type]  # not reached
        settings=Settings(store_url="http://10.0.0.5:8000"),
        embedder=HashingEmbedder(),
        model=FakeModel(),
    )
    with pytest.raises(ConfigError, match="allow_insecure_store"):
        memex.index  # noqa: B018


def test_credentials_never_come_from_the_url():
    with pytest.raises(ConfigError, match="MEMEX_STORE_TOKEN"):
        store_endpoint("https://user:secret@vectors.internal:8443", environ={})
    with pytest.raises(ConfigError, match="MEMEX_LLM_API_KEY"):
        llm_endpoint("https://user:secret@gpu.internal/v1", environ={})


def test_a_model_server_beyond_loopback_needs_tls_and_a_key(monkeypatch):
    monkeypatch.delenv("MEMEX_LLM_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="allow_insecure_llm = true"):
        OpenAICompatibleModel("http://gpu.internal:8080/v1")
    with pytest.raises(ConfigError, match="MEMEX_LLM_API_KEY"):
        OpenAICompatibleModel("https://gpu.internal/v1")
    monkeypatch.setenv("MEMEX_LLM_API_KEY", "k")
    assert OpenAICompatibleModel("https://gpu.internal/v1").endpoint.tls
    assert OpenAICompatibleModel("http://gpu.internal:8080/v1", allow_insecure=True).url.startswith("http:")


def test_a_ca_file_needs_an_https_url(tmp_path):
    with pytest.raises(ConfigError, match="not https"):
        store_endpoint("http://127.0.0.1:8000", ca_file=str(tmp_path / "ca.pem"), environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        store_endpoint("https://127.0.0.1:8000", ca_file=str(tmp_path / "ca.pem"), environ={})


# -- for real: Chroma behind a TLS proxy that requires the token ------------------------------------
@pytest.fixture
def certificate(tmp_path):
    pair = _certificate(tmp_path)
    if pair is None:
        pytest.skip("the cryptography package is missing")
    return pair


@pytest.fixture
def guarded_chroma(tmp_path, certificate):
    """`chroma run` on loopback, reachable from outside only through the token proxy."""
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "chroma"), "run", "--path", str(tmp_path / "chroma-data"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/v2/heartbeat", process)
        cert, key = certificate
        with TokenProxy(upstream=f"http://127.0.0.1:{port}", token=TOKEN, cert=cert, key=key) as proxy:
            yield proxy, cert
    finally:
        _stop(process)
        log.close()


def _memex(home, policy, url, *, ca_file=None) -> Memex:
    return Memex(
        Paths(home),
        policy=policy,
        settings=Settings(store_url=url, store_ca_file=ca_file),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )


def test_memex_works_through_the_token_proxy_and_nothing_else_does(
    tmp_path, guarded_chroma, company_policy, monkeypatch
):
    import chromadb

    proxy, cert = guarded_chroma
    archive = tmp_path / "archive" / "kestrel"
    shutil.copytree(EXAMPLES / "handbook", archive / "handbook")
    monkeypatch.setenv("MEMEX_STORE_TOKEN", TOKEN)
    with _memex(tmp_path / "home", company_policy, proxy.url, ca_file=str(cert)) as memex:
        report = memex.ingest([str(archive)])
        assert (report.failures, len(report.indexed)) == ([], len(list((archive / "handbook").iterdir())))
        hits = Reads(memex).search("expenses", principal=company_policy.principal("alice"), k=3)
        assert hits and all(hit.uri.startswith(str(archive)) for hit in hits)
    assert proxy.forwarded > 0
    refused_before = proxy.refused

    # Without the token: nothing, whichever way one asks.
    monkeypatch.delenv("MEMEX_STORE_TOKEN")
    with _memex(tmp_path / "home2", company_policy, proxy.url, ca_file=str(cert)) as memex:
        with pytest.raises(ConfigError, match="cannot open the vector store"):
            memex.index  # noqa: B018
    for path in (
        "/api/v2/heartbeat",
        "/api/v2/tenants/default_tenant/databases/default_database/collections",
    ):
        assert httpx.get(proxy.url + path, verify=str(cert)).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert httpx.get(proxy.url + path, verify=str(cert), headers=wrong).status_code == 401
    settings = chromadb.Settings(anonymized_telemetry=False, chroma_server_ssl_verify=str(cert))
    with pytest.raises(Exception, match="(?i)unauthorized|401"):
        chromadb.HttpClient(
            host="127.0.0.1", port=int(proxy.url.rsplit(":", 1)[1]), ssl=True, settings=settings
        ).list_collections()
    assert proxy.refused > refused_before

    # The certificate is verified: without the CA file the self-signed proxy is not trusted.
    monkeypatch.setenv("MEMEX_STORE_TOKEN", TOKEN)
    forwarded = proxy.forwarded
    with _memex(tmp_path / "home3", company_policy, proxy.url) as memex:
        with pytest.raises(ConfigError, match="cannot open the vector store"):
            memex.index  # noqa: B018
    assert proxy.forwarded == forwarded  # the handshake failed: not one request went through


# -- for real: a model server behind the same kind of proxy ------------------------------------------
class _ModelServer(BaseHTTPRequestHandler):
    """A stand-in for llama.cpp's server: streams one reply, remembers what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        events = [{"choices": [{"delta": {"content": piece}}]} for piece in ("The ", "answer.")]
        data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        payload = data.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_the_model_server_gets_prompts_over_tls_with_the_key_only(certificate, monkeypatch):
    cert, key = certificate
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _ModelServer)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    _ModelServer.seen = []
    try:
        with TokenProxy(
            upstream=f"http://127.0.0.1:{upstream.server_address[1]}", token=TOKEN, cert=cert, key=key
        ) as proxy:
            monkeypatch.setenv("MEMEX_LLM_API_KEY", TOKEN)
            model = OpenAICompatibleModel(proxy.url + "/v1", ca_file=str(cert))
            prompt = [{"role": "user", "content": "chunk text"}]
            assert "".join(model.stream(prompt, max_tokens=8)) == "The answer."
            assert _ModelServer.seen[-1]["messages"] == prompt

            monkeypatch.delenv("MEMEX_LLM_API_KEY")
            keyless = OpenAICompatibleModel(proxy.url + "/v1", ca_file=str(cert))
            with pytest.raises(ModelError, match="401"):
                list(keyless.stream(prompt, max_tokens=8))
            assert len(_ModelServer.seen) == 1 and proxy.refused == 1
    finally:
        upstream.shutdown()
        upstream.server_close()
