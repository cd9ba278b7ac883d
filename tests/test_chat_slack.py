"""A real Slack export (houstondatavis, 16 channels, 1,382 messages) ingests completely; windows
are stable so a newer export adds only what is new; a zip reads like its folder; bad parts of an
export are reported one by one while the rest is indexed."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from connectors.chat.slack import SlackConnector
from memex.api.reads import Reads
from memex.errors import ParseError
from tests.conftest import POLICIES, data_dir

# Messages per channel, and the windows they make with the default limits (2 h gap, 40
# messages, 3,000 characters): the export's own figures, pinned.
MESSAGES = {
    "datajam": 173, "datasets": 40, "design-thinking": 4, "examples": 80, "general": 476,
    "get_feedback": 149, "meetup": 2, "meetup-": 147, "organizations": 12, "readings": 52, "sci": 58,
    "sponsors": 16, "talks": 32, "team-d3": 31, "tools": 83, "tutorials": 27,
}  # fmt: skip
WINDOWS = {
    "datajam": 52, "datasets": 18, "design-thinking": 3, "examples": 24, "general": 176,
    "get_feedback": 24, "meetup": 1, "meetup-": 70, "organizations": 8, "readings": 28, "sci": 21,
    "sponsors": 5, "talks": 19, "team-d3": 2, "tools": 26, "tutorials": 15,
}  # fmt: skip


def counted_from_json(export: Path) -> dict[str, int]:
    """Messages per channel, counted straight from the day files (each ts once)."""
    channels = json.loads((export / "channels.json").read_text())
    out = {}
    for channel in channels:
        stamps = set()
        for day in (export / channel["name"]).glob("*.json"):
            stamps |= {m["ts"] for m in json.loads(day.read_text())}
        out[channel["name"]] = len(stamps)
    return out


def load(path: Path):
    return list(SlackConnector(str(path)).load())


def chunk_texts(docs) -> set[tuple[str, str]]:
    from memex.ingest.chunking import chunk_elements

    return {(d.source_id, piece.text) for d in docs for piece in chunk_elements(d.parse(), title=d.title)}


def lines(doc) -> list[str]:
    return [e.text for e in doc.parse()]


@pytest.fixture
def personal_memex(memex_home):
    """The personal policy (everything ingested is the owner's), a hashing embedder."""
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
    yield memex
    memex.close()


def test_every_message_of_every_channel_is_in_a_window():
    export = data_dir("chat_slack_export")
    docs = load(export)
    assert all(d.metadata.get("messages") for d in docs)  # windows only: nothing failed
    messages, windows = Counter(), Counter()
    for doc in docs:
        assert "thread" not in doc.metadata  # this export has no threads
        messages[doc.attributes["channel"]] += doc.metadata["messages"]
        windows[doc.attributes["channel"]] += 1
        assert len(lines(doc)) == doc.metadata["messages"]
    assert dict(messages) == counted_from_json(export) == MESSAGES
    assert sum(MESSAGES.values()) == 1382 and len(MESSAGES) == 16
    assert dict(windows) == WINDOWS


def test_windows_carry_channel_participants_times_and_resolved_names():
    docs = load(data_dir("chat_slack_export"))
    by_uri = {d.uri: d for d in docs}
    doc = by_uri["slack://houstondatavis/#datajam/2015-06-05T21:38"]
    assert doc.source_id == "slack:T061A2UFL:C061A0WJG:1433558319.000002"
    assert doc.title == "#datajam (houstondatavis Slack), 2015-06-05 21:38"
    assert doc.acl is None and doc.connector == "chat"
    assert doc.attributes == {
        "connector": "chat",
        "workspace": "houstondatavis",  # from the export's own links
        "channel": "datajam",
        "kind": "public",
        "path": f"{data_dir('chat_slack_export').as_posix()}/datajam",
        "field.platform": "slack",
    }
    assert doc.metadata == {
        "timestamp": 1433558319.000002,
        "last_timestamp": 1433571039.000013,
        "first_message": "2015-06-05T21:38:39",  # the workspace's time zone, America/Chicago
        "last_message": "2015-06-06T01:10:39",
        "platform": "slack",
        "workspace": "houstondatavis",
        "channel": "datajam",
        "kind": "public",
        "participants": ["Neeraj Tandon", "javier"],
        "messages": 11,
        "message_ids": ["1433558319.000002", "1433571039.000013"],
        "timezone": "America/Chicago",
    }
    assert lines(doc)[:5] == [
        "[2015-06-05 21:38] Micah Stubbs has joined the channel",
        "[2015-06-05 21:58] Neeraj Tandon has joined the channel",
        "[2015-06-05 22:53] javier has joined the channel",
        "[2015-06-05 22:53] javier uploaded a file: Fritz.jpg",
        "[2015-06-05 22:57] Neeraj Tandon: Gorgeous! It's fantastic",
    ]
    assert lines(by_uri["slack://houstondatavis/#general/2016-02-20T12:26"])[0] == (
        "[2016-02-20 12:26] Neeraj Tandon: Hey @everyone : there’s a community organized GitHub workshop "
        "happening soon. There will be mentors on-hand to guide you through some basic exercises and answer "
        "your questions.\n \nhttp://codeparkhouston.com/git-workshop/\n\nThis will be a great way to get "
        "comfortable with Git and GitHub so you can organize/collaborate your own projects, contribute to "
        "existing ones, *get the most out of data jams*, and more. (edited) (reactions: :+1: 4)"
    )
    every_line = [line for d in docs for line in lines(d)]
    assert "[2015-06-19 22:59] Neeraj Tandon commented on Tim Abram's file avg_price_by_county_NY-region.png: " \
        "Tim, this looks fantastic" in every_line  # fmt: skip
    assert '[2016-06-13 19:22] Neeraj Tandon has renamed the channel from "random" to "meetup-"' in every_line
    assert not [line for line in every_line if "<@" in line or "<http" in line]  # no Slack markup left


def test_the_export_ingests_completely_and_answers_with_citations(personal_memex):
    export = data_dir("chat_slack_export")
    report = personal_memex.ingest([str(export)])
    assert report.failures == []
    assert len(report.indexed) == sum(WINDOWS.values()) == 492
    owner = personal_memex.policy.principal("owner")
    hits = Reads(personal_memex).search("codeparkhouston git workshop", principal=owner, k=3, mode="lexical")
    (hit,) = [h for h in hits if h.uri == "slack://houstondatavis/#general/2016-02-20T12:26"]
    assert hit.title == "#general (houstondatavis Slack), 2016-02-20 12:26"
    assert hit.text.startswith(
        "#general (houstondatavis Slack), 2016-02-20 12:26\n[2016-02-20 12:26] Neeraj Tandon: Hey @everyone"
    )
    answer = Reads(personal_memex).ask("codeparkhouston git workshop", principal=owner, k=3)
    assert "slack://houstondatavis/#general/2016-02-20T12:26" in [c.source for c in answer.citations]
    again = personal_memex.ingest([str(export)])
    assert (again.chunks_added, again.unchanged, again.relabelled, again.failures) == (0, 492, 0, [])


def _older_export(export: Path, target: Path, drop: dict[str, int]) -> Path:
    """A copy of the export as it was some messages ago: the last `n` messages of a channel
    are not there yet."""
    shutil.copytree(export, target)
    for channel, n in drop.items():
        days = sorted((target / channel).glob("*.json"))
        stamps = sorted(float(m["ts"]) for day in days for m in json.loads(day.read_text()))
        for day in days:
            kept = [m for m in json.loads(day.read_text()) if float(m["ts"]) < stamps[-n]]
            if kept:
                day.write_text(json.dumps(kept))
            else:
                day.unlink()
    return target


def test_windows_are_never_recut_when_later_messages_arrive(tmp_path):
    export = data_dir("chat_slack_export")
    older = load(_older_export(export, tmp_path / "older", {"general": 20, "datajam": 7}))
    newer = {d.source_id: d.fingerprint for d in load(export)}
    last_of = {}
    for doc in older:
        last_of[doc.attributes["channel"]] = doc.source_id  # windows come in time order
    changed = [d.source_id for d in older if newer.get(d.source_id) != d.fingerprint]
    # only the window still open at the end of each shortened channel changes; every other
    # window of the older export is in the newer one, unchanged
    assert (
        changed
        == [last_of["datajam"], last_of["general"]]
        == [
            "slack:T061A2UFL:C061A0WJG:1466856220.000006",
            "slack:T061A2UFL:C061A2UGJ:1469039231.000008",
        ]
    )
    assert len(older) == 481 and len(newer) == 492


def test_a_newer_export_adds_only_new_windows(personal_memex, tmp_path):
    export = data_dir("chat_slack_export")
    older = _older_export(export, tmp_path / "slack-2016-06", {"general": 20, "datajam": 7})
    newer = tmp_path / "slack-2016-07"
    shutil.copytree(export, newer)
    first = personal_memex.ingest([str(older)])
    assert first.failures == []
    before = personal_memex.ledger.all_chunk_ids()
    old_docs = {d.source_id: d.fingerprint for d in load(older)}
    new_docs = load(newer)
    expected = sorted(d.uri for d in new_docs if old_docs.get(d.source_id) != d.fingerprint)
    assert len(expected) == 13  # 11 new windows and the 2 windows that were still open
    report = personal_memex.ingest([str(newer)])
    assert sorted(report.indexed) == expected
    assert report.unchanged == len(new_docs) - len(expected) == 479
    added = personal_memex.ledger.all_chunk_ids() - before
    old_chunks, new_chunks = chunk_texts(load(older)), chunk_texts(new_docs)
    assert report.chunks_added == len(added) == len(new_chunks - old_chunks) == 14
    # the 2 windows that grew replaced only their last chunk: their earlier chunks stay
    assert report.chunks_removed == len(old_chunks - new_chunks) == 2
    # the same export again, wherever it lies: nothing to do
    shutil.copytree(newer, tmp_path / "copy")
    for target in (newer, tmp_path / "copy"):
        again = personal_memex.ingest([str(target)])
        assert (again.chunks_added, again.chunks_removed, len(again.indexed)) == (0, 0, 0)


def test_a_zipped_export_reads_like_its_folder(tmp_path):
    export = data_dir("chat_slack_export")
    archive = tmp_path / "Houston Data Vis Slack export Jul 31 2016.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(export.rglob("*")):
            if path.is_file():
                z.write(path, f"export/{path.relative_to(export).as_posix()}")  # under a top folder
    assert SlackConnector.claims_file(archive)
    from memex.ingest.plugins import connector_for

    assert connector_for(str(archive)).name == "slack"
    folder = [(d.source_id, d.uri, d.fingerprint, lines(d)) for d in load(export)]
    zipped = load(archive)
    assert [(d.source_id, d.uri, d.fingerprint, lines(d)) for d in zipped] == folder
    assert zipped[0].attributes["path"] == f"{archive.as_posix()}/datajam"


# --- bad input: each problem reported with its reason, the rest indexed -------------------------


def test_bad_parts_of_an_export_are_reported_and_the_rest_is_indexed(fake_memex, kestrel):
    chat = kestrel / "chat"
    (chat / "general" / "2026-03-02.json").write_text('[{"type": "message", "ts": "1772442300.000001", ')
    (chat / "general" / "2026-09-14.json").write_bytes(
        '[{"type": "message", "user": "U01PAT000", "text": "Caf\xe9 at 16:00", "ts": "1789376900.000001"}]'.encode(
            "latin-1"
        )
    )
    (chat / "engineering" / "2026-05-01.json").write_text(
        json.dumps(
            [
                {
                    "type": "message",
                    "subtype": "huddle_recap",
                    "user": "U01DEV000",
                    "text": "Huddle notes: osprey",
                },
                {
                    "type": "message",
                    "user": "U09NOBODY",
                    "text": "Hello from a guest",
                    "ts": "1777629700.000001",
                },
                {
                    "type": "message",
                    "subtype": "brand_new",
                    "user": "U01DEV000",
                    "text": "odd",
                    "ts": "1777629600",
                },
                "not a message",
            ]
        )
    )
    (chat / "random").mkdir()
    (chat / "random" / "2026-05-01.json").write_text('[{"type": "message", "text": "where am I", "ts": "1"}]')
    report = fake_memex.ingest([str(kestrel)])
    failures = {f.uri: f.reason for f in report.failures}
    assert failures == {
        f"{chat.as_posix()}/general/2026-03-02.json": "general/2026-03-02.json is not valid JSON "
        "(line 1, column 49: Expecting property name enclosed in double quotes)",
        f"{chat.as_posix()}/general/2026-09-14.json": "general/2026-09-14.json is not UTF-8 text (byte 0xe9 "
        "at offset 54); chat exports are UTF-8, so the file is damaged or not an export",
        f"{chat.as_posix()}/engineering/2026-05-01.json": "engineering/2026-05-01.json: 2 of 4 "
        "messages skipped (#1 has no valid 'ts', #4 is not an object)",
        f"{chat.as_posix()}/random": "the folder random/ is in none of the listings (channels.json, groups.json, "
        "mpims.json, dms.json): who may read it is unknown, so it is not indexed",
    }
    assert {f.kind for f in report.failures} == {"failed"}
    alice = fake_memex.policy.principal("alice")
    hits = Reads(fake_memex).search("Hello from a guest odd", principal=alice, k=3)
    assert hits[0].uri == "slack://kestrel/#engineering/2026-05-01T11:00"
    assert hits[0].text.splitlines()[1:] == [
        "[2026-05-01 11:00] Dev Okafor: odd (brand new)",  # an unknown subtype: shown, and named
        "[2026-05-01 11:01] U09NOBODY: Hello from a guest",  # not in users.json: the id
    ]
    pat = fake_memex.policy.principal("pat")
    found = Reads(fake_memex).search("harrier stopped ingesting detections overnight", principal=pat)
    assert any("Heads-up: harrier stopped ingesting" in h.text for h in found)  # the rest of #general
    assert not any("where am I" in h.text for h in Reads(fake_memex).search("where am I", principal=pat))


def test_private_channels_are_not_indexed_when_their_listing_is_unreadable(fake_memex, kestrel):
    (kestrel / "chat" / "groups.json").write_text("{not json")
    report = fake_memex.ingest([str(kestrel / "chat")])
    failures = {f.uri: f.reason for f in report.failures}
    chat = (kestrel / "chat").as_posix()
    assert failures == {
        f"{chat}/groups.json": "groups.json is not valid JSON (line 1, column 2: Expecting property name "
        "enclosed in double quotes)",
        f"{chat}/nordlys-deal": "the folder nordlys-deal/ is in none of the listings (channels.json, groups.json, "
        "mpims.json, dms.json); groups.json could not be read: who may read it is unknown, so it is not indexed",
    }
    frank = fake_memex.policy.principal("frank")
    assert not any(
        "Skylark" in h.text for h in Reads(fake_memex).search("Skylark Nordlys offer", principal=frank, k=50)
    )
    assert Reads(fake_memex).search("harrier certificate expired", principal=frank, k=1)  # the rest is there


def test_a_folder_that_is_not_an_export_is_refused_clearly(tmp_path):
    (tmp_path / "users.json").write_text("[]")
    (doc,) = SlackConnector(str(tmp_path)).load()
    with pytest.raises(ParseError, match=r"^slack: not a Slack export \(no users.json beside channels.json"):
        doc.parse()


def _write(folder: Path, name: str, data) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))


def test_group_dms_threads_and_uploaded_files(tmp_path):
    export = tmp_path / "Acme Slack export Oct 1 2026"
    users = [
        {"id": "U1AAAAAAA", "name": "ana", "team_id": "T1", "tz": "UTC", "profile": {"real_name": "Ana Lima",
         "email": "Ana@Acme.example"}},
        {"id": "U2BBBBBBB", "name": "rui", "team_id": "T1", "tz": "UTC", "profile": {"real_name": "Rui Sousa",
         "email": "rui@acme.example"}},
        {"id": "U3CCCCCCC", "name": "guest", "team_id": "T1", "tz": "UTC", "profile": {"real_name": "A Guest"}},
    ]  # fmt: skip
    _write(export, "users.json", users)
    _write(
        export, "channels.json", [{"id": "C1", "name": "ops", "members": ["U1AAAAAAA"], "is_private": True}]
    )
    _write(export, "mpims.json", [{"id": "G1", "name": "mpdm-ana--rui--guest-1", "members": ["U1AAAAAAA",
        "U2BBBBBBB", "U3CCCCCCC"]}])  # fmt: skip
    _write(export, "dms.json", [{"id": "D1", "members": ["U1AAAAAAA", "U2BBBBBBB"]}])
    _write(
        export,
        "mpdm-ana--rui--guest-1/2026-10-01.json",
        [
            {"type": "message", "user": "U1AAAAAAA", "ts": "1790846000.000100", "text": "Notes attached",
             "files": [{"id": "F1", "name": "notes.txt"}, {"id": "F2", "name": "photo.jpg"}]},
            {"type": "message", "user": "U2BBBBBBB", "ts": "1790846100.000100", "text": "late reply",
             "thread_ts": "1790000000.000001", "parent_user_id": "U1AAAAAAA"},
            {"type": "message", "user": "U3CCCCCCC", "ts": "1790846200.000100", "text": "<@U1AAAAAAA> thanks"},
        ],
    )  # fmt: skip
    _write(
        export,
        "D1/2026-10-01.json",
        [{"type": "message", "user": "U2BBBBBBB", "ts": "1790846000.5", "text": "hi"}],
    )
    _write(
        export,
        "ops/2026-10-01.json",
        [{"type": "message", "user": "U1AAAAAAA", "ts": "1790846000.7", "text": "x"}],
    )
    (export / "__uploads" / "F1").mkdir(parents=True)
    (export / "__uploads" / "F1" / "notes.txt").write_text("The Q4 plan: hire two engineers.")
    archive = tmp_path / "acme.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(export.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(export).as_posix())
    for source in (export, archive):
        docs = {d.uri: d for d in load(source)}
        assert sorted(docs) == [
            "slack://acme/#mpdm-ana--rui--guest-1/2026-10-01T09:13",
            "slack://acme/#mpdm-ana--rui--guest-1/2026-10-01T09:13/notes.txt",
            "slack://acme/#mpdm-ana--rui--guest-1/2026-10-01T09:15?thread=2026-10-01T09:15",
            "slack://acme/#ops/2026-10-01T09:13",
            "slack://acme/dm/ana+rui/2026-10-01T09:13",
        ], source
        group = docs["slack://acme/#mpdm-ana--rui--guest-1/2026-10-01T09:13"]
        assert group.title == "Slack group DM Ana Lima, Rui Sousa, A Guest (acme), 2026-10-01 09:13"
        assert (group.attributes["kind"], group.attributes["workspace"]) == ("group", "acme")
        # the guest has no address in users.json: nobody reads the chat as the guest
        assert group.acl == frozenset({"email:ana@acme.example", "email:rui@acme.example"})
        assert group.metadata["members"] == ["Ana Lima", "Rui Sousa", "A Guest"]
        assert lines(group) == [
            "[2026-10-01 09:13] Ana Lima: Notes attached [file: notes.txt] [file: photo.jpg]",
            "[2026-10-01 09:16] A Guest: @Ana Lima thanks",
        ]
        # a reply whose parent is older than the export: a thread window of its own
        thread = docs["slack://acme/#mpdm-ana--rui--guest-1/2026-10-01T09:15?thread=2026-10-01T09:15"]
        assert lines(thread) == ["[2026-10-01 09:15] Rui Sousa: late reply"]
        assert thread.source_id == "slack:T1:G1:thread:1790000000.000001:1790846100.000100"
        upload = docs["slack://acme/#mpdm-ana--rui--guest-1/2026-10-01T09:13/notes.txt"]
        assert upload.acl == group.acl and upload.isolated
        assert [e.text for e in upload.parse()] == ["The Q4 plan: hire two engineers."]
        assert docs["slack://acme/#ops/2026-10-01T09:13"].attributes["kind"] == "private"  # is_private
        dm = docs["slack://acme/dm/ana+rui/2026-10-01T09:13"]
        assert dm.title == "Slack DM Ana Lima and Rui Sousa (acme), 2026-10-01 09:13"
        assert (dm.attributes["channel"], dm.attributes["kind"]) == ("D1", "dm")
