"""Mail through the whole pipeline: the Kestrel mailbox under the company policy (who reads
which thread: hits, prompts, answers, citations), attachments cited as part of their message,
re-ingest, deleted messages, one document per Message-ID across mailboxes, folder walks."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memex.answer.grounding import UNSUPPORTED_MARK
from memex.api.reads import Reads
from memex.errors import EmptyIndex
from memex.index import Narrowing
from tests.conftest import EXAMPLES, POLICIES

MBOX = EXAMPLES / "mail" / "kestrel-2026.mbox"

FINANCE = ["20260310091400.q2budget.frank@kestrel.example", "20260312184000.q2budget.erin@kestrel.example",
           "20260313080500.q2budget.frank@kestrel.example"]  # fmt: skip
ENGINEERING = [
    "20260316103000.heartbeat.alice@kestrel.example",
    "20260316110200.heartbeat.dev@kestrel.example",
]
HR = ["20260407100200.leave.hana@kestrel.example", "20260407154700.3d9f@lisbon-payroll.example"]
OFFICE = ["20260420090000.drinks.pat@kestrel.example", "20260420094100.drinks.sam@kestrel.example"]

# Words only one thread has, and who may read that thread, written out from the policy by hand:
# finance (staff + finance, confidential; frank, erin, finance@), engineering (staff; alice,
# eng@ = alice and dev, pat), HR (staff + hr, confidential; hana, hr@ = hana, the payroll
# partner), the launch drinks (staff; everyone but vic, who is no employee).
CANARIES = {
    "Nordlys due-diligence": {"frank", "erin"},
    "Banco Atlântico": {"frank", "erin"},
    "window cleaners": {"alice", "dev", "pat"},
    "Segurança Social": {"hana"},
    "17 August 2026": {"hana"},
    "pastéis de nata": {"alice", "dev", "hana", "frank", "erin", "sam", "pat"},
}
USERS = ["alice", "dev", "hana", "frank", "erin", "sam", "pat", "vic", "root-admin", "mallory"]
QUESTIONS = [
    "What did Erin decide about the Nordlys due-diligence costs and Banco Atlântico?",
    "Who should not let the window cleaners unplug the heartbeat sensor?",
    "When does the parental leave from 17 August 2026 end, and who pays Segurança Social?",
    "Should I tell Pat if I bring someone to the launch drinks with pastéis de nata?",
]


@pytest.fixture
def mailbox(tmp_path) -> Path:
    target = tmp_path / "mail" / "kestrel-2026.mbox"
    target.parent.mkdir()
    shutil.copy(MBOX, target)
    return target


def uri(mbox: Path, message_id: str) -> str:
    return f"{mbox.as_posix()}#{message_id}"


def test_the_example_mailbox_is_indexed_with_its_labels(fake_memex, mailbox):
    report = fake_memex.ingest([str(mailbox)])
    assert report.failures == []
    assert sorted(report.indexed) == sorted(uri(mailbox, m) for m in FINANCE + ENGINEERING + HR + OFFICE)
    records = {r.source_id: r for r in fake_memex.ledger.records()}
    finance = records[f"mail:{FINANCE[0]}"]
    assert (sorted(finance.access.labels), finance.access.level) == (["finance", "staff"], "confidential")
    assert finance.access.acl == frozenset(
        {"email:frank@kestrel.example", "email:erin@kestrel.example", "email:finance@kestrel.example"}
    )
    assert finance.rules == ("company-mail", "finance-mail")
    hr = records[f"mail:{HR[1]}"]
    assert (sorted(hr.access.labels), hr.access.level, hr.rules) == (
        ["hr", "staff"],
        "confidential",
        ("company-mail", "hr-mail"),
    )
    office = records[f"mail:{OFFICE[0]}"]
    assert (sorted(office.access.labels), office.access.level) == (["staff"], "internal")
    assert {r.connector for r in records.values()} == {"mail"}


def test_each_thread_reaches_only_its_readers(fake_memex, mailbox):
    """Hits, the prompt the model saw, the answer and the citations: a canary of a thread shows
    up for exactly the users who may read that thread."""
    fake_memex.ingest([str(mailbox)])
    for user in USERS:
        principal = fake_memex.policy.principal(user)
        seen: set[str] = set()
        cited: set[str] = set()
        for question in QUESTIONS + list(CANARIES):
            try:
                hits = Reads(fake_memex).search(question, principal=principal, k=50)
                fake_memex.model.prompts.clear()
                answer = Reads(fake_memex).ask(question, principal=principal, k=10)
            except EmptyIndex:
                assert user in ("vic", "root-admin", "mallory")
                continue
            prompt = "\n".join(m["content"] for p in fake_memex.model.prompts for m in p)
            # The FakeModel echoes its prompt, which holds the question itself: leave that out.
            # The answer check marks what the sources lack, the question's own words included.
            shown = answer.text.replace(UNSUPPORTED_MARK, "")
            text = "\n".join([*(h.text for h in hits), prompt, shown]).replace(question, "")
            seen |= {canary for canary in CANARIES if canary in text}
            cited |= {c.source for c in answer.citations}
        assert seen == {c for c, readers in CANARIES.items() if user in readers}, user
        readable = {m for thread, readers in [(FINANCE, {"frank", "erin"}), (ENGINEERING, {"alice", "dev", "pat"}),
                    (HR, {"hana"}), (OFFICE, set(CANARIES["pastéis de nata"]))] if user in readers for m in thread}  # fmt: skip
        assert cited <= {uri(mailbox, m) for m in readable}, user


def test_a_recipient_asking_gets_the_message_cited(fake_memex, mailbox):
    fake_memex.ingest([str(mailbox)])
    answer = Reads(fake_memex).ask(
        "What did Erin say about the contingency after the harrier outage?",
        principal=fake_memex.policy.principal("erin"),
    )
    assert answer.citations[0].source == uri(mailbox, FINANCE[1])
    assert answer.citations[0].section == "from Erin Duarte <erin@kestrel.example>, 12 March 2026"
    assert "Keep the contingency at EUR 45,000" in answer.text  # the FakeModel echoes its prompt


def test_an_attachment_is_cited_as_part_of_its_message(fake_memex, mailbox):
    fake_memex.ingest([str(mailbox)])
    hits = Reads(fake_memex).search(
        "Cloud and harrier operations amount_eur 118000", principal=fake_memex.policy.principal("frank"), k=3
    )
    assert hits[0].uri == uri(mailbox, FINANCE[0])
    assert (
        hits[0].section
        == "from Frank Costa <frank@kestrel.example>, 10 March 2026 > attachment q2-budget-2026.csv"
    )
    # The chunk carries the subject, the sender and the date, so the context travels with it.
    assert hits[0].text.splitlines()[0] == (
        "Q2 2026 budget: final numbers for sign-off > from Frank Costa <frank@kestrel.example>, 10 March 2026 "
        "> attachment q2-budget-2026.csv"
    )
    assert "line: Cloud and harrier operations; amount_eur: 118000" in hits[0].text
    sam = Reads(fake_memex).search(
        "Cloud and harrier operations amount_eur 118000", principal=fake_memex.policy.principal("sam")
    )
    assert all("118000" not in h.text for h in sam)


def test_dates_narrow_mail(fake_memex, mailbox):
    """ "What did the CFO say about the Q2 budget in March?": the date of each message filters."""
    fake_memex.ingest([str(mailbox)])
    march = Narrowing(
        date_from=datetime(2026, 3, 1, tzinfo=UTC).timestamp(),
        date_to=datetime(2026, 4, 1, tzinfo=UTC).timestamp(),
    )
    hits = Reads(fake_memex).search(
        "budget Frank", principal=fake_memex.policy.principal("erin"), k=50, narrowing=march
    )
    assert {h.source_id for h in hits} == {f"mail:{m}" for m in FINANCE}
    april = Narrowing(date_from=datetime(2026, 4, 1, tzinfo=UTC).timestamp())
    hits = Reads(fake_memex).search(
        "budget Frank", principal=fake_memex.policy.principal("erin"), k=50, narrowing=april
    )
    assert {h.source_id for h in hits} == {f"mail:{m}" for m in OFFICE}


def test_reingest_changes_nothing_and_a_deleted_message_goes(fake_memex, mailbox):
    first = fake_memex.ingest([str(mailbox)])
    second = fake_memex.ingest([str(mailbox)])
    assert (second.indexed, second.unchanged, second.chunks_added, second.removed) == ([], 9, 0, [])
    # Delete the payroll partner's reply from the mbox, as a mail program would.
    messages = mailbox.read_bytes().split(b"\n\nFrom ")
    kept = [m for m in messages if b"lisbon-payroll.example Tue Apr" not in m[:60]]
    assert len(kept) == len(messages) - 1
    mailbox.write_bytes(b"\n\nFrom ".join(kept))
    third = fake_memex.ingest([str(mailbox)])
    assert (third.indexed, third.unchanged, third.chunks_added) == ([], 8, 0)
    assert third.removed == [uri(mailbox, HR[1])]
    assert third.chunks_removed > 0
    assert fake_memex.ledger.get(f"mail:{HR[1]}") is None
    hits = Reads(fake_memex).search(
        "Segurança Social payroll run", principal=fake_memex.policy.principal("hana"), k=50
    )
    assert all("Segurança Social" not in h.text for h in hits)
    assert first.chunks_added == len(fake_memex.ledger.all_chunk_ids()) + third.chunks_removed


def test_the_same_message_in_an_mbox_and_a_maildir_is_one_document(fake_memex, mailbox, tmp_path):
    fake_memex.ingest([str(mailbox)])
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    messages = mailbox.read_bytes().split(b"\n\nFrom ")
    copies = [m.split(b"\n", 1)[1] for m in messages[3:5]]  # the engineering thread, without From_ lines
    for i, raw in enumerate(copies):  # as a mail program stores them: CRLF, a flags header
        stored = raw.replace(b"\n\n", b"\nX-Keywords: $seen\n\n", 1).replace(b"\n", b"\r\n")
        (maildir / "cur" / f"17000000{i}.host:2,S").write_bytes(stored)
    new = b"From: alice@kestrel.example\nTo: eng@kestrel.example\nSubject: Rota\nMessage-ID: <rota@kestrel.example>\n\nOn call: Dev.\n"
    (maildir / "new" / "170000009.host").write_bytes(new)
    report = fake_memex.ingest([str(maildir)])
    assert report.failures == []
    assert report.indexed == [f"{maildir.as_posix()}#rota@kestrel.example"]
    assert (report.unchanged, report.chunks_added) == (2, 1)
    assert len(fake_memex.ledger.records()) == 10


def test_a_folder_walk_hands_mail_to_the_mail_connector(fake_memex, tmp_path):
    root = tmp_path / "kestrel" / "mail"
    (root / "Maildir" / "cur").mkdir(parents=True)
    shutil.copy(MBOX, root / "kestrel-2026.mbox")
    message = b"From: pat@kestrel.example\nTo: alice@kestrel.example\nSubject: Keys\nMessage-ID: <keys@kestrel.example>\n\nKeys at reception.\n"
    (root / "Maildir" / "cur" / "1.host:2,S").write_bytes(message.replace(b"keys@", b"keys2@"))
    (root / "loose.eml").write_bytes(message)
    (root / "17").write_bytes(message.replace(b"keys@", b"keys3@"))  # an MH folder's message
    report = fake_memex.ingest([str(tmp_path / "kestrel")])
    assert report.failures == []
    connectors = {r.source_id: r.connector for r in fake_memex.ledger.records()}
    assert len(connectors) == 12 and set(connectors.values()) == {"mail"}
    assert {"mail:keys@kestrel.example", "mail:keys2@kestrel.example", "mail:keys3@kestrel.example"} <= set(
        connectors
    )


def test_mail_with_no_rule_is_refused_with_the_rule_to_add(fake_memex, tmp_path):
    path = tmp_path / "outside.eml"
    path.write_bytes(
        b"From: a@elsewhere.example\nTo: b@elsewhere.example\nSubject: hi\nMessage-ID: <o@x.example>\n\nhi\n"
    )
    report = fake_memex.ingest([str(path)])
    (failure,) = report.failures
    assert (failure.uri, failure.kind) == (path.as_posix(), "refused")
    assert (
        "matches address=a@elsewhere.example,b@elsewhere.example connector=mail domain=elsewhere.example"
        in failure.reason
    )
    assert "      connector: mail" in failure.reason


def test_the_personal_policy_labels_mail(memex_home, mailbox, tmp_path):
    """The bundled personal policy labels mail `personal`; the owner passes every access list
    (it is their own mail), a guest profile none that do not name it."""
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    memex = Memex(
        Paths(memex_home),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    try:
        report = memex.ingest([str(mailbox)])
        assert report.failures == [] and len(report.indexed) == 9
        labels = {frozenset(r.access.labels) for r in memex.ledger.records()}
        assert labels == {frozenset({"personal"})}
        hits = Reads(memex).search(
            "budget contingency payroll heartbeat drinks", principal=memex.policy.principal("owner"), k=50
        )
        assert {h.source_id for h in hits} >= {f"mail:{m}" for m in FINANCE + OFFICE}
        every_message = {r.source_id for r in memex.ledger.records()}
        assert {
            h.source_id for h in Reads(memex).export(principal=memex.policy.principal("owner"))
        } == every_message
        assert list(Reads(memex).export(principal=memex.policy.principal("guest"))) == []
    finally:
        memex.close()


def test_show_a_mailbox_file_shows_the_messages_its_reader_may_read(fake_memex, mailbox):
    """`memex show kestrel-2026.mbox` (a file, not a source id): the messages of that mailbox
    the asker may read, nothing of the others, and the same nothing for a stranger."""
    fake_memex.ingest([str(mailbox)])
    erin = {
        h.uri for h in Reads(fake_memex).show(str(mailbox), principal=fake_memex.policy.principal("erin"))
    }
    assert erin and all(u.startswith(f"{mailbox.as_posix()}#") for u in erin)
    assert {uri(mailbox, m) for m in FINANCE} <= erin
    assert not {uri(mailbox, m) for m in HR} & erin
    assert Reads(fake_memex).show(str(mailbox), principal=fake_memex.policy.principal("mallory")) == []


def test_one_message_in_two_files_is_indexed_once_and_a_rerun_changes_nothing(fake_memex, kestrel):
    """The same Message-ID saved twice with different bodies (an .eml and a later export): the
    first found in walk order is indexed, the other reported as its duplicate; running again is
    a no-op, not a flip between the two."""
    folder = kestrel / "mail" / "saved"
    folder.mkdir()
    head = (
        "From: Erin Duarte <erin@kestrel.example>\nTo: Frank <frank@kestrel.example>\n"
        "Subject: Contingency\nMessage-ID: <contingency-1@kestrel.example>\n"
        "Date: Thu, 12 Mar 2026 18:40:00 +0000\n\n"
    )
    (folder / "a-contingency.eml").write_text(head + "Keep the contingency at EUR 45,000.\n")
    (folder / "b-contingency-export.eml").write_text(
        head + "Keep the contingency at EUR 45,000. Sent from my phone\n"
    )
    first = fake_memex.ingest([str(folder)])
    assert [os.path.basename(u) for u in first.indexed] == ["a-contingency.eml"]
    assert [(os.path.basename(a), os.path.basename(b)) for a, b in first.duplicates] == [
        ("b-contingency-export.eml", "a-contingency.eml")
    ]
    assert first.removed == [] and first.failures == []
    again = fake_memex.ingest([str(folder)])
    assert (again.indexed, again.unchanged, again.removed, again.chunks_added) == ([], 1, [], 0)
    assert len(again.duplicates) == 1
    (shown,) = Reads(fake_memex).show(
        str(folder / "a-contingency.eml"), principal=fake_memex.policy.principal("erin")
    )
    assert "Sent from my phone" not in shown.text
