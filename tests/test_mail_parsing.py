"""The mail connector on real archives (../shared/data) and on hostile messages: every message is
read or refused with a reason, fields are exact, threads follow References, quotes are not
indexed twice, and one bad message never stops a mailbox."""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from connectors.files import FilesConnector
from connectors.mail import MailConnector
from connectors.mail.headers import parse_date
from connectors.mail.message import message_elements, read_message
from connectors.mail.text import html_to_text, strip_quoted
from memex.errors import ParseError
from memex.ingest.plugins import connector_for, connectors
from tests.conftest import EXAMPLES, data_dir

KESTREL_MBOX = EXAMPLES / "mail" / "kestrel-2026.mbox"
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*<([^<>\s]+@[^<>\s]+)>")


def first_of_each(docs) -> list:
    """The documents ingest keeps: the first of each source (a message saved in two files is
    met twice; ingest reports the second as its duplicate)."""
    seen: dict[str, object] = {}
    for doc in docs:
        seen.setdefault(doc.source_id, doc)
    return list(seen.values())


def outcomes(root: Path) -> tuple[dict[str, Counter], dict[str, str], list]:
    """Walk a folder as `memex ingest` does; per top-level folder: how many files there are and
    how many documents each connector made of them, parsed or refused (with the reasons)."""
    per: dict[str, Counter] = defaultdict(Counter)
    for path in root.rglob("*"):
        if path.is_file():
            relative = path.relative_to(root)
            per[relative.parts[0] if len(relative.parts) > 1 else "."]["files"] += 1
    refused = {}
    docs = first_of_each(
        connector_for(str(root))(str(root), others=connectors()).load()
    )  # as `memex ingest ROOT` reads it
    for doc in docs:
        container = Path(doc.attributes.get("path") or doc.uri)
        relative = container.relative_to(root)
        folder = relative.parts[0] if len(relative.parts) > 1 or container.is_dir() else "."
        if doc.connector != "mail":
            per[folder]["other"] += 1
            continue
        try:
            doc.parse()
            per[folder]["parsed"] += 1
        except ParseError as exc:
            per[folder]["refused"] += 1
            refused[doc.uri] = str(exc)
    return dict(per), refused, docs


def unique_message_files(files: list[Path]) -> int:
    """Messages counted the way notmuch does, independently of memex: one per Message-ID, plus
    every file without one."""
    ids, without = set(), 0
    for path in files:
        found = _MESSAGE_ID.search(path.read_bytes()[:65536])
        if found:
            ids.add(found.group(1))
        else:
            without += 1
    return len(ids) + without


# --- the shared corpora ------------------------------------------------------------------


def test_notmuch_corpus_every_message_read(tmp_path):
    root = data_dir("email_maildir_notmuch")
    per, refused, docs = outcomes(root)
    assert refused == {}
    assert per == {
        ".": {"files": 3, "other": 3},  # README, SOURCE.md, LICENSE_NOTE.txt
        "attachment": {"files": 2, "parsed": 2},
        "broken": {"files": 4, "parsed": 4},
        "crypto": {"files": 4, "parsed": 4},
        "default": {"files": 53, "parsed": 52},  # one Message-ID twice
        "duplicate": {"files": 9, "parsed": 3},  # notmuch's duplicate-id test: 3 ids in 9 files
        "html": {"files": 2, "parsed": 2},
        "indexing": {"files": 2, "parsed": 2},
        "insert": {"files": 1, "parsed": 1},
        "lkml": {"files": 210, "parsed": 176},  # 34 messages stored twice
        "mangling": {"files": 1, "parsed": 1},
        "pkcs7": {"files": 1, "parsed": 1},
        "protected-headers": {"files": 19, "parsed": 17},  # 2 also in crypto/ and pkcs7/
        "threading": {"files": 12, "parsed": 12},
    }
    messages = [
        p
        for p in root.rglob("*")
        if p.is_file() and p.name not in ("README", "SOURCE.md", "LICENSE_NOTE.txt")
    ]
    assert len([d for d in docs if d.connector == "mail"]) == unique_message_files(messages) == 277


def test_mbox_corpus_every_message_read():
    root = data_dir("email_mbox_samples")
    per, refused, _ = outcomes(root)
    assert refused == {}
    assert per == {
        ".": {"files": 2, "other": 2},
        "perceval_hyperkitty": {"files": 2, "parsed": 4},
        "perceval_mbox": {"files": 7, "parsed": 10},  # 14 messages, mbox_no_fields repeats one id 4 times
        "perceval_nntp": {"files": 3, "other": 3},  # news articles saved as .txt: text files
        "perceval_pipermail": {"files": 6, "parsed": 4, "other": 3},  # 3 HTML index pages
    }
    # The news articles are messages too: the mail parser reads them when asked.
    for name, sender, subject in [
        ("nntp_1.txt", "fmoreno@example.com", "Github wiki vs Mozilla wiki"),
        ("nntp_2.txt", "jwajsberg@example.com", "Re: Github wiki vs Mozilla wiki"),
        ("nntp_parsing_error.txt", "jebnoun.melek@gmail.com", "Re: بعد المغرب السودان"),
    ]:
        envelope = read_message((root / "perceval_nntp" / name).read_bytes()).envelope
        assert (envelope.sender[0].addr, envelope.subject) == (sender, subject)


def test_outlook_corpus_every_message_read():
    root = data_dir("email_msg_outlook")
    per, refused, _ = outcomes(root)
    assert refused == {}
    assert per == {".": {"files": 8, "parsed": 6, "other": 2}}


def test_documents_unstructured_mail_files():
    root = data_dir("documents_unstructured")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".eml", ".msg"))
    assert len(files) == 44
    read, refused, ids = 0, {}, Counter()
    for path in files:
        for doc in MailConnector(str(path)).load():
            ids[doc.source_id] += 1
            try:
                doc.parse()
                read += 1
            except ParseError as exc:
                refused[path.name] = str(exc)
    assert refused == {"empty.eml": "the message is empty"}
    assert read == 43
    # The test files reuse Message-IDs (fake-email.eml in 9 variants, .eml and .msg): 44 files
    # hold 33 distinct messages.
    assert len(ids) == 33
    assert ids["mail:CADc-_xaLB2FeVQ7mNsoX+NJb_7hAJhBKa_zet-rtgPGenj0uVw@mail.gmail.com"] == 9


FIELDS = [
    # (corpus, file, message index, source id, sender, date, subject)
    ("email_maildir_notmuch", "lkml/cur/1354585346.000260:2,", 0,
     "mail:1258848661-4660-2-git-send-email-stefan@datenfreihafen.org", "Stefan Schmidt <stefan@datenfreihafen.org>",
     "2009-11-22T01:11:01+01:00",
     "[notmuch] [PATCH 2/2] notmuch-new: Tag mails not as unread when the seen flag in the maildir is set."),
    ("email_mbox_samples", "perceval_mbox/mbox_iso8859_encoding.mbox", 0,
     "mail:4fce8064d819e07fd80267aaecaf30ef@www.platvoet.de", "Lucía Charlie <lucíacharlie@wellsfargo.com>",
     "2016-11-07T19:44:27+01:00", "[ovs-dev] Remittance Advice"),
    ("email_mbox_samples", "perceval_mbox/mbox_unknown_encoding.mbox", 0,
     "mail:20020823171132.541DB44147@example.com", "Ô¬´Ï <yuancong@example.com>",
     "2002-08-24T01:24:49+08:00", "[platform-swt-dev] How to refresh a control in another thread?"),
    ("email_mbox_samples", "perceval_pipermail/pipermail_2016_april.mbox", 1,
     "mail:CACRHdMZgAgzyhewu_aAJ2f2DWHVZdNH6J7zd2S=YWQuf-2yZDw@example.com", "Andy Grunwald <andy@example.com>",
     "2016-04-23T18:18:56+02:00", "[Metrics-grimoire] [GrimoireLab] Presenting GrimoireLab"),
    ("email_msg_outlook", "msgextractor_unicode.msg", 0,
     "mail:CADtJ4eNjQSkGcBtVteCiTF+YFG89+AcHxK3QZ=-Mt48xygkvdQ@mail.gmail.com", "Brian Zhou <brizhou@gmail.com>",
     "2013-11-18T08:26:24+00:00", "Test for TIF files"),
    ("documents_unstructured", "eml/email-no-utf8-2008-07-16.062410.eml", 0,
     "mail:013801c8e70c$8cf13160$0501a8c0@tamire", "Tamir Erez <eryzxx@post.tau.ac.il>",
     "2008-07-16T09:24:06+03:00", "RE: שלום"),
    ("documents_unstructured", "eml/test-iso-8601-date.eml", 0,
     None, "sender@example.com", "2025-07-29T12:42:06+00:00", "Test a Z-suffix date"),
    ("documents_unstructured", "eml/fake-email-utf-16-be.eml", 0,
     "mail:CADc-_xaLB2FeVQ7mNsoX+NJb_7hAJhBKa_zet-rtgPGenj0uVw@mail.gmail.com",
     "Matthew Robinson <mrobinson@unstructured.io>", "2022-12-16T17:04:16-05:00", "Test Email"),
]  # fmt: skip


@pytest.mark.parametrize(("corpus", "name", "index", "source_id", "sender", "date", "subject"), FIELDS)
def test_exact_fields(corpus, name, index, source_id, sender, date, subject):
    path = data_dir(corpus) / name
    doc = list(MailConnector(str(path)).load())[index]
    if source_id is not None:
        assert doc.source_id == source_id
    else:
        assert doc.source_id.startswith("mail:sha256:")
    assert doc.title == subject
    assert doc.metadata["date"] == date
    assert doc.metadata["timestamp"] == datetime.fromisoformat(date).timestamp()
    header = doc.parse()[0].text
    assert header.startswith(f"From: {sender}\n")
    assert f"\nSubject: {subject}" in header


def test_recipients_bcc_and_access_list():
    path = data_dir("documents_unstructured") / "eml" / "mime-multi-to-cc-bcc.eml"
    (doc,) = MailConnector(str(path)).load()
    addresses = [
        "sender@example.com", "bob@example.com", "sue@example.com", "tom@example.com",
        "alice@example.com", "john@example.com", "mary@example.com",
    ]  # fmt: skip
    assert doc.attributes == {
        "connector": "mail",
        "folder": "eml",
        "address": addresses,
        "domain": ["example.com"],
        "path": path.as_posix(),
    }
    assert doc.acl == frozenset(f"email:{a}" for a in addresses)
    header = doc.parse()[0].text
    # Bcc recipients may read the message, but the others never learn who they were.
    assert "john@example.com" not in header and "Bcc" not in header
    assert header.splitlines()[:3] == [
        "From: sender@example.com",
        "To: Bob <bob@example.com>, Sue <sue@example.com>",
        "Cc: Tom <tom@example.com>, Alice <alice@example.com>",
    ]
    outlook = data_dir("email_msg_outlook") / "unstructured_fake-email-with-cc-and-bcc.msg"
    (doc,) = MailConnector(str(outlook)).load()
    assert doc.acl == frozenset(
        {"email:johnjennings702@gmail.com", "email:john-ctr@unstructured.io", "email:steve@unstructured.io",
         "email:hello@unstructured.io"}
    )  # fmt: skip


def test_outlook_body_matches_the_expected_text():
    """msg-extractor's expected output for its strangeDate sample: every line of the body."""
    root = data_dir("email_msg_outlook")
    (doc,) = MailConnector(str(root / "msgextractor_strangeDate.msg")).load()
    assert (doc.title, doc.metadata["date"]) == ("MSG Test File", "2016-02-23T14:57:50.904000+00:00")
    ours = " ".join(" ".join(e.text.split()) for e in doc.parse())
    expected = (root / "msgextractor_unicode.expected_message.txt").read_text(encoding="utf-8")
    body = expected.split("-----------------", 1)[1]
    lines = [" ".join(line.split()) for line in body.splitlines() if line.strip()]
    assert len(lines) == 47
    for line in lines:
        assert line in ours


def test_outlook_attachments_and_encrypted():
    root = data_dir("email_msg_outlook")
    (doc,) = MailConnector(str(root / "msgextractor_unicode.msg")).load()
    header = doc.parse()[0].text
    assert "Attachments: import OleFileIO.tif, raised value error.tif" in header
    (doc,) = MailConnector(str(root / "unstructured_fake-email-attachment.msg")).load()
    elements = doc.parse()
    assert [e.section[1:] for e in elements if e.section[1:]] == [("attachment fake-attachment.txt",)]
    (doc,) = MailConnector(str(root / "unstructured_fake-encrypted.msg")).load()
    assert doc.parse()[0].text.splitlines()[-2:] == [
        "Attachments: ATT00002.bin",
        "Note: the message is encrypted; memex cannot read its text",
    ]


# --- threads -----------------------------------------------------------------------------


def reference_components(files: list[Path]) -> set[frozenset[str]]:
    """Threads as notmuch builds them, computed here from the raw bytes: each message joined to
    every id in its References and In-Reply-To."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    own = set()
    for path in files:
        head = path.read_bytes().split(b"\n\n", 1)[0].replace(b"\n\t", b" ").replace(b"\n ", b" ")
        mid = _MESSAGE_ID.search(head).group(1).decode()
        own.add(mid)
        for line in re.findall(rb"(?im)^(?:references|in-reply-to):(.*)$", head):
            for ref in re.findall(rb"<([^<>\s]+@[^<>\s]+)>", line):
                parent[find(ref.decode())] = find(mid)
    groups: dict[str, set[str]] = defaultdict(set)
    for mid in own:
        groups[find(mid)].add(mid)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("folder", ["lkml", "threading/ghost-root", "threading/parent-priority", "default"])
def test_threads_match_references(folder):
    root = data_dir("email_maildir_notmuch") / folder
    docs = [d for d in connector_for(str(root))(str(root)).load() if d.connector == "mail"]
    ours: dict[str, set[str]] = defaultdict(set)
    for doc in docs:
        ours[doc.metadata["thread_id"]].add(doc.metadata["message_id"])
    files = [p for p in root.rglob("*") if p.is_file()]
    assert {frozenset(g) for g in ours.values()} == reference_components(files)


def test_thread_ids_on_lkml():
    root = data_dir("email_maildir_notmuch") / "lkml"
    threads = Counter(d.metadata["thread_id"] for d in MailConnector(str(root)).load())
    assert len(threads) == 19
    # Joe Perches' 44-patch series, with replies whose mailers trimmed References differently.
    assert threads["cover.1289789604.git.joe@perches.com"] == 100
    # git send-email's "In-Reply-To: <yes>" does not join threads.
    assert "yes" not in threads


def test_kestrel_threads_and_parents():
    docs = {d.source_id: d for d in MailConnector(str(KESTREL_MBOX)).load()}
    reply = docs["mail:20260313080500.q2budget.frank@kestrel.example"]
    assert reply.metadata["thread_id"] == "20260310091400.q2budget.frank@kestrel.example"
    assert reply.metadata["in_reply_to"] == "20260312184000.q2budget.erin@kestrel.example"
    assert len({d.metadata["thread_id"] for d in docs.values()}) == 4


# --- what a message's text is ------------------------------------------------------------


def body_of(raw: bytes) -> str:
    return "\n\n".join(e.text for e in message_elements(raw)[1:])


def test_quoted_replies_are_not_indexed_twice():
    docs = {d.source_id: d for d in MailConnector(str(KESTREL_MBOX)).load()}
    original = "\n".join(e.text for e in docs["mail:20260310091400.q2budget.frank@kestrel.example"].parse())
    reply = "\n".join(e.text for e in docs["mail:20260312184000.q2budget.erin@kestrel.example"].parse())
    assert "the Q2 2026 budget comes to EUR 1.84 million" in original
    assert "the Q2 2026 budget comes to EUR 1.84 million" not in reply
    assert "wrote:" not in reply
    assert reply.endswith("Approved. Keep the contingency at EUR 45,000: after today's harrier outage I would\n"
                          "rather not cut it. Please move EUR 10,000 from travel to the Nordlys due-diligence\n"
                          "costs instead.\nErin")  # fmt: skip
    html_reply = "\n".join(e.text for e in docs["mail:20260407154700.3d9f@lisbon-payroll.example"].parse())
    assert "Segurança Social" in html_reply and "start parental leave this year" not in html_reply


def test_strip_quoted_forms():
    assert (
        strip_quoted("Yes.\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <\nbob@x.org> wrote:\n> Shall we?\n> ok")
        == "Yes."
    )
    assert strip_quoted("Inline:\n> question one\nanswer one\n> question two\nanswer two") == (
        "Inline:\nanswer one\nanswer two"
    )
    outlook = "Fine by me.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Ann\nSubject: x\n\nold"
    assert strip_quoted(outlook) == "Fine by me."
    block = "See below.\n\nFrom: Bob Smith <bob@x.org>\nSent: Monday, 1 January 2024 10:00\nTo: Ann\nSubject: x\n\nold"
    assert strip_quoted(block) == "See below."
    forward = (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@x.org>\nDate: Mon\nSubject: x\n\nnews"
    )
    assert strip_quoted(forward) == forward
    assert strip_quoted(outlook, forwarded=True) == outlook


def test_html_to_text():
    html = """<html><head><style>p {color: red}</style><script>alert(1)</script></head><body>
      <p>Hello&nbsp;<b>Erin</b>,</p><div>line one<br>line two</div>
      <table><tr><th>item</th><th>EUR</th></tr><tr><td>hardware</td><td>610,000</td></tr></table>
      <ul><li>first</li><li>second</li></ul>
      <div class="gmail_quote">On Mon, Frank wrote:<blockquote>old text</blockquote></div>
    </body></html>"""
    assert html_to_text(html) == (
        "Hello Erin,\n\nline one\nline two\n\nitem | EUR\nhardware | 610,000\n\n- first\n- second"
    )
    outlook = (
        '<p>Agreed.</p><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">From: Bob</div><p>old</p>'
    )
    assert html_to_text(outlook) == "Agreed."


def test_dates_and_zones():
    assert parse_date("Tue, 10 Mar 2026 09:14:00 -0500").timestamp() == 1773152040.0
    assert parse_date("Tue, 10 Mar 2026 14:14:00 +0000").timestamp() == 1773152040.0
    assert parse_date("10 Mar 2026 14:14:00 -0000").isoformat() == "2026-03-10T14:14:00+00:00"
    assert parse_date("2026-03-10T15:14:00+01:00").timestamp() == 1773152040.0
    assert parse_date("Tue, 10 Mar 2026 09:14:00 EST").isoformat() == "2026-03-10T09:14:00-05:00"
    assert parse_date("INVALID-DATE-FORMAT") is None
    assert parse_date("12:00") is None  # no day: not "today"
    raw = b"From: a@x.org\nReceived: from mx by y; Wed, 11 Mar 2026 08:00:00 +0100\nSubject: s\n\nbody\n"
    assert read_message(raw).envelope.date.isoformat() == "2026-03-11T08:00:00+01:00"


# --- bad input ---------------------------------------------------------------------------


def test_malformed_headers():
    raw = (
        b"From Alice <alice@x.org>\n"  # no colon: not a header
        b"From: =?utf-8?q?Al=C3=AFce?= <ALICE@X.ORG>\n"
        b'To: undisclosed-recipients:;, bob@, <>, "Doe, Jane" <jane@y.org>\n'
        b"Subject: =?bogus-charset?q?hello?= =?utf-8?b?!!!notbase64?=\n"
        b"Date: yesterday-ish\n"
        b"Message-ID: not an id\n"
        b"\nThe body.\n"
    )
    content = read_message(raw)
    env = content.envelope
    assert [a.display() for a in env.sender] == ["Alïce <alice@x.org>"]
    assert [a.display() for a in env.to] == ["Doe, Jane <jane@y.org>"]
    assert env.date is None and env.message_id is None
    assert body_of(raw) == "The body."


def test_missing_date_has_no_timestamp(tmp_path):
    path = tmp_path / "no-date.eml"
    path.write_bytes(b"From: a@kestrel.example\nSubject: undated\nMessage-ID: <u@x>\n\ntext\n")
    (doc,) = MailConnector(str(path)).load()
    assert "timestamp" not in doc.metadata and "date" not in doc.metadata
    assert doc.parse()[0].text == "From: a@kestrel.example\nSubject: undated"


def test_broken_mime_boundaries():
    never_closed = (
        b'From: a@x.org\nSubject: s\nContent-Type: multipart/mixed; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nfirst part\n--B\nContent-Type: text/plain\n\nsecond part, no end\n"
    )
    assert body_of(never_closed) == "first part\n\nsecond part, no end"
    missing = b'From: a@x.org\nSubject: s\nContent-Type: multipart/mixed; boundary="NOPE"\n\njust text\n'
    assert body_of(missing) == "just text"
    no_boundary = b"From: a@x.org\nSubject: s\nContent-Type: multipart/mixed\n\nplain words\n"
    assert body_of(no_boundary) == "plain words"


def test_undecodable_bytes():
    latin1_as_utf8 = (
        b"From: a@x.org\nSubject: s\nContent-Type: text/plain; charset=utf-8\n\ncaf\xe9 cr\xe8me\n"
    )
    assert body_of(latin1_as_utf8) == "café crème"
    unknown = b"From: a@x.org\nSubject: s\nContent-Type: text/plain; charset=x-klingon\n\nna\xc3\xafve\n"
    assert body_of(unknown) == "naïve"
    undeclared = b"From: a@x.org\nSubject: Gr\xfc\xdfe\n\nK\xf6ln\n"
    assert message_elements(undeclared)[0].text.endswith("Subject: Grüße")
    assert body_of(undeclared) == "Köln"
    bad_base64 = b"From: a@x.org\nSubject: s\nContent-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=!!#\n"
    assert body_of(bad_base64) == "hello world"


def test_empty_and_non_messages_are_refused(tmp_path):
    for raw, reason in [
        (b"", "the message is empty"),
        (b"  \n\n \n", "the message is empty"),
        (
            b"\x00\x01\x02 binary \xff\xfe junk",
            "no mail headers (From, To, Subject, Date, Message-ID): this is not a mail message",
        ),
    ]:
        with pytest.raises(ParseError) as caught:
            message_elements(raw)
        assert str(caught.value) == reason
    (tmp_path / "empty.eml").write_bytes(b"")
    (doc,) = MailConnector(str(tmp_path / "empty.eml")).load()
    assert doc.source_id == f"file:{(tmp_path / 'empty.eml').as_posix()}"
    with pytest.raises(ParseError, match="^the message is empty$"):
        doc.parse()


def test_huge_messages(tmp_path, monkeypatch):
    from connectors.mail import content as content_module
    from connectors.mail import message as message_module

    words = ("budget " * 100_000).encode()  # 700 kB of text
    raw = b"From: a@x.org\nSubject: long\n\n" + words
    elements = message_elements(raw)
    assert elements[0].text.endswith("Note: only the first 500,000 characters of the text are indexed")
    assert sum(len(e.text) for e in elements[1:]) == 500_000
    monkeypatch.setattr(message_module, "MAX_MESSAGE_BYTES", 1000)
    monkeypatch.setattr(content_module, "MAX_MESSAGE_BYTES", 1000)
    path = tmp_path / "big.eml"
    path.write_bytes(raw)
    with pytest.raises(ParseError, match="^the message is 0 MB; memex reads messages up to 0 MB$"):
        message_module.parse_message_file(str(path))


def test_encrypted_parts():
    pgp_mime = (
        b'From: a@x.org\nSubject: secret\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted";'
        b' boundary="E"\n\n--E\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--E\n'
        b"Content-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\nhQEMA\n-----END PGP MESSAGE-----\n--E--\n"
    )
    assert message_elements(pgp_mime)[0].text.splitlines()[-1] == (
        "Note: the message is encrypted; memex cannot read its text"
    )
    inline = b"From: a@x.org\nSubject: s\n\nHello,\n-----BEGIN PGP MESSAGE-----\nhQEMA\n-----END PGP MESSAGE-----\n"
    assert body_of(inline) == "Hello,"
    assert "Note: the message is encrypted" in message_elements(inline)[0].text


def test_deeply_nested_mime_is_refused_or_cut():
    depth = 400
    raw = b"From: a@x.org\nSubject: nest\n"
    for i in range(depth):
        raw += f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode()
    raw += b"Content-Type: text/plain\n\ndeep\n"
    try:
        elements = message_elements(raw)
    except ParseError as exc:
        assert str(exc) == "the message's MIME structure is nested too deeply to read"
    else:
        assert "Note: parts nested too deeply were left out" in elements[0].text


def test_attachments_are_sections_of_their_message(tmp_path):
    docs = {d.source_id: d for d in MailConnector(str(KESTREL_MBOX)).load()}
    elements = docs["mail:20260310091400.q2budget.frank@kestrel.example"].parse()
    byline = "from Frank Costa <frank@kestrel.example>, 10 March 2026"
    assert elements[0].section == (byline,)
    assert elements[0].text.splitlines() == [
        "From: Frank Costa <frank@kestrel.example>",
        "To: Erin Duarte <erin@kestrel.example>",
        "Cc: Finance <finance@kestrel.example>",
        "Date: Tuesday 10 March 2026 09:14 +0000",
        "Subject: Q2 2026 budget: final numbers for sign-off",
        "Attachments: q2-budget-2026.csv",
    ]
    rows = [e for e in elements if e.section == (byline, "attachment q2-budget-2026.csv")]
    assert [e.text for e in rows][-1] == "line: Total; amount_eur: 1840000"
    assert len(rows) == 9


def test_one_bad_message_never_stops_a_mailbox(tmp_path):
    mbox = tmp_path / "mixed.mbox"
    good = KESTREL_MBOX.read_bytes().split(b"\nFrom ")[0]
    mbox.write_bytes(
        good + b"\n\nFrom nobody Mon Jan  1 00:00:00 2024\n\x00\x00\x00\xff\xfe\n\n"
        b"From x@kestrel.example Mon Jan  1 00:00:00 2024\nFrom: x@kestrel.example\nSubject: last\n\nstill read\n"
    )
    docs = list(MailConnector(str(mbox)).load())
    assert len(docs) == 3
    results = []
    for doc in docs:
        try:
            doc.parse()
            results.append("ok")
        except ParseError as exc:
            results.append(str(exc))
    assert results == [
        "ok",
        "no mail headers (From, To, Subject, Date, Message-ID): this is not a mail message",
        "ok",
    ]


# --- mailboxes on disk -------------------------------------------------------------------


def write_maildir(root: Path, messages: dict[str, bytes]) -> None:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, raw in messages.items():
        (root / name).write_bytes(raw)


def message(n: int, **headers: str) -> bytes:
    lines = [f"From: person{n}@kestrel.example", "To: team@kestrel.example", f"Subject: message {n}",
             f"Message-ID: <m{n}@kestrel.example>", "Date: Mon, 02 Mar 2026 10:00:00 +0000"]  # fmt: skip
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\n".join(lines) + f"\n\nBody of message {n}.\n").encode()


def test_maildir_folders_flags_and_claims(tmp_path):
    root = tmp_path / "Maildir"
    write_maildir(
        root, {"cur/1.host:2,S": message(1), "new/2.host": message(2), "cur/3.host:2,ST": message(3)}
    )
    write_maildir(root / ".Sent", {"cur/4.host:2,S": message(4)})
    write_maildir(root / ".Archive.2025", {"cur/5.host:2,": message(5)})
    (root / "dovecot-uidlist").write_text("3 V1 N6\n")
    (root / "subscriptions").write_text("Sent\n")
    docs = list(MailConnector(str(root)).load())
    assert [(d.source_id, d.attributes["folder"]) for d in docs] == [
        ("mail:m1@kestrel.example", "INBOX"),
        ("mail:m2@kestrel.example", "INBOX"),
        ("mail:m5@kestrel.example", "Archive/2025"),
        ("mail:m4@kestrel.example", "Sent"),
    ]  # 3 is trashed (flag T)
    assert docs[0].uri == f"{root.as_posix()}#m1@kestrel.example"
    assert MailConnector.accepts(str(root)) and MailConnector.claims_folder(root)
    # A folder of documents that happens to have a "new" subfolder is not a Maildir.
    docs_folder = tmp_path / "projects"
    (docs_folder / "new").mkdir(parents=True)
    (docs_folder / "new" / "plan.md").write_text("# Plan\n")
    (docs_folder / "notes.txt").write_text("notes\n")
    assert not MailConnector.claims_folder(docs_folder)


def test_suffixless_message_files_are_recognised(tmp_path):
    (tmp_path / "1").write_bytes(message(1))
    (tmp_path / "README").write_text("Installation: run make.\nUsage: see docs.\n")
    (tmp_path / "Inbox").write_bytes(b"From person1@kestrel.example Mon Mar  2 10:00:00 2026\n" + message(1))
    assert MailConnector.claims_file(tmp_path / "1")
    assert MailConnector.claims_file(tmp_path / "Inbox")  # a Thunderbird mbox
    assert not MailConnector.claims_file(tmp_path / "README")
    docs = first_of_each(FilesConnector(str(tmp_path), others=connectors()).load())
    assert sorted((d.connector, d.source_id) for d in docs) == [
        ("files", f"file:{(tmp_path / 'README').as_posix()}"),
        ("mail", "mail:m1@kestrel.example"),  # the same message in the mbox: read once
    ]


def test_mbox_from_lines_in_bodies_and_escaping(tmp_path):
    mbox = tmp_path / "archive.mbox"
    mbox.write_bytes(
        b"From a@x.org Mon Mar  2 10:00:00 2026\n" + message(1).replace(b"Body of message 1.\n", b"First line.\n\n"
        b"From here on we use mbox.\n>From the archive, escaped.\n\n")
        + b"\nFrom b@x.org Mon Mar  2 11:00:00 2026\n" + message(2)
    )  # fmt: skip
    docs = list(MailConnector(str(mbox)).load())
    assert [d.source_id for d in docs] == ["mail:m1@kestrel.example", "mail:m2@kestrel.example"]
    assert body_of(docs[0].read_bytes()) == (
        "First line.\n\nFrom here on we use mbox.\nFrom the archive, escaped."
    )


def test_the_same_message_hashes_the_same_everywhere(tmp_path):
    """An mbox copy (From_ line, Status header), a Maildir copy (CRLF, X-Keywords) and a plain .eml:
    one source id, one content hash, so ingest embeds it once."""
    raw = message(7).replace(b"Message-ID: <m7@kestrel.example>\n", b"")  # no id: a hash id
    (tmp_path / "a.mbox").write_bytes(
        b"From x Mon Mar  2 10:00:00 2026\n" + raw.replace(b"\n\n", b"\nStatus: RO\n\n", 1)
    )
    write_maildir(
        tmp_path / "md",
        {"cur/1:2,S": raw.replace(b"\n\n", b"\nX-Keywords: $label1\n\n", 1).replace(b"\n", b"\r\n")},
    )
    (tmp_path / "c.eml").write_bytes(raw)
    docs = [
        *MailConnector(str(tmp_path / "a.mbox")).load(),
        *MailConnector(str(tmp_path / "md")).load(),
        *MailConnector(str(tmp_path / "c.eml")).load(),
    ]
    assert len({d.source_id for d in docs}) == 1 and docs[0].source_id.startswith("mail:sha256:")
    assert len({d.content_hash() for d in docs}) == 1


def test_apple_mail_export_and_emlx(tmp_path):
    export = tmp_path / "Work.mbox"
    export.mkdir()
    (export / "mbox").write_bytes(b"From x Mon Mar  2 10:00:00 2026\n" + message(3))
    (export / "Info.plist").write_text("<plist/>")
    (doc,) = MailConnector(str(export)).load()
    assert (doc.source_id, doc.attributes["folder"]) == ("mail:m3@kestrel.example", "Work")
    raw = message(4)
    (tmp_path / "4.emlx").write_bytes(str(len(raw)).encode() + b"\n" + raw + b"<?xml version='1.0'?><plist/>")
    (doc,) = MailConnector(str(tmp_path / "4.emlx")).load()
    assert doc.source_id == "mail:m4@kestrel.example"
    assert (
        body_of(open(tmp_path / "4.emlx", "rb").read().partition(b"\n")[2][: len(raw)])
        == "Body of message 4."
    )
    assert doc.parse()[-1].text == "Body of message 4."


def test_a_message_that_vanishes_before_parsing(tmp_path):
    root = tmp_path / "Maildir"
    write_maildir(root, {"new/1.host": message(1)})
    (doc,) = MailConnector(str(root)).load()
    os.remove(root / "new" / "1.host")  # the mail program moved it to cur/ meanwhile
    with pytest.raises(ParseError, match="^cannot read: No such file or directory$"):
        doc.parse()
