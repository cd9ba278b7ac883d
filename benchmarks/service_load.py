"""Load test of `memex serve`: concurrent clients mixing search and ask against the real model.

    python benchmarks/service_load.py [--clients 16] [--duration 180] [--ask-share 0.25]
                                      [--chunks 2016] [--think 0.25] [--queue 8] [--per-user 2]
                                      [--model PATH.gguf] [--json results.json]

It builds the synthetic access corpus of the leak tests (tests/canary_corpus.py: 18 access
classes, 12 users of the synthetic policy, every chunk ending in a unique canary string) in a
temporary MEMEX_HOME, creates a token per user, and starts the service in a child process exactly
as `memex serve` builds it: the app over uvicorn on a loopback port, one generation worker and
the bundled GGUF (or --model) in a model process. Embeddings come from the 384-dimension hashing
embedder (the corpus is random words; what is measured is the service and the model).

Then `--clients` threads (client i is user i mod 12) run for `--duration` seconds: each request
takes a random corpus chunk's words (without its canary, from any class, readable or not) and
is a search (`POST /api/search`, k=10) or, with probability `--ask-share`, a question, in turn
through `/api/ask`, `/api/ask` streamed (server-sent events) and `/v1/chat/completions`. A
client told 429/503 keeps searching and asks again only after Retry-After. Between requests a
client pauses for an exponentially distributed time of mean `--think` seconds.

Checked and reported:
- errors: any status other than 200, or 429/503 with a Retry-After header, any transport error
  or timeout, a stream without its final answer event; the count must be 0;
- leaks: every canary in every response (hits, answers, citations, evidence, streamed tokens) is
  checked against the access rule for that response's user; the count must be 0 (the number of
  answers quoting a canary the user may read shows that the check has something to find);
- search latency, p50/p95/p99, overall and for the searches that ran entirely while the model
  was busy (inside the union of the accepted questions' request intervals: a question is queued
  or being generated then), and ask latency and throughput.

Exit status 1 if there was an error or a leak.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import canary_corpus  # noqa: E402

CANARY = re.compile(r"CANARY[a-z0-9]+X[0-9a-f]{6}")
USERS = [u for u in canary_corpus.USERS if u != "unknown-user"]  # 12 users of the policy
ASK_KINDS = ("api", "api-stream", "openai")
EMBED_DIM = 384


# -- the server (a child process) -----------------------------------------------------------------


def build_home(home: Path, chunks: int) -> dict[str, str]:
    """The corpus indexed into `home`, and one token per user."""
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel
    from memex.service.tokens import TokenStore

    items = canary_corpus.build(chunks)
    memex = Memex(
        Paths(home),
        policy=canary_corpus.policy(),
        embedder=HashingEmbedder(EMBED_DIM),
        model=FakeModel(),
        writable=True,
    )
    batch = [item.chunk for item in items]
    for start in range(0, len(batch), 500):
        part = batch[start : start + 500]
        memex.index.upsert(part, memex.embedder.embed([c.text for c in part]))
    memex.close()
    tokens = TokenStore(home / "tokens.sqlite")
    made = {user: tokens.create(user, expires=None)[0] for user in USERS}
    tokens.close()
    return made


def serve(home: Path, model_path: str | None, queue: int, per_user: int) -> None:
    """What `memex serve` runs (memex.cli.service._build), with the corpus's policy and embedder.
    Prints {"url": ...} on stdout once listening."""
    import socket
    from functools import partial

    import uvicorn

    from memex.api.wiring import Memex
    from memex.config import Paths, Settings
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import LlamaCppModel
    from memex.models.process import ModelProcess
    from memex.service.app import create_app
    from memex.service.auth import Authenticator, PolicySource
    from memex.service.core import Service
    from memex.service.tokens import TokenStore

    settings = Settings()
    local = LlamaCppModel(model_path, context_tokens=settings.context_tokens)
    spec = partial(LlamaCppModel, str(local.path), context_tokens=settings.context_tokens)
    policy = canary_corpus.policy()
    memex = Memex(Paths(home), policy=policy, settings=settings, embedder=HashingEmbedder(EMBED_DIM))
    tokens = TokenStore(home / "tokens.sqlite")
    service = Service(
        memex,
        Authenticator(tokens, PolicySource(policy, None)),
        model_factory=lambda: ModelProcess(spec, context_tokens=settings.context_tokens),
        queue_size=queue,
        per_user=per_user,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    config = uvicorn.Config(create_app(service), log_level="warning", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    threading.Thread(
        target=lambda: (
            _wait_started(server, service),
            print(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}/"}), flush=True),
        ),
        daemon=True,
    ).start()
    try:
        server.run(sockets=[sock])
    finally:
        service.close()
        memex.close()
        tokens.close()


def _wait_started(server, service) -> None:
    """Listening, and the model loaded (the run measures a warm service)."""
    while not server.started or service.worker.status()["completed"] < 1:
        time.sleep(0.05)


# -- the clients ----------------------------------------------------------------------------------


@dataclass
class Results:
    searches: list[tuple[float, float]] = field(default_factory=list)  # (start, end)
    asks: list[tuple[float, float, str]] = field(default_factory=list)  # accepted: (start, end, kind)
    refused: dict[int, int] = field(default_factory=dict)  # 429/503 -> count
    errors: list[str] = field(default_factory=list)
    cut_off: list[tuple[float, float]] = field(default_factory=list)  # asks unanswered at the end
    leaks: list[str] = field(default_factory=list)
    answers_with_readable_canary: int = 0
    empty_answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Oracle:
    """Which canaries each user may read, by the access rule itself (memex.access.allowed)."""

    def __init__(self, items) -> None:
        from memex.access import allowed

        policy = canary_corpus.policy()
        self.access = {item.canary: item.chunk.access for item in items}
        self.readable = {
            user: {c for c, a in self.access.items() if allowed(principal=policy.principal(user), access=a)}
            for user in USERS
        }

    def check(self, user: str, text: str, what: str, results: Results) -> int:
        """Leaks recorded; returns the number of readable canaries found."""
        found = set(CANARY.findall(text))
        readable = found & self.readable[user]
        for canary in sorted(found - readable):
            if canary in self.access:  # a real canary the user may not read
                with results.lock:
                    results.leaks.append(f"{user} {what}: {canary}")
        return len(readable)


def client(
    n: int,
    url: str,
    token: str,
    user: str,
    items,
    oracle: Oracle,
    args,
    stop_at: float,
    results: Results,
) -> None:
    import httpx

    rng = random.Random(f"client-{n}")
    ask_after = 0.0
    turn = n
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=900) as http:
        while time.monotonic() < stop_at:
            item = rng.choice(items)
            now = time.monotonic()
            try:
                if now >= ask_after and rng.random() < args.ask_share:
                    kind = ASK_KINDS[turn % len(ASK_KINDS)]
                    turn += 1
                    retry = _ask(http, kind, item.query, user, oracle, results, stop_at)
                    if retry:
                        ask_after = time.monotonic() + retry
                else:
                    _search(http, item.query, user, oracle, results)
            except httpx.HTTPError as exc:
                with results.lock:
                    results.errors.append(f"{user}: {type(exc).__name__}: {exc}")
            if args.think:
                time.sleep(min(rng.expovariate(1 / args.think), 5 * args.think))


def _search(http, query: str, user: str, oracle: Oracle, results: Results) -> None:
    start = time.monotonic()
    response = http.post("api/search", json={"query": query, "k": 10})
    end = time.monotonic()
    if response.status_code != 200:
        with results.lock:
            results.errors.append(f"{user} search: {response.status_code} {response.text[:200]}")
        return
    oracle.check(user, response.text, "search", results)
    with results.lock:
        results.searches.append((start, end))


def _ask(
    http, kind: str, question: str, user: str, oracle: Oracle, results: Results, stop_at: float
) -> float:
    """Returns the Retry-After of a refusal (0 when answered). A question still waiting or
    being answered when the run ends is cut off (the client goes away, which stops it)."""
    import httpx

    start = time.monotonic()
    timeout = httpx.Timeout(10.0, read=max(stop_at - start, 0.1))
    text = None
    try:
        if kind == "openai":
            body = {"model": "memex", "messages": [{"role": "user", "content": question}]}
            response = http.post("v1/chat/completions", json=body, timeout=timeout)
        elif kind == "api":
            response = http.post("api/ask", json={"question": question}, timeout=timeout)
        else:  # streamed: events keep coming, so the end of the run is watched here
            with http.stream(
                "POST", "api/ask", json={"question": question, "stream": True}, timeout=timeout
            ) as response:
                lines = []
                for line in response.iter_lines():
                    lines.append(line)
                    if time.monotonic() > stop_at and not line.startswith("event: answer"):
                        raise httpx.ReadTimeout("the run ended")
            text = "\n".join(lines)
    except httpx.ReadTimeout:
        if time.monotonic() < stop_at - 1:
            raise
        with results.lock:
            results.cut_off.append((start, time.monotonic()))
        return 0.0
    end = time.monotonic()
    text = response.text if text is None else text
    if response.status_code in (429, 503):
        retry = response.headers.get("retry-after")
        with results.lock:
            if retry is None or not retry.isdigit():
                results.errors.append(f"{user} {kind}: {response.status_code} without Retry-After")
            else:
                results.refused[response.status_code] = results.refused.get(response.status_code, 0) + 1
        return float(retry) if retry and retry.isdigit() else 1.0
    if response.status_code != 200:
        with results.lock:
            results.errors.append(f"{user} {kind}: {response.status_code} {text[:200]}")
        return 0.0
    if kind == "api-stream":
        events = [line[6:].strip() for line in text.splitlines() if line.startswith("event:")]
        if not events or events[-1] != "answer":
            with results.lock:
                results.errors.append(f"{user} {kind}: the stream ended with {events[-1:]}")
            return 0.0
        answer = json.loads(text.rsplit("data:", 1)[1])["answer"]
    elif kind == "openai":
        answer = json.loads(text)["choices"][0]["message"]["content"]
    else:
        answer = json.loads(text)["answer"]
    quoted = oracle.check(user, text, kind, results)
    with results.lock:
        results.asks.append((start, end, kind))
        results.answers_with_readable_canary += quoted > 0
        results.empty_answers += not answer.strip()
    return 0.0


# -- the report -----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def inside(interval: tuple[float, float], spans: list[tuple[float, float]]) -> bool:
    return any(a <= interval[0] and interval[1] <= b for a, b in spans)


def report(results: Results, args, started: float, ended: float) -> dict:
    busy = merged([(a, min(b, ended)) for a, b, _ in results.asks] + results.cut_off)
    busy_seconds = sum(b - a for a, b in busy)
    all_ms = [(b - a) * 1000 for a, b in results.searches]
    busy_ms = [(b - a) * 1000 for a, b in results.searches if inside((a, b), busy)]
    ask_s = [b - a for a, b, _ in results.asks]

    def stats(values: list[float]) -> dict:
        return {
            "n": len(values),
            "p50": round(percentile(values, 0.50), 1),
            "p95": round(percentile(values, 0.95), 1),
            "p99": round(percentile(values, 0.99), 1),
            "max": round(max(values), 1) if values else None,
        }

    elapsed = ended - started
    return {
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "ask_share": args.ask_share,
        "think_s": args.think,
        "chunks": args.chunks,
        "model": args.model or "bundled",
        "searches": len(results.searches),
        "searches_per_s": round(len(results.searches) / elapsed, 1),
        "search_ms": stats(all_ms),
        "search_ms_while_model_busy": stats(busy_ms),
        "model_busy_share": round(busy_seconds / elapsed, 3),
        "answers": len(results.asks),
        "answers_by_door": {k: sum(1 for *_, kind in results.asks if kind == k) for k in ASK_KINDS},
        "answers_per_min": round(len(results.asks) / elapsed * 60, 1),
        "ask_s": {
            "p50": round(percentile(ask_s, 0.5), 1),
            "p99": round(percentile(ask_s, 0.99), 1),
        },
        "refused": {str(k): v for k, v in sorted(results.refused.items())},
        "cut_off_at_the_end": len(results.cut_off),
        "errors": len(results.errors),
        "error_samples": results.errors[:10],
        "leaks": len(results.leaks),
        "leak_samples": results.leaks[:10],
        "answers_quoting_a_readable_canary": results.answers_with_readable_canary,
        "empty_answers": results.empty_answers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--ask-share", type=float, default=0.25, help="share of requests that ask")
    parser.add_argument("--think", type=float, default=0.25, help="mean pause between requests (s)")
    parser.add_argument("--chunks", type=int, default=2016)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--per-user", type=int, default=2)
    parser.add_argument("--model", default=None, help="a GGUF file (default: the bundled model)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.model, args.queue, args.per_user)
        return 0

    with tempfile.TemporaryDirectory(prefix="memex-load-") as tmp:
        home = Path(tmp) / "home"
        t0 = time.monotonic()
        tokens = build_home(home, args.chunks)
        items = canary_corpus.build(args.chunks)
        oracle = Oracle(items)
        print(f"corpus: {len(items)} chunks indexed in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        command = [sys.executable, __file__, "--serve", str(home), "--queue", str(args.queue)]
        command += ["--per-user", str(args.per_user)] + (["--model", args.model] if args.model else [])
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ})
        try:
            line = server.stdout.readline()
            if not line:
                raise SystemExit("the server did not start")
            url = json.loads(line)["url"]
            print(f"serving at {url}; {args.clients} clients for {args.duration:.0f} s", file=sys.stderr)
            results = Results()
            started = time.monotonic()
            stop_at = started + args.duration
            threads = [
                threading.Thread(
                    target=client,
                    args=(n, url, tokens[USERS[n % len(USERS)]], USERS[n % len(USERS)], items, oracle, args),
                    kwargs={"stop_at": stop_at, "results": results},
                )
                for n in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            ended = time.monotonic()
        finally:
            server.terminate()
            server.wait(60)
    summary = report(results, args, started, ended)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    ok = summary["errors"] == 0 and summary["leaks"] == 0
    print(
        f"{'OK' if ok else 'FAILED'}: {summary['errors']} errors, {summary['leaks']} leaks, "
        f"{summary['answers']} answers, {summary['searches']} searches; search p50/p99 while the model "
        f"was busy {summary['search_ms_while_model_busy']['p50']}/{summary['search_ms_while_model_busy']['p99']} ms",
        file=sys.stderr,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
