"""API tokens (SQLite in MEMEX_HOME/tokens.sqlite): a token names one policy user.

A token is `mx_<id>_<secret>`: `id` (12 hex characters) is public and names the token in lists,
revocations and the audit log; `secret` is 256 random bits. Only a salted SHA-256 of the secret is
stored, so the file alone lets nobody sign in (a fast hash is enough for 256-bit random secrets;
slow hashes are for passwords). The token is shown once, when it is created.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memex.errors import MemexError
from memex.store import sqlite

PREFIX = "mx"
TOKEN = re.compile(r"^mx_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# Recording the last use costs a write; once a minute per token is enough to tell stale tokens.
LAST_USED_RESOLUTION = 60.0
_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    expires REAL,
    revoked REAL,
    last_used REAL
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user);
"""


def m001_initial(db) -> None:
    sqlite.script(db, SCHEMA)


MIGRATIONS = [m001_initial]


class TokenError(MemexError):
    """A token operation cannot be done (unknown id, bad expiry)."""


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    note: str
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None

    def state(self, now: float | None = None) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= (now or time.time()):
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "note": self.note,
            "created": _iso(self.created),
            "expires": _iso(self.expires),
            "revoked": _iso(self.revoked),
            "last_used": _iso(self.last_used),
            "state": self.state(),
        }


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a presented token: `info` when it is valid, else a reason."""

    info: TokenInfo | None
    reason: str = ""


class TokenStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.db = sqlite.connect(path, migrations=MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, user: str, *, expires: float | None, note: str = "") -> tuple[str, TokenInfo]:
        """A new token for `user`: (the token, shown once; its record)."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        now = time.time()
        with self._lock:
            self.db.execute(
                "INSERT INTO tokens (id, user, salt, hash, note, created, expires) VALUES (?,?,?,?,?,?,?)",
                (token_id, user, salt, _digest(salt, secret), note, now, expires),
            )
        return f"{PREFIX}_{token_id}_{secret}", self._get(token_id)  # type: ignore[return-value]

    def verify(self, presented: str) -> Verdict:
        """Check a presented token (constant-time comparison of the hash)."""
        match = TOKEN.match(presented)
        if not match:
            return Verdict(None, "malformed token")
        token_id, secret = match.groups()
        with self._lock:
            row = self.db.execute("SELECT salt, hash FROM tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None or not hmac.compare_digest(_digest(row[0], secret), row[1]):
            return Verdict(None, "unknown token")
        info = self._get(token_id)
        assert info is not None
        state = info.state()
        if state != "active":
            return Verdict(None, f"{state} token")
        now = time.time()
        if info.last_used is None or now - info.last_used > LAST_USED_RESOLUTION:
            with self._lock:
                self.db.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (now, token_id))
        return Verdict(info)

    def revoke(self, id_or_user: str) -> list[TokenInfo]:
        """Revoke one token by id, or every active token of a user. Returns what was revoked."""
        now = time.time()
        with self._lock:
            ids = [
                row[0]
                for row in self.db.execute(
                    "SELECT id FROM tokens WHERE (id = ? OR user = ?) AND revoked IS NULL",
                    (id_or_user, id_or_user),
                )
            ]
            self.db.executemany("UPDATE tokens SET revoked = ? WHERE id = ?", [(now, i) for i in ids])
        return [info for info in (self._get(i) for i in ids) if info is not None]

    def list(self, *, user: str | None = None) -> list[TokenInfo]:
        query = "SELECT id FROM tokens" + (" WHERE user = ?" if user else "") + " ORDER BY created, id"
        with self._lock:
            ids = [row[0] for row in self.db.execute(query, (user,) if user else ())]
        return [info for info in (self._get(i) for i in ids) if info is not None]

    def _get(self, token_id: str) -> TokenInfo | None:
        with self._lock:
            row = self.db.execute(
                "SELECT id, user, note, created, expires, revoked, last_used FROM tokens WHERE id = ?",
                (token_id,),
            ).fetchone()
        return TokenInfo(*row) if row else None


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


def parse_expiry(text: str | None, *, now: float | None = None) -> float | None:
    """`never`, a duration (`90d`, `12h`, `30m`, `2w`) or a date (`2027-01-31`: the end of that
    day, UTC) -> epoch seconds, or None for never."""
    now = time.time() if now is None else now
    if text is None or text.strip().lower() == "never":
        return None
    text = text.strip().lower()
    duration = _DURATION.match(text)
    if duration:
        seconds = int(duration.group(1)) * _UNITS[duration.group(2)]
        if seconds <= 0:
            raise TokenError(f"--expires {text!r}: a duration must be positive")
        return now + seconds
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise TokenError(
            f"--expires {text!r}: use a duration (90d, 12h, 30m, 2w), a date (2027-01-31) or never"
        ) from None
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC).timestamp()
    if end <= now:
        raise TokenError(f"--expires {text!r} is in the past")
    return end


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).isoformat(timespec="seconds")
