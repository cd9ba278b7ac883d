"""The audit log (SQLite in MEMEX_HOME): who asked what, and which chunks (ids and labels, never
their text) were served. Admins read all of it; anyone else only their own entries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memex.access import Principal
from memex.documents import Hit
from memex.store import sqlite


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: float
    principal: str
    actor: str
    channel: str
    action: str
    question: str
    chunk_ids: list[str]
    labels: list[list[str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "principal": self.principal,
            "actor": self.actor,
            "channel": self.channel,
            "action": self.action,
            "question": self.question,
            "chunk_ids": self.chunk_ids,
            "labels": self.labels,
        }


def m001_initial(db) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, time REAL NOT NULL,"
        " principal TEXT NOT NULL, actor TEXT NOT NULL, channel TEXT NOT NULL,"
        " action TEXT NOT NULL, question TEXT NOT NULL, chunk_ids TEXT NOT NULL,"
        " labels TEXT NOT NULL)"
    )


MIGRATIONS = [m001_initial]


class AuditLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite.connect(path, migrations=MIGRATIONS)

    def record(
        self,
        *,
        principal: Principal,
        action: str,
        question: str,
        hits: Iterable[Hit] = (),
        actor: str | None = None,
        channel: str = "cli",
    ) -> None:
        hits = list(hits)
        self.db.execute(
            "INSERT INTO audit (time, principal, actor, channel, action, question, chunk_ids, labels)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                time.time(),
                principal.name,
                actor or principal.name,
                channel,
                action,
                question,
                json.dumps([h.chunk_id for h in hits]),
                json.dumps([sorted(h.access.labels) for h in hits]),
            ),
        )

    def entries(self, *, reader: Principal, limit: int = 100) -> list[AuditEntry]:
        """The newest entries `reader` may see: all for an admin, else their own."""
        if not reader.known:
            return []
        query = "SELECT * FROM audit"
        args: tuple = ()
        if not reader.admin:
            query += " WHERE principal = ? OR actor = ?"
            args = (reader.name, reader.name)
        rows = self.db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [
            AuditEntry(
                id=row[0],
                time=row[1],
                principal=row[2],
                actor=row[3],
                channel=row[4],
                action=row[5],
                question=row[6],
                chunk_ids=json.loads(row[7]),
                labels=json.loads(row[8]),
            )
            for row in rows
        ]

    def close(self) -> None:
        self.db.close()
