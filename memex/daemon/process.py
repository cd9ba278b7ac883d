"""Running the watcher: in the foreground (`memex watch`), in the background (`memex daemon
start|stop|status`, or `python -m memex.daemon.process` under systemd).

One daemon per MEMEX_HOME. It holds an exclusive lock on MEMEX_HOME/daemon.pid for as long as it
runs, so a pid file left behind by a crash (kill -9, a power cut) is recognised as stale and never
blocks a start; the file itself is never removed (removing a lock file lets two processes lock two
different files). The store lock (memex.store.locking) stands behind it: a second writer of any kind is
refused with a message.

Tests: MEMEX_TEST_FAKE_MODELS set to the MEMEX_HOME path itself (the exact path, nothing else
turns it on) makes the daemon use the hashing embedder and the echoing fake model. Any other value
is ignored, with a warning in the log. An index remembers its embedding model, so one built with
the fakes refuses to open with the real model and the other way round: a mistake cannot mix them.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from memex import config
from memex.daemon import rpc
from memex.errors import MemexError
from memex.models.embeddings import SerialisedEmbedder
from memex.store.locking import FileLock

log = logging.getLogger("memex.daemon.watcher")

TEST_MODELS_ENV = "MEMEX_TEST_FAKE_MODELS"
START_TIMEOUT = 120.0
LOG_ROTATE_BYTES = 10 * 1024 * 1024


class DaemonRunning(MemexError):
    """A daemon already runs for this MEMEX_HOME."""

    exit_code = 3


def daemon_lock(path: Path) -> FileLock:
    """One daemon per home: the pid file, held exclusively while the daemon runs."""
    return FileLock(
        path,
        exclusive=True,
        record=lambda: f"{os.getpid()}\n".encode(),
        clear_on_release=True,
        refused=lambda holder: DaemonRunning(
            f"a memex daemon (pid {holder.get('pid') or '?'}) already runs for {path.parent}; only one may "
            f"(`memex daemon status` shows what it watches, `memex daemon stop` stops it)"
        ),
    )


def running_pid(paths: config.Paths) -> int | None:
    """The pid of the daemon running for this home, or None (also when the pid file is stale)."""
    try:
        fd = os.open(paths.daemon_pid, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stale_pid(paths: config.Paths) -> int | None:
    """The pid a daemon that did not stop cleanly left in the pid file (when none runs)."""
    if running_pid(paths) is not None:
        return None
    try:
        text = paths.daemon_pid.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode().strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


# -- running it ----------------------------------------------------------------------------------
def run(
    paths: config.Paths,
    *,
    folders: list[str],
    emit=lambda event: None,
    policy_path: Path | None = None,
    polling: bool | None = None,
    on_service=lambda service: None,
    on_demand: bool = False,
) -> None:
    """Run the watcher in this process until SIGTERM or SIGINT. `emit` gets its events;
    `on_service` the Watcher once it is built (for a live status line). `on_demand`: started
    by a command that needed it; it may watch nothing and stops after `daemon_idle_minutes`
    without a request while it watches nothing."""
    from memex.api.wiring import Memex
    from memex.daemon.watcher import Watcher

    lock = daemon_lock(paths.daemon_pid).acquire()
    memex = reader = server = reads = None
    try:
        config.initialise(paths)
        settings = config.load_settings(paths)
        folders = _folders(paths, settings, folders, required=not on_demand)
        embedder, model = _models(paths, settings)
        memex = Memex.open(
            home=paths.root,
            policy_path=policy_path,
            writable=True,
            overrides=None if polling is None else {"watch_polling": polling},
            embedder=embedder,
            model=model,
        )
        memex.index  # noqa: B018  # takes the store lock now: a second writer is refused here
        reader = memex.reader()  # one policy in force, re-read when its file changes
        idle = settings.daemon_idle_minutes * 60 if on_demand else None
        service = Watcher(memex, reader, folders=folders, emit=emit, idle_exit_seconds=idle)
        reads = service.reads
        on_service(service)
        server = rpc.Server(paths.socket, service.handle, mode=settings.socket_mode)
        server.start()
        _on_signals(service)
        _notify("READY=1")
        service.run()
    finally:
        _notify("STOPPING=1")
        for part in (server, reads, reader, memex):
            if part is not None:
                try:
                    part.close()
                except Exception:  # closing must not hide why we stopped
                    log.exception("closing %s", type(part).__name__)
        lock.release()


def _folders(
    paths: config.Paths, settings: config.Settings, given: list[str], *, required: bool = True
) -> list[str]:
    """The remembered folders and the given ones (remembered from now on)."""
    from memex.daemon.folders import outermost

    added = []
    for folder in given:
        root = os.path.normpath(os.path.abspath(os.path.expanduser(folder)))
        if not os.path.isdir(root):
            raise MemexError(
                f"{folder}: not a folder (memex watch keeps folders current; memex ingest reads files)"
            )
        added.append(root)
    folders = outermost([*settings.watched, *added])
    if list(settings.watched) != folders:
        config.save_watched(paths, folders)
    if not folders and required:
        raise MemexError("no folders to watch: give some (memex watch ~/Documents); they are remembered")
    return folders


def _models(paths: config.Paths, settings: config.Settings):
    """The embedder (serialised: the writer and the readers share it) and the model."""
    from memex.models.choice import configured_embedder

    value = os.environ.get(TEST_MODELS_ENV)
    fake = bool(value) and os.path.realpath(value) == os.path.realpath(paths.root)
    if value and not fake:
        log.warning(
            "%s is set but does not name this MEMEX_HOME: ignored; using the real models", TEST_MODELS_ENV
        )
    if fake:
        from memex.models.embeddings import HashingEmbedder
        from memex.models.llm import FakeModel

        log.warning("TEST MODE (%s): hashing embedder and echoing fake model", TEST_MODELS_ENV)
        return SerialisedEmbedder(HashingEmbedder()), FakeModel()
    return SerialisedEmbedder(configured_embedder(settings.embedding_model)), None


def _on_signals(service) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        if service.stopping.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: now
        log.info("signal %s: stopping", signum)
        service.stop()

    def reconcile(signum, frame):
        service.request_reconcile()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reconcile)


def _notify(message: str) -> None:
    """systemd's readiness protocol (Type=notify), if it started us."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        pass


def start(
    paths: config.Paths,
    *,
    folders: list[str],
    policy_path: Path | None = None,
    polling: bool = False,
    on_demand: bool = False,
) -> int:
    """Start the daemon as a background process; returns its pid once it answers on its socket.
    `on_demand`: for a command that needs it (it stops again when idle, see `run`)."""
    pid = running_pid(paths)
    if pid is not None:
        raise DaemonRunning(f"a memex daemon (pid {pid}) already runs for {paths.root}")
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.daemon_log.exists() and paths.daemon_log.stat().st_size > LOG_ROTATE_BYTES:
        os.replace(paths.daemon_log, paths.daemon_log.with_name(paths.daemon_log.name + ".1"))
    command = [sys.executable, "-m", "memex.daemon.process", *(["--poll"] if polling else [])]
    command += ["--on-demand"] if on_demand else []
    command += [os.path.abspath(os.path.expanduser(f)) for f in folders]
    env = {**os.environ, "MEMEX_HOME": str(paths.root)}
    if policy_path is not None:
        env["MEMEX_POLICY"] = str(Path(policy_path).resolve())
    offset = paths.daemon_log.stat().st_size if paths.daemon_log.exists() else 0
    fd = os.open(paths.daemon_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            env=env,
            cwd="/",
        )
    finally:
        os.close(fd)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise MemexError(f"the daemon did not start:\n{log_tail(paths, offset)}")
        try:
            if rpc.call(paths.socket, "ping") is not None and running_pid(paths) == child.pid:
                return child.pid
        except (MemexError, OSError, ValueError):
            pass
        time.sleep(0.1)
    raise MemexError(
        f"the daemon (pid {child.pid}) did not answer within {START_TIMEOUT:g} s; see {paths.daemon_log}"
    )


def stop(paths: config.Paths, *, timeout: float = 60.0, force: bool = False) -> int | None:
    """Stop the running daemon (SIGTERM; SIGKILL after `timeout` with `force`). Returns its pid,
    or None if none was running."""
    pid = running_pid(paths)
    if pid is None:
        return None
    if pid < 0:
        raise MemexError(f"a daemon holds {paths.daemon_pid} but its pid is unreadable")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    except PermissionError:
        raise MemexError(
            f"the daemon (pid {pid}) belongs to another account; stop it as that account"
        ) from None
    deadline = time.monotonic() + timeout
    while running_pid(paths) is not None:
        if time.monotonic() > deadline:
            if not force:
                raise MemexError(
                    f"the daemon (pid {pid}) did not stop within {timeout:g} s; --force kills it"
                )
            os.kill(pid, signal.SIGKILL)
            force = False
            deadline = time.monotonic() + 10
        time.sleep(0.1)
    return pid


def status(paths: config.Paths) -> dict[str, Any]:
    pid = running_pid(paths)
    out: dict[str, Any] = {"running": pid is not None, "home": str(paths.root), "log": str(paths.daemon_log)}
    if pid is None:
        settings = config.load_settings(paths) if paths.config.exists() else config.Settings()
        out["watched"] = [{"root": root, "mode": "stopped", "reason": ""} for root in settings.watched]
        stale = stale_pid(paths)
        if stale:
            out["stale_pid"] = stale  # it did not stop cleanly (killed, or the machine went down)
        return out
    out["pid"] = pid
    try:
        reply = rpc.call(paths.socket, "daemon-status")
    except MemexError as exc:
        out["note"] = str(exc)
        return out
    if reply is None:
        out["note"] = "starting (not answering on its socket yet)"
    elif "error" in reply:
        out["note"] = reply["error"]
    else:
        out.update(reply["result"])
    return out


def log_tail(paths: config.Paths, offset: int = 0, lines: int = 20) -> str:
    try:
        with open(paths.daemon_log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def describe(event: dict[str, Any]) -> str | None:
    """One line for a person (the log, the terminal); None for events not worth a line."""
    kind = event.get("event")
    root = event.get("root", "")
    if kind == "started":
        return f"memex daemon {event['pid']} watching {len(event['watched'])} folder(s) for {event['home']}"
    if kind == "watching":
        how = {"events": "by events", "scanning": "by scanning", "missing": "missing"}.get(
            event["mode"], event["mode"]
        )
        return f"{root}: {how}" + (f" ({event['reason']})" if event.get("reason") else "")
    if kind in ("batch", "reconcile"):
        parts = []
        if event["indexed"]:
            parts.append(f"{len(event['indexed'])} indexed")
        if event["removed"]:
            parts.append(f"{len(event['removed'])} removed")
        if event["failed"]:
            parts.append(f"{len(event['failed'])} not indexed")
        if kind == "reconcile":
            parts.append(f"{event['unchanged']} unchanged")
        if not parts:
            return None
        lines = [f"{kind} {root}: {', '.join(parts)} ({event['seconds']:.1f}s)"]
        lines += [f"  indexed {uri}" for uri in event["indexed"][:20]]
        lines += [f"  removed {uri}" for uri in event["removed"][:20]]
        lines += [f"  not indexed {f['source']}: {f['reason']}" for f in event["failed"][:20]]
        return "\n".join(lines)
    if kind in ("error", "note"):
        return f"{kind}: {root + ': ' if root else ''}{event.get('message', '')}"
    if kind == "stopped":
        return "memex daemon stopped"
    return None


def main(argv: list[str] | None = None) -> None:
    """The background daemon (started by `memex daemon start`, or by systemd)."""
    parser = argparse.ArgumentParser(prog="memex-daemon", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--poll", action="store_true", help="scan instead of using inotify events")
    parser.add_argument(
        "--on-demand", action="store_true", help="started by a command: stop when idle, watch nothing needed"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.argv = ["memex", "daemon"]  # what the store lock tells a second writer about us
    paths = config.Paths(config.home())
    policy = os.environ.get("MEMEX_POLICY")

    def emit(event: dict[str, Any]) -> None:
        line = describe(event)
        if line:
            log.info(line)

    try:
        run(
            paths,
            folders=args.folders,
            emit=emit,
            policy_path=Path(policy) if policy else None,
            polling=args.poll or None,
            on_demand=args.on_demand,
        )
    except MemexError as exc:
        log.error("%s", exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
