"""`memex watch` and `memex daemon start|stop|status`: keeping watched folders indexed."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import typer

from memex.cli.output import emit as _emit
from memex.cli.output import fail as _fail
from memex.errors import MemexError

daemon_app = typer.Typer(help="Run the watcher in the background: start, stop, status.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
POLL = typer.Option(False, "--poll", help="Scan the folders instead of waiting for events (network drives).")


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    app.add_typer(daemon_app, name="daemon")


def _paths():
    from memex import config

    return config.Paths(config.home())


def _policy(ctx: typer.Context) -> Optional[Path]:
    return ctx.find_root().params.get("policy")


def watch(
    ctx: typer.Context,
    folders: Optional[list[str]] = typer.Argument(
        None, help="Folders to keep indexed (remembered in config.toml). None: the remembered ones."
    ),
    remove: bool = typer.Option(
        False, "--remove", help="Stop watching FOLDERS (they stay indexed; `memex forget` removes them)."
    ),
    poll: bool = POLL,
    as_json: bool = typer.Option(False, "--json", help="Print events as JSON lines on stdout."),
) -> None:
    """Keep folders indexed as files change, in the foreground (Ctrl-C stops). If the daemon
    already runs, FOLDERS are handed to it."""
    from memex.daemon import process as daemon_process
    from memex.daemon import rpc

    paths = _paths()
    folders = folders or []
    try:
        if remove:
            _unwatch(paths, folders, as_json)
            return
        if daemon_process.running_pid(paths) is not None:
            from memex import config

            folders = folders or list(config.load_settings(paths).watched)
            if not folders:
                raise MemexError(
                    f"memex runs in the background (pid {daemon_process.running_pid(paths)}) and no "
                    f"folder is remembered to watch: name them (memex watch ~/Documents) and it "
                    f"watches them from now on"
                )
            _hand_over(paths, folders, as_json)
            return
        printer = _Printer(as_json=as_json, live=sys.stderr.isatty() and not as_json)
        try:
            daemon_process.run(
                paths,
                folders=folders,
                emit=printer.event,
                policy_path=_policy(ctx),
                polling=True if poll else None,
                on_service=printer.attach,
            )
        finally:
            printer.close()
    except (MemexError, rpc.DaemonUnavailable) as exc:
        _fail(exc, as_json)


def _hand_over(paths, folders: list[str], as_json: bool) -> None:
    from memex.daemon import process as daemon_process
    from memex.daemon import rpc

    absolute = [os.path.abspath(os.path.expanduser(f)) for f in folders]
    reply = rpc.call(paths.socket, "watch", {"folders": absolute})
    if reply is None:
        raise MemexError("the daemon is starting or stopping; try again in a moment")
    if "error" in reply:
        raise MemexError(reply["error"])
    result = reply["result"]
    if as_json:
        _emit(result)
    else:
        for folder in result["folders"]:
            typer.echo(
                f"memex in the background (pid {daemon_process.running_pid(paths)}) watches {folder}; "
                f"it keeps it indexed."
            )


def _unwatch(paths, folders: list[str], as_json: bool) -> None:
    from memex import config
    from memex.daemon import process as daemon_process
    from memex.daemon import rpc

    if not folders:
        raise MemexError("--remove needs the folders to stop watching")
    roots = [os.path.normpath(os.path.abspath(os.path.expanduser(f))) for f in folders]
    if daemon_process.running_pid(paths) is not None:
        reply = rpc.call(paths.socket, "unwatch", {"folders": roots})
        if reply is not None and "error" in reply:
            raise MemexError(reply["error"])
    settings = config.load_settings(paths)
    kept = [w for w in settings.watched if w not in roots]
    if kept != list(settings.watched):
        config.save_watched(paths, kept)
    if as_json:
        _emit({"removed": roots, "watched": kept})
    else:
        for root in roots:
            typer.echo(f"No longer watching {root} (still indexed; `memex forget {root}` removes it).")


class _Printer:
    """Events as JSON lines, or as lines for a person with a live status line on a terminal."""

    def __init__(self, *, as_json: bool, live: bool) -> None:
        self.as_json = as_json
        self.live = live
        self.service = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, service) -> None:
        self.service = service
        if self.live:
            self._thread = threading.Thread(target=self._refresh, name="memex-status", daemon=True)
            self._thread.start()

    def event(self, event: dict[str, Any]) -> None:
        from memex.daemon.process import describe

        if self.as_json:
            with self._lock:
                sys.stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
                sys.stdout.flush()
            return
        line = describe(event)
        if line is None:
            return
        with self._lock:
            if self.live:
                stamp = time.strftime("%H:%M:%S")
                sys.stderr.write(
                    "\r\033[K" + "\n".join(f"{stamp} {part}" for part in line.splitlines()) + "\n"
                )
                sys.stderr.write(self._status_line())
                sys.stderr.flush()
            else:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

    def _status_line(self) -> str:
        service = self.service
        if service is None:
            return ""
        counts = service.counts
        modes = sorted({w["mode"] for w in service.watched()})
        state = service.busy or ("settling" if len(service.debouncer) else "idle")
        if service.ahead.busy:
            state += f" · {service.ahead.busy} long file(s) in the background"
        return (
            f"\r\033[Kwatching {len(service.roots)} folder(s) ({', '.join(modes)}) · {state} · "
            f"waiting {len(service.debouncer)} · indexed {counts['indexed']} · removed {counts['removed']} · "
            f"not indexed {counts['failed']} · Ctrl-C stops"
        )[:300]

    def _refresh(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                sys.stderr.write(self._status_line())
                sys.stderr.flush()

    def close(self) -> None:
        self._stop.set()
        if self.live:
            with self._lock:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()


@daemon_app.command("start")
def daemon_start(
    ctx: typer.Context,
    folders: Optional[list[str]] = typer.Argument(
        None, help="Folders to watch as well as the remembered ones (remembered from now on)."
    ),
    poll: bool = POLL,
    as_json: bool = JSON,
) -> None:
    """Start the watcher in the background (log: MEMEX_HOME/daemon.log)."""
    from memex.daemon import process as daemon_process
    from memex.daemon import rpc

    paths = _paths()
    try:
        if daemon_process.running_pid(paths) is not None and folders:
            _hand_over(paths, folders, as_json)
            return
        pid = daemon_process.start(paths, folders=folders or [], policy_path=_policy(ctx), polling=poll)
        info = daemon_process.status(paths)
    except (MemexError, rpc.DaemonUnavailable) as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(info)
        return
    typer.echo(f"memex daemon started (pid {pid}); log: {paths.daemon_log}")
    for watched in info.get("watched", []):
        typer.echo(f"  watching {watched['root']} ({watched['mode']})")


@daemon_app.command("stop")
def daemon_stop(
    force: bool = typer.Option(False, "--force", help="Kill it if it has not stopped within 60 s."),
    as_json: bool = JSON,
) -> None:
    """Stop the background watcher (it finishes the file it is writing)."""
    from memex.daemon import process as daemon_process

    paths = _paths()
    try:
        pid = daemon_process.stop(paths, force=force)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"stopped": pid is not None, "pid": pid})
    elif pid is None:
        typer.echo("No memex daemon runs for this MEMEX_HOME.")
    else:
        typer.echo(f"Stopped the memex daemon (pid {pid}).")


@daemon_app.command("status")
def daemon_status(as_json: bool = JSON) -> None:
    """Whether the watcher runs, what it watches and how, and what it did last."""
    from memex.daemon import process as daemon_process

    paths = _paths()
    try:
        info = daemon_process.status(paths)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(info)
        return
    if not info["running"]:
        typer.echo(f"No memex daemon runs for {info['home']}.")
        if info.get("stale_pid"):
            typer.echo(
                f"The last one (pid {info['stale_pid']}) did not stop cleanly; it catches up when started."
            )
    else:
        uptime = info.get("uptime_seconds")
        typer.echo(
            f"memex daemon pid {info['pid']}"
            + (f", up {uptime / 60:.0f} min" if uptime is not None else "")
            + (f", {info['memory_mb']:.0f} MB" if info.get("memory_mb") else "")
        )
        if info.get("note"):
            typer.echo(f"  {info['note']}")
        if "counts" in info:
            c = info["counts"]
            typer.echo(
                f"  {c['indexed']} indexed, {c['removed']} removed, {c['failed']} not indexed since start; "
                f"{info['queue']} waiting; {info['busy'] or 'idle'}"
                + (
                    f"; {info['in_background']} long file(s) read in the background"
                    if info.get("in_background")
                    else ""
                )
            )
    for watched in info.get("watched", []):
        typer.echo(
            f"  {watched['root']}: {watched['mode']}"
            + (f" ({watched['reason']})" if watched.get("reason") else "")
        )
    typer.echo(f"  log: {info['log']}")
