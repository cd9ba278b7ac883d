"""Real media for the media tests, made at test time: speech from espeak-ng (Debian), muxed into
ogg/m4a/mp4 with PyAV; pictures with text from ImageMagick. Skips, saying what is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

MEMO = (
    "The harrier launch moves to the fourteenth of March. "
    "Priya will check the fuel valves before Friday. "
    "The budget review with the board is on Tuesday morning."
)
BOARD = ["Sprint goals", "Ship the falcon dashboard", "Budget review on Tuesday"]


def needs(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: apt-get install espeak-ng imagemagick)")


def media_extra() -> None:
    from connectors import ocr, speech

    if not (speech.available() and ocr.available()):
        pytest.skip("memex[media] is not installed: pip install 'memex[media]'")


def speak(text: str, path: Path, *, speed: int = 150, voice: str = "en") -> Path:
    """A wav of `text` spoken by espeak-ng."""
    needs("espeak-ng")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return path


def transcode(wav: Path, target: Path, *, picture: Path | None = None, created: str | None = None) -> Path:
    """`wav` re-encoded by PyAV for `target`'s suffix (.ogg: Opus, .m4a: AAC, .mp4: a still
    picture and AAC sound); `created` (ISO time) is written as the file's creation_time."""
    import av
    from PIL import Image

    codec = {".ogg": "libopus", ".m4a": "aac", ".mp4": "aac", ".mkv": "libopus"}[target.suffix]
    with av.open(str(wav)) as source, av.open(str(target), "w") as out:
        if created:
            out.metadata["creation_time"] = created
        sound = out.add_stream(codec, rate=48000 if codec == "libopus" else 44100)
        if codec == "libopus":
            sound.bit_rate = 32_000  # a voice memo's rate: small files, clear speech with Opus
        if picture is not None:
            image = Image.open(picture).convert("RGB")
            video = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=1)
            video.width, video.height = image.width // 2 * 2, image.height // 2 * 2
            video.pix_fmt = "yuv420p"
            for second in range(int(source.duration / 1_000_000) + 1):
                frame = av.VideoFrame.from_image(image).reformat(
                    width=video.width, height=video.height, format="yuv420p"
                )
                frame.pts = second
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return target


def picture(path: Path, lines: list[str], *, size: str = "900x420") -> Path:
    """A whiteboard-like picture: black text on white, one line per entry, by ImageMagick."""
    needs("convert")
    command = ["convert", "-size", size, "xc:white", "-font", "DejaVu-Sans", "-pointsize", "40"]
    command += ["-fill", "black"]
    for n, line in enumerate(lines):
        command += ["-annotate", f"+40+{90 + 90 * n}", line]
    subprocess.run([*command, str(path)], check=True)
    return path


def words(text: str) -> list[str]:
    """Lower-case words, numbers spelt as Whisper writes them, for a fair word error rate."""
    text = text.lower().replace("14th", "fourteenth")
    return re.findall(r"[a-z0-9']+", text)


def word_error_rate(reference: str, heard: str) -> float:
    """(substitutions + deletions + insertions) / words of the reference (Levenshtein on words)."""
    ref, hyp = words(reference), words(heard)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(1, len(ref))
