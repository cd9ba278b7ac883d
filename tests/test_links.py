"""Symbolic links in ingested folders (issue 15, section 1): a file is labelled by the path it
really has, a link whose target lies outside the ingested folder is not read unless
`follow_links` is on, a loop never hangs, and `policy explain` agrees with what is served. Every
read path is checked for a low user, after a walk, a watcher reconcile and a watcher event."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from memex.access.policycheck import explain
from memex.api.reads import Reads
from memex.errors import EmptyIndex

HR_CANARY = "Harrier salary band canary HRLINK7731"  # in the HR folder
OUTSIDE_CANARY = "private key canary OUTLINK4409"  # outside every ingested folder


@pytest.fixture
def planted(kestrel: Path, tmp_path: Path) -> dict[str, Path]:
    """The Kestrel archive with links planted in its public folder (labelled `public`)."""
    (kestrel / "hr" / "bands.txt").write_text(f"Pay bands 2026. {HR_CANARY}.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_ed25519.txt").write_text(f"Do not share. {OUTSIDE_CANARY}.\n")
    public = kestrel / "public"
    links = {
        "to_hr": public / "bands.txt",
        "to_outside": public / "notes.txt",
        "to_outside_folder": public / "more",
    }
    links["to_hr"].symlink_to("../hr/bands.txt")
    links["to_outside"].symlink_to(outside / "id_ed25519.txt")
    links["to_outside_folder"].symlink_to(outside, target_is_directory=True)
    return {**links, "outside": outside, "public": public}


def everything_served(memex, user: str, sources: list[Path]) -> str:
    """All text `user` gets through search, ask, show and export, joined."""
    principal = memex.policy.principal(user)
    texts = []
    for query in ("Harrier salary band", "private key", "HRLINK7731", "OUTLINK4409"):
        try:
            texts += [hit.text for hit in Reads(memex).search(query, principal=principal, k=50)]
            answer = Reads(memex).ask(query, principal=principal)
            texts += [answer.text, *(hit.text for hit in answer.hits)]
        except EmptyIndex:
            pass
    for source in sources:
        texts += [hit.text for hit in Reads(memex).show(str(source), principal=principal)]
    texts += [hit.text for hit in Reads(memex).export(principal=principal)]
    return "\n".join(texts)


def assert_no_leak(memex, planted, *, hr_indexed: bool = True) -> None:
    sources = [planted["to_hr"], planted["to_outside"], planted["to_outside_folder"] / "id_ed25519.txt"]
    for user in ("vic", "pat", "alice"):
        served = everything_served(memex, user, sources)
        assert HR_CANARY not in served, user
        assert OUTSIDE_CANARY not in served, user
    hana = everything_served(memex, "hana", sources)
    assert (HR_CANARY in hana) is hr_indexed  # HR reads it where it lies, if that was ingested
    assert OUTSIDE_CANARY not in everything_served(memex, "erin", sources)  # read by nobody


def test_a_walk_labels_links_by_their_target_and_never_reads_outside(fake_memex, kestrel, planted):
    report = fake_memex.ingest([str(kestrel)])
    assert_no_leak(fake_memex, planted)
    uris = {r.uri for r in fake_memex.ledger.records(status="indexed")}
    assert (kestrel / "hr" / "bands.txt").as_posix() in uris
    assert (
        not {p.as_posix() for p in planted["public"].iterdir()}
        - {(planted["public"] / "press-release-falcon-2.html").as_posix()}
        & uris
    )
    reasons = {f.uri: f.reason for f in report.failures}
    for name in ("to_outside", "to_outside_folder"):
        assert "outside the ingested folder" in reasons[planted[name].as_posix()]
        assert "follow_links" in reasons[planted[name].as_posix()]


def test_a_low_folder_ingested_alone_does_not_read_a_link_into_hr(fake_memex, planted):
    report = fake_memex.ingest([str(planted["public"])])
    assert (
        "outside the ingested folder"
        in {f.uri: f.reason for f in report.failures}[planted["to_hr"].as_posix()]
    )
    assert_no_leak(fake_memex, planted, hr_indexed=False)


def test_policy_explain_agrees_with_what_is_served_for_a_link(fake_memex, kestrel, planted):
    fake_memex.ingest([str(kestrel)])
    link = str(planted["to_hr"])
    said = explain(fake_memex.policy, fake_memex.ledger, "vic", link)
    principal = fake_memex.policy.principal("vic")
    served = [
        h for h in Reads(fake_memex).search(HR_CANARY, principal=principal, k=50) if HR_CANARY in h.text
    ]
    assert said["allowed"] is False and served == []
    assert any("symbolic link" in line for line in said["details"])
    assert explain(fake_memex.policy, fake_memex.ledger, "hana", link)["allowed"] is True
    outside = explain(fake_memex.policy, fake_memex.ledger, "erin", str(planted["to_outside"]))
    assert outside["allowed"] is False and "outside the ingested folder" in outside["summary"]


def test_follow_links_reads_targets_under_their_own_rules(fake_memex, kestrel, planted, tmp_path):
    # The outside folder sits in a second "kestrel/hr" tree: its own rules make it HR.
    elsewhere = tmp_path / "elsewhere" / "kestrel" / "hr"
    elsewhere.mkdir(parents=True)
    (elsewhere / "review.txt").write_text(f"Review notes. {OUTSIDE_CANARY}.\n")
    os.remove(planted["to_outside"])
    planted["to_outside"].symlink_to(elsewhere / "review.txt")
    os.remove(planted["to_outside_folder"])
    fake_memex.settings = replace(fake_memex.settings, follow_links=True)
    report = fake_memex.ingest([str(kestrel)])
    assert (elsewhere / "review.txt").as_posix() in report.indexed
    record = fake_memex.ledger.get(f"file:{(elsewhere / 'review.txt').as_posix()}")
    assert "hr" in record.access.labels
    vic, hana = (fake_memex.policy.principal(u) for u in ("vic", "hana"))
    assert not [h for h in Reads(fake_memex).export(principal=vic) if OUTSIDE_CANARY in h.text]
    assert [h for h in Reads(fake_memex).export(principal=hana) if OUTSIDE_CANARY in h.text]


def test_link_loops_never_hang(fake_memex, kestrel, tmp_path):
    loops = kestrel / "public" / "loops"
    loops.mkdir()
    (loops / "a").symlink_to("b")
    (loops / "b").symlink_to("a")
    (loops / "up").symlink_to("..", target_is_directory=True)
    outside = tmp_path / "ring"
    outside.mkdir()
    (outside / "again").symlink_to(outside, target_is_directory=True)
    (loops / "ring").symlink_to(outside, target_is_directory=True)
    for follow in (False, True):
        fake_memex.settings = replace(fake_memex.settings, follow_links=follow)
        report = fake_memex.ingest([str(kestrel)])
        reasons = {f.uri: f.reason for f in report.failures}
        assert "does not resolve" in reasons[(loops / "a").as_posix()]


def test_a_mail_folder_holding_a_link_is_walked_as_files(kestrel, planted):
    from connectors.mail.mailboxes import is_mail_folder

    folder = kestrel / "letters"
    folder.mkdir()
    (folder / "one.eml").write_bytes(
        (kestrel / "mail" / "kestrel-2026.mbox").read_bytes().split(b"\nFrom ")[0]
    )
    assert is_mail_folder(folder)
    (folder / "two.eml").symlink_to(planted["outside"] / "id_ed25519.txt")
    assert not is_mail_folder(folder)


# -- the watcher -------------------------------------------------------------------------------
@pytest.fixture
def service(fake_memex):
    from memex.api.wiring import Memex
    from memex.daemon.watcher import Watcher
    from memex.index import Index

    def make(folder: Path) -> Watcher:
        fake_memex.index  # noqa: B018
        reader = Memex(
            fake_memex.paths,
            policy=fake_memex.policy,
            settings=fake_memex.settings,
            embedder=fake_memex.embedder,
            model=fake_memex._model,
            index=Index.open(fake_memex.paths.store, embedder=fake_memex.embedder),
        )
        made.append(reader)
        return Watcher(fake_memex, reader, folders=[str(folder)])

    made: list = []
    yield make
    for reader in made:
        reader.close()


def test_the_watchers_reconcile_labels_links_like_the_walk(fake_memex, kestrel, planted, service):
    watcher = service(kestrel)
    watcher._reconcile(str(kestrel))  # on start, and every watch_reconcile_minutes
    watcher._reconcile(str(kestrel))
    assert_no_leak(fake_memex, planted)


def test_the_watchers_events_on_links_follow_the_same_rules(fake_memex, kestrel, planted, service):
    watcher = service(kestrel)
    watcher._reconcile(str(kestrel))
    late = planted["public"] / "late.txt"
    late.symlink_to(planted["outside"] / "id_ed25519.txt")
    hr_late = planted["public"] / "late-hr.txt"
    hr_late.symlink_to("../hr/bands.txt")
    watcher._process([str(late), str(hr_late), str(planted["to_hr"])])
    assert_no_leak(fake_memex, planted)
    record = fake_memex.ledger.get(f"file:{late.as_posix()}")
    assert record.status == "failed" and "outside the ingested folder" in record.error
