"""The CLI's side of the daemon's socket: the daemon that owns this MEMEX_HOME's store, started
in the background by the first command that needs it (unless `daemon = false` or --no-daemon);
a read command or an ingest sent to it, its frames relayed, its errors raised as the CLI would
raise them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memex import config, errors
from memex.daemon import rpc
from memex.errors import MemexError

Note = Callable[[str], None]
STOPPING = "stopping after the document being read; what was read is kept (Ctrl-C again to leave now)"


def ensure_running(*, policy: Path | None, on_note: Note | None = None, start: bool = True) -> bool:
    """True if a daemon owns this MEMEX_HOME's store, starting one on demand (`start`) if none
    does: it keeps the models loaded, so later commands answer at once, and stops when idle.
    False where none runs and daemons are turned off (`daemon = false`, --no-daemon) or one
    cannot be started here (the command then opens the store itself)."""
    from memex.daemon import process

    paths = config.Paths(config.home())
    if process.running_pid(paths) is not None:
        return True
    if not start:
        return False
    settings = config.load_settings(paths)
    if not settings.daemon:
        return False
    if paths.root.exists() and not os.access(paths.root, os.W_OK | os.X_OK):
        return False  # someone else's home: read it directly, as its file modes allow
    if on_note is not None:
        on_note(
            f"starting memex in the background (keeps the models loaded; stops after "
            f"{settings.daemon_idle_minutes:g} min unused; --no-daemon to do without)"
        )
    try:
        process.start(paths, folders=[], policy_path=policy, on_demand=True)
    except process.DaemonRunning:
        return True  # another command started it a moment ago
    except MemexError as exc:
        if process.running_pid(paths) is not None:
            return True  # started by another command at the same time
        if on_note is not None:
            on_note(
                f"could not start memex in the background ({str(exc).splitlines()[0]}); see {paths.daemon_log}"
            )
        return False
    return True


def through_daemon(
    command: str,
    params: dict[str, Any],
    *,
    as_user: str | None,
    policy=None,
    on_token: Callable[[str], None] | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
    on_note: Note | None = None,
    start: bool = False,
) -> tuple[bool, Any]:
    """(True, result) if a daemon owns this MEMEX_HOME's store and answered; (False, None) if no
    daemon runs (`start`: one is started if none does, where that is possible). Who we are is
    not sent: the daemon asks the kernel."""
    paths = config.Paths(config.home())
    if start and not params.get("model"):
        ensure_running(policy=policy, on_note=on_note)
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


def ingest_through_daemon(
    targets: list[str],
    *,
    retry_failed: bool,
    options: dict[str, str],
    policy: Path | None,
    progress: Any,
    on_note: Note,
    start: bool = True,
) -> dict[str, Any] | None:
    """Hand an ingest to the daemon (started if need be) and relay its progress to `progress`;
    the report's JSON, or None if no daemon takes it. Ctrl-C asks the daemon to stop between
    documents and still returns the report of what was kept; a second Ctrl-C leaves at once
    (the daemon then stops on its own, also between documents)."""
    if not ensure_running(policy=policy, on_note=on_note, start=start):
        return None
    paths = config.Paths(config.home())
    sock = rpc.connect(paths.socket)
    if sock is None:
        return None
    wire: dict[str, Any] = {
        "targets": [
            os.path.abspath(os.path.expanduser(t)) if os.path.exists(os.path.expanduser(t)) else t
            for t in targets
        ],
        "retry_failed": retry_failed,
        "options": options,
    }
    if policy is not None:
        wire["policy"] = os.path.realpath(policy)
    job: int | None = None
    interrupted = False
    with sock, sock.makefile("rb") as replies:
        sock.sendall(rpc.request_line("ingest", wire))
        lines = iter(replies)
        while True:
            try:
                line = next(lines, None)
            except KeyboardInterrupt:
                if interrupted or job is None:
                    raise
                interrupted = True
                on_note(STOPPING)
                rpc.call(paths.socket, "cancel-ingest", {"job": job})
                continue
            if line is None:
                raise rpc.DaemonUnavailable(
                    "the memex daemon closed the connection during the ingest (see daemon.log)"
                )
            frame = json.loads(line)
            if "error" in frame:
                raise remote_error(frame)
            if "result" in frame:
                return frame["result"]
            if "job" in frame:
                job = frame["job"]
            elif "progress" in frame:
                _relay(frame["progress"], progress, on_note)


def _relay(body: dict[str, Any], progress: Any, on_note: Note) -> None:
    if "begin" in body:
        progress.begin(body["begin"], body.get("total"))
    elif "grow" in body:
        progress.grow(body["grow"], int(body.get("n") or 0))
    elif "advance" in body:
        progress.advance(body["advance"], int(body.get("n") or 1))
    elif "note" in body:
        on_note(str(body["note"]))
