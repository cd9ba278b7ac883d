"""Ingest with a fake embedder: idempotence, changes, deletions, failures, crash repair."""

from __future__ import annotations

import os

import pytest

from memex.api.reads import Reads
from memex.errors import StoreBusy


def archive_size(folder) -> int:
    """How many sources the example archive holds (other connectors may add their own files)."""
    from connectors.files import FilesConnector
    from memex.ingest.plugins import connectors

    return len(list(FilesConnector(str(folder), others=connectors()).load()))


def consistent(memex) -> set[str]:
    """The index holds exactly the chunks the ledger has committed; returns them."""
    ledger_ids = memex.ledger.committed_chunk_ids()
    assert memex.index.chunk_ids() == ledger_ids
    assert memex.index.existing(ledger_ids) == ledger_ids
    return ledger_ids


def texts_for(memex, user, query, k=20):
    return [h.text for h in Reads(memex).search(query, principal=memex.policy.principal(user), k=k)]


def test_ingest_then_reingest_adds_nothing(fake_memex, kestrel):
    first = fake_memex.ingest([str(kestrel)])
    assert first.failures == []
    n = archive_size(kestrel)
    assert n >= 12 and len(first.indexed) == n and first.chunks_added > n
    ids = consistent(fake_memex)
    second = fake_memex.ingest([str(kestrel)])
    assert (len(second.indexed), second.unchanged, second.chunks_added, second.chunks_removed) == (
        0,
        n,
        0,
        0,
    )
    assert consistent(fake_memex) == ids


def test_touched_but_unchanged_file_is_not_reembedded(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    guide = kestrel / "handbook" / "office-guide.txt"
    os.utime(guide, (1, 1))
    report = fake_memex.ingest([str(kestrel)])
    assert report.chunks_added == 0 and report.unchanged == archive_size(kestrel)
    assert fake_memex.ledger.get(f"file:{guide}").fingerprint.startswith("1000000000:")


def test_modified_file_replaces_its_chunks(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    guide = kestrel / "handbook" / "office-guide.txt"
    guide.write_text("Kestrel Labs office guide\n\nThe office moved to Avenida da Liberdade 110 in 2027.\n")
    report = fake_memex.ingest([str(kestrel)])
    assert report.indexed == [str(guide)]
    assert report.chunks_added == 1 and report.chunks_removed == 1
    found = texts_for(fake_memex, "pat", "office address Rua das Flores Avenida da Liberdade")
    assert any("Avenida da Liberdade 110" in t for t in found)
    assert not any("door code" in t for t in found)
    consistent(fake_memex)


def test_deleted_file_is_removed_on_next_ingest_of_its_folder(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    guide = kestrel / "handbook" / "office-guide.txt"
    guide.unlink()
    report = fake_memex.ingest([str(kestrel)])
    assert report.removed == [str(guide)]
    assert fake_memex.ledger.get(f"file:{guide}") is None
    assert not any("door code" in t for t in texts_for(fake_memex, "pat", "door code Wi-Fi parking"))
    consistent(fake_memex)


def test_ingesting_a_subfolder_does_not_remove_the_rest(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    report = fake_memex.ingest([str(kestrel / "handbook")])
    assert report.removed == [] and report.unchanged == 2
    assert len(consistent(fake_memex)) > 0
    assert len(fake_memex.ledger.records(status="indexed")) == archive_size(kestrel)


def test_bad_files_are_reported_and_the_run_goes_on(fake_memex, kestrel):
    bad = kestrel / "handbook"
    (bad / "empty.txt").write_bytes(b"")
    (bad / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a zip")
    (bad / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    (bad / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (bad / "truncated.pdf").write_bytes((kestrel / "board" / "board-minutes-2026-06.pdf").read_bytes()[:300])
    report = fake_memex.ingest([str(kestrel)])
    reasons = {os.path.basename(f.uri): (f.kind, f.reason) for f in report.failures}
    assert reasons == {
        "empty.txt": ("failed", "the file is empty"),
        "broken.docx": ("failed", "corrupt Office file (not a valid zip archive)"),
        "photo.jpg": ("failed", "not a readable .jpg image (Truncated File Read)"),
        "blob.bin": ("unsupported", "unsupported file type .bin"),
        "truncated.pdf": reasons["truncated.pdf"],
    }
    assert reasons["truncated.pdf"][0] == "failed" and ".pdf" in reasons["truncated.pdf"][1]
    assert len(report.indexed) == archive_size(kestrel) - 5
    # failures are remembered, not retried while unchanged, and listed by status for admins
    again = fake_memex.ingest([str(kestrel)])
    assert {os.path.basename(f.uri) for f in again.failures} == set(reasons)
    assert again.chunks_added == 0
    failed = {os.path.basename(r.uri) for r in fake_memex.ledger.records(status="failed")}
    assert failed == set(reasons)
    consistent(fake_memex)


def test_a_file_that_stops_parsing_loses_its_old_chunks(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    guide = kestrel / "handbook" / "office-guide.txt"
    guide.write_bytes(b"")
    report = fake_memex.ingest([str(kestrel)])
    assert [f.reason for f in report.failures] == ["the file is empty"]
    assert not any("door code" in t for t in texts_for(fake_memex, "pat", "door code Wi-Fi"))
    consistent(fake_memex)


def test_sources_without_a_rule_are_refused_by_name(fake_memex, tmp_path):
    stray = tmp_path / "elsewhere"
    stray.mkdir()
    (stray / "notes.txt").write_text("Some notes that no rule covers.")
    report = fake_memex.ingest([str(stray)])
    (failure,) = report.failures
    assert failure.kind == "refused"
    assert f"matches connector=files path={stray}/notes.txt" in failure.reason
    assert f"path: '{stray}/**'" in failure.reason
    assert fake_memex.index.chunk_ids() == set()


def test_crash_between_ledger_and_index_is_repaired(fake_memex, kestrel, monkeypatch):
    fake_memex.ingest([str(kestrel / "handbook")])
    guide = kestrel / "handbook" / "office-guide.txt"
    guide.write_text("Kestrel Labs office guide\n\nNew door code rules apply from May.\n")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(fake_memex.index, "upsert", crash)
    with pytest.raises(KeyboardInterrupt):
        fake_memex.ingest([str(kestrel / "handbook")])
    assert fake_memex.ledger.get(f"file:{guide}").status == "pending"
    monkeypatch.undo()
    report = fake_memex.ingest([str(kestrel / "handbook")])
    assert report.indexed == [str(guide)] and report.failures == []
    consistent(fake_memex)
    assert any("New door code rules" in t for t in texts_for(fake_memex, "pat", "door code rules May"))


def test_orphan_chunks_are_removed(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel / "handbook")])
    victim = fake_memex.ledger.records()[0]
    fake_memex.ledger.remove(victim.source_id)  # as if the ledger lost it
    fake_memex.ingestor().remove_orphans()
    consistent(fake_memex)


def test_the_next_ingest_notices_orphans_by_their_counts(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel / "handbook")])
    victim = fake_memex.ledger.records()[0]
    fake_memex.ledger.remove(victim.source_id)
    fake_memex.ingest([str(kestrel / "engineering")])  # nothing pending: only the counts differ
    consistent(fake_memex)


def test_forget_removes_a_folder(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    sources, chunks = fake_memex.ingestor().forget(str(kestrel / "hr"))
    assert sorted(os.path.basename(s) for s in sources) == [
        "parental-leave-policy.md",
        "performance-review-dev-okafor.docx",
        "salaries-2026.csv",
    ]
    assert chunks >= 3
    assert texts_for(fake_memex, "hana", "salary parental leave review") and not any(
        "annual_salary_eur" in t for t in texts_for(fake_memex, "hana", "salary annual_salary_eur")
    )
    consistent(fake_memex)


def test_rebuild_restores_the_same_chunks(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    before = consistent(fake_memex)
    report = fake_memex.rebuild()
    assert report.failures == [] and len(report.indexed) == archive_size(kestrel)
    assert consistent(fake_memex) == before


def test_second_writer_gets_a_clear_message(fake_memex, kestrel, memex_home, company_policy):
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder

    fake_memex.ingest([str(kestrel / "handbook")])  # holds the store
    other = Memex(Paths(memex_home), policy=company_policy, embedder=HashingEmbedder(), writable=True)
    with pytest.raises(StoreBusy) as caught:
        other.ingest([str(kestrel)])
    assert "Only one memex process may write to an embedded store" in str(caught.value)
    other.close()
    consistent(fake_memex)


def test_policy_change_relabels_in_place(fake_memex, kestrel, company_policy):
    import dataclasses

    fake_memex.ingest([str(kestrel)])
    alice = company_policy.principal("alice")

    def engineering_files(principal) -> list[str]:  # chats and mail about harrier have rules of their own
        hits = Reads(fake_memex).search("harrier outage", principal=principal, k=20)
        return [h.uri for h in hits if "/kestrel/engineering/" in h.uri and "harrier" in h.text]

    assert engineering_files(alice)
    stricter_rule = dataclasses.replace(company_policy.sources[2], level="secret")  # engineering-files
    stricter = dataclasses.replace(
        company_policy, sources=(*company_policy.sources[:2], stricter_rule, *company_policy.sources[3:])
    )
    fake_memex.policy = stricter
    ids_before = consistent(fake_memex)
    changed, refused = fake_memex.ingestor().relabel()
    assert (changed, refused) == (2, [])  # engineering/: two documents
    assert consistent(fake_memex) == ids_before  # nothing re-embedded or lost
    assert not engineering_files(alice)
    assert engineering_files(stricter.principal("erin"))


def test_forget_a_mailbox_file_inside_an_ingested_folder(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    mbox = kestrel / "mail" / "kestrel-2026.mbox"
    in_mbox = {r.source_id for r in fake_memex.ledger.records() if r.uri.startswith(f"{mbox}#")}
    assert len(in_mbox) >= 5
    sources, chunks = fake_memex.ingestor().forget(str(mbox))
    assert set(sources) == in_mbox and chunks >= len(in_mbox)
    assert not any(r.uri.startswith(f"{mbox}#") for r in fake_memex.ledger.records())
    consistent(fake_memex)


def _fake_connector(count, fail_after=None):
    from functools import partial

    from memex.connector import Connector
    from memex.documents import SourceDocument
    from tests import hostile

    class Stream(Connector):
        name = "stream"
        yielded = 0

        def load(self):
            for i in range(count):
                if fail_after is not None and i == fail_after:
                    raise OSError("the stream broke")
                Stream.yielded += 1
                text = f"record number {i} about kestrels"
                yield SourceDocument(
                    source_id=f"stream:{i}",
                    uri=f"stream://{i}",
                    title=f"record {i}",
                    connector="stream",
                    attributes={"connector": "files", "path": "/kestrel/handbook/stream"},
                    read_bytes=text.encode,
                    parse=partial(hostile.fine, text),
                )

    return Stream


def test_ingest_streams_and_a_broken_read_removes_nothing(fake_memex, monkeypatch):
    import memex.ingest.pipeline as ingest_module

    monkeypatch.setattr(ingest_module, "connector_for", lambda target: _fake_connector(600))
    first = fake_memex.ingest(["stream://all"])
    assert len(first.indexed) == 600 and first.failures == []
    broken = _fake_connector(600, fail_after=250)
    monkeypatch.setattr(ingest_module, "connector_for", lambda target: broken)
    report = fake_memex.ingest(["stream://all"])
    assert [(f.uri, f.reason) for f in report.failures] == [
        ("stream://all", "stopped reading: the stream broke")
    ]
    assert report.removed == [] and report.unchanged == 250  # what it could not read is kept
    assert len(fake_memex.ledger.records(status="indexed")) == 600
    consistent(fake_memex)
    shorter = _fake_connector(400)
    monkeypatch.setattr(ingest_module, "connector_for", lambda target: shorter)
    assert len(fake_memex.ingest(["stream://all"]).removed) == 200  # a complete read removes
    consistent(fake_memex)
