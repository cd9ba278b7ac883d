"""Media: recordings and videos (speech transcribed), photos and pictures (EXIF facts and the
text in them), music (tags). Transcription (connectors.speech) and OCR (connectors.ocr) need
`pip install 'memex[media]'`; without it, what needs them is reported as needing it.

A track: "Track: Title — Artist / Album: ... (1997), track 3 of 12 / Genre: ... / Length: 4:05",
dated by its release year. A photo: "Photo taken Saturday 4 May 2019, 14:22 / Camera: Apple
iPhone X / Place: 38.722300, -9.139300, near Lisbon, Portugal", dated by when it was taken, then
the text read in it (a whiteboard, a receipt). Place names come from an offline table of towns
(reverse_geocode, within 50 km); the folder names are in the text too ("Photos > 2019 Lisbon").
A recording: its transcript in time windows, each citing "memo.m4a at 02:13-02:41", dated by
when it was recorded (its metadata, else the file's time).

Headers (tags, EXIF, a recording's length and date) are read while listing, in a worker; OCR
and transcription are deferred, so an unchanged file (same time, size and engines) is not read
again. Tags a file does not have are left out.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import partial
from pathlib import Path
from typing import Any

from connectors import ocr, speech
from connectors.calendar import option_zone
from connectors.ocr import short as _short
from connectors.records import lines, record_document
from connectors.spoken import spoken_day
from memex.connector import Connector, isolated
from memex.documents import Element, SourceDocument, failing_document
from memex.errors import ParseError

AUDIO = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif", ".ape", ".wv", ".wav"}
)
VIDEO = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
PHOTOS = frozenset({".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".png", ".bmp"})
NEAR_KM = 50.0
# EXIF tags (ids from the EXIF 2.32 standard)
MAKE, MODEL, DATETIME, EXIF_IFD, GPS_IFD = 0x010F, 0x0110, 0x0132, 0x8769, 0x8825
DATETIME_ORIGINAL, OFFSET_ORIGINAL, LENS_MODEL = 0x9003, 0x9011, 0xA434
WIDTH, HEIGHT, DESCRIPTION, ARTIST = 0xA002, 0xA003, 0x010E, 0x013B
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_ALT, GPS_TIME, GPS_DATE = 1, 2, 3, 4, 6, 7, 29


class MediaConnector(Connector):
    """A recording, a video, a picture or a music file (also found inside any folder). Option:
    timezone (IANA name) for photos whose EXIF gives no offset (default: local)."""

    name = "media"

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        suffix = path.suffix.lower()
        return (
            suffix in AUDIO
            or suffix in VIDEO
            or suffix in PHOTOS
            or (suffix in (".heic", ".heif") and ocr.heic_readable())
        )

    def load(self) -> Iterator[SourceDocument]:
        path = Path(self.target).expanduser().resolve()
        posix = path.as_posix()
        suffix = path.suffix.lower()
        kind = "recording" if suffix in AUDIO | VIDEO else "photo"
        try:
            zone = option_zone(self.options)
            # Tags, EXIF and a recording's header are read in a worker, under the parsers' limits.
            if suffix in AUDIO:
                tags, _, _ = isolated(partial(read_tags, path))
                # A music track (it has an artist or an album) is described by its tags and not
                # transcribed: Whisper on songs gives unreliable lyrics (or invents words over
                # instruments), and a music library would take hours of CPU for little. What has
                # no music tags (voice memos, recorded calls, meetings) is transcribed.
                if tags.get("artist") or tags.get("albumartist") or tags.get("album"):
                    yield isolated(partial(track_document, path))
                    return
            if kind == "recording":
                yield self._recording(path)
            else:
                yield self._picture(path, zone)
        except (ParseError, OSError, ValueError) as exc:
            yield failing_document(
                source_id=f"file:{posix}",
                uri=posix,
                connector="media",
                attributes={"connector": "media", "kind": kind, "path": posix},
                reason=getattr(exc, "strerror", None) or str(exc),
            )

    def _recording(self, path: Path) -> SourceDocument:
        posix = path.as_posix()
        attributes = {"connector": "media", "kind": "recording", "path": posix}
        if not speech.available():
            return _skipped(path, attributes, f"recordings {speech.NEEDS_EXTRA}")
        recording: speech.Recording = isolated(partial(speech.probe, path))
        stat = path.stat()
        when = recording.recorded or stat.st_mtime
        moment = datetime.fromtimestamp(when, UTC)
        what = "video" if recording.video else "recording"
        parse = partial(transcript_elements, path, recording)
        parse.parse_timeout = speech.time_limit(recording.duration)  # type: ignore[attr-defined]
        return SourceDocument(
            source_id=f"file:{posix}",
            uri=posix,
            title=f"{path.name} ({what}, {moment:%Y-%m-%d}, {_length(recording.duration)})",
            connector="media",
            attributes=attributes,
            content_file=posix,
            parse=parse,
            fingerprint=f"{stat.st_mtime_ns}:{stat.st_size}:{speech.engine()}",
            metadata={
                "timestamp": when,
                "date_kind": "recorded" if recording.recorded else "modified",
                "duration": round(recording.duration, 3),
            },
        )

    def _picture(self, path: Path, zone: tzinfo) -> SourceDocument:
        photo, size = isolated(partial(picture_header, path, zone))
        posix = path.as_posix()
        if not ocr.available():
            if photo is None:
                attributes = {"connector": "media", "kind": "photo", "path": posix}
                return _skipped(path, attributes, f"reading text in images {ocr.NEEDS_EXTRA}")
            return photo
        if photo is None:  # no EXIF: a picture, titled by its name, that is only its text
            photo = record_document(
                source_id=f"file:{posix}",
                uri=posix,
                title=path.name,
                connector="media",
                attributes={"connector": "media", "kind": "picture", "path": posix},
                elements=[],
                metadata={},
            )
        stat = path.stat()
        facts = tuple(photo.elements())
        parse = partial(picture_elements, path, facts)
        parse.parse_timeout = ocr.time_limit(size[0] * size[1])  # type: ignore[attr-defined]
        photo.parse = parse
        photo.content_file = posix
        photo.isolated = True
        photo.fingerprint = f"{stat.st_mtime_ns}:{stat.st_size}:{ocr.engine_name()}:{photo.fingerprint}"
        return photo


def transcript_elements(path: Path, recording: speech.Recording) -> list[Element]:
    """A recording's transcript; a recording without speech is still listed, with its facts."""
    elements = speech.transcript(path, recording)
    facts = f"Recording: {path.name}, {_length(recording.duration)}"
    if not elements:
        return [Element(f"{facts}. No speech was recognised.")]
    first = elements[0]
    elements[0] = Element(f"{facts}.\n{first.text}", first.kind, first.section)
    return elements


def picture_elements(path: Path, facts: tuple[Element, ...]) -> list[Element]:
    """The photo's facts, then the text read in it."""
    text = ocr.image_text(path)
    if not text and not facts:
        raise ParseError("no text found in the picture, and no photo metadata (date, camera or place)")
    return [*facts, *([Element("Text in the picture:\n" + "\n".join(text))] if text else [])]


def _skipped(path: Path, attributes: dict[str, Any], reason: str) -> SourceDocument:
    """A file memex could read with an optional extra: reported as unsupported, with the command."""
    posix = path.as_posix()
    return failing_document(
        source_id=f"file:{posix}",
        uri=posix,
        connector="media",
        attributes=attributes,
        reason=reason,
        unsupported=True,
    )


# --- music ------------------------------------------------------------------------------------


def read_tags(path: Path) -> tuple[dict[str, str], float | None, str]:
    """(tags, length in seconds, format) of an audio file; ParseError if it cannot be read."""
    import mutagen

    try:
        audio = mutagen.File(path, easy=True)
    except Exception as exc:  # mutagen raises its own errors, struct.error, ... on bad files
        raise ParseError(f"not a readable audio file: {_short(exc)}") from None
    if audio is None:
        raise ParseError(f"not a readable {path.suffix.lower()} audio file (format not recognised)")
    tags: dict[str, str] = {}
    for key, value in (audio.tags or {}).items() if hasattr(audio.tags or {}, "items") else []:
        values = value if isinstance(value, list) else [value]
        text = "; ".join(str(v).strip() for v in values if str(v).strip())
        if text and isinstance(key, str):
            tags[key.lower()] = text
    length = getattr(getattr(audio, "info", None), "length", None)
    return tags, float(length) if length else None, type(audio).__name__


def track_document(path: Path) -> SourceDocument:
    tags, length, fmt = read_tags(path)
    posix = path.as_posix()
    title = tags.get("title") or path.stem
    artist = tags.get("artist") or tags.get("albumartist") or ""
    album = tags.get("album", "")
    year = _year(tags.get("date") or tags.get("originaldate") or tags.get("year"))
    number = tags.get("tracknumber", "")
    if number and "/" in number:
        number = "{} of {}".format(*number.split("/", 1))
    elements = lines(
        ("Track", f"{title} — {artist}" if artist else title),
        ("Album", f"{album} ({year})" if album and year else album or None),
        ("Album artist", tags.get("albumartist") if tags.get("albumartist") not in ("", artist) else None),
        ("Year", year if not album else None),
        ("Track number", number),
        ("Disc", tags.get("discnumber")),
        ("Genre", tags.get("genre")),
        ("Composer", tags.get("composer")),
        ("Length", _length(length)),
        ("Folder", " > ".join(path.parent.parts[-2:])),
    )
    metadata: dict[str, Any] = {"format": fmt, "artist": artist, "album": album, "title": title}
    if year:
        metadata["timestamp"] = datetime(int(year), 1, 1, tzinfo=UTC).timestamp()
        metadata["date_kind"] = "released"
    attributes = {"connector": "media", "kind": "track", "path": posix}
    for key in ("artist", "album", "genre"):
        if tags.get(key):
            attributes[f"field.{key}"] = tags[key]
    return record_document(
        source_id=f"file:{posix}",
        uri=posix,
        title=f"{title}" + (f" — {artist}" if artist else "") + (f" ({album})" if album else ""),
        connector="media",
        attributes=attributes,
        elements=elements,
        metadata=metadata,
    )


def _year(value: str | None) -> str | None:
    found = re.match(r"\s*(\d{4})", value or "")
    return found.group(1) if found and 1000 < int(found.group(1)) < 3000 else None


def _length(seconds: float | None) -> str | None:
    if not seconds:
        return None
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- photos -----------------------------------------------------------------------------------


def read_exif(path: Path) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    """(main IFD, EXIF IFD, GPS IFD) read from the file's header; no pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # lazy: reads the header, not the pixels
            exif = image.getexif()
            return dict(exif), dict(exif.get_ifd(EXIF_IFD)), dict(exif.get_ifd(GPS_IFD))
    except UnidentifiedImageError:
        raise ParseError(f"not a readable {path.suffix.lower()} image") from None
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise ParseError(f"unreadable EXIF metadata: {_short(exc)}") from None


def picture_header(path: Path, zone: tzinfo) -> tuple[SourceDocument | None, tuple[int, int]]:
    """The photo's document (None without EXIF facts) and the picture's size in pixels;
    ParseError for unreadable pictures and decompression bombs."""
    size = ocr.image_size(path)
    return photo_document(path, zone), size


def photo_document(path: Path, zone: tzinfo) -> SourceDocument | None:
    """A photo's EXIF facts; None when EXIF says neither when, with what nor where it was taken."""
    main, exif, gps = read_exif(path)
    if not (exif.get(DATETIME_ORIGINAL) or main.get(DATETIME) or main.get(MAKE) or main.get(MODEL)):
        if not _coordinates(gps):
            return None
    taken = _taken(main, exif, gps, zone)
    camera = " ".join(dict.fromkeys(_clean(main.get(MAKE)).split() + _clean(main.get(MODEL)).split()))
    position = _coordinates(gps)
    place = _place(position) if position else None
    posix = path.as_posix()
    elements = lines(
        ("Photo", path.name),
        ("Taken", _long(taken) if taken else None),
        ("Camera", camera),
        ("Lens", _clean(exif.get(LENS_MODEL))),
        ("Place", _describe_place(position, place) if position else None),
        (
            "Altitude",
            f"{_number(gps.get(GPS_ALT)):.0f} m" if gps.get(GPS_ALT) is not None and position else None,
        ),
        ("Size", f"{exif[WIDTH]} × {exif[HEIGHT]}" if exif.get(WIDTH) and exif.get(HEIGHT) else None),
        ("Description", _clean(main.get(DESCRIPTION))),
        ("By", _clean(main.get(ARTIST))),
        ("Folder", " > ".join(path.parent.parts[-2:])),
    )
    metadata: dict[str, Any] = {"camera": camera}
    if taken:
        metadata["timestamp"] = taken.timestamp()
        metadata["taken"] = taken.isoformat()
    if position:
        metadata["latitude"], metadata["longitude"] = round(position[0], 6), round(position[1], 6)
        if place:
            metadata["place"] = place
    attributes: dict[str, Any] = {"connector": "media", "kind": "photo", "path": posix}
    attributes["field.gps"] = "yes" if position else "no"
    if camera:
        attributes["field.camera"] = camera
    return record_document(
        source_id=f"file:{posix}",
        uri=posix,
        title=f"{path.name} (photo{', ' + taken.strftime('%Y-%m-%d') if taken else ''}"
        + (
            ", " + ", ".join(dict.fromkeys(v for v in (place.get("city"), place.get("county")) if v))
            if place
            else ""
        )
        + ")",
        connector="media",
        attributes=attributes,
        elements=elements,
        metadata=metadata,
    )


def _taken(main: dict, exif: dict, gps: dict, zone: tzinfo) -> datetime | None:
    """When the photo was taken: DateTimeOriginal with its offset (EXIF 2.31) if given, else
    GPS time (UTC), else DateTimeOriginal read in `zone`, else the file's DateTime."""
    text = _clean(exif.get(DATETIME_ORIGINAL)) or _clean(main.get(DATETIME))
    local = None
    try:
        local = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S") if text else None
    except ValueError:
        local = None
    offset = _clean(exif.get(OFFSET_ORIGINAL))
    if local and re.fullmatch(r"[+-]\d\d:\d\d", offset):
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        return local.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    gps_time = _gps_time(gps)
    if gps_time and (
        local is None or abs((gps_time.replace(tzinfo=None) - local).total_seconds()) < 15 * 3600
    ):
        return gps_time.astimezone(zone) if local is None else _with_offset(local, gps_time)
    return local.replace(tzinfo=zone) if local else None


def _with_offset(local: datetime, utc: datetime) -> datetime:
    """The camera's wall time, with the offset the GPS time shows (rounded to 15 minutes)."""
    minutes = round((local - utc.replace(tzinfo=None)).total_seconds() / 900) * 15
    return local.replace(tzinfo=timezone(timedelta(minutes=minutes)))


def _gps_time(gps: dict) -> datetime | None:
    day, clock = _clean(gps.get(GPS_DATE)), gps.get(GPS_TIME)
    try:
        hours, minutes, seconds = (_number(v) for v in clock)  # type: ignore[union-attr]
        moment = datetime.strptime(day, "%Y:%m:%d") + timedelta(hours=hours, minutes=minutes, seconds=seconds)
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=UTC)


def _coordinates(gps: dict) -> tuple[float, float] | None:
    """GPS latitude and longitude as signed decimal degrees, or None."""
    try:
        lat = _degrees(gps[GPS_LAT]) * (-1 if _clean(gps.get(GPS_LAT_REF)).upper() == "S" else 1)
        lon = _degrees(gps[GPS_LON]) * (-1 if _clean(gps.get(GPS_LON_REF)).upper() == "W" else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat, lon) == (0.0, 0.0) or math.isnan(lat + lon):
        return None
    return lat, lon


def _degrees(value: Any) -> float:
    parts = [_number(v) for v in value]
    while len(parts) < 3:
        parts.append(0.0)
    return parts[0] + parts[1] / 60 + parts[2] / 3600


def _number(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return value[0] / value[1]
    return float(value)


def _place(position: tuple[float, float]) -> dict[str, str] | None:
    """The nearest town (within NEAR_KM) from the offline reverse_geocode table, or None."""
    try:
        import reverse_geocode
    except ImportError:  # optional: without it, coordinates only
        return None
    found = reverse_geocode.get(position)
    distance = _km(position, (found["latitude"], found["longitude"]))
    if distance > NEAR_KM:
        return None
    return {k: str(found[k]) for k in ("city", "county", "state", "country") if found.get(k)}


def _describe_place(position: tuple[float, float], place: dict[str, str] | None) -> str:
    where = f"{position[0]:.6f}, {position[1]:.6f}"
    if not place:
        return where
    names = list(dict.fromkeys(place.get(k, "") for k in ("city", "county", "state", "country")))
    return f"{where}, near {', '.join(n for n in names if n)}"


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def _long(moment: datetime) -> str:
    return f"{spoken_day(moment)}, {moment:%H:%M}"


def _clean(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).replace("\x00", " ").split())
