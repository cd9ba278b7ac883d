"""The personal archive end to end (examples/personal: an Obsidian vault, a calendar, todo.txt,
bookmarks) and the to-do, notes and media connectors: date-bounded questions get only results
of their dates, open tasks are told from done ones, headings travel with their text, tags and
EXIF are read from files built here, and what the guest profile may not read never reaches it."""

from __future__ import annotations

import json
import shutil
import struct
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from memex.api.reads import Reads
from memex.ingest.plugins import connectors
from tests.conftest import POLICIES, ROOT, parse_all

LISBON = ZoneInfo("Europe/Lisbon")
NOW = datetime(2026, 3, 11, 15, 30, tzinfo=LISBON)  # Wednesday, the week after the move began
EXAMPLE = ROOT / "examples" / "personal"


@pytest.fixture
def personal(tmp_path):
    """A copy of examples/personal, the personal policy, a hashing embedder, an echoing model."""
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    archive = tmp_path / "maya"
    shutil.copytree(EXAMPLE, archive)
    memex = Memex(
        Paths(tmp_path / "home"),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    report = memex.ingest(
        [str(archive)],
        options={"timezone": "Europe/Lisbon", "expand_from": "2026-01-01", "expand_until": "2027-01-01"},
    )
    assert report.failures == []
    yield memex, archive
    memex.close()


def read(connector, **options):
    return parse_all(connector)


# -- the example archive, end to end ------------------------------------------------------------


def test_the_example_archive_is_read_by_its_connectors(personal):
    memex, archive = personal
    by_connector: dict[str, int] = {}
    for record in memex.ledger.records(status="indexed"):
        by_connector[record.connector] = by_connector.get(record.connector, 0) + 1
    # calendar: 7 climbing occurrences + series, 4 one-off events, the birthday + series, 1 to-do;
    # notes: 5 in the vault; todo: 7 tasks; browser: 4 bookmarks.
    assert by_connector == {"calendar": 15, "notes": 5, "todo": 7, "browser": 4}


def test_a_date_bounded_question_gets_only_that_weeks_results(personal):
    memex, _ = personal
    owner = memex.policy.principal("owner")
    dates = Reads.find_dates("What did I do last week?", now=NOW)
    assert dates.to_json() == {
        "from": "2026-03-02T00:00:00+00:00",
        "to": "2026-03-09T00:00:00+00:00",
        "phrase": "last week",
    }
    answer = Reads(memex).ask("What did I do last week?", principal=owner, k=20, dates=dates)
    assert answer.hits, "something happened last week"
    for hit in answer.hits:
        assert dates.date_from <= hit.metadata["timestamp"] < dates.date_to, hit.uri
    assert answer.to_json()["dates"] == dates.to_json()
    titles = {h.title for h in Reads(memex).search("week", principal=owner, k=50, dates=dates)}
    assert "Get three quotes from moving companies +move @computer (done)" in titles
    # Without the range, the same search reaches other weeks too.
    everything = Reads(memex).search("climbing movers landlord week", principal=owner, k=50)
    assert any(not dates.date_from <= h.metadata.get("timestamp", 0) < dates.date_to for h in everything)


def test_what_is_on_my_calendar_next_tuesday(personal):
    memex, _ = personal
    owner = memex.policy.principal("owner")
    dates = Reads.find_dates("what is on my calendar next Tuesday?", now=NOW)
    hits = Reads(memex).search("what is on my calendar next Tuesday?", principal=owner, k=10, dates=dates)
    assert {h.title for h in hits} == {
        "Climbing with Inês (2026-03-17 18:30)",
        "Hand the keys back to the landlord (Sr. Almeida) (2026-03-17 09:00)",
    }


def test_when_did_i_last_meet_the_landlord(personal):
    memex, _ = personal
    owner = memex.policy.principal("owner")
    question = "when did I last meet the landlord?"
    assert Reads.find_dates(question, now=NOW) is None  # nothing to filter on
    hits = Reads(memex).search(question, principal=owner, k=4, mode="lexical")
    # Both meetings, each with its date in the text, and the note about the landlord (two chunks).
    assert {h.title for h in hits} == {
        "Meet the landlord (Sr. Almeida) about the lease renewal (2026-02-12 10:00)",
        "Hand the keys back to the landlord (Sr. Almeida) (2026-03-17 09:00)",
        "Sr. Almeida (landlord, Lisbon)",
    }
    assert "When: Tuesday 17 March 2026, 09:00–09:30 (Europe/Lisbon)" in next(
        h.text for h in hits if h.title.startswith("Hand the keys")
    )


def test_what_is_still_open_on_my_list_about_the_move(personal):
    memex, archive = personal
    owner = memex.policy.principal("owner")
    hits = Reads(memex).search("what is still open on my list about the move?", principal=owner, k=30)
    tasks = [h for h in hits if h.source_id.startswith("todo:")]
    open_tasks = {h.text.split("\n")[1] for h in tasks if "\nOpen task: " in h.text}
    assert open_tasks >= {
        "Open task: Book the movers for Saturday 14 March +move @phone",
        "Open task: Tell the bank about the new address in Porto +move +paperwork",
        "Open task: Cancel the Lisbon gym membership +move",
    }
    # The open ones about the move come first; every task says whether it is open or done.
    assert {h.uri.rsplit("#", 1)[1] for h in tasks[:4]} >= {"L1", "L3", "L4"}
    status = {h.uri.rsplit("#", 1)[1]: h.text.split("\n")[1].split(":")[0] for h in tasks}
    assert status == {
        "L1": "Open task",
        "L2": "Done task",
        "L3": "Open task",
        "L4": "Open task",
        "L5": "Done task",
        "L6": "Open task",
        "L7": "Open task",
    }


def test_the_guest_profile_never_sees_private_events_or_bookmarks(personal):
    memex, _ = personal
    guest, owner = memex.policy.principal("guest"), memex.policy.principal("owner")
    for question, canary in (("dentist appointment in March", "Sorriso"), ("bookmarks about Porto", "http")):
        hits = Reads(memex).search(question, principal=guest, k=50)
        answer = Reads(memex).ask(question, principal=guest, k=50)
        seen = json.dumps([h.to_json() for h in hits]) + json.dumps(answer.messages) + answer.text
        seen += json.dumps(answer.to_json())
        assert canary not in seen
        assert canary in json.dumps(
            [h.to_json() for h in Reads(memex).search(question, principal=owner, k=50)]
        )


def test_the_cli_shows_the_dates_it_applied(personal, monkeypatch):
    from typer.testing import CliRunner

    from memex.api import wiring as app_module
    from memex.cli.main import app
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    memex, archive = personal
    monkeypatch.setenv("MEMEX_HOME", str(memex.paths.root))
    monkeypatch.setenv("TZ", "Europe/Lisbon")
    monkeypatch.setattr("memex.models.choice.SentenceTransformerEmbedder", lambda *a: HashingEmbedder())
    monkeypatch.setattr(app_module, "LlamaCppModel", lambda *a, **k: FakeModel())
    memex.close()
    runner = CliRunner()
    shutil.copy(POLICIES / "personal.yaml", memex.paths.policy)
    result = runner.invoke(app, ["ask", "what happened on 2026-03-14?", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["dates"] == {  # Lisbon is on UTC until the end of March
        "from": "2026-03-14T00:00:00+00:00",
        "to": "2026-03-15T00:00:00+00:00",
        "phrase": "on 2026-03-14",
    }
    assert {c["source"] for c in body["citations"]} == {f"{archive}/calendar/maya.ics#2026-03-14T08:00"}
    result = runner.invoke(app, ["ask", "what happened on 2026-03-14?", "--json", "--no-dates"])
    assert json.loads(result.stdout)["dates"] is None
    result = runner.invoke(app, ["search", "movers in March 2026"])
    assert "Dates: 2026-03-01 to 2026-03-31 (in march 2026); --no-dates for all dates." in result.stderr


# -- to-do lists -------------------------------------------------------------------------------


def test_todo_txt_tasks(tmp_path):
    from connectors.todo import TodoConnector

    good, bad = read(TodoConnector(str(EXAMPLE / "todo.txt"), timezone="Europe/Lisbon"))
    assert bad == {} and len(good) == 7
    first = good[0]
    assert [e.text for e in first.elements()] == [
        "Open task: Book the movers for Saturday 14 March +move @phone",
        "Due: Thursday 5 March 2026",
        "Created: Sunday 1 March 2026",
        "Priority: A",
        "Projects: move",
        "Contexts: phone",
        "List: todo.txt",
    ]
    assert first.metadata["timestamp"] == datetime(2026, 3, 5, tzinfo=LISBON).timestamp()
    assert first.attributes == {
        "connector": "todo",
        "kind": "todo",
        "path": (EXAMPLE / "todo.txt").as_posix(),
        "field.status": "open",
        "field.projects": ["move"],
        "field.contexts": ["phone"],
        "field.priority": "A",
    }
    assert [d.attributes["field.status"] for d in good] == [
        "open",
        "done",
        "open",
        "open",
        "done",
        "open",
        "open",
    ]
    done = good[1]
    assert (
        done.metadata["timestamp"] == datetime(2026, 3, 6, tzinfo=LISBON).timestamp()
    )  # the day it was done
    empty = tmp_path / "todo.txt"
    empty.write_text("\n\n")
    assert read(TodoConnector(str(empty)))[1] == {empty.as_posix(): "no tasks in this list"}


def test_markdown_task_lists_with_headings_nesting_and_due_dates(tmp_path):
    from connectors.todo import TodoConnector

    tasks = tmp_path / "move.tasks.md"
    tasks.write_text(
        "# Move\n\n## Paperwork\n- [ ] Change address at the bank 📅 2026-03-20 #admin\n"
        "    - [x] Find the account number ✅ 2026-03-02\n- [-] Fax the landlord\n"
        "```\n- [ ] not a task, code\n```\n## Packing\n* [X] Books due:2026-03-09\n1. [ ] Plants @due(2026-03-13)\n"
    )
    good, bad = read(TodoConnector(str(tasks), timezone="Europe/Lisbon"))
    assert bad == {}
    assert [(d.title, d.metadata.get("due")) for d in good] == [
        ("Change address at the bank #admin (open, due 2026-03-20)", "2026-03-20"),
        ("Find the account number (done)", None),
        ("Fax the landlord (cancelled)", None),
        ("Books (done, due 2026-03-09)", "2026-03-09"),
        ("Plants (open, due 2026-03-13)", "2026-03-13"),
    ]
    assert [e.text for e in good[1].elements()] == [
        "Done task: Find the account number",
        "Done on: Monday 2 March 2026",
        "List: move.tasks.md > Move > Paperwork > Change address at the bank #admin",
    ]
    assert good[0].attributes["field.tags"] == ["admin"]
    assert good[0].uri == f"{tasks.as_posix()}#L4"


# -- notes -------------------------------------------------------------------------------------


def test_an_obsidian_vault_front_matter_tags_links_and_headings(tmp_path):
    from connectors.notes import NotesConnector
    from memex.ingest.chunking import chunk_elements

    vault = tmp_path / "vault"
    shutil.copytree(EXAMPLE / "notes", vault)
    (vault / "broken.md").write_text("---\ntitle: [unclosed\n---\nBody survives.\n")
    assert NotesConnector.accepts(str(vault)) and not NotesConnector.accepts(str(vault / "Climbing"))
    good, bad = read(NotesConnector(str(vault), others=connectors(), timezone="Europe/Lisbon"))
    assert bad == {}
    notes = {d.metadata["note"]: d for d in good}
    assert sorted(notes) == [
        "Climbing/Arrábida trip ideas.md",
        "Daily/2026-03-10.md",
        "Inês.md",
        "Landlord.md",
        "Move to Porto.md",
        "broken.md",
    ]
    move = notes["Move to Porto.md"]
    assert move.title == "Move to Porto"
    assert move.source_id == f"file:{(vault / 'Move to Porto.md').as_posix()}"
    assert move.attributes == {
        "connector": "notes",
        "kind": "note",
        "path": (vault / "Move to Porto.md").as_posix(),
        "field.vault": "vault",
        "field.title": "Move to Porto",
        "field.created": "2026-02-10",
        "field.status": "in progress",
        "field.tags": ["move", "porto", "climbing"],
    }
    assert move.metadata["links"] == ["Landlord.md", "Inês.md"]
    assert move.metadata["timestamp"] == datetime(2026, 2, 10, tzinfo=LISBON).timestamp()
    elements = move.elements()
    assert [(e.kind, e.section, e.text.split("\n")[0]) for e in elements] == [
        (
            "text",
            ("Move to Porto",),
            "New flat: Rua do Almada 212, 3rd floor, Porto. Keys on 13 March from the agency (Casa Norte).",
        ),
        ("title", ("Move to Porto",), "Before the move"),
        (
            "text",
            ("Move to Porto", "Before the move"),
            "- [done] Get three quotes from moving companies ✅ 2026-03-06",
        ),
        ("title", ("Move to Porto",), "After the move"),
        (
            "text",
            ("Move to Porto", "After the move"),
            "- [open] Register at the Junta de Freguesia in Porto (bring the lease)",
        ),
        ("title", ("Move to Porto",), "Costs"),
        ("text", ("Move to Porto", "Costs"), "| what | EUR |"),
        ("text", (), "Links: Landlord.md, Inês.md"),
    ]
    pieces = chunk_elements(elements, title=move.title)
    # Small sections share a chunk; the chunk starting inside a section carries its headings.
    assert [p.text.split("\n")[0] for p in pieces] == ["Move to Porto", "Move to Porto > After the move"]
    text = "\n".join(p.text for p in pieces)
    assert "- [open] Book the movers (MudaJá, 780 EUR)" in text
    assert "- [done] Get three quotes from moving companies" in text
    assert "See Landlord for the Lisbon side." in text  # [[Landlord]] reads as its name
    assert "Links: Landlord.md, Inês.md" in text
    ines = notes["Inês.md"]
    assert "Planning a trip to Arrábida in May." in [e.text for e in ines.elements()][0]
    assert ines.metadata["links"] == ["Climbing/Arrábida trip ideas.md"]
    daily = notes["Daily/2026-03-10.md"]
    assert daily.metadata["timestamp"] == datetime(2026, 3, 10, tzinfo=LISBON).timestamp()
    broken = notes["broken.md"]
    assert broken.metadata["problem"].startswith("front matter is not valid YAML")
    assert [e.text for e in broken.elements()] == ["title: [unclosed", "Body survives."]


# -- media -------------------------------------------------------------------------------------


def mp3(path: Path) -> Path:
    """A valid one-second MPEG-1 Layer III file with ID3 tags."""
    from mutagen.id3 import ID3, TALB, TCON, TDRC, TIT2, TPE1, TRCK, TXXX

    path.write_bytes((b"\xff\xfb\x90\x64" + b"\x00" * 413) * 40)
    tags = ID3()
    for frame in (
        TIT2(encoding=3, text="Canção do Mar"),
        TPE1(encoding=3, text="Dulce Pontes"),
        TALB(encoding=3, text="Lágrimas"),
        TDRC(encoding=3, text="1993"),
        TCON(encoding=3, text="Fado"),
        TRCK(encoding=3, text="5/12"),
        TXXX(encoding=3, desc="MEMEX_UNKNOWN", text="ignored"),  # an unknown tag
    ):
        tags.add(frame)
    tags.save(path)
    return path


def flac(path: Path) -> Path:
    """A FLAC file with only its STREAMINFO block (1 s of 44.1 kHz stereo) and Vorbis comments."""
    from mutagen.flac import FLAC

    packed = (44100 << 44) | (1 << 41) | (15 << 36) | 44100
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + packed.to_bytes(8, "big") + b"\x00" * 16
    path.write_bytes(b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info)
    tags = FLAC(path)
    tags.update({"title": "Alfama", "artist": "Madredeus", "album": "Ainda", "date": "1995", "genre": "Folk"})
    tags.save()
    return path


def opus(path: Path) -> Path:
    """An Ogg Opus file: the OpusHead and OpusTags pages, then tags written by mutagen."""
    from mutagen.ogg import OggPage
    from mutagen.oggopus import OggOpus

    head = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    comments = b"OpusTags" + struct.pack("<I", 5) + b"memex" + struct.pack("<I", 0)
    pages = []
    for sequence, packet in enumerate((head, comments)):
        page = OggPage()
        page.serial, page.sequence, page.packets, page.position = 1, sequence, [packet], 0
        page.first = sequence == 0
        pages.append(page)
    pages[-1].last = True
    path.write_bytes(b"".join(p.write() for p in pages))
    tags = OggOpus(path)
    tags.update({"title": "Sodade", "artist": "Cesária Évora", "album": "Miss Perfumado", "date": "1992"})
    tags.save()
    return path


def photo(path: Path, *, gps: bool = True, offset: str | None = "+01:00") -> Path:
    """A tiny JPEG with EXIF: camera, date taken and (optionally) a GPS position in Lisbon."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone X"
    details = exif.get_ifd(0x8769)
    details[0x9003] = "2019:05:04 14:22:10"
    if offset:
        details[0x9011] = offset
    if gps:
        position = exif.get_ifd(0x8825)
        position[1], position[2] = "N", (38.0, 43.0, 20.28)
        position[3], position[4] = "W", (9.0, 8.0, 21.48)
    Image.new("RGB", (4, 4), "white").save(path, exif=exif)
    return path


def test_music_tags(tmp_path):
    from connectors.media import MediaConnector

    album = tmp_path / "Music" / "Dulce Pontes"
    album.mkdir(parents=True)
    files = [
        mp3(album / "05 Canção do Mar.mp3"),
        flac(tmp_path / "alfama.flac"),
        opus(tmp_path / "sodade.opus"),
    ]
    docs = {}
    for path in files:
        good, bad = read(MediaConnector(str(path)))
        assert bad == {}
        (docs[path.suffix],) = good
    assert [e.text for e in docs[".mp3"].elements()] == [
        "Track: Canção do Mar — Dulce Pontes",
        "Album: Lágrimas (1993)",
        "Track number: 5 of 12",
        "Genre: Fado",
        "Length: 0:01",
        "Folder: Music > Dulce Pontes",
    ]
    assert docs[".mp3"].metadata["timestamp"] == datetime(1993, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp()
    assert docs[".mp3"].attributes == {
        "connector": "media",
        "kind": "track",
        "path": files[0].as_posix(),
        "field.artist": "Dulce Pontes",
        "field.album": "Lágrimas",
        "field.genre": "Fado",
    }
    assert docs[".flac"].title == "Alfama — Madredeus (Ainda)"
    assert [e.text for e in docs[".opus"].elements()][:2] == [
        "Track: Sodade — Cesária Évora",
        "Album: Miss Perfumado (1992)",
    ]


def test_photo_exif_date_camera_and_gps_as_decimal_degrees(tmp_path):
    from connectors.media import MediaConnector

    taken = photo(tmp_path / "IMG_0042.jpg")
    assert MediaConnector.claims_file(taken)
    (doc,), bad = read(MediaConnector(str(taken), timezone="UTC"))
    assert bad == {}
    assert [e.text for e in doc.elements()][:4] == [
        "Photo: IMG_0042.jpg",
        "Taken: Saturday 4 May 2019, 14:22",
        "Camera: Apple iPhone X",
        "Place: 38.722300, -9.139300, near Intendente, Lisbon, Portugal",
    ]
    assert doc.metadata["taken"] == "2019-05-04T14:22:10+01:00"  # OffsetTimeOriginal, not the option
    assert (doc.metadata["latitude"], doc.metadata["longitude"]) == (38.7223, -9.1393)
    assert doc.attributes["field.gps"] == "yes"
    no_offset = photo(tmp_path / "IMG_0043.jpg", gps=False, offset=None)
    (doc,), _ = read(MediaConnector(str(no_offset), timezone="Europe/Lisbon"))
    assert doc.metadata["taken"] == "2019-05-04T14:22:10+01:00"  # Lisbon in May
    assert doc.attributes["field.gps"] == "no" and "latitude" not in doc.metadata


def test_images_without_exif_and_broken_media_are_reported(memex_home, tmp_path):
    from PIL import Image

    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder

    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "lisbon.jpg")
    Image.new("RGB", (4, 4)).save(folder / "plain.jpg")  # no EXIF at all
    (folder / "broken.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\x00" * 20)
    mp3(folder / "fine.mp3")
    memex = Memex(
        Paths(memex_home),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        writable=True,
    )
    report = memex.ingest([str(folder)])
    memex.close()
    assert sorted(Path(u).name for u in report.indexed) == ["fine.mp3", "lisbon.jpg"]
    assert {Path(f.uri).name: f.reason for f in report.failures} == {
        # read for text (OCR, memex[media]): it has none, and no photo metadata either
        "plain.jpg": "no text found in the picture, and no photo metadata (date, camera or place)",
        "broken.mp3": "not a readable audio file: can't sync to MPEG frame",
    }


@pytest.mark.slow  # about 20 s: the example company's mail and chat are parsed and indexed
def test_dates_bound_mail_and_chat_too(fake_memex, kestrel):
    """The same date filter applies to every dated source: mail and chat of the example company."""
    report = fake_memex.ingest([str(kestrel / "mail"), str(kestrel / "chat")])
    assert report.failures == []
    alice = fake_memex.policy.principal("alice")
    question = "what happened with the harrier outage last month?"
    dates = Reads.find_dates(question, now=datetime(2026, 4, 20, 12, 0, tzinfo=LISBON))
    assert dates.to_json() == {
        "from": "2026-03-01T00:00:00+00:00",
        "to": "2026-04-01T00:00:00+01:00",
        "phrase": "last month",
    }
    hits = Reads(fake_memex).search(question, principal=alice, k=50, dates=dates)
    assert {h.source_id.split(":")[0] for h in hits} == {"mail", "slack"}
    for hit in hits:
        assert dates.date_from <= hit.metadata["timestamp"] < dates.date_to, hit.uri
    assert {
        "mail:20260316103000.heartbeat.alice@kestrel.example",
        "slack:T01KESTREL:C01ENGINE0:1773302280.000001",
    } <= {h.source_id for h in hits}
    answer = Reads(fake_memex).ask(question, principal=alice, k=50, dates=dates)
    assert answer.hits and all(
        dates.date_from <= h.metadata["timestamp"] < dates.date_to for h in answer.hits
    )
    assert "Falcon 2 launch drinks" not in json.dumps(answer.messages)  # an April mail
    # Without the range the same question reaches April (the drinks mail, #engineering on 2 April).
    undated = {h.source_id for h in Reads(fake_memex).search(question, principal=alice, k=50)}
    assert {
        "mail:20260420090000.drinks.pat@kestrel.example",
        "slack:T01KESTREL:C01ENGINE0:1775140200.000001",
    } <= undated


def test_photo_positions_and_health_appointments_are_for_the_owner_only(memex_home, tmp_path):
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    folder = tmp_path / "maya"
    folder.mkdir()
    photo(folder / "IMG_located.jpg")
    photo(folder / "IMG_unlocated.jpg", gps=False)
    (folder / "health.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//memex tests//EN\r\nBEGIN:VEVENT\r\nUID:physio@maya.example\r\n"
        "DTSTAMP:20260101T090000Z\r\nDTSTART;TZID=Europe/Lisbon:20260312T090000\r\n"
        "DTEND;TZID=Europe/Lisbon:20260312T100000\r\nSUMMARY:Physiotherapy appointment, shoulder\r\n"
        "LOCATION:Clínica Fisiolis, Lisbon\r\nCATEGORIES:Health\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:lunch@maya.example\r\nDTSTAMP:20260101T090000Z\r\n"
        "DTSTART;TZID=Europe/Lisbon:20260312T130000\r\nDTEND;TZID=Europe/Lisbon:20260312T140000\r\n"
        "SUMMARY:Lunch appointment with Inês\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    memex = Memex(
        Paths(memex_home),
        policy=load_policy(POLICIES / "personal.yaml"),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    report = memex.ingest([str(folder)], options={"timezone": "Europe/Lisbon"})
    assert report.failures == [] and len(report.indexed) == 4
    guest, owner = memex.policy.principal("guest"), memex.policy.principal("owner")
    for question, canaries, visible in (
        ("photos I took in Lisbon in May 2019", ("IMG_located", "Intendente", "38.7223"), "IMG_unlocated"),
        ("appointment on 12 March", ("Fisiolis", "Physiotherapy"), "Lunch appointment"),
    ):
        hits = Reads(memex).search(question, principal=guest, k=50, dates=None)
        answer = Reads(memex).ask(question, principal=guest, k=50, dates=None)
        seen = json.dumps([h.to_json() for h in hits]) + json.dumps(answer.messages) + answer.text
        seen += json.dumps(answer.to_json())
        assert visible in seen
        for canary in canaries:
            assert canary not in seen, canary
        owner_sees = json.dumps(
            [h.to_json() for h in Reads(memex).search(question, principal=owner, k=50, dates=None)]
        )
        assert all(canary in owner_sees for canary in (*canaries, visible))
    memex.close()
