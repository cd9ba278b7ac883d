"""Reading an export whether it is a folder or a .zip of one, sniffing files by their content, and
handing files found in an export to the document parsers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath

from connectors import zipcheck
from connectors.fileparse import MEDIA, parse_file, supported_extensions
from memex.documents import Element
from memex.errors import ParseError

SNIFF_BYTES = 64 * 1024


class Export:
    """The files of an export: a folder, or a zip (optionally with everything under one top
    folder). Paths are POSIX and relative to the export's root."""

    def __init__(self, path: Path, *, root_marker: str | None = None) -> None:
        self.path = path
        self.is_zip = path.is_file()
        self.prefix = ""
        self._zip: zipfile.ZipFile | None = None
        self._names: dict[str, zipfile.ZipInfo] = {}
        if self.is_zip:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ParseError(f"not a readable zip file ({exc})") from None
            try:
                zipcheck.check_archive(self._zip.infolist(), zipcheck.EXPORT)
            except ParseError:
                self._zip.close()
                raise
            infos = [i for i in self._zip.infolist() if not i.is_dir()]
            if root_marker:
                self.prefix = zip_prefix([i.filename for i in infos], root_marker) or ""
            self._names = {
                i.filename[len(self.prefix) :]: i for i in infos if i.filename.startswith(self.prefix)
            }

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def location(self, name: str) -> str:
        """Where a file of the export is, for attributes and messages."""
        return f"{self.path.as_posix()}/{name}" if name else self.path.as_posix()

    def exists(self, name: str) -> bool:
        if self.is_zip:
            return name in self._names
        return (self.path / name).is_file()

    def inside(self, name: str) -> bool:
        """Whether a path an export's message names stays inside the export (a hostile export
        must not make memex index "../../home/me/.ssh/id_rsa")."""
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
            return False
        if self.is_zip:
            return True
        root = self.path.resolve()
        try:
            (self.path / name).resolve().relative_to(root)
        except (ValueError, OSError):
            return False
        return True

    def read(self, name: str) -> bytes:
        if self.is_zip:
            info = self._names.get(name)
            if info is None:
                raise FileNotFoundError(name)
            zipcheck.check_entry(info)
            check_size(info.file_size, name)
            assert self._zip is not None
            try:
                return self._zip.read(info)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError) as exc:
                raise ParseError(f"{name}: cannot be read from the zip ({exc})") from None
        return read_capped(self.path / name, name)

    def folders(self) -> list[str]:
        """Top-level folders, sorted."""
        if self.is_zip:
            return sorted({n.split("/", 1)[0] for n in self._names if "/" in n})
        return sorted(e.name for e in os.scandir(self.path) if e.is_dir() and not e.name.startswith("."))

    def files_in(self, folder: str) -> list[str]:
        """The files directly in a folder (relative names including the folder), sorted."""
        if self.is_zip:
            start = folder.rstrip("/") + "/" if folder else ""
            return sorted(n for n in self._names if n.startswith(start) and "/" not in n[len(start) :])
        base = self.path / folder if folder else self.path
        try:
            entries = sorted(e.name for e in os.scandir(base) if e.is_file())
        except OSError:
            return []
        return [f"{folder}/{name}" if folder else name for name in entries]

    def locator(self, name: str) -> Callable[[], tuple[Callable[[], list[Element]], str | None]] | None:
        """For a file of the export that the document parsers read: a function giving (parse,
        fingerprint). None for files that are absent, media, or of a type nothing reads."""
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in MEDIA or suffix not in supported_extensions() or not self.inside(name):
            return None
        if not self.exists(name):
            return None
        if self.is_zip:
            info = self._names[name]
            fingerprint = f"zip:{info.CRC:08x}:{info.file_size}"
            return lambda: (partial(parse_zip_member, self.path, self.prefix + name), fingerprint)
        path = self.path / name

        def locate() -> tuple[Callable[[], list[Element]], str | None]:
            try:
                stat = path.stat()
                fingerprint = f"{stat.st_mtime_ns}:{stat.st_size}"
            except OSError:
                fingerprint = None
            return partial(parse_file, path), fingerprint

        return locate


def zip_prefix(names: list[str], marker: str) -> str | None:
    """The folder of the zip `marker` is in: "" at the top, "folder/" one folder down, else None."""
    if marker in names:
        return ""
    for name in names:
        parts = name.split("/")
        if len(parts) == 2 and parts[1] == marker:
            return parts[0] + "/"
    return None


def parse_zip_member(zip_path: Path, member: str) -> list[Element]:
    """Parse one file inside a zip (runs in the sandboxed worker): extract it to a temporary
    folder, keeping its name so the parser knows its type."""
    folder = tempfile.mkdtemp(prefix="memex-chat-")
    try:
        target = Path(folder) / PurePosixPath(member).name
        with zipfile.ZipFile(zip_path) as archive:
            info = archive.getinfo(member)
            zipcheck.check_entry(info)
            with archive.open(info) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
        return parse_file(target)
    except KeyError:
        raise ParseError(f"{member} is no longer in {zip_path.name}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseError(f"cannot read {member} from {zip_path.name}: {exc}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- sniffing ----------------------------------------------------------------------------------


def head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    """The first bytes of a file (cached by path, size and mtime: several connectors sniff the
    same file during a folder walk)."""
    try:
        stat = path.stat()
    except OSError:
        return b""
    return _head(str(path), stat.st_size, stat.st_mtime_ns, n)


@lru_cache(maxsize=256)
def _head(path: str, size: int, mtime: int, n: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(n)
    except OSError:
        return b""


def head_text(data: bytes) -> str:
    """Text of the start of a file, tolerating a character cut at the end."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="replace")


def zip_names(path: Path) -> list[str]:
    try:
        stat = path.stat()
    except OSError:
        return []
    return list(_zip_names(str(path), stat.st_size, stat.st_mtime_ns))


@lru_cache(maxsize=64)
def _zip_names(path: str, size: int, mtime: int) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(path) as archive:
            return tuple(i.filename for i in archive.infolist() if not i.is_dir())
    except (zipfile.BadZipFile, OSError, ValueError):
        return ()


# Chat files are parsed in the main process (conversations keep the export open), so their size is
# bounded instead: JSON costs several times its size in memory once parsed.
MAX_CHAT_FILE_MB = 256


def check_size(size: int, name: str) -> None:
    if size > MAX_CHAT_FILE_MB * 1_000_000:
        raise ParseError(
            f"{name} is {size / 1e6:,.0f} MB, more than the {MAX_CHAT_FILE_MB} MB one file of a chat "
            f"export may have (it is parsed whole); export the chat in parts"
        )


def read_capped(path: Path, name: str | None = None) -> bytes:
    """A chat export file's bytes, refused beyond MAX_CHAT_FILE_MB before anything is read."""
    check_size(path.stat().st_size, name or path.name)
    return path.read_bytes()


def load_json(data: bytes, name: str) -> object:
    """Parsed JSON, or ParseError saying what is wrong with the file and where."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "chat exports are UTF-8, so the file is damaged or not an export"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ParseError(f"{name} is nested too deeply to be an export") from None


def fingerprint_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_JSON_KEY = re.compile(rb'"([A-Za-z_]+)"\s*:')


def json_keys(data: bytes) -> set[str]:
    """The keys named in the first bytes of a JSON file (for sniffing, not parsing)."""
    return {m.group(1).decode() for m in _JSON_KEY.finditer(data)}
