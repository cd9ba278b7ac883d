"""Who reads what of the Kestrel Slack (examples/kestrel/chat): public channels by the policy's
rules, the private #nordlys-deal and the alice/dev DM only by their members, in hits, prompts,
answers and citations; membership changes relabel in place; a newer export adds only what is new."""

from __future__ import annotations

import json
import shutil

import pytest

from memex.api.reads import Reads
from memex.errors import EmptyIndex

USERS = ("alice", "dev", "hana", "frank", "erin", "sam", "pat", "vic", "root-admin", "mallory")
GENERAL = {
    "slack://kestrel/#general/2026-01-05T09:00",
    "slack://kestrel/#general/2026-03-02T09:05",
    "slack://kestrel/#general/2026-03-12T09:40",
    "slack://kestrel/#general/2026-06-30T17:45",
    "slack://kestrel/#general/2026-09-14T10:00",
}
ENGINEERING = {
    "slack://kestrel/#engineering/2026-01-05T09:20",
    "slack://kestrel/#engineering/2026-03-12T07:58",
    "slack://kestrel/#engineering/2026-03-12T07:58?thread=2026-03-12T07:58",
    "slack://kestrel/#engineering/2026-03-13T10:15",
    "slack://kestrel/#engineering/2026-03-13T10:20/harrier-runbook.md",
    "slack://kestrel/#engineering/2026-04-02T15:30",
}
DEAL = {
    "slack://kestrel/#nordlys-deal/2026-06-18T19:02",
    "slack://kestrel/#nordlys-deal/2026-06-22T09:30",
    "slack://kestrel/#nordlys-deal/2026-06-22T09:30/skylark-term-sheet-notes.md",
}
DM = {"slack://kestrel/dm/alice+dev/2026-03-16T18:20"}
# Written out by hand from policies/company.yaml and the export's member lists.
READABLE = {
    "alice": GENERAL | ENGINEERING | DM,
    "dev": GENERAL | ENGINEERING | DM,
    "hana": GENERAL,
    "frank": GENERAL | DEAL,
    "erin": GENERAL | ENGINEERING | DEAL,
    "sam": GENERAL,
    "pat": GENERAL,
    "vic": set(),
    "root-admin": set(),
    "mallory": set(),
}
SECRETS = ("Skylark", "41 million", "31 July", "earn-out", "retention packages")  # not in the questions
USER_IDS = {
    "alice": "U01ALICE0",
    "dev": "U01DEV000",
    "erin": "U01ERIN00",
    "frank": "U01FRANK0",
    "hana": "U01HANA00",
}


@pytest.fixture
def chat(fake_memex, kestrel):
    report = fake_memex.ingest([str(kestrel / "chat")])
    assert report.failures == []
    assert len(report.indexed) == 15
    return kestrel / "chat"


def readable(memex, user) -> set[str]:
    principal = memex.policy.principal(user)
    ids = memex.index.readable_source_ids(principal=principal) if principal.known else []
    return {memex.ledger.get(source_id).uri for source_id in ids}


def ask(memex, user, question):
    """The answer (None when the user can read nothing at all) and every prompt the model saw."""
    memex.model.prompts.clear()
    try:
        answer = Reads(memex).ask(question, principal=memex.policy.principal(user), k=5)
    except EmptyIndex:
        answer = None
    prompt = "\n".join(m["content"] for messages in memex.model.prompts for m in messages)
    return answer, prompt


def set_members(chat_folder, channel_id, users):
    listing = chat_folder / "groups.json"
    groups = json.loads(listing.read_text())
    for group in groups:
        if group["id"] == channel_id:
            group["members"] = [USER_IDS[u] for u in users]
    listing.write_text(json.dumps(groups, indent=4))


def test_the_example_company_ingests_with_no_failures(fake_memex, kestrel):
    report = fake_memex.ingest([str(kestrel)])
    assert report.failures == []
    chat_sources = [uri for uri in report.indexed if uri.startswith("slack://")]
    assert sorted(chat_sources) == sorted(GENERAL | ENGINEERING | DEAL | DM)


def test_each_user_reads_exactly_the_conversations_the_policy_and_members_allow(fake_memex, chat):
    for user in USERS:
        assert readable(fake_memex, user) == READABLE[user], user
    record = fake_memex.ledger.get("slack:T01KESTREL:G01NORDLYS:1781805720.000001")
    assert record.acl == frozenset({"email:erin@kestrel.example", "email:frank@kestrel.example"})
    assert (sorted(record.access.labels), record.access.level) == (["staff"], "confidential")


@pytest.mark.parametrize("user", USERS)
def test_private_channel_answers_reach_members_only(fake_memex, chat, user):
    question = "What was the revised offer from Nordlys Acoustics, and what is its deadline?"
    principal = fake_memex.policy.principal(user)
    hits = Reads(fake_memex).search(question, principal=principal, k=10) if READABLE[user] else []
    answer, prompt = ask(fake_memex, user, question)
    assert (answer is None) == (not READABLE[user])
    sources = {c.source for c in answer.citations} if answer else set()
    member = user in ("erin", "frank")
    if member:
        assert hits[0].uri in DEAL
        assert "slack://kestrel/#nordlys-deal/2026-06-18T19:02" in sources
        assert "EUR 41 million, all cash, if we sign the exclusivity letter by 31 July" in prompt
        citation = next(
            c for c in answer.citations if c.source == "slack://kestrel/#nordlys-deal/2026-06-18T19:02"
        )
        assert citation.title == "#nordlys-deal (private, kestrel Slack), 2026-06-18 19:02"
    else:
        seen = [h.text for h in hits] + [prompt, answer.text if answer else ""]
        assert not [s for s in SECRETS if any(s in text for text in seen)], user
        assert not sources & DEAL


@pytest.mark.parametrize("user", ["alice", "dev", "erin", "sam", "hana"])
def test_a_dm_is_read_by_its_two_members_only(fake_memex, chat, user):
    answer, prompt = ask(fake_memex, user, "Who asked to swap on-call next week, and why?")
    sources = {c.source for c in answer.citations}
    if user in ("alice", "dev"):
        assert DM <= sources and "My sister's wedding is in Porto on Saturday" in prompt
    else:
        assert not DM & sources
        assert not [s for s in ("wedding", "Porto") if s in prompt or s in answer.text]


def test_a_thread_is_one_window_with_its_parent(fake_memex, chat):
    alice = fake_memex.policy.principal("alice")
    hits = Reads(fake_memex).search("LoRaWAN certificate expired retry loop transient", principal=alice, k=3)
    (thread,) = [h for h in hits if "?thread=" in h.uri]
    assert thread.title == (
        "#engineering (kestrel Slack) thread «Dev Okafor: harrier has not ingested anything since 02:00 U…», "
        "2026-03-12 07:58"
    )
    assert thread.text.splitlines()[1:] == [
        "[2026-03-12 07:58] Dev Okafor: harrier has not ingested anything since 02:00 UTC. Looking into it now.",
        "[2026-03-12 08:10] Alice Moreau: The certificate of the LoRaWAN network server expired at 02:00. "
        "Harrier's retry loop treats the TLS error as transient, so nothing alerted.",
        "[2026-03-12 08:14] Dev Okafor: Renewing the certificate by hand and restarting the uplink.",
        "[2026-03-12 08:31] Dev Okafor: Ingestion is back, the 310 sensors are re-sending their buffered "
        "detections. (edited)",
        "[2026-03-12 08:40] Alice Moreau: I will make harrier alert after 15 minutes of consecutive upload "
        "failures. (reactions: :+1: 2)",
    ]


def test_membership_changes_relabel_without_reembedding(fake_memex, chat):
    hana, frank = fake_memex.policy.principal("hana"), fake_memex.policy.principal("frank")
    question = "Project Skylark retention packages exclusivity letter"

    def sees(principal) -> bool:
        return any("Skylark" in h.text for h in Reads(fake_memex).search(question, principal=principal, k=10))

    assert not sees(hana) and sees(frank)
    chunks = fake_memex.ledger.committed_chunk_ids()
    set_members(chat, "G01NORDLYS", ["erin", "frank", "hana"])  # Hana joins to plan retention
    report = fake_memex.ingest([str(chat)])
    assert (report.chunks_added, report.chunks_removed, report.indexed, report.relabelled) == (0, 0, [], 3)
    assert fake_memex.ledger.committed_chunk_ids() == chunks
    assert sees(hana) and sees(frank)
    answer, _ = ask(fake_memex, "hana", "What did Nordlys offer for Project Skylark?")
    assert DEAL & {c.source for c in answer.citations}
    # `memex relabel` (a policy change) starts from the new members, not the old ones
    assert fake_memex.ingestor().relabel() == (0, [])
    assert sees(hana)

    set_members(chat, "G01NORDLYS", ["erin", "hana"])  # Frank leaves the channel
    report = fake_memex.ingest([str(chat)])
    assert (report.chunks_added, report.relabelled) == (0, 3)
    assert not sees(frank) and sees(hana)
    assert fake_memex.ingestor().relabel() == (0, [])
    assert not sees(frank)
    record = fake_memex.ledger.get("slack:T01KESTREL:G01NORDLYS:file:F01SKYLARK")
    assert record.acl == frozenset({"email:erin@kestrel.example", "email:hana@kestrel.example"})


def test_a_newer_export_adds_only_its_new_messages(fake_memex, chat):
    day = chat / "engineering" / "2026-10-01.json"
    day.write_text(
        json.dumps(
            [
                {
                    "type": "message",
                    "user": "U01DEV000",
                    "text": "osprey 4.2 is deployed.",
                    "ts": "1790848800.000001",
                }
            ]
        )
    )
    dm = chat / "D01ALIDEV0" / "2026-03-16.json"  # a message in the window that was still open
    messages = json.loads(dm.read_text())
    messages.append(
        {"type": "message", "user": "U01ALICE0", "text": "Enjoy Porto!", "ts": "1773686400.000001"}
    )
    dm.write_text(json.dumps(messages))
    report = fake_memex.ingest([str(chat)])
    assert sorted(report.indexed) == [
        "slack://kestrel/#engineering/2026-10-01T11:00",
        "slack://kestrel/dm/alice+dev/2026-03-16T18:20",
    ]
    assert (report.chunks_added, report.chunks_removed, report.unchanged) == (2, 1, 14)
    again = fake_memex.ingest([str(chat)])
    assert (again.chunks_added, again.chunks_removed, again.unchanged, again.indexed) == (0, 0, 16, [])


def test_a_moved_export_is_not_reembedded(fake_memex, chat, tmp_path):
    moved = tmp_path / "Kestrel Labs Slack export Oct 1 2026"
    shutil.copytree(chat, moved)
    report = fake_memex.ingest([str(moved)])
    assert (report.chunks_added, report.unchanged, report.failures) == (0, 15, [])


def test_a_citation_can_be_shown_and_exported_only_by_those_who_read_it(fake_memex, chat):
    citation = "slack://kestrel/#nordlys-deal/2026-06-18T19:02"
    for user in ("erin", "frank", "hana", "alice", "vic"):
        principal = fake_memex.policy.principal(user)
        shown = Reads(fake_memex).show(citation, principal=principal)
        missing = Reads(fake_memex).show(
            "slack://kestrel/#nordlys-deal/2026-06-18T19:03", principal=principal
        )
        exported = {h.uri for h in Reads(fake_memex).export(principal=principal)}
        assert missing == [] and exported == READABLE[user], user
        if user in ("erin", "frank"):
            assert [h.text.splitlines()[1] for h in shown] == [
                "[2026-06-18 19:02] Erin Duarte: Nordlys Acoustics came back after the board meeting with a revised "
                "offer for Project Skylark: EUR 41 million, all cash, if we sign the exclusivity letter by 31 July."
            ]
        else:
            assert shown == [], user  # the same as a citation that does not exist
