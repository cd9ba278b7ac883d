"""Zip archives refused from what they declare, before anything is unpacked.

Office files (docx, pptx, xlsx), ODF (odt), EPUB and chat exports are zip archives, and a zip can
be a bomb: a few kilobytes that unpack to gigabytes (deflate of zeros reaches a ratio of about
1000:1, bzip2 and LZMA far more), or tens of thousands of entries. Every archive memex opens is
checked against its central directory first: the number of entries, each entry's declared size,
the total, and the compression ratio. Python's zipfile then never unpacks more than an entry
declares (and fails its CRC if the entry lied); other unpackers run in the parse worker, whose
memory limit catches what is left.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from memex.errors import ParseError

MiB = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    entries: int = 10_000
    entry_bytes: int = 512 * MiB
    total_bytes: int = 1024 * MiB
    ratio: float = 200.0  # unpacked / packed, of the whole archive and of each large entry
    ratio_from_bytes: int = 1 * MiB  # below this, an entry's ratio does not matter
    per_entry: bool = True  # False: entries are checked one by one when read (check_entry)


DOCUMENT = ZipLimits()
# A chat export is mostly media, read one member at a time: many entries, no total, and each
# member checked against DOCUMENT when it is read (one bad member does not refuse the export).
EXPORT = ZipLimits(entries=1_000_000, total_bytes=1 << 62, per_entry=False)


def check_archive(infos: Iterable[zipfile.ZipInfo], limits: ZipLimits = DOCUMENT) -> None:
    """ParseError naming the limit if the declared contents go past any of `limits`."""
    count = total = packed = 0
    for info in infos:
        count += 1
        if count > limits.entries:
            raise ParseError(f"refused as a possible zip bomb: more than {limits.entries:,} entries")
        if limits.per_entry:
            check_entry(info, limits)
        total += info.file_size
        packed += info.compress_size
        if total > limits.total_bytes:
            raise ParseError(
                f"refused as a possible zip bomb: unpacks to more than {_size(limits.total_bytes)}"
            )
    if total > limits.ratio_from_bytes and total > limits.ratio * max(packed, 1):
        raise ParseError(
            f"refused as a possible zip bomb: {_size(total)} packed into {_size(packed)} "
            f"(ratio {total / max(packed, 1):,.0f}, more than {limits.ratio:g})"
        )


def check_entry(info: zipfile.ZipInfo, limits: ZipLimits = DOCUMENT) -> None:
    if info.file_size > limits.entry_bytes:
        raise ParseError(
            f"refused as a possible zip bomb: {info.filename} unpacks to {_size(info.file_size)} "
            f"(more than {_size(limits.entry_bytes)})"
        )
    if info.file_size > limits.ratio_from_bytes and info.file_size > limits.ratio * max(
        info.compress_size, 1
    ):
        raise ParseError(
            f"refused as a possible zip bomb: {info.filename} is {_size(info.file_size)} packed "
            f"into {_size(info.compress_size)} (ratio {info.file_size / max(info.compress_size, 1):,.0f}, "
            f"more than {limits.ratio:g})"
        )


def check_zip_file(
    path: Path, limits: ZipLimits = DOCUMENT, *, what: str = "zip archive"
) -> list[zipfile.ZipInfo]:
    """The entries of the zip at `path`, once checked; ParseError if it is not a zip or is refused."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ParseError(f"corrupt {what} (not a valid zip archive)") from None
    check_archive(infos, limits)
    return infos


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"
