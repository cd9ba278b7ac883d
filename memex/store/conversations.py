"""Conversations, stored per user in MEMEX_HOME/conversations.sqlite.

A conversation belongs to the policy user who started it and to nobody else (admins included:
they read the audit log, not other people's chats). Each turn keeps the question, the standalone
question that was searched, the answer as shown, its citations and evidence, and the ids of the
chunks (and their sources) it was built from, so that a turn built from something its owner can
no longer read can be withheld (memex.api.conversing). Deleting a conversation deletes its rows
(secure_delete overwrites them) and empties the write-ahead log.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from memex.errors import BadRequest, MemexError
from memex.store import sqlite

MAX_TURNS = 200  # per conversation: a chat is not an archive
MAX_TITLE = 200


class NoSuchConversation(MemexError):
    """No conversation with that id belongs to the asker (HTTP 404)."""


@dataclass(frozen=True)
class Turn:
    n: int
    question: str
    standalone: str
    answer: str
    citations: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    chunk_ids: tuple[str, ...]
    source_ids: tuple[str, ...]
    created: float


@dataclass
class Conversation:
    id: str
    owner: str
    title: str
    created: float
    updated: float
    turns: list[Turn] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "created": self.created, "updated": self.updated}


def m001_initial(db: sqlite3.Connection) -> None:
    sqlite.script(
        db,
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            title TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE INDEX conversations_owner ON conversations(owner, updated);
        CREATE TABLE turns (
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            question TEXT NOT NULL,
            standalone TEXT NOT NULL,
            answer TEXT NOT NULL,
            citations TEXT NOT NULL,
            evidence TEXT NOT NULL,
            chunk_ids TEXT NOT NULL,
            source_ids TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (conversation_id, n)
        );
        """,
    )


def m002_served_answers(db: sqlite3.Connection) -> None:
    """Answers given where the client keeps the conversation (the OpenAI door): what each was
    built from, by a digest of its text, so that history sent back can be checked."""
    sqlite.script(
        db,
        """
        CREATE TABLE served_answers (
            owner TEXT NOT NULL,
            digest TEXT NOT NULL,
            chunk_ids TEXT NOT NULL,
            source_ids TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (owner, digest)
        );
        """,
    )


MIGRATIONS = [m001_initial, m002_served_answers]
MAX_SERVED = 10_000  # per user: the oldest are dropped (their text then counts as unknown)


class ConversationStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite.connect(path, migrations=MIGRATIONS, foreign_keys=True)

    def close(self) -> None:
        self.db.close()

    def create(self, owner: str, title: str) -> Conversation:
        now = time.time()
        # Hex: an id may be typed after `memex conversations show`, where one that began with
        # "-" (as one in 64 of token_urlsafe's do) would be read as an option.
        conversation = Conversation(secrets.token_hex(12), owner, _title(title), now, now)
        with sqlite.transaction(self.db):
            self.db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                (conversation.id, owner, conversation.title, now, now),
            )
        return conversation

    def list(self, owner: str, *, limit: int = 100) -> list[Conversation]:
        rows = self.db.execute(
            "SELECT id, owner, title, created, updated FROM conversations WHERE owner = ? "
            "ORDER BY updated DESC LIMIT ?",
            (owner, limit),
        ).fetchall()
        return [Conversation(*row) for row in rows]

    def get(self, conversation_id: str, owner: str) -> Conversation:
        """The owner's conversation with its turns; NoSuchConversation for anyone else's, as for
        one that does not exist."""
        row = self.db.execute(
            "SELECT id, owner, title, created, updated FROM conversations WHERE id = ? AND owner = ?",
            (conversation_id, owner),
        ).fetchone()
        if row is None:
            raise NoSuchConversation(f"no conversation {conversation_id!r} of yours")
        conversation = Conversation(*row)
        rows = self.db.execute(
            "SELECT n, question, standalone, answer, citations, evidence, chunk_ids, source_ids, created "
            "FROM turns WHERE conversation_id = ? ORDER BY n",
            (conversation_id,),
        ).fetchall()
        conversation.turns = [
            Turn(
                n,
                question,
                standalone,
                answer,
                json.loads(citations),
                json.loads(evidence),
                tuple(json.loads(chunk_ids)),
                tuple(json.loads(source_ids)),
                created,
            )
            for n, question, standalone, answer, citations, evidence, chunk_ids, source_ids, created in rows
        ]
        return conversation

    def add_turn(self, conversation_id: str, owner: str, turn: Turn) -> Turn:
        """`turn` appended (its `n` and `created` are set here)."""
        with sqlite.transaction(self.db):
            if (
                self.db.execute(
                    "SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
                ).fetchone()
                is None
            ):
                raise NoSuchConversation(f"no conversation {conversation_id!r} of yours")
            (count,) = self.db.execute(
                "SELECT COUNT(*) FROM turns WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            if count >= MAX_TURNS:
                raise BadRequest(
                    f"this conversation has {MAX_TURNS} turns, the most it may have: start a new one"
                )
            stored = replace(turn, n=count + 1, created=time.time())
            self.db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    stored.n,
                    stored.question,
                    stored.standalone,
                    stored.answer,
                    json.dumps(stored.citations),
                    json.dumps(stored.evidence),
                    json.dumps(list(stored.chunk_ids)),
                    json.dumps(list(stored.source_ids)),
                    stored.created,
                ),
            )
            self.db.execute(
                "UPDATE conversations SET updated = ? WHERE id = ?", (stored.created, conversation_id)
            )
        return stored

    def rename(self, conversation_id: str, owner: str, title: str) -> None:
        with sqlite.transaction(self.db):
            cursor = self.db.execute(
                "UPDATE conversations SET title = ? WHERE id = ? AND owner = ?",
                (_title(title), conversation_id, owner),
            )
        if cursor.rowcount == 0:
            raise NoSuchConversation(f"no conversation {conversation_id!r} of yours")

    def delete(self, conversation_id: str, owner: str) -> None:
        """Gone for good: rows overwritten (secure_delete), the log emptied."""
        with sqlite.transaction(self.db):
            cursor = self.db.execute(
                "DELETE FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
            )
        if cursor.rowcount == 0:
            raise NoSuchConversation(f"no conversation {conversation_id!r} of yours")
        sqlite.truncate_wal(self.db)

    # -- answers whose conversation the client keeps --
    def remember_answer(
        self, owner: str, text: str, chunk_ids: tuple[str, ...], source_ids: tuple[str, ...]
    ) -> None:
        with sqlite.transaction(self.db):
            self.db.execute(
                "INSERT OR REPLACE INTO served_answers VALUES (?, ?, ?, ?, ?)",
                (
                    owner,
                    answer_digest(text),
                    json.dumps(list(chunk_ids)),
                    json.dumps(list(source_ids)),
                    time.time(),
                ),
            )
            self.db.execute(
                "DELETE FROM served_answers WHERE owner = ? AND digest NOT IN "
                "(SELECT digest FROM served_answers WHERE owner = ? ORDER BY created DESC LIMIT ?)",
                (owner, owner, MAX_SERVED),
            )

    def served_answer(self, owner: str, text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(chunk ids, source ids) of an answer given to `owner` with this text, or None."""
        row = self.db.execute(
            "SELECT chunk_ids, source_ids FROM served_answers WHERE owner = ? AND digest = ?",
            (owner, answer_digest(text)),
        ).fetchone()
        return None if row is None else (tuple(json.loads(row[0])), tuple(json.loads(row[1])))


def answer_digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def _title(title: str) -> str:
    title = " ".join(str(title).split())
    if not title:
        raise BadRequest("a conversation's title must not be empty")
    return title[:MAX_TITLE]
