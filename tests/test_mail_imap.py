"""IMAP against a real server: Debian's Dovecot on loopback (tests/dovecot.py), filled through
IMAP APPEND with real list mail from ../shared/data. Ingest, add, expunge, re-sync: the index
follows the mailbox exactly; failures are clear, leave nothing behind and never show the password."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.mail import MailConnector
from connectors.mail.imap import ImapError
from memex.api.reads import Reads
from tests.conftest import data_dir
from tests.dovecot import running_dovecot

PASSWORD = "c0rrect-horse_battery.staple"
POLICY = """\
version: 1
labels: [mail]
levels: [normal]
roles:
  reader: {labels: [mail]}
users:
  stefan: {roles: [reader], emails: [stefan@datenfreihafen.org]}
  keith: {roles: [reader], emails: [keithp@keithp.com]}
  outsider: {roles: [reader]}
  carl: {}
groups:
  list: {roles: [reader], members: [carl], emails: [notmuch@notmuchmail.org]}
sources:
  - name: all-mail
    match: {connector: mail}
    labels: [mail]
"""


def message_id(raw: bytes) -> str:
    return re.search(rb"(?im)^message-id:\s*<([^>]+)>", raw).group(1).decode()


def lkml(count: int) -> list[bytes]:
    folder = data_dir("email_maildir_notmuch") / "lkml" / "cur"
    return [path.read_bytes() for path in sorted(folder.iterdir())[:count]]


@pytest.fixture(scope="module")
def server():
    with running_dovecot(tls=True, password=PASSWORD) as running:
        yield running


@pytest.fixture
def memex(memex_home, tmp_path, monkeypatch):
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("MEMEX_IMAP_PASSWORD", PASSWORD)
    memex = Memex(
        Paths(memex_home),
        policy=load_policy(policy),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    yield memex
    memex.close()


def mailbox_url(server, mailbox: str) -> str:
    return server.url(mailbox, query=f"cafile={server.cafile}")


def test_ingest_follows_the_mailbox(server, memex, memex_home):
    """Ingest, re-sync (nothing fetched, nothing embedded), add one, expunge one, re-sync."""
    messages = lkml(6)
    uids = [server.append(raw, "Follow") for raw in messages[:5]]
    url = mailbox_url(server, "Follow")
    first = memex.ingest([url])
    assert first.failures == []
    base = f"imap://tester@127.0.0.1:{server.port}/Follow"
    assert sorted(first.indexed) == sorted(f"{base}#{message_id(raw)}" for raw in messages[:5])
    ids = {r.source_id for r in memex.ledger.records()}
    assert ids == {f"mail:{message_id(raw)}" for raw in messages[:5]}

    again = memex.ingest([url])
    assert (again.indexed, again.unchanged, again.chunks_added, again.removed) == ([], 5, 0, [])

    new_uid = server.append(messages[5], "Follow")
    server.expunge(uids[1], "Follow")
    synced = memex.ingest([url])
    assert synced.indexed == [f"{base}#{message_id(messages[5])}"]
    assert synced.removed == [f"{base}#{message_id(messages[1])}"]
    assert (synced.unchanged, synced.failures) == (4, [])
    now = {r.source_id for r in memex.ledger.records()}
    assert now == {f"mail:{message_id(raw)}" for raw in [messages[0], *messages[2:]]}
    assert memex.index.chunk_ids() == memex.ledger.committed_chunk_ids()
    # The expunged message's copy left the connector's cache too.
    cache = list((memex_home / "mail" / "imap").glob(f"*_{server.port}_Follow-*"))
    assert len(cache) == 1 and len(list((cache[0] / "messages").iterdir())) == 5
    state = json.loads((cache[0] / "state.json").read_text())
    assert sorted(int(uid) for uid in state["messages"]) == sorted([*uids[:1], *uids[2:], new_uid])
    assert PASSWORD not in (cache[0] / "state.json").read_text()
    # It is somebody's mail: for its owner's eyes only.
    assert oct((cache[0] / "messages").stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in (cache[0] / "messages").iterdir()} == {"0o600"}


def test_a_new_uidvalidity_refetches_without_embedding_again(server, memex):
    for raw in lkml(3):
        server.append(raw, "Reset")
    url = mailbox_url(server, "Reset")
    first = memex.ingest([url])
    assert len(first.indexed) == 3
    before = {r.uri for r in memex.ledger.records()}
    server.recreate("Reset")  # the server renumbers: a new UIDVALIDITY
    for raw in lkml(3):
        server.append(raw, "Reset")
    report = memex.ingest([url])
    assert (report.indexed, report.unchanged, report.chunks_added, report.removed, report.failures) == (
        [], 3, 0, [], []
    )  # fmt: skip
    assert {r.uri for r in memex.ledger.records()} == before  # mailbox#Message-ID: still right


def test_access_as_recipient_and_as_outsider(server, memex):
    for raw in lkml(4):
        server.append(raw, "Access")
    memex.ingest([mailbox_url(server, "Access")])
    question = "notmuch-new: Tag mails not as unread when the seen flag in the maildir is set"
    answer = Reads(memex).ask(question, principal=memex.policy.principal("stefan"))
    assert answer.citations and answer.citations[0].source.startswith(
        f"imap://tester@127.0.0.1:{server.port}/Access"
    )
    assert "Stefan Schmidt" in answer.text
    # carl reads it through the list address on it; the outsider is on no access list.
    assert Reads(memex).search(question, principal=memex.policy.principal("carl"))
    memex.model.prompts.clear()
    with pytest.raises(Exception) as refused:
        Reads(memex).ask(question, principal=memex.policy.principal("outsider"))
    assert type(refused.value).__name__ == "EmptyIndex"
    assert memex.model.prompts == []


def test_imaps_and_starttls_verify_the_certificate(server, memex_home, monkeypatch):
    monkeypatch.setenv("MEMEX_IMAP_PASSWORD", PASSWORD)
    server.append(lkml(1)[0], "Tls")
    for url in (server.url("Tls", tls=True, query=f"cafile={server.cafile}"), mailbox_url(server, "Tls")):
        (doc,) = MailConnector(url, data_dir=memex_home / "mail").load()
        assert doc.uri == url.split("?")[0] + "#1258848661-4660-2-git-send-email-stefan@datenfreihafen.org"
    for url, where in ((server.url("Tls", tls=True), server.tls_port), (server.url("Tls"), server.port)):
        with pytest.raises(ImapError) as caught:
            list(MailConnector(url, data_dir=memex_home / "mail").load())
        assert (
            str(caught.value)
            == f"TLS with the IMAP server 127.0.0.1:{where} failed: CERTIFICATE_VERIFY_FAILED"
        )


def test_failures_are_clear_and_leave_no_state(server, memex, memex_home, monkeypatch):
    server.append(lkml(1)[0], "Fail")
    url = mailbox_url(server, "Fail")
    cases = [
        ("wrong password", url,
         f"IMAP login failed for tester@127.0.0.1 at 127.0.0.1:{server.port}: [AUTHENTICATIONFAILED] Authentication failed."),
        (PASSWORD, "imap://tester@127.0.0.1:9/INBOX", "cannot reach the IMAP server 127.0.0.1:9: connection refused"),
        (PASSWORD, mailbox_url(server, "Nowhere"), "no mailbox 'Nowhere' for tester@127.0.0.1: Mailbox doesn't exist: Nowhere"),
        (None, url, "no password for tester@127.0.0.1: set MEMEX_IMAP_PASSWORD, or store it in the system keyring "
                    "(keyring set memex imap://tester@127.0.0.1)"),
        (PASSWORD, f"imap://tester:{PASSWORD}@127.0.0.1:{server.port}/Fail",
         "put no password in the URL; set MEMEX_IMAP_PASSWORD (or ?password_env=NAME) or store it in the system keyring"),
    ]  # fmt: skip
    for password, target, message in cases:
        if password is None:
            monkeypatch.delenv("MEMEX_IMAP_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("MEMEX_IMAP_PASSWORD", password)
        report = memex.ingest([target])
        (failure,) = report.failures
        assert (failure.uri, failure.kind) == (target, "failed")
        assert failure.reason.startswith(f"stopped reading: {message}"), failure.reason
        assert PASSWORD not in failure.reason and "wrong password" not in failure.reason
        assert memex.ledger.records() == [] and memex.index.chunk_ids() == set()
        assert memex.ledger.roots() == []
    assert not (memex_home / "mail").exists()


def test_a_named_password_variable(server, memex_home, monkeypatch):
    monkeypatch.delenv("MEMEX_IMAP_PASSWORD", raising=False)
    monkeypatch.setenv("WORK_MAIL_PASSWORD", PASSWORD)
    server.append(lkml(1)[0], "Named")
    (doc,) = MailConnector(
        mailbox_url(server, "Named") + "&password_env=WORK_MAIL_PASSWORD", data_dir=memex_home / "mail"
    ).load()
    assert doc.source_id == "mail:1258848661-4660-2-git-send-email-stefan@datenfreihafen.org"


def test_the_same_message_from_a_maildir_and_imap_is_one_document(server, memex, tmp_path):
    """Dedup by Message-ID: IMAP after a Maildir embeds nothing again."""
    raws = lkml(2)
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, raw in enumerate(raws):
        (maildir / "cur" / f"{i}.host:2,S").write_bytes(raw)
        server.append(raw, "Both")
    first = memex.ingest([str(maildir)])
    assert len(first.indexed) == 2
    report = memex.ingest([mailbox_url(server, "Both")])
    assert (report.indexed, report.unchanged, report.chunks_added) == ([], 2, 0)
    assert len(memex.ledger.records()) == 2


def test_the_cli_reports_a_bad_login_without_the_password(server, memex_home, tmp_path):
    env = {**os.environ, "MEMEX_HOME": str(memex_home), "MEMEX_IMAP_PASSWORD": "not-the-password"}
    subprocess.run(
        [sys.executable, "-m", "memex.cli.main", "init", "--force"], env=env, check=True, capture_output=True
    )
    result = subprocess.run(
        [sys.executable, "-m", "memex.cli.main", "ingest", mailbox_url(server, "INBOX"), "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2  # reported as a target that could not be read; nothing written
    (failure,) = json.loads(result.stdout)["failures"]
    assert failure["kind"] == "failed" and failure["reason"].startswith("stopped reading: ")
    output = result.stdout + result.stderr
    assert f"IMAP login failed for tester@127.0.0.1 at 127.0.0.1:{server.port}" in output
    assert "not-the-password" not in output
    assert not Path(memex_home / "mail").exists()


def test_the_password_from_the_system_keyring(monkeypatch):
    import types

    from connectors.mail.imap import parse_url, password_for

    asked = []
    keyring = types.SimpleNamespace(
        get_password=lambda service, user: asked.append((service, user)) or "from-keyring"
    )
    monkeypatch.setitem(sys.modules, "keyring", keyring)
    monkeypatch.delenv("MEMEX_IMAP_PASSWORD", raising=False)
    assert password_for(parse_url("imaps://me%40example.com@mail.example.com/Sent")) == "from-keyring"
    assert asked == [("memex", "imap://me@example.com@mail.example.com")]
    monkeypatch.setenv("MEMEX_IMAP_PASSWORD", "from-env")
    assert password_for(parse_url("imaps://me%40example.com@mail.example.com/Sent")) == "from-env"
    assert parse_url("imap://me@[::1]:1143/Lists/memex").base_uri == "imap://me@[::1]:1143/Lists/memex"
