"""One model, many users: the generation queue (429 with Retry-After when full, a share per
user), search answering while the model is busy, a failing or crashing model restarted while
the service stays up, a killed model process replaced, and a client that goes away stopping
its answer."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import pytest
from fastapi.testclient import TestClient

from memex.models.process import ModelProcess
from memex.service.app import create_app
from tests.service_fakes import (
    BlockingModel,
    CountingSlowModel,
    CrashingModel,
    FailingModel,
    SlowModel,
    process_id_model,
)
from tests.service_support import bearer, canary_memex, live_server, make_service, parse_sse


@pytest.fixture
def corpus(tmp_path):
    memex, items = canary_memex(tmp_path / "home")
    yield memex, items
    memex.close()


def _wait(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_full_queue_says_429_with_retry_after_and_search_keeps_answering(corpus):
    memex, items = corpus
    model = BlockingModel()
    service, tokens = make_service(memex, model_factory=lambda: model, queue_size=2, per_user=10)
    token, _ = tokens.create("everything", expires=None)
    question = {"question": items[40].query}
    with (
        live_server(create_app(service)) as url,
        httpx.Client(base_url=url, headers=bearer(token), timeout=60) as http,
    ):
        _wait(lambda: service.worker.status()["completed"] == 1)  # the warm-up
        with ThreadPoolExecutor(3) as pool:
            running = pool.submit(http.post, "api/ask", json=question)
            assert model.started.wait(10)
            queued = [pool.submit(http.post, "api/ask", json=question) for _ in range(2)]
            _wait(lambda: service.worker.status()["queued"] == 2)
            refused = http.post("api/ask", json=question)
            assert refused.status_code == 429
            assert refused.json() == {
                "error": "the model is busy answering other questions; try again shortly"
            }
            assert 1 <= int(refused.headers["Retry-After"]) <= 300
            openai = http.post("v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            assert openai.status_code == 429 and openai.json()["error"]["type"] == "rate_limit_error"
            streamed = http.post("api/ask", json={**question, "stream": True})
            assert streamed.status_code == 429 and "Retry-After" in streamed.headers
            # the model is busy, the queue full: search does not wait for either
            latencies = []
            for item in items[:20]:
                started = time.monotonic()
                found = http.post("api/search", json={"query": item.query, "k": 5})
                latencies.append(time.monotonic() - started)
                assert found.status_code == 200 and found.json()["hits"]
            assert max(latencies) < 2.0, latencies
            assert service.worker.status()["busy"] is True
            model.release.set()
            answers = [running.result(), *(f.result() for f in queued)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert {a.json()["answer"] for a in answers} == {"released answer"}
    service.close()


def test_one_user_cannot_take_the_whole_queue(corpus):
    memex, items = corpus
    model = BlockingModel()
    service, tokens = make_service(memex, model_factory=lambda: model, queue_size=8, per_user=1)
    greedy, _ = tokens.create("everything", expires=None)
    other, _ = tokens.create("only-a", expires=None)
    with live_server(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as http:
        _wait(lambda: service.worker.status()["completed"] == 1)
        question = next(i.query for i in items if i.klass == "a-l0")  # both may read it
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(http.post, "api/ask", json={"question": question}, headers=bearer(greedy))
            assert model.started.wait(10)
            second = http.post("api/ask", json={"question": question}, headers=bearer(greedy))
            assert second.status_code == 429
            assert second.json() == {
                "error": "you already have 1 question(s) waiting for the model; wait for an answer first"
            }
            theirs = pool.submit(http.post, "api/ask", json={"question": question}, headers=bearer(other))
            _wait(lambda: service.worker.status()["queued"] == 1)
            model.release.set()
            assert (first.result().status_code, theirs.result().status_code) == (200, 200)
        again = http.post("api/ask", json={"question": question}, headers=bearer(greedy))
        assert again.status_code == 200  # their share is free again
    service.close()


@pytest.mark.parametrize(
    "model, message",
    [
        (FailingModel(1), "the model failed (RuntimeError); try again"),
        (CrashingModel(1), "the model crashed; try again"),
    ],
    ids=["raises", "kills-the-worker-thread"],
)
def test_a_failing_model_is_restarted_and_the_service_stays_up(corpus, model, message):
    memex, items = corpus
    built = []

    def factory():
        built.append(model)
        return model

    service, tokens = make_service(memex, model_factory=factory)
    token, _ = tokens.create("everything", expires=None)
    with TestClient(create_app(service), base_url="http://localhost") as client:
        first_thread = service.worker._thread
        failed = client.post("/api/ask", json={"question": items[40].query}, headers=bearer(token))
        assert (failed.status_code, failed.json(), failed.headers["Retry-After"]) == (
            503,
            {"error": message},
            "5",
        )
        assert client.get("/healthz").json() == {"status": "ok"}
        assert (
            client.post("/api/search", json={"query": items[40].query}, headers=bearer(token)).status_code
            == 200
        )
        answered = client.post("/api/ask", json={"question": items[40].query}, headers=bearer(token))
        assert answered.status_code == 200 and items[40].canary in answered.json()["answer"]
        status = service.worker.status()
        assert (status["restarts"], status["failed"], len(built)) == (1, 1, 2)
        assert (service.worker._thread is first_thread) == isinstance(model, FailingModel)
    service.close()


def test_a_failure_while_streaming_is_an_error_event(corpus):
    memex, items = corpus
    service, tokens = make_service(memex, model_factory=lambda: FailingModel(1))
    token, _ = tokens.create("everything", expires=None)
    with TestClient(create_app(service), base_url="http://localhost") as client:
        response = client.post(
            "/api/ask", json={"question": items[40].query, "stream": True}, headers=bearer(token)
        )
        assert response.status_code == 200
        events = parse_sse(response.text)
        assert events == [
            ("queued", "{}"),
            ("error", json.dumps({"error": "the model failed (RuntimeError); try again", "status": 503})),
        ]
    service.close()


def test_a_killed_model_process_is_replaced(corpus):
    memex, items = corpus
    model = ModelProcess(partial(SlowModel, 400, 0.02))
    service, tokens = make_service(memex, model_factory=lambda: model)
    token, _ = tokens.create("everything", expires=None)
    question = {"question": items[40].query, "stream": True}
    with (
        live_server(create_app(service)) as url,
        httpx.Client(base_url=url, headers=bearer(token), timeout=60) as http,
    ):
        _wait(lambda: service.worker.status()["completed"] == 1)
        first_pid = model.pid
        assert first_pid is not None and first_pid != os.getpid()
        events = []
        with http.stream("POST", "api/ask", json=question) as response:
            for line in response.iter_lines():
                if line.startswith("event: token") and "token" not in events:
                    os.kill(first_pid, signal.SIGKILL)  # as the kernel's OOM killer would
                if line.startswith("event:"):
                    events.append(line[7:])
                if line.startswith("data:") and events[-1] == "error":
                    error = json.loads(line[5:])
        assert events[0] == "queued" and events[-1] == "error" and "token" in events
        assert error == {"error": "the model is unavailable; try again shortly", "status": 503}
        assert http.get("healthz").status_code == 200
        replay = http.post("api/ask", json={"question": items[40].query})
        assert replay.status_code == 200 and replay.json()["answer"].startswith("w0 w1 w2")
        assert model.pid not in (None, first_pid)
        assert service.worker.status()["restarts"] == 1
    service.close()
    assert model.pid is None


def test_a_model_process_answers_from_another_process_and_stops_when_closed():
    model = ModelProcess(process_id_model)
    pieces = "".join(model.stream([{"role": "user", "content": "hi"}], max_tokens=10))
    pid = model.pid
    assert pieces.strip() == f"answered by process {pid}" and pid != os.getpid()
    assert model.count_tokens("abcdef") == 3
    model.close()
    assert model.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_client_that_goes_away_stops_its_answer(corpus):
    memex, items = corpus
    model = CountingSlowModel(words=300, delay=0.02)
    service, tokens = make_service(memex, model_factory=lambda: model)
    token, _ = tokens.create("everything", expires=None)
    with (
        live_server(create_app(service)) as url,
        httpx.Client(base_url=url, headers=bearer(token), timeout=60) as http,
    ):
        _wait(lambda: service.worker.status()["completed"] == 1)
        with http.stream("POST", "api/ask", json={"question": items[40].query, "stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("event: token"):
                    break  # leave after the first words
        _wait(lambda: not service.worker.status()["busy"], 10)
        stopped_at = model.written
        time.sleep(0.3)
        assert model.written == stopped_at < 300
        done = http.post("api/ask", json={"question": items[40].query})
        assert done.status_code == 200 and model.written - stopped_at == 300
    service.close()


@pytest.mark.parametrize(
    "path, body",
    [
        ("api/ask", {"question": "Q"}),
        ("v1/chat/completions", {"messages": [{"role": "user", "content": "Q"}]}),
    ],
    ids=["api", "openai"],
)
def test_a_client_that_gives_up_waiting_stops_its_unstreamed_answer(corpus, path, body):
    """Without streaming nothing is sent before the answer: the service notices the client
    went away (a timeout, a closed tab) and frees the model, running or queued."""
    memex, items = corpus
    model = CountingSlowModel(words=300, delay=0.02)
    service, tokens = make_service(memex, model_factory=lambda: model, per_user=4)
    token, _ = tokens.create("everything", expires=None)
    question = json.loads(json.dumps(body).replace('"Q"', json.dumps(items[40].query)))
    with (
        live_server(create_app(service)) as url,
        httpx.Client(base_url=url, headers=bearer(token), timeout=60) as http,
    ):
        _wait(lambda: service.worker.status()["completed"] == 1)
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(http.post, path, json=question, timeout=1.0)
            _wait(lambda: model.written > 0)
            queued = pool.submit(http.post, path, json=question, timeout=0.5)
            for gone in (running, queued):
                with pytest.raises(httpx.ReadTimeout):
                    gone.result()
        _wait(lambda: not service.worker.status()["busy"] and service.worker.status()["queued"] == 0, 10)
        stopped_at = model.written
        time.sleep(0.3)
        assert model.written == stopped_at < 300  # the running answer stopped; the queued one never ran
        done = http.post(path, json=question)
        assert done.status_code == 200 and model.written - stopped_at == 300
    service.close()


def test_closing_fails_waiting_questions_instead_of_hanging(corpus):
    from memex.service.auth import Caller

    memex, items = corpus
    model = BlockingModel()
    service, _ = make_service(memex, model_factory=lambda: model)
    who = Caller(memex.policy.principal("everything"), "test")
    running = service.reads.submit_ask(items[40].query, channel="test", **who.identity)
    assert model.started.wait(10)
    waiting = service.reads.submit_ask(items[40].query, channel="test", **who.identity)
    closer = threading.Thread(target=service.close)
    closer.start()
    assert str(waiting.future.exception(timeout=10)) == "the service is shutting down"
    model.release.set()
    closer.join(10)
    assert not closer.is_alive() and running.future.done()
