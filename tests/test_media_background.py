"""Media in everyday use (issue 19): a long recording in a watched folder is transcribed beside
the watcher's loop, saying how far it is, while files saved meanwhile are indexed at once;
HEIC photos are read; `memex status` says which media engines are installed; the multilingual
Whisper model's two pieces are joined once and checked."""

from __future__ import annotations

import hashlib
import itertools
import sys
import time
from pathlib import Path

import pytest

from tests.media_support import BOARD, media_extra, picture, speak
from tests.watch_support import Running, wait_until

COLOURS = ["red", "green", "blue", "yellow", "silver", "orange", "purple", "white"]
THINGS = ["sensor", "gateway", "battery", "antenna", "cable", "dashboard", "invoice", "laptop"]
CITIES = ["Porto", "Bergen", "Lisbon", "Tromso", "Oslo", "Malmo", "Aarhus", "Gdansk"]


def long_speech() -> list[str]:
    """About three minutes of different sentences (Whisper drops text it hears repeated)."""
    combos = itertools.islice(itertools.product(COLOURS, THINGS, CITIES), 0, None, 13)
    return [
        f"Note {n}: the {colour} {thing} goes to {city}." for n, (colour, thing, city) in enumerate(combos, 1)
    ]


@pytest.mark.slow
def test_a_long_recording_in_a_watched_folder_does_not_hold_up_other_files(fake_memex, tmp_path):
    from memex.api.reads import Reads

    media_extra()
    made = tmp_path / "made"
    made.mkdir()
    sentences = long_speech()
    recording = speak(" ".join(sentences), made / "meeting.wav", speed=130)
    middle = sentences[len(sentences) // 2].split(": ")[1].rstrip(".")  # "the purple cable goes to Oslo"
    folder = tmp_path / "archive" / "kestrel" / "engineering"  # alice reads it (policies/company.yaml)
    folder.mkdir(parents=True)
    alice = fake_memex.policy.principal("alice")

    def found(query: str, name: str, reader=alice) -> bool:
        from memex.errors import EmptyIndex

        try:
            hits = Reads(watcher.reader).search(query, principal=reader, k=10)
        except EmptyIndex:  # nothing alice reads is indexed yet
            return False
        return any(Path(h.uri).name == name for h in hits)

    with Running(fake_memex, [folder]) as watcher:
        (folder / "meeting.wav").write_bytes(recording.read_bytes())
        service = watcher.service  # wait until the recording is being read, one way or the other
        assert wait_until(lambda: service.busy is not None or service.ahead.busy, timeout=30), watcher.events
        saved = time.monotonic()
        (folder / "notes.md").write_text("# Harrier\nThe harrier rollout moves to the Tromso office.\n")
        assert wait_until(lambda: found("harrier rollout Tromso", "notes.md"), timeout=30), watcher.events
        print(f"\nsaved to searchable beside a transcription: {time.monotonic() - saved:.2f} s")
        assert not found(middle, "meeting.wav")  # the note was indexed while the meeting was transcribed
        assert service.ahead.busy == 1
        assert wait_until(lambda: found(middle, "meeting.wav"), timeout=240), watcher.events
        # read in the background, labelled as any file there: public-only vic does not get it
        assert not found(middle, "meeting.wav", fake_memex.policy.principal("vic"))
        watcher.settle()
        told = [e["message"] for e in watcher.of("note") if "transcribed, about" in e["message"]]
        assert told and all(m.startswith("meeting.wav: ") and " of 0" in m for m in told), told
        batches = [e for e in watcher.of("batch") if any(u.endswith("meeting.wav") for u in e["indexed"])]
        assert len(batches) == 1  # read once, when its transcript was ready


def test_a_long_transcription_says_how_far_it_is_and_how_long_is_left(monkeypatch):
    from types import SimpleNamespace

    import connectors.speech as speech

    told: list[str] = []
    now = [100.0]
    monkeypatch.setattr(speech, "tell", told.append)
    monkeypatch.setattr(speech, "time", SimpleNamespace(monotonic=lambda: now[0]))
    progress = speech.Told("standup.m4a", 3600.0)
    for at, position in ((102, 60), (106, 120), (120, 200), (140, 600), (150, 700), (171, 1200)):
        now[0] = at
        progress.reached(position)
    assert told == [
        "standup.m4a: 02:00 of 1:00:00 transcribed, about 3 min left",  # the first after 5 s
        "standup.m4a: 10:00 of 1:00:00 transcribed, about 3 min left",  # then every 30 s
        "standup.m4a: 20:00 of 1:00:00 transcribed, about 2 min left",
    ]


def test_a_parse_tells_its_pool_how_far_it_is_while_it_runs():
    from memex.ingest.sandbox import ParserPool

    notes: list[tuple[int, str]] = []
    with ParserPool() as pool:
        pool.on_note = lambda key, text: notes.append((key, text))
        pool.submit(7, _telling)
        results = []
        while pool.pending:
            results += pool.poll(None)
    assert results == [(7, "done")]
    assert notes == [(7, "a third"), (7, "two thirds")]


def _telling() -> str:
    from memex.connector import tell

    tell("a third")
    time.sleep(0.1)
    tell("two thirds")
    return "done"


def test_a_heic_photo_is_read(tmp_path):
    media_extra()
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is part of memex[media]")
    from PIL import Image

    from connectors.media import MediaConnector

    png = picture(tmp_path / "board.png", BOARD, size="1200x560")
    heic = tmp_path / "IMG_0412.HEIC"
    pillow_heif.from_pillow(Image.open(png).convert("RGB")).save(heic, quality=90)
    (doc,) = MediaConnector(str(heic)).load()
    text = " ".join(element.text for element in doc.parse())
    assert all(line in text for line in BOARD), text


def test_status_says_which_media_engines_are_installed_and_how_to_get_the_rest(memex_home, monkeypatch):
    from typer.testing import CliRunner

    from memex.cli.main import app

    media_extra()

    def cli(*args: str):
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    shown = cli("status")
    assert shown.exit_code == 0, shown.output
    assert "Reads:   speech in recordings and videos: faster-whisper, Whisper" in shown.output
    assert "text in pictures and scanned PDFs: rapidocr (PP-OCR)" in shown.output
    monkeypatch.setenv("MEMEX_WHISPER_MODEL", str(memex_home / "no-such-model"))
    shown = cli("status")
    assert "speech in recordings and videos: not installed (pip install 'memex[media]')" in shown.output


def test_status_shows_every_user_the_media_engines_but_not_where_a_model_lies(tmp_path, monkeypatch):
    import json

    from memex.ingest.plugins import readers

    private = tmp_path / "srv-models-private" / "whisper"
    private.mkdir(parents=True)
    (private / "model.bin").write_bytes(b"weights")
    monkeypatch.setenv("MEMEX_WHISPER_MODEL", str(private))
    shown = json.dumps(readers())
    assert "Whisper from MEMEX_WHISPER_MODEL" in shown
    assert "srv-models-private" not in shown


# -- Whisper base, multilingual: two pieces in two packages, joined once --------------------


@pytest.fixture
def base_pieces(tmp_path, monkeypatch):
    """Two stand-in packages holding the pieces of a small model.bin, importable from tmp."""
    from connectors import whisper_models

    pieces = []
    for n, content in ((1, b"first half of the weights|"), (2, b"second half")):
        package = tmp_path / "site" / f"fake_whisper_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.bin.part{n}").write_bytes(content)
        if n == 1:
            for name in whisper_models.BASE_FILES:
                (package / "data" / name).write_text("{}")
        pieces.append((f"fake_whisper_part{n}", f"data/model.bin.part{n}"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(whisper_models, "BASE_PIECES", tuple(pieces))
    monkeypatch.setattr(
        whisper_models, "BASE_SHA256", hashlib.sha256(b"first half of the weights|second half").hexdigest()
    )
    monkeypatch.setenv("MEMEX_MODELS", str(tmp_path / "cache"))
    monkeypatch.delenv("MEMEX_WHISPER_MODEL", raising=False)
    yield tmp_path / "cache" / whisper_models.BASE_FOLDER
    for name in ("fake_whisper_part1", "fake_whisper_part2"):
        sys.modules.pop(name, None)


def test_the_multilingual_model_is_preferred_and_joined_once(base_pieces):
    from connectors import whisper_models

    chosen = whisper_models.choice()
    assert (chosen.title, chosen.multilingual) == ("Whisper base (multilingual)", True)
    folder = whisper_models.model_folder()
    assert folder == base_pieces
    assert (folder / "model.bin").read_bytes() == b"first half of the weights|second half"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*whisper_models.BASE_FILES, "model.bin", "model.bin.sha256"]
    )
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert whisper_models.model_folder() == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # not joined again


def test_pieces_that_do_not_join_into_the_pinned_model_are_refused(base_pieces, monkeypatch):
    from connectors import whisper_models
    from memex.errors import UnsupportedFormat

    monkeypatch.setattr(whisper_models, "BASE_SHA256", "0" * 64)
    with pytest.raises(UnsupportedFormat, match="reinstall them"):
        whisper_models.model_folder()
    assert not (base_pieces / "model.bin").exists()
    assert [p.name for p in base_pieces.iterdir() if p.name.startswith(".model.bin")] == []
