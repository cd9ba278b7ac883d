"""The CLI's side of the daemon's socket: a read command sent to the daemon that owns this
MEMEX_HOME's store, its frames relayed, its errors raised as the CLI would raise them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from memex import config, errors
from memex.daemon import rpc
from memex.errors import MemexError

Note = Callable[[str], None]


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
    name = str(reply.get("type") or "MemexError")
    known = getattr(errors, name, None)
    if isinstance(known, type) and issubclass(known, MemexError):
        exc = known(reply["error"])
    else:
        exc = type(name, (MemexError,), {})(reply["error"])
    exc.exit_code = int(reply.get("exit_code") or 1)
    return exc
