"""IMAP accounts: imap://user@host[:port]/MAILBOX (STARTTLS) and imaps://user@host[:port]/MAILBOX
(TLS from the start), synchronised incrementally by UIDVALIDITY + UID.

How the incremental sync works without the connector touching the ledger:
- The connector keeps a local copy of the mailbox under MEMEX_HOME/mail/imap/<account>/: one file
  per message (the bytes the server sent) and state.json (UIDVALIDITY, and per UID the size and
  the envelope). It is the connector's own cache, like mbsync's or offlineimap's, and holds no
  password.
- A sync asks the server for the UIDs now in the mailbox (UID SEARCH UNDELETED), fetches only
  the UIDs it has not seen (BODY.PEEK[], so nothing is marked read), and drops the ones that
  are gone. If UIDVALIDITY changed, the cache is discarded and the mailbox fetched again.
- Every message on the server is yielded, with fingerprint imap:<uidvalidity>:<uid>:<size>, so
  ingest skips the unchanged ones after a stat-like comparison, parses the new ones from the
  cache, and removes the expunged ones because they are not yielded again (its usual rule for
  a root). Ids are mail:<Message-ID>, so a message already indexed from an mbox or a Maildir is
  the same document (the same content hash: nothing is embedded again).
- A sync that fails (server unreachable, bad login, connection lost) raises before anything is
  yielded, so ingest changes nothing; the state file is only replaced after a complete sync.

The password comes from the variable named by ?password_env=NAME, else MEMEX_IMAP_PASSWORD,
else the system keyring (service "memex", user "imap://USER@HOST") when the keyring package
is installed. It is never written anywhere, and never appears in an error.
"""

from __future__ import annotations

import hashlib
import imaplib
import ipaddress
import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from connectors.mail.document import message_document, source_id_for
from connectors.mail.headers import Envelope, parse_headers, read_envelope
from connectors.mail.mailboxes import Found, file_canonical
from connectors.mail.message import parse_message_file
from memex.errors import ParseError

SCHEMES = {"imap": 143, "imaps": 993}
PASSWORD_ENV = "MEMEX_IMAP_PASSWORD"
KEYRING_SERVICE = "memex"
OPTIONS = {"tls", "cafile", "password_env", "timeout"}
FETCH_BATCH_BYTES = 16 * 1024 * 1024
FETCH_BATCH_COUNT = 200
STATE_VERSION = 1


class ImapError(ParseError):
    """The IMAP account cannot be read (unreachable, refused login, no such mailbox)."""


@dataclass(frozen=True)
class Account:
    scheme: str
    user: str
    host: str
    port: int
    mailbox: str
    tls: str  # "tls" (imaps), "starttls", or "none" (only if asked for, or on loopback)
    cafile: str | None = None
    password_env: str | None = None
    timeout: float = 30.0

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}"

    @property
    def base_uri(self) -> str:
        port = "" if self.port == SCHEMES[self.scheme] else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        return f"{self.scheme}://{quote(self.user, safe='')}@{host}{port}/{quote(self.mailbox, safe='/')}"

    def message_uri(self, uidvalidity: int, uid: int, message_id: str | None) -> str:
        """The mailbox and the Message-ID (which survives the server renumbering its UIDs), or
        for a message without one RFC 5092's imap://user@host/INBOX;UIDVALIDITY=385759045/;UID=20."""
        if message_id:
            return f"{self.base_uri}#{message_id}"
        return f"{self.base_uri};UIDVALIDITY={uidvalidity}/;UID={uid}"


def is_imap_url(target: str) -> bool:
    return target.split("://", 1)[0].lower() in SCHEMES and "://" in target


def parse_url(url: str) -> Account:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ImapError(f"not an IMAP URL (imap://user@host/INBOX or imaps://...): {url}")
    if parts.password is not None:
        raise ImapError(
            f"put no password in the URL; set {PASSWORD_ENV} (or ?password_env=NAME) or store it in "
            f"the system keyring"
        )
    user = unquote(parts.username or "")
    if not user or not parts.hostname:
        raise ImapError("the URL needs a user and a host: imap://USER@HOST/INBOX")
    try:
        port = parts.port or SCHEMES[scheme]
    except ValueError:
        raise ImapError("the URL's port is not a number") from None
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ImapError(
            f"unknown option(s) {', '.join(unknown)} in the URL (known: {', '.join(sorted(OPTIONS))})"
        )
    tls = options.get("tls", "tls" if scheme == "imaps" else "starttls").lower()
    if tls not in ("tls", "starttls", "none"):
        raise ImapError("tls= must be tls, starttls or none")
    try:
        timeout = float(options.get("timeout", 30))
    except ValueError:
        raise ImapError("timeout= must be a number of seconds") from None
    return Account(
        scheme=scheme,
        user=user,
        host=parts.hostname,
        port=port,
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=tls,
        cafile=options.get("cafile"),
        password_env=options.get("password_env"),
        timeout=timeout,
    )


def password_for(account: Account) -> str:
    names = [account.password_env] if account.password_env else [PASSWORD_ENV]
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    try:
        import keyring  # optional: the system keyring (Secret Service, macOS Keychain, ...)

        value = keyring.get_password(KEYRING_SERVICE, f"imap://{account.label}")
    except Exception:  # not installed, or no keyring backend on this machine
        value = None
    if value:
        return value
    raise ImapError(
        f"no password for {account.label}: set {' or '.join(names)}, or store it in the system keyring "
        f"(keyring set {KEYRING_SERVICE} imap://{account.label})"
    )


# --- the sync ----------------------------------------------------------------------------


def read_imap(url: str, cache_root: Path) -> Iterator[Found]:
    account = parse_url(url)
    state = sync(account, cache_root / cache_key(account))
    yield from documents(account, state)


def cache_key(account: Account) -> str:
    slug = re.sub(r"[^A-Za-z0-9.@-]+", "_", f"{account.label}_{account.port}_{account.mailbox}")[:80]
    digest = hashlib.sha256(account.base_uri.encode()).hexdigest()[:12]
    return f"{slug}-{digest}"


@dataclass
class State:
    uidvalidity: int
    messages: dict[int, dict]  # uid -> {"size": n, "source_id": ..., "envelope": {...}}
    order: list[int]  # the UIDs on the server at the last sync, in order
    folder: Path

    def path_of(self, uid: int) -> Path:
        return self.folder / "messages" / f"{self.uidvalidity}-{uid}.eml"


def sync(account: Account, folder: Path) -> State:
    password = password_for(account)
    connection = connect(account, password)
    try:
        uidvalidity, uids = _select(connection, account)
        state = _load_state(folder, uidvalidity)
        (folder / "messages").mkdir(mode=0o700, parents=True, exist_ok=True)
        wanted = [uid for uid in uids if uid not in state.messages]
        for uid, raw in _fetch(connection, account, wanted, state):
            envelope = read_envelope(parse_headers(raw))
            state.messages[uid] = {
                "size": len(raw),
                "source_id": source_id_for(envelope, raw),
                "envelope": envelope.to_json(),
            }
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise ImapError(f"the IMAP sync with {account.label} failed: {_clean(exc, password)}") from None
    finally:
        _logout(connection)
    gone = [uid for uid in state.messages if uid not in set(uids)]
    for uid in gone:
        del state.messages[uid]
    state.order = [uid for uid in uids if uid in state.messages]
    _save_state(state, account)
    for uid in gone:
        state.path_of(uid).unlink(missing_ok=True)
    return state


def documents(account: Account, state: State) -> Iterator[Found]:
    for uid in state.order:
        entry = state.messages[uid]
        path = state.path_of(uid).as_posix()
        envelope = Envelope.from_json(entry["envelope"])
        doc = message_document(
            envelope,
            source_id=entry["source_id"],
            uri=account.message_uri(state.uidvalidity, uid, envelope.message_id),
            folder=account.mailbox,
            path=None,
            fingerprint=f"imap:{state.uidvalidity}:{uid}:{entry['size']}",
            read_bytes=partial(file_canonical, path),
            parse=partial(parse_message_file, path),
        )
        yield doc, envelope


# --- talking to the server ---------------------------------------------------------------


def connect(account: Account, password: str) -> imaplib.IMAP4:
    where = f"{account.host}:{account.port}"
    try:
        context = ssl.create_default_context(cafile=account.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ImapError(f"cannot load the CA file {account.cafile}: {exc}") from None
    connection: imaplib.IMAP4 | None = None
    try:
        if account.tls == "tls":
            connection = imaplib.IMAP4_SSL(
                account.host, account.port, ssl_context=context, timeout=account.timeout
            )
        else:
            connection = imaplib.IMAP4(account.host, account.port, timeout=account.timeout)
            if "STARTTLS" in connection.capabilities and account.tls == "starttls":
                connection.starttls(ssl_context=context)
            elif account.tls == "starttls" and not _loopback(account.host):
                raise ImapError(
                    f"the IMAP server {where} offers no STARTTLS, so the password would travel in clear "
                    f"text; use imaps:// if it speaks TLS, or add ?tls=none to the URL to accept that"
                )
    except ImapError:
        _logout(connection)
        raise
    except ssl.SSLError as exc:
        _logout(connection)
        raise ImapError(f"TLS with the IMAP server {where} failed: {exc.reason or exc}") from None
    except (OSError, imaplib.IMAP4.error) as exc:
        _logout(connection)
        raise ImapError(f"cannot reach the IMAP server {where}: {_clean(exc, password)}") from None
    try:
        connection.login(account.user, password)
    except (imaplib.IMAP4.error, OSError) as exc:
        _logout(connection)
        raise ImapError(
            f"IMAP login failed for {account.label} at {where}: {_clean(exc, password)}"
        ) from None
    return connection


def _select(connection: imaplib.IMAP4, account: Account) -> tuple[int, list[int]]:
    status, data = connection.select(_quoted(encode_mailbox(account.mailbox)), readonly=True)
    if status != "OK":
        raise ImapError(f"no mailbox {account.mailbox!r} for {account.label}: {_text(data)}")
    _, values = connection.response("UIDVALIDITY")
    try:
        uidvalidity = int(values[0])
    except (TypeError, ValueError, IndexError):
        raise ImapError(f"the server sent no UIDVALIDITY for {account.mailbox!r}") from None
    status, data = connection.uid("SEARCH", None, "UNDELETED")
    if status != "OK":
        raise ImapError(f"the server refused to list {account.mailbox!r}: {_text(data)}")
    uids = sorted({int(token) for line in data if line for token in line.split()})
    return uidvalidity, uids


def _fetch(
    connection: imaplib.IMAP4, account: Account, uids: list[int], state: State
) -> Iterator[tuple[int, bytes]]:
    """The bytes of each new message, in batches, written to the cache as they come."""
    if not uids:
        return
    sizes = _sizes(connection, uids)
    batch: list[int] = []
    batch_bytes = 0
    for uid in uids:
        if uid not in sizes:
            continue  # expunged between SEARCH and FETCH
        cached = state.path_of(uid)
        if cached.is_file() and cached.stat().st_size == sizes[uid]:
            yield uid, cached.read_bytes()  # fetched by a sync that did not finish
            continue
        batch.append(uid)
        batch_bytes += sizes[uid]
        if len(batch) >= FETCH_BATCH_COUNT or batch_bytes >= FETCH_BATCH_BYTES:
            yield from _fetch_batch(connection, batch, state)
            batch, batch_bytes = [], 0
    if batch:
        yield from _fetch_batch(connection, batch, state)


def _sizes(connection: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    status, data = connection.uid("FETCH", sequence_set(uids), "(RFC822.SIZE)")
    if status != "OK":
        raise imaplib.IMAP4.error(_text(data))
    sizes = {}
    for line in data:
        text = line[0] if isinstance(line, tuple) else line
        if not isinstance(text, bytes):
            continue
        uid = re.search(rb"UID (\d+)", text)
        size = re.search(rb"RFC822\.SIZE (\d+)", text)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _fetch_batch(connection: imaplib.IMAP4, uids: list[int], state: State) -> Iterator[tuple[int, bytes]]:
    status, data = connection.uid("FETCH", sequence_set(uids), "(UID BODY.PEEK[])")
    if status != "OK":
        raise imaplib.IMAP4.error(_text(data))
    for i, item in enumerate(data):
        if not isinstance(item, tuple) or len(item) != 2:
            continue
        head, raw = item
        match = re.search(rb"UID (\d+)", head)
        if match is None and i + 1 < len(data) and isinstance(data[i + 1], bytes):
            match = re.search(rb"UID (\d+)", data[i + 1])  # UID sent after the body
        if match is None:
            continue
        uid = int(match.group(1))
        _write_atomically(state.path_of(uid), raw)
        yield uid, raw


def _logout(connection: imaplib.IMAP4 | None) -> None:
    if connection is None:
        return
    try:
        connection.logout()
    except Exception:  # the connection is gone already
        try:
            connection.shutdown()
        except Exception:
            pass


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _clean(exc: BaseException, password: str) -> str:
    """An error's text for people: bytes decoded, the password never shown."""
    if isinstance(exc, socket.timeout | TimeoutError):
        text = "timed out"
    elif isinstance(exc, ConnectionRefusedError):
        text = "connection refused"
    elif isinstance(exc, socket.gaierror):
        text = "unknown host"
    else:
        text = _text(exc.args[0] if exc.args else exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            text = exc.strerror
    if password:
        text = text.replace(password, "***")
    return text


def _text(value) -> str:
    if isinstance(value, list):
        return " ".join(_text(v) for v in value if v)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def sequence_set(uids: list[int]) -> str:
    """1,2,3,7,9,10 as "1:3,7,9:10"."""
    ranges: list[list[int]] = []
    for uid in sorted(uids):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mailbox(name: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 5.1.3) for mailbox names outside ASCII."""
    out, pending = [], []

    def flush() -> None:
        if pending:
            encoded = "".join(pending).encode("utf-16-be")
            import base64

            out.append("&" + base64.b64encode(encoded).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


# --- the cache ---------------------------------------------------------------------------


def _load_state(folder: Path, uidvalidity: int) -> State:
    state = State(uidvalidity=uidvalidity, messages={}, order=[], folder=folder)
    try:
        data = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return state
    if data.get("version") != STATE_VERSION or data.get("uidvalidity") != uidvalidity:
        _clear(folder)  # UIDVALIDITY changed: every UID means something else now
        return state
    for uid, entry in (data.get("messages") or {}).items():
        if state.path_of(int(uid)).is_file():
            state.messages[int(uid)] = entry
    return state


def _save_state(state: State, account: Account) -> None:
    data = {
        "version": STATE_VERSION,
        "account": account.base_uri,
        "uidvalidity": state.uidvalidity,
        "messages": {str(uid): state.messages[uid] for uid in sorted(state.messages)},
    }
    _write_atomically(state.folder / "state.json", json.dumps(data).encode())


def _clear(folder: Path) -> None:
    messages = folder / "messages"
    if messages.is_dir():
        for path in messages.iterdir():
            path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a cache file only its owner may read (it is somebody's mail)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
