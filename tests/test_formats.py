"""Every format in the unstructured project's example documents: indexed, or refused with a reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import POLICIES, data_dir

# Formats the foundation promises to read, each of which must index at least one real file.
PROMISED = {
    ".txt",
    ".md",
    ".html",
    ".pdf",
    ".docx",
    ".pptx",
    ".xlsx",
    ".csv",
    ".epub",
    ".odt",
    ".rtf",
    ".eml",
    ".msg",
}

KNOWN_BAD = {
    "empty.txt": "the file is empty",
    "fake-text-all-whitespace.txt": "no text found (empty, scanned without a text layer, or only images)",
    "password.pdf": "the file is encrypted (password-protected); memex cannot read it",
    "password_protected.xlsx": "the file is encrypted (password-protected); memex cannot read it",
    # pictures are read for text (memex[media]): this one is a colour field, without EXIF either
    "bmp_24.bmp": "no text found in the picture, and no photo metadata (date, camera or place)",
    "simple.zip": "unsupported file type .zip",
    "empty.eml": "the message is empty",
}
# Scans and pictures read by OCR, and a recording (music without speech: listed as a recording),
# with memex[media] (refused before issue 19: "no text found", "... files hold no text").
READ_BY_MEDIA = {
    "DA-1p.heic",  # decoded by pillow-heif
    "DA-1p.jpg",
    "DA-1p.png",
    "layout-parser-paper-fast.jpg",
    "english-and-korean.png",
    "chi_sim_image.jpeg",
    "loremipsum-flat.pdf",
    "CantinaBand3.wav",
}
# .eml and .msg files are read by the mail connector, one document per Message-ID: the corpus's
# 44 mail files reuse ids (fake-email.eml alone comes in 9 variants, .eml and .msg), so they are
# 33 documents, and 11 files are the same messages again.
MAIL_DUPLICATES = 11


@pytest.mark.slow
def test_documents_unstructured_per_format(memex_home, capsys):
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder

    corpus = data_dir("documents_unstructured")
    memex = Memex(
        Paths(memex_home),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        writable=True,
    )
    report = memex.ingest([str(corpus)])
    memex.close()

    failures = {Path(f.uri).name: f for f in report.failures}
    indexed = Counter(Path(uri).suffix.lower() for uri in report.indexed)
    failed = Counter(Path(f.uri).suffix.lower() for f in report.failures)
    with capsys.disabled():
        print("\nformat   indexed  not indexed")
        for suffix in sorted(set(indexed) | set(failed)):
            print(f"{suffix:8} {indexed[suffix]:7}  {failed[suffix]:11}")
        print(f"total    {sum(indexed.values()):7}  {sum(failed.values()):11}")

    for suffix in sorted(PROMISED):
        assert indexed[suffix] >= 1, f"no {suffix} file was indexed"
    assert READ_BY_MEDIA <= {Path(u).name for u in report.indexed}
    for name, reason in KNOWN_BAD.items():
        assert failures[name].reason == reason, name
    assert all(f.reason for f in report.failures)
    # Every file was either indexed or reported (or is a message read already): nothing vanished.
    files = [p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(report.indexed) + len(report.failures) + MAIL_DUPLICATES == len(files)
    # Most of the corpus is readable: what is not is images, audio, legacy binaries, bad files.
    assert len(report.indexed) + MAIL_DUPLICATES >= 195  # files read (a message twice is one document)
