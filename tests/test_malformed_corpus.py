"""The malformed-file corpus, generated here: truncations and byte flips of every format in the
unstructured project's example documents, zip bombs, billion laughs, 0-byte files, wrong
extensions and huge lines. Ingested in one run: every file is indexed or refused with a named
reason within the time limit, the run never crashes, and the parent's memory stays bounded (its
peak is reported)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from memex.ingest.sandbox import Limits, ParserPool
from tests.conftest import POLICIES, data_dir
from tests.malformed import flipped, hostile_specials, truncated

MAIL = {".eml", ".msg"}
PARSE_TIMEOUT = 30.0
# What each hand-made hostile file must be refused with (the start of the reason).
SPECIAL_REASONS = {
    "empty.docx": "the file is empty",
    "empty.pdf": "the file is empty",
    "empty.md": "the file is empty",
    "lol.xml": "refused: lol.xml declares XML entities (EntitiesForbidden)",
    "xxe.xml": "refused: xxe.xml declares XML entities (EntitiesForbidden)",
    "ratio-bomb.docx": "refused as a possible zip bomb: word/media/blank.bin is 20.0 MB packed into",
    "size-bomb.xlsx": "refused as a possible zip bomb: xl/big.xml unpacks to 3.9 GB (more than 512.0 MB)",
    "laughs.docx": "refused: word/document.xml declares XML entities (EntitiesForbidden)",
    "laughs.epub": "refused: content.opf declares XML entities (EntitiesForbidden)",
    "pdf-named.docx": "corrupt Office file (not a valid zip archive)",
    "zip-named.pdf": "corrupt or truncated .pdf file",
    "text-named.xlsx": "corrupt Office file (not a valid zip archive)",
}
# Hostile files that are readable text whatever they look like: indexed.
SPECIAL_INDEXED = {"docx-named.txt", "huge-line.txt", "huge-token.md", "huge-line.csv"}


class PeakMemory:
    """The parent's resident memory, sampled every 20 ms while the block runs."""

    def __init__(self) -> None:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build_corpus(folder: Path, *, every_file: bool) -> tuple[dict[str, str], set[str]]:
    """Damaged copies of the corpus's documents (a sample of one file per format unless
    `every_file`), and the hand-made hostile files. Returns ({name: what}, mail file names)."""
    source = data_dir("documents_unstructured")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.name not in ("SOURCE.md", "LICENSE.md"))
    if not every_file:
        by_suffix: dict[str, Path] = {}
        for path in files:
            if path.stat().st_size > 0:
                by_suffix.setdefault(path.suffix.lower(), path)
        files = sorted(by_suffix.values())
    made: dict[str, str] = {}
    mail: set[str] = set()
    for number, path in enumerate(files):
        data = path.read_bytes()
        stem, suffix = f"{number:03d}-{path.stem}", path.suffix
        variants = [("cut50", truncated(data, 0.5)), ("flip", flipped(data, seed=number))]
        if every_file:
            variants += [("cut10", truncated(data, 0.1)), ("cut90", truncated(data, 0.9))]
        if suffix.lower() in MAIL:
            variants = variants[:1]  # copies of a message share its Message-ID: one per message
        for label, damaged in variants:
            name = f"{stem}.{label}{suffix}"
            (folder / name).write_bytes(damaged)
            made[name] = f"{label} of {path.name}"
            if suffix.lower() in MAIL:
                mail.add(name)
    docx = next((p for p in files if p.suffix == ".docx"), None)
    made.update(hostile_specials(folder, docx))
    return made, mail


def run_corpus(memex_home: Path, tmp_path: Path, *, every_file: bool, budget_s: float, capsys) -> None:
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder

    folder = tmp_path / "malformed"
    folder.mkdir()
    made, mail = build_corpus(folder, every_file=every_file)
    memex = Memex(
        Paths(memex_home),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        writable=True,
    )
    memex._pool = ParserPool(limits=Limits(timeout=PARSE_TIMEOUT))
    began = time.perf_counter()
    with PeakMemory() as memory:
        report = memex.ingest([str(folder)])  # the run itself must not raise
    seconds = time.perf_counter() - began
    memex.close()

    indexed = {Path(uri).name for uri in report.indexed}
    failed = {Path(f.uri).name: f for f in report.failures}
    kinds = Counter(f.kind for f in report.failures)
    timeouts = [n for n, f in failed.items() if f.reason.startswith("refused: parsing took longer")]
    crashed = [n for n, f in failed.items() if f.reason.startswith("the parser crashed")]
    with capsys.disabled():
        print(
            f"\nmalformed corpus: {len(made)} files in {seconds:.0f} s: {len(indexed)} indexed, "
            f"{len(failed)} refused ({dict(kinds)}), {len(timeouts)} past the {PARSE_TIMEOUT:.0f} s "
            f"limit, {len(crashed)} parser crashes; parent memory {memory.start / 2**20:.0f} MB -> "
            f"peak {memory.peak / 2**20:.0f} MB (+{(memory.peak - memory.start) / 2**20:.0f} MB)"
        )
        for name, failure in sorted(failed.items()):
            print(f"  {name}: {failure.kind}: {failure.reason[:150]}")

    # Every file is indexed or refused with a reason; a damaged message may be another copy of one
    # already read (the corpus's mail files reuse Message-IDs), nothing else vanishes.
    assert not indexed & set(failed)
    duplicates = {Path(skipped).name for skipped, _ in report.duplicates}
    missing = set(made) - indexed - set(failed) - duplicates
    assert missing <= mail and len(missing) <= 11, sorted(missing)
    assert all(f.reason.strip() for f in failed.values())
    assert set(indexed | set(failed)) <= set(made)
    for name, reason in SPECIAL_REASONS.items():
        assert failed[name].reason.startswith(reason), (name, failed[name].reason)
    assert SPECIAL_INDEXED <= indexed
    # Within the time limit: no parse hit it, and the run as a whole stayed within its budget.
    assert timeouts == []
    assert seconds < budget_s
    # The parent's memory stays bounded (parsing happens in the workers).
    assert memory.peak - memory.start < 600 * 2**20


def test_malformed_sample_is_indexed_or_refused_with_a_reason(memex_home, tmp_path, capsys):
    """One file per format, truncated and byte-flipped, and the hand-made hostile files."""
    run_corpus(memex_home, tmp_path, every_file=False, budget_s=150, capsys=capsys)


@pytest.mark.slow
def test_malformed_corpus_is_indexed_or_refused_with_a_reason(memex_home, tmp_path, capsys):
    """Every file of the corpus, cut at 10%, 50% and 90% and byte-flipped."""
    run_corpus(memex_home, tmp_path, every_file=True, budget_s=900, capsys=capsys)
