"""Voice, video, photos and scans (issue 19): real media made at test time (tests/media_support),
read by the media connector; the words come back, each chunk cites its place and date, and bad
or hostile media is refused with its reason while the run goes on."""

from __future__ import annotations

import shutil
import struct
import sys
import zlib
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, memex_with_fakes
from tests.media_support import BOARD, MEMO, media_extra, picture, speak, transcode, word_error_rate

MAX_WER = 0.2  # espeak-ng's robotic voice through Whisper tiny.en: measured 0.04-0.08


def documents(path: Path):
    from connectors.media import MediaConnector

    return list(MediaConnector(str(path)).load())


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    media_extra()
    folder = tmp_path_factory.mktemp("recordings")
    wav = speak(MEMO, folder / "memo.wav")
    board = picture(folder / "board.png", BOARD)
    return {
        "wav": wav,
        "ogg": transcode(wav, folder / "memo.ogg"),
        "m4a": transcode(wav, folder / "standup.m4a", created="2026-03-12T09:30:00Z"),
        "mp4": transcode(wav, folder / "clip.mp4", picture=board),
    }


@pytest.mark.parametrize("kind", ["wav", "ogg", "m4a", "mp4"])
def test_the_words_of_a_recording_come_back_with_their_place(recordings, kind, capsys):
    path = recordings[kind]
    (doc,) = documents(path)
    elements = doc.elements()
    heard = " ".join(e.text for e in elements)
    wer = word_error_rate(MEMO, heard.split("\n", 1)[-1])
    with capsys.disabled():
        print(f"\n{path.name}: word error rate {wer:.3f}: {heard!r}")
    assert wer <= MAX_WER
    assert elements[0].text.startswith(f"Recording: {path.name}, 0:")
    # one window (the memo is 10 s): it cites the file and its time range
    assert [e.section for e in elements] == [(f"{path.name} at 00:00-00:{elements[0].section[0][-2:]}",)]
    assert 8 <= int(elements[0].section[0][-2:]) <= 12
    assert doc.attributes == {"connector": "media", "kind": "recording", "path": path.as_posix()}
    assert doc.title.startswith(f"{path.name} ({'video' if kind == 'mp4' else 'recording'}, ")


def test_a_recording_is_dated_by_its_metadata_else_the_file_time(recordings):
    (m4a,) = documents(recordings["m4a"])
    assert m4a.metadata["timestamp"] == datetime.fromisoformat("2026-03-12T09:30:00+00:00").timestamp()
    assert m4a.metadata["date_kind"] == "recorded" and m4a.title.startswith(
        "standup.m4a (recording, 2026-03-12"
    )
    (wav,) = documents(recordings["wav"])
    assert wav.metadata["timestamp"] == recordings["wav"].stat().st_mtime
    assert wav.metadata["date_kind"] == "modified"


def test_windows_keep_sentences_whole_and_cite_their_time():
    from connectors.speech import windows

    sentence = "Word " * 12  # 60 characters; every fourth segment ends a sentence
    segments = [
        (i * 10.0, i * 10.0 + 9.5, sentence.strip() + ("." if i % 4 == 3 else ",")) for i in range(12)
    ]
    out = windows(segments, "standup.m4a", "en")
    assert [e.section[0] for e in out] == [
        "standup.m4a at 00:00-01:19",  # 60 s were up at 00:59, in the middle of a sentence
        "standup.m4a at 01:20-01:59",
    ]
    assert all(e.text.endswith(".") for e in out)
    assert all(len(e.text) <= 1000 for e in out)  # one chunk each, so the citation is exact


def test_a_whiteboard_photo_is_read(tmp_path):
    media_extra()
    board = picture(tmp_path / "whiteboard.png", BOARD)
    (doc,) = documents(board)
    assert [e.text for e in doc.elements()] == ["Text in the picture:\n" + "\n".join(BOARD)]
    assert doc.attributes["kind"] == "picture"


def test_a_photo_keeps_its_exif_facts_and_gains_its_text(tmp_path):
    media_extra()
    from PIL import Image

    board = picture(tmp_path / "board.png", BOARD)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Apple", "iPhone X", "2026:03:12 10:15:00"
    Image.open(board).convert("RGB").save(tmp_path / "IMG_0001.jpg", exif=exif, quality=95)
    plain = tmp_path / "IMG_0002.jpg"
    Image.radial_gradient("L").resize((600, 400)).convert("RGB").save(plain, exif=exif)
    (photo,) = documents(tmp_path / "IMG_0001.jpg")
    texts = [e.text for e in photo.elements()]
    assert texts[0] == "Photo: IMG_0001.jpg" and "Camera: Apple iPhone X" in texts
    assert texts[-1] == "Text in the picture:\n" + "\n".join(BOARD)
    assert photo.metadata["taken"].startswith("2026-03-12T10:15:00")
    (gradient,) = documents(plain)  # no text: a dated photo, and no OCR noise
    assert not any("Text in the picture" in e.text for e in gradient.elements())
    assert "Camera: Apple iPhone X" in [e.text for e in gradient.elements()]


def test_decompression_bombs_and_corrupt_media_are_refused_and_the_run_goes_on(tmp_path, memex_home):
    media_extra()
    folder = tmp_path / "inbox"
    folder.mkdir()
    speak("Call the plumber on Monday about the kitchen sink.", folder / "good.wav")
    (folder / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    (folder / "truncated.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00" + b"\x00" * 40)
    (folder / "noise.mp4").write_bytes(b"this is not a video at all" * 20)
    memex = memex_with_fakes(memex_home)
    try:
        report = memex.ingest([str(folder)])
    finally:
        memex.close()
    assert [Path(u).name for u in report.indexed] == ["good.wav"]
    reasons = {Path(f.uri).name: f.reason for f in report.failures}
    assert reasons == {
        "bomb.png": "refused: the image is too large to read (Image size (10000000000 pixels) exceeds "
        "limit of 120000000 pixels, could be decompression bomb DOS attack.)",
        "truncated.m4a": "not a readable audio file: not a MP4 file",
        "noise.mp4": "not a readable .mp4 recording (Invalid data found when processing input)",
    }


def test_without_the_media_extra_media_files_say_what_to_install(tmp_path, memex_home, monkeypatch):
    from PIL import Image

    folder = tmp_path / "inbox"
    folder.mkdir()
    speak("A memo.", folder / "memo.wav")
    Image.new("RGB", (40, 20), "white").save(folder / "scan.png")
    for module in ("faster_whisper", "rapidocr"):  # as if `import faster_whisper` failed
        monkeypatch.setitem(sys.modules, module, None)
    memex = memex_with_fakes(memex_home)
    try:
        report = memex.ingest([str(folder)])
    finally:
        memex.close()
    assert report.indexed == []
    assert {Path(f.uri).name: (f.kind, f.reason) for f in report.failures} == {
        "memo.wav": ("unsupported", "recordings needs memex[media]: pip install 'memex[media]'"),
        "scan.png": ("unsupported", "reading text in images needs memex[media]: pip install 'memex[media]'"),
    }


def test_a_recording_is_transcribed_once_unless_it_changes(recordings, tmp_path, memex_home, monkeypatch):
    import shutil

    import connectors.media as media

    folder = tmp_path / "memos"
    folder.mkdir()
    memo = Path(shutil.copy(recordings["ogg"], folder / "memo.ogg"))
    memex = memex_with_fakes(memex_home)
    try:
        first = memex.ingest([str(folder)])
        monkeypatch.setattr(media, "transcript_elements", _never)  # a second transcription fails
        again = memex.ingest([str(folder)])
        memo.write_bytes(memo.read_bytes() + b"\x00")  # changed: read again (and refused here)
        changed = memex.ingest([str(folder)])
    finally:
        memex.close()
    assert [Path(u).name for u in first.indexed] == ["memo.ogg"] and first.failures == []
    assert again.unchanged == 1 and again.indexed == [] and again.failures == []
    assert [f.reason for f in changed.failures] == ["transcribed twice"]


def _never(*args):
    from memex.errors import ParseError

    raise ParseError("transcribed twice")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width × height pixels in a few bytes (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


# -- the example company's voice memo and whiteboard photo (examples/kestrel/engineering) --


@pytest.fixture
def engineering(fake_memex, tmp_path):
    """The example company's engineering folder, media included (the `kestrel` fixture leaves
    the media out, to keep other tests fast)."""
    media_extra()
    folder = tmp_path / "archive" / "kestrel" / "engineering"
    shutil.copytree(EXAMPLES / "engineering", folder)
    report = fake_memex.ingest([str(folder)])
    assert report.failures == []
    names = sorted(Path(u).name for u in report.indexed)
    assert names == [
        "architecture.md",
        "incident-2026-03-harrier-outage.md",
        "voice-memo-2026-03-12.ogg",
        "whiteboard-2026-03-12.jpg",
    ]
    return fake_memex


def _ask_citing(memex, question: str, source: str, reply: str):
    """Ask as alice, with the fake model replying `reply` citing the hit from `source`."""
    from memex.api.reads import Reads

    alice = memex.policy.principal("alice")
    hits = Reads(memex).search(question, principal=alice, k=8)
    n = next(i for i, h in enumerate(hits, 1) if Path(h.uri).name == source)
    memex.model.enqueue(f"{reply} [{n}].")
    return Reads(memex).ask(question, principal=alice, actor="alice", k=8)


def test_a_question_answered_from_a_voice_memo_cites_its_time(engineering):
    answer = _ask_citing(
        engineering,
        "Where and when will the new gateway be tested?",
        "voice-memo-2026-03-12.ogg",
        "The new gateway will be tested in the Lisbon office on Wednesday",
    )
    assert answer.text.startswith("The new gateway will be tested in the Lisbon office on Wednesday")
    cited = answer.citations[0]
    assert Path(cited.source).name == "voice-memo-2026-03-12.ogg"
    assert cited.section == "voice-memo-2026-03-12.ogg at 00:00-00:10"
    assert cited.location().endswith("voice-memo-2026-03-12.ogg, voice-memo-2026-03-12.ogg at 00:00-00:10")


def test_a_question_answered_from_a_whiteboard_photo(engineering):
    answer = _ask_citing(
        engineering,
        "When is the harrier load test?",
        "whiteboard-2026-03-12.jpg",
        "The load test is on Friday",
    )
    assert "Load test on Friday" in answer.text or answer.text.startswith("The load test is on Friday")
    assert Path(answer.citations[0].source).name == "whiteboard-2026-03-12.jpg"
    assert answer.citations[0].title == "whiteboard-2026-03-12.jpg (photo, 2026-03-12)"


def test_a_date_bounded_search_finds_the_recording(engineering):
    from zoneinfo import ZoneInfo

    from memex.api.reads import Reads

    alice = engineering.policy.principal("alice")
    question = "what did we say about the gateway last month?"
    dates = Reads.find_dates(question, now=datetime(2026, 4, 20, 12, 0, tzinfo=ZoneInfo("Europe/Lisbon")))
    hits = Reads(engineering).search(question, principal=alice, k=10, dates=dates)
    in_range = [h for h in hits if dates.date_from <= h.metadata.get("timestamp", -1) < dates.date_to]
    assert hits[: len(in_range)] == in_range  # passages of those dates come first
    assert "voice-memo-2026-03-12.ogg" in {Path(h.uri).name for h in in_range}
    may = Reads.find_dates(question, now=datetime(2026, 6, 20, 12, 0, tzinfo=ZoneInfo("Europe/Lisbon")))
    later = Reads(engineering).search(question, principal=alice, k=10, dates=may)
    assert not [h for h in later if may.date_from <= h.metadata.get("timestamp", -1) < may.date_to]
