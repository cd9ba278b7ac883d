"""The read commands (search, ask, show, status, export, audit) by name, with JSON parameters,
as the JSON that `--json` prints: what the CLI runs on its own Memex and what the daemon runs
for a request on its socket (memex.daemon.rpc). Both go through the read facade
(memex.api.reads), for a principal resolved at the door, so both answer, check and fail alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memex.api.reads import Reads
from memex.errors import BadRequest

COMMANDS = ("search", "ask", "show", "status", "export", "audit", "conversations")
CONVERSATION_ACTIONS = ("list", "show", "start", "rename", "delete")

Note = Callable[[str], None]


def run(
    reads: Reads,
    command: str,
    params: dict[str, Any],
    *,
    principal,
    actor: str,
    channel: str,
    on_token: Callable[[str], None] | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
    on_note: Note | None = None,
) -> Any:
    """Run one read command. `on_token` gets the answer as the model writes it, `on_item` each
    exported chunk (export returns their count), `on_note` lines meant for stderr."""
    who = {"principal": principal, "actor": actor, "channel": channel}
    dates = not params.get("no_dates")
    if command == "search":
        hits = reads.search(
            params.get("query"),  # type: ignore[arg-type]  # the facade checks it
            k=params.get("k", 10),
            mode=str(params.get("mode") or "hybrid"),
            dates=dates,
            on_note=on_note,
            **who,
        )
        return [hit.to_json() for hit in hits]
    if command == "ask":
        answer = reads.ask(
            params.get("question"),  # type: ignore[arg-type]
            k=params.get("k"),
            dates=dates,
            on_token=on_token,
            on_note=on_note,
            conversation=params.get("conversation"),
            **who,
        )
        return answer.to_json()
    if command == "show":
        return [hit.to_json() for hit in reads.show(params.get("source"), **who)]  # type: ignore[arg-type]
    if command == "status":
        return reads.status(principal=principal)
    if command == "audit":
        return [e.to_json() for e in reads.audit(principal=principal, limit=params.get("limit", 50))]
    if command == "conversations":
        return _conversations(reads, params, principal)
    if command == "export":
        count = 0
        for hit in reads.export(**who):
            count += 1
            if on_item is not None:
                on_item(hit.to_json())
        return count
    raise BadRequest(f"unknown command {command!r}")


def _conversations(reads: Reads, params: dict[str, Any], principal) -> Any:
    action = params.get("action", "list")
    mine = reads.conversations
    if action == "list":
        return mine.list(principal=principal)
    if action == "start":
        return mine.start(str(params.get("title") or ""), principal=principal)
    if action not in CONVERSATION_ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(CONVERSATION_ACTIONS)}")
    conversation = params.get("id")
    if not isinstance(conversation, str) or not conversation:
        raise BadRequest("id is missing: which conversation (memex conversations list)")
    if action == "show":
        return mine.show(conversation, principal=principal)
    if action == "rename":
        return mine.rename(conversation, str(params.get("title") or ""), principal=principal)
    mine.delete(conversation, principal=principal)
    return {"deleted": conversation}
