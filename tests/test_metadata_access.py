"""Access lists built from mail and chat metadata: only what parses cleanly grants access; what
does not is reported; ambiguity resolves to the stricter reading. Checked through search, ask
and show for the users who must not read, and for those who must."""

from __future__ import annotations

import json

import pytest

from connectors.mail.headers import addresses, unreadable_addresses
from memex.api.reads import Reads
from memex.errors import EmptyIndex

CRAFTED = '"pat@kestrel.example"@payroll-partner.example'
PAYROLL = f"""From: Boss <boss@payroll-partner.example>
To: {CRAFTED}
Cc: Hana <hana@kestrel.example>
Subject: Salary bands 2027
Message-ID: <bands-2027@payroll-partner.example>
Date: Mon, 02 Nov 2026 10:00:00 +0000

The new salary bands: engineers at grade 7 move to EUR 88,400 from January.
"""


@pytest.mark.parametrize(
    "value",
    [
        CRAFTED,
        "pat@kestrel.example <evil@payroll-partner.example>",  # a display name that is an address
        '<pat@kestrel.example>"@payroll-partner.example',
        "garbage pat@kestrel.example stuff",
        "pat at kestrel.example",
        "Undisclosed: pat@kestrel.example",  # an unterminated group
    ],
)
def test_a_recipient_that_does_not_parse_grants_nothing_and_is_reported(value):
    assert "pat@kestrel.example" not in [a.addr for a in addresses(value)]
    assert unreadable_addresses(value) != []


def test_clean_mailbox_lists_still_parse():
    value = (
        'Pat <pat@kestrel.example>, "Duarte, Erin" <erin@kestrel.example>, Team: a@x.example, b@x.example;'
    )
    assert [a.addr for a in addresses(value)] == [
        "pat@kestrel.example",
        "erin@kestrel.example",
        "a@x.example",
        "b@x.example",
    ]
    assert [a.name for a in addresses(value)][:2] == ["Pat", "Duarte, Erin"]
    assert unreadable_addresses(value) == []
    assert [a.addr for a in addresses("jo at example.org (Jo)", sender=True)] == ["jo@example.org"]


def hits(memex, user, query):
    principal = memex.policy.principal(user)
    try:
        found = Reads(memex).search(query, principal=principal, k=20)
    except EmptyIndex:
        return [], ""
    memex.model.prompts.clear()
    try:
        answer = Reads(memex).ask(query, principal=principal, k=5).text
    except EmptyIndex:
        answer = ""
    prompt = "\n".join(m["content"] for messages in memex.model.prompts for m in messages)
    return [h.uri for h in found], answer + prompt


def test_mail_to_a_crafted_recipient_never_reaches_that_user(fake_memex, kestrel):
    path = kestrel / "mail" / "bands.eml"
    path.write_text(PAYROLL)
    report = fake_memex.ingest([str(path)])
    assert report.failures == [] and len(report.indexed) == 1
    record = fake_memex.ledger.get("mail:bands-2027@payroll-partner.example")
    assert record.acl == {"email:boss@payroll-partner.example", "email:hana@kestrel.example"}
    question = "What are the new salary bands for grade 7 engineers?"
    uris, text = hits(fake_memex, "pat", question)
    assert uris == [] and "88,400" not in text
    assert Reads(fake_memex).show(record.uri, principal=fake_memex.policy.principal("pat")) == []
    uris, text = hits(fake_memex, "hana", question)
    assert uris == [record.uri] and "88,400" in text
    (shown,) = Reads(fake_memex).show(record.uri, principal=fake_memex.policy.principal("hana"))[:1]
    assert f"Note: not an address, so it gives no one access (To: {CRAFTED})" in shown.text


# --- Slack ---------------------------------------------------------------------------------

DEAL_QUESTION = "What did Nordlys offer for Project Skylark?"


def listing(chat, name):
    return json.loads((chat / name).read_text())


def write(chat, name, data):
    (chat / name).write_text(json.dumps(data, indent=2))


def deal_readers(memex):
    readers = set()
    for user in ("alice", "dev", "hana", "frank", "erin", "sam", "pat", "vic"):
        uris, text = hits(memex, user, DEAL_QUESTION)
        shown = Reads(memex).show(
            "slack://kestrel/#nordlys-deal/2026-06-18T19:02", principal=memex.policy.principal(user)
        )
        if any("nordlys-deal" in u for u in uris) or "41 million" in text or shown:
            readers.add(user)
    return readers


def test_a_private_channel_listed_again_as_public_stays_private(fake_memex, kestrel):
    chat = kestrel / "chat"
    private = listing(chat, "groups.json")[0]
    channels = listing(chat, "channels.json")
    public_twin = dict(channels[0], id="C09TWIN00", name="nordlys-deal", is_private=False)
    write(chat, "channels.json", [dict(private, is_private=True), *channels, public_twin])
    write(chat, "groups.json", [])
    report = fake_memex.ingest([str(chat)])
    assert [f.reason for f in report.failures] == [
        "nordlys-deal is listed twice (private in channels.json, public in channels.json): read as private, "
        "with only the members both name"
    ]
    assert deal_readers(fake_memex) == {"erin", "frank"}


def test_two_private_listings_keep_only_the_members_both_name(fake_memex, kestrel):
    chat = kestrel / "chat"
    private = listing(chat, "groups.json")[0]
    channels = listing(chat, "channels.json")
    widened = dict(private, members=[*private["members"], "U01ALICE0"])
    write(chat, "channels.json", [*channels, dict(widened, is_private=True)])
    report = fake_memex.ingest([str(chat)])
    assert len(report.failures) == 1 and "listed twice" in report.failures[0].reason
    assert deal_readers(fake_memex) == {"erin", "frank"}


@pytest.mark.parametrize("members", ["U01ERIN00", {"U01ERIN00": True}, [17, None]])
def test_a_private_channel_with_malformed_members_is_reported_and_not_indexed(fake_memex, kestrel, members):
    chat = kestrel / "chat"
    groups = listing(chat, "groups.json")
    groups[0]["members"] = members
    write(chat, "groups.json", groups)
    report = fake_memex.ingest([str(chat)])
    reasons = sorted(f.reason for f in report.failures)
    assert reasons[0].startswith("nordlys-deal is a private conversation but its listing names no members")
    assert reasons[1].startswith("nordlys-deal: ") and reasons[1].endswith("they are not given access")
    assert not any("nordlys-deal" in u and "/problem" not in u for u in report.indexed)
    assert deal_readers(fake_memex) == set()


def test_unknown_members_are_reported_and_given_nothing(fake_memex, kestrel):
    chat = kestrel / "chat"
    groups = listing(chat, "groups.json")
    groups[0]["members"] = [*groups[0]["members"], "U09NOBODY"]
    write(chat, "groups.json", groups)
    report = fake_memex.ingest([str(chat)])
    assert [f.reason for f in report.failures] == [
        "nordlys-deal: members not in users.json: U09NOBODY; they are not given access"
    ]
    assert deal_readers(fake_memex) == {"erin", "frank"}
