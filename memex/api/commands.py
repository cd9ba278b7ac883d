"""The read commands (search, ask, show, status, export) as the JSON that `--json` prints.

The CLI runs them on a Memex of its own, or, while a daemon owns the store, sends them to it
(memex.daemon.rpc) and the daemon runs them on its view of the store; either way this function builds
the answer, for a principal resolved at the edge, so both ways answer alike and check alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memex.errors import MemexError

COMMANDS = ("search", "ask", "show", "status", "export")

Note = Callable[[str], None]


def run(
    memex,
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
    if command == "search":
        query = _text(params, "query")
        dates = None if params.get("no_dates") else memex.find_dates(query)
        _say_dates(dates, on_note)
        hits = memex.search(
            query,
            principal=principal,
            k=_int(params, "k", 10),
            mode=str(params.get("mode") or "hybrid"),
            actor=actor,
            dates=dates,
            channel=channel,
            on_note=on_note,
        )
        return [hit.to_json() for hit in hits]
    if command == "ask":
        question = _text(params, "question")
        dates = None if params.get("no_dates") else memex.find_dates(question)
        _say_dates(dates, on_note)
        k = params.get("k")
        answer = memex.ask(
            question,
            principal=principal,
            k=None if k is None else _int(params, "k", 5),
            on_token=on_token,
            actor=actor,
            dates=dates,
            channel=channel,
        )
        if answer.dates_note and on_note is not None:
            on_note(answer.dates_note)
        return answer.to_json()
    if command == "show":
        hits = memex.show(_text(params, "source"), principal=principal, actor=actor, channel=channel)
        return [hit.to_json() for hit in hits]
    if command == "status":
        return memex.status(principal=principal)
    if command == "export":
        count = 0
        for hit in memex.export(principal=principal, actor=actor, channel=channel):
            count += 1
            if on_item is not None:
                on_item(hit.to_json())
        return count
    raise MemexError(f"unknown command {command!r}")


def _say_dates(dates, on_note: Note | None) -> None:
    if dates is not None and on_note is not None:
        on_note(f"Dates: {dates.describe()}; --no-dates for all dates.")


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MemexError(f"{name} is missing")
    return value


def _int(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000:
        raise MemexError(f"{name} must be a whole number from 1 to 10000")
    return value


def through_daemon(
    command: str,
    params: dict[str, Any],
    *,
    as_user: str | None,
    policy=None,
    on_token: Callable[[str], None] | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
    on_note: Note | None = None,
) -> tuple[bool, Any]:
    """(True, result) if a daemon owns this MEMEX_HOME's store and answered; (False, None) if no
    daemon runs. Who we are is not sent: the daemon asks the kernel."""
    import os

    from memex import config
    from memex.daemon import rpc

    paths = config.Paths(config.home())
    if not paths.socket.exists():
        return False, None
    sock = rpc.connect(paths.socket)
    if sock is None:  # a socket left by a daemon that was killed
        return False, None
    if params.get("model"):
        sock.close()
        raise MemexError(
            "the memex daemon owns the store and answers with its own model; stop it "
            "(memex daemon stop) to use --model, or set llm_model in config.toml"
        )

    def on_frame(frame: dict[str, Any]) -> None:
        if "token" in frame and on_token is not None:
            on_token(frame["token"])
        elif "item" in frame and on_item is not None:
            on_item(frame["item"])
        elif "note" in frame and on_note is not None:
            on_note(frame["note"])

    wire = {k: v for k, v in params.items() if k != "model"}
    if policy is not None:
        wire["policy"] = os.path.realpath(policy)
    reply = rpc.call(paths.socket, command, wire, as_user=as_user, on_frame=on_frame, sock=sock)
    if reply is None:
        return False, None
    if "error" in reply:
        raise remote_error(reply)
    return True, reply["result"]


def remote_error(reply: dict[str, Any]) -> MemexError:
    """The daemon's error as the exception the CLI would have raised itself (same type name, same
    exit code), so `--json` prints the same thing either way."""
    from memex import errors

    name = str(reply.get("type") or "MemexError")
    known = getattr(errors, name, None)
    if isinstance(known, type) and issubclass(known, MemexError):
        exc = known(reply["error"])
    else:
        exc = type(name, (MemexError,), {})(reply["error"])
    exc.exit_code = int(reply.get("exit_code") or 1)
    return exc
