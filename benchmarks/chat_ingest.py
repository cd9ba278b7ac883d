"""How fast the chat connectors read exports, and what a full ingest of a Slack export costs.

    python benchmarks/chat_ingest.py [--whatsapp-messages 100000] [--ingest] [--real-embedder]

1. The Slack connector alone on ../shared/data/chat_slack_export (1,382 messages, 16 channels):
   messages/s and windows/s (best of 5), and messages, windows and chunks per channel.
2. The WhatsApp connector alone on a synthetic chat of N messages (multi-line messages, media
   placeholders, system lines): messages/s.
3. With --ingest: the Slack export through the whole pipeline (personal policy) with the hashing
   embedder (or --real-embedder: all-MiniLM-L6-v2): first ingest, unchanged re-ingest.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.chat.slack import SlackConnector  # noqa: E402
from connectors.chat.whatsapp import WhatsAppConnector  # noqa: E402
from memex.ingest.chunking import chunk_elements  # noqa: E402

SLACK = ROOT.parent / "shared" / "data" / "chat_slack_export"


def best_of(n: int, fn):
    times, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def slack_alone() -> None:
    seconds, docs = best_of(5, lambda: list(SlackConnector(str(SLACK)).load()))
    messages, windows, chunks = Counter(), Counter(), Counter()
    for doc in docs:
        channel = doc.attributes["channel"]
        messages[channel] += doc.metadata.get("messages", 0)
        windows[channel] += 1
        chunks[channel] += len(chunk_elements(doc.parse(), title=doc.title))
    total = sum(messages.values())
    print(f"Slack connector: {total} messages -> {len(docs)} windows in {seconds * 1000:.0f} ms")
    print(f"  {total / seconds:,.0f} messages/s, {len(docs) / seconds:,.0f} windows/s")
    print(f"  {'channel':<16} {'messages':>8} {'windows':>8} {'chunks':>7}")
    for channel in sorted(messages, key=lambda c: -messages[c]):
        print(f"  {channel:<16} {messages[channel]:>8} {windows[channel]:>8} {chunks[channel]:>7}")
    print(f"  {'total':<16} {total:>8} {len(docs):>8} {sum(chunks.values()):>7}")


def whatsapp_alone(n: int) -> None:
    rng = random.Random(7)
    names = ["Ana", "Rui", "Eva", "João", "Inês"]
    words = "falcon sensor lisbon harrier outage budget lunch tuesday office launch sintra boots".split()
    lines = ["12/09/2020, 23:50 - Messages and calls are end-to-end encrypted. Tap to learn more."]
    minute = 0
    for i in range(n):
        minute += rng.choice([0, 1, 1, 2, 5, 30, 240])
        day, rest = divmod(minute, 1440)
        stamp = f"{1 + day % 28:02d}/{1 + (day // 28) % 12:02d}/{20 + day // 336}, {rest // 60:02d}:{rest % 60:02d}"
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 25)))
        if i % 50 == 0:
            text = "<Media omitted>"
        elif i % 17 == 0:
            text += "\n" + " ".join(rng.choice(words) for _ in range(8))
        lines.append(f"{stamp} - {rng.choice(names)}: {text}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "WhatsApp Chat with Field team.txt"
        path.write_text("\n".join(lines) + "\n")
        seconds, docs = best_of(3, lambda: list(WhatsAppConnector(str(path)).load()))
        size = path.stat().st_size
    print(
        f"WhatsApp connector: {n:,} messages ({size / 1e6:.1f} MB) -> {len(docs):,} windows in {seconds:.2f} s: "
        f"{n / seconds:,.0f} messages/s"
    )


def ingest(real_embedder: bool) -> None:
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder, SentenceTransformerEmbedder
    from memex.models.llm import FakeModel

    embedder = SentenceTransformerEmbedder() if real_embedder else HashingEmbedder()
    with tempfile.TemporaryDirectory() as home:
        memex = Memex(
            Paths(Path(home)),
            policy=load_policy(ROOT / "policies" / "personal.yaml"),
            embedder=embedder,
            model=FakeModel(),
            writable=True,
        )
        try:
            start = time.perf_counter()
            first = memex.ingest([str(SLACK)])
            middle = time.perf_counter()
            again = memex.ingest([str(SLACK)])
            end = time.perf_counter()
        finally:
            memex.close()
    name = "all-MiniLM-L6-v2" if real_embedder else "hashing"
    print(
        f"ingest ({name} embedder): {len(first.indexed)} windows, {first.chunks_added} chunks, "
        f"{len(first.failures)} failures in {middle - start:.1f} s ({1382 / (middle - start):,.0f} messages/s); "
        f"unchanged re-ingest {end - middle:.2f} s, {again.chunks_added} chunks added"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--whatsapp-messages", type=int, default=100_000)
    parser.add_argument("--ingest", action="store_true")
    parser.add_argument("--real-embedder", action="store_true")
    args = parser.parse_args()
    slack_alone()
    whatsapp_alone(args.whatsapp_messages)
    if args.ingest or args.real_embedder:
        ingest(args.real_embedder)


if __name__ == "__main__":
    main()
