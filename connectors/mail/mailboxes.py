"""Mail on disk: mbox files, Maildir folders (cur/new, flags, Maildir++ and nested folders),
folders of message files (MH, notmuch trees, a folder of .eml files), single .eml/.emlx/.msg
files, and message files without a suffix, recognised by their headers.

Listing reads headers only (and, for mbox, hashes each message's bytes); bodies are parsed later,
in the sandboxed workers, by the module-level functions the documents carry.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TypeAlias

from connectors.mail.document import CONNECTOR, canonical, message_document, source_id_for
from connectors.mail.headers import HEADER_LIMIT, Envelope, from_line_date, parse_headers, read_envelope
from connectors.mail.message import normalise_encoding, parse_message_bytes, parse_message_file
from connectors.mail.outlook import msg_envelope, parse_msg_file
from memex.documents import SourceDocument, failing_document
from memex.errors import ParseError

# A document and the envelope it was made from (None for a file that could not be read).
Found: TypeAlias = tuple[SourceDocument, Envelope | None]

MESSAGE_SUFFIXES = {".eml", ".emlx", ".msg"}
MBOX_SUFFIXES = {".mbox", ".mbx"}
SNIFF_BYTES = 8192
# Files mail programs keep inside a Maildir beside the messages.
MAILDIR_METADATA = re.compile(
    r"^(dovecot[-.].*|subscriptions|maildirfolder|courierimap.*|xapian.*|\.?mbsyncstate.*|"
    r"\.?uidvalidity|\.?isyncuidmap.*|\.mh_sequences|\.xfolders?|.*\.msf)$"
)
_KNOWN_HEADERS = {
    b"from", b"to", b"cc", b"bcc", b"subject", b"date", b"message-id", b"received", b"return-path",
    b"mime-version", b"delivered-to", b"in-reply-to", b"references", b"x-mailer", b"user-agent",
    b"content-type", b"sender", b"reply-to", b"envelope-to", b"x-original-to", b"newsgroups",
    b"path", b"content-transfer-encoding", b"list-id", b"dkim-signature", b"authentication-results",
}  # fmt: skip
_DEFINING_HEADERS = {b"from", b"message-id", b"received", b"return-path", b"delivered-to", b"date"}
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")
_SEPARATOR = re.compile(rb"^From [^\n]*\n", re.M)
_FROM_LINE = re.compile(rb"^From \S+.*\d{1,2}:\d{2}.*\d{4}")
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.M)


# --- recognising mail ------------------------------------------------------------------


def sniff(path: Path) -> str | None:
    """What a file's first bytes say it is: "mbox", "message" or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return None
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> str | None:
    head = normalise_encoding(head).replace(b"\r\n", b"\n")
    kind = "message"
    if head.startswith(b"From "):
        kind = "mbox"
        head = head.partition(b"\n")[2]
    known, defining = 0, 0
    lines = head.split(b"\n")
    complete = len(head) < SNIFF_BYTES
    for i, line in enumerate(lines):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t") and i > 0:
            continue
        match = _FIELD.match(line)
        if match is None:
            if i == len(lines) - 1 and not complete:
                break  # cut off by the sniff limit in the middle of a header
            return None
        name = match.group(1).lower()
        known += name in _KNOWN_HEADERS
        defining += name in _DEFINING_HEADERS
    return kind if known >= 2 and defining >= 1 else None


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def is_claimable_maildir(path: Path, depth: int = 0) -> bool:
    """A Maildir, and nothing but one: cur/new/tmp, its metadata files, sub-Maildirs, and loose
    message files. A folder that merely has a subfolder called "new" is not mail."""
    if depth > 8 or not is_maildir(path):
        return False
    try:
        entries = list(os.scandir(path))
    except OSError:
        return False
    for entry in entries:
        name = entry.name
        if name in ("cur", "new", "tmp") or MAILDIR_METADATA.match(name):
            continue
        if name.startswith("."):
            continue  # hidden: Maildir++ folders (read) or a tool's state (ignored)
        try:
            if entry.is_symlink():
                return False  # links are for the files walk to judge (memex.links)
            if entry.is_dir(follow_symlinks=False):
                if not is_claimable_maildir(Path(entry.path), depth + 1):
                    return False
            elif entry.is_file() and sniff(Path(entry.path)) is None:
                return False
        except OSError:
            return False
    for sub in ("cur", "new"):
        sample = _first_file(path / sub)
        if sample is not None and sniff(sample) is None:
            return False
    return True


def is_mail_folder(path: Path, depth: int = 0) -> bool:
    """A folder of mail and nothing else (MH folders, a folder of .eml files, a tree of message
    files): read as one mailbox, so its threads and duplicates are seen together."""
    if depth > 8:
        return False
    try:
        entries = list(os.scandir(path))
    except OSError:
        return False
    found = False
    for entry in entries:
        if entry.name.startswith(".") or MAILDIR_METADATA.match(entry.name):
            continue
        entry_path = Path(entry.path)
        try:
            if entry.is_symlink():
                return False  # links are for the files walk to judge (memex.links)
            if entry.is_dir(follow_symlinks=False):
                if not (is_claimable_maildir(entry_path, depth + 1) or is_mail_folder(entry_path, depth + 1)):
                    return False
                found = True
            elif entry.is_file():
                if file_kind(entry_path) is None:
                    return False
                found = True
        except OSError:
            return False
    return found


def read_mail_folder(folder: Path, name: str | None = None) -> Iterator[Found]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise ParseError(f"cannot read {folder}: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.startswith(".") or MAILDIR_METADATA.match(entry.name):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from read_maildir(path) if is_maildir(path) else read_mail_folder(path)
        elif entry.is_file(follow_symlinks=False):
            yield from read_file(path, folder=name)


def is_apple_mbox(path: Path) -> bool:
    """Apple Mail's export: a folder Name.mbox holding a file called mbox."""
    return path.suffix.lower() == ".mbox" and (path / "mbox").is_file()


def _first_file(folder: Path) -> Path | None:
    try:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.name.startswith(".") and entry.is_file():
                return Path(entry.path)
    except OSError:
        return None
    return None


# --- single files ------------------------------------------------------------------------


def file_kind(path: Path) -> str | None:
    """How to read a file: "mbox", "message", "emlx", "msg", or None (not mail)."""
    suffix = path.suffix.lower()
    if suffix in MBOX_SUFFIXES:
        return "mbox"
    if suffix == ".msg":
        return "msg"
    if suffix == ".emlx":
        return "emlx"
    if suffix == ".eml":
        return "message"
    if suffix == "" or ":2," in path.name:
        return sniff(path)
    return None


def read_file(path: Path, *, folder: str | None = None) -> Iterator[Found]:
    kind = file_kind(path)
    if kind == "mbox":
        yield from read_mbox(path, folder=folder)
    elif kind is not None:
        yield message_file_document(path, kind, folder=folder or folder_of(path), container=None)


def message_file_document(path: Path, kind: str, *, folder: str, container: Path | None) -> Found:
    """A file holding one message. Read from `container` (a Maildir), its URI is the Maildir's path
    and the Message-ID; a file of its own is cited by its path."""
    posix = path.as_posix()
    try:
        stat = path.stat()
        if stat.st_size == 0:
            raise ParseError("the message is empty")
        if kind == "msg":
            envelope = msg_envelope(path)
            parse = partial(parse_msg_file, posix)
            read_bytes = path.read_bytes
            raw = None
        else:
            raw = _head(path)
            if kind == "emlx":
                raw = raw.partition(b"\n")[2]
            if not normalise_encoding(raw).strip():
                raise ParseError("the message is empty")
            envelope = read_envelope(parse_headers(normalise_encoding(raw)))
            parse = partial(parse_message_file, posix, kind == "emlx")
            read_bytes = partial(file_canonical, posix, kind == "emlx")
            if envelope.message_id is None:
                raw = read_bytes()
    except ParseError as exc:
        return broken_document(path, str(exc), folder=folder), None
    except OSError as exc:
        return broken_document(path, f"cannot read: {exc.strerror or exc}", folder=folder), None
    source_id = source_id_for(envelope, raw) if kind != "msg" or envelope.message_id else _file_hash_id(path)
    if container is not None and envelope.message_id:
        uri = f"{container.as_posix()}#{envelope.message_id}"
    else:
        uri = posix
    doc = message_document(
        envelope,
        source_id=source_id,
        uri=uri,
        folder=folder,
        path=(container or path).as_posix(),
        fingerprint=f"{stat.st_size}:{stat.st_mtime_ns}",
        read_bytes=read_bytes,
        parse=parse,
    )
    return doc, envelope


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEADER_LIMIT)


def _file_hash_id(path: Path) -> str:
    return f"{CONNECTOR}:sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}"


def file_canonical(path: str, emlx: bool = False) -> bytes:
    raw = Path(path).read_bytes()
    if emlx:
        raw = raw.partition(b"\n")[2]
    return canonical(normalise_encoding(raw))


def folder_of(path: Path) -> str:
    """The mail folder a loose message file is in (a Maildir's cur/new/tmp count as the Maildir)."""
    parent = path.parent
    if parent.name in ("cur", "new", "tmp"):
        parent = parent.parent
    return parent.name or "/"


def broken_document(path: Path, reason: str, *, folder: str) -> SourceDocument:
    """A stand-in for a mail file that cannot be read at all, so that it is reported."""
    posix = path.as_posix()
    return failing_document(
        source_id=f"file:{posix}",
        uri=posix,
        title=path.name,
        connector=CONNECTOR,
        attributes={"connector": CONNECTOR, "path": posix, "folder": folder},
        reason=reason,
    )


# --- mbox --------------------------------------------------------------------------------


def read_mbox(path: Path, *, folder: str | None = None) -> Iterator[Found]:
    """Each message of an mbox (mboxo/mboxrd; From_ lines found where a blank line or a header
    follows them, so a body line starting with "From " does not split a message)."""
    folder = folder or (path.parent.stem if path.name == "mbox" and is_apple_mbox(path.parent) else path.stem)
    posix = path.as_posix()
    ranges = mbox_ranges(path)
    with open(path, "rb") as handle:
        for start, end, from_line in ranges:
            handle.seek(start)
            raw = handle.read(end - start)
            yield _mbox_document(posix, folder, start, end, from_line, raw)


def _mbox_document(posix: str, folder: str, start: int, end: int, from_line: bytes, raw: bytes) -> Found:
    digest = hashlib.sha256(raw).hexdigest()[:32]
    fallback = from_line_date(from_line.decode("latin-1"))
    envelope = read_envelope(parse_headers(raw), fallback_date=fallback)
    source_id = source_id_for(envelope, _unescape(raw))
    anchor = envelope.message_id or source_id.rpartition(":")[2]
    doc = message_document(
        envelope,
        source_id=source_id,
        uri=f"{posix}#{anchor}",
        folder=folder,
        path=posix,
        fingerprint=f"mbox:{digest}",
        read_bytes=partial(mbox_canonical, posix, start, end),
        parse=partial(
            parse_mbox_message, posix, start, end, digest, fallback.isoformat() if fallback else None
        ),
    )
    return doc, envelope


def mbox_ranges(path: Path) -> list[tuple[int, int, bytes]]:
    """(start, end, From_ line) of each message's bytes (headers and body, without the From_
    line and the blank line that ends it)."""
    size = path.stat().st_size
    if size == 0:
        return []
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if not data[:5] == b"From ":
            if sniff_bytes(data[:SNIFF_BYTES]) == "message":
                return [(0, size, b"")]  # one message saved with an .mbox name
            raise ParseError("not an mbox file: it does not start with a 'From ' line")
        starts = []
        for match in _SEPARATOR.finditer(data):
            pos = match.start()
            line = match.group(0)
            if pos == 0 or _separates(data, pos, match.end(), line):
                starts.append((pos, match.end(), line.rstrip(b"\r\n")))
        ranges = []
        for i, (_, body_start, line) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else size
            while end > body_start and data[end - 1 : end] in (b"\n", b"\r"):
                end -= 1
            if end > body_start:
                ranges.append((body_start, end, line))
        return ranges


def _separates(data: mmap.mmap, pos: int, line_end: int, line: bytes) -> bool:
    blank_before = data[pos - 2 : pos] == b"\n\n" or data[max(pos - 3, 0) : pos] == b"\n\r\n"
    next_line = data[line_end : line_end + 200].split(b"\n", 1)[0]
    header_after = _FIELD.match(next_line) is not None
    if blank_before:
        return header_after or _FROM_LINE.match(line) is not None
    return header_after and _FROM_LINE.match(line) is not None


def _read_range(path: str, start: int, end: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(end - start)


def _unescape(raw: bytes) -> bytes:
    """mboxrd quoting: ">From " in a body was "From ", ">>From " was ">From "."""
    return _ESCAPED_FROM.sub(rb"\1", raw)


def mbox_canonical(path: str, start: int, end: int) -> bytes:
    return canonical(_unescape(_read_range(path, start, end)))


def parse_mbox_message(path: str, start: int, end: int, digest: str, fallback_date: str | None = None):
    try:
        raw = _read_range(path, start, end)
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from None
    if hashlib.sha256(raw).hexdigest()[:32] != digest:
        raise ParseError("the mbox changed while it was being read; ingest it again")
    return parse_message_bytes(_unescape(raw), fallback_date)


# --- Maildir -----------------------------------------------------------------------------


def read_maildir(root: Path) -> Iterator[Found]:
    for name, folder in maildir_folders(root):
        for path, flags in maildir_messages(folder):
            if "T" in flags:
                continue  # trashed: deleted as far as the mail program is concerned
            kind = "message" if path.parent != folder else (sniff(path) or "message")
            yield message_file_document(path, kind, folder=name, container=folder)


def maildir_folders(root: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """(folder name, path): the Maildir itself ("INBOX"), Maildir++ folders (".Sent.2024" is
    "Sent/2024") and Maildirs nested inside it ("lists/notmuch")."""
    yield (prefix or _root_name(root), root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name in ("cur", "new", "tmp") or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if not is_maildir(path):
            continue
        if entry.name.startswith("."):
            if not prefix and len(entry.name) > 1:
                yield (entry.name[1:].replace(".", "/"), path)
        else:
            yield from maildir_folders(path, f"{prefix}/{entry.name}" if prefix else entry.name)


def _root_name(root: Path) -> str:
    """~/Maildir (the usual home of a Maildir++ account) is the INBOX; any other Maildir is
    called by its name."""
    return "INBOX" if root.name.lower() in ("maildir", "inbox", ".maildir", "") else root.name


def maildir_messages(folder: Path) -> Iterator[tuple[Path, str]]:
    """(path, flags) of each message in cur/ and new/, and loose message files beside them."""
    for sub in ("cur", "new", ""):
        directory = folder / sub if sub else folder
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or MAILDIR_METADATA.match(entry.name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            if not sub and sniff(Path(entry.path)) is None:
                continue
            flags = entry.name.rpartition(":2,")[2] if ":2," in entry.name else ""
            yield Path(entry.path), flags
