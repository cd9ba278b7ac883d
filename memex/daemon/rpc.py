"""The daemon's local socket: JSON lines over a Unix socket in MEMEX_HOME (mode 0600 unless
`socket_mode` in config.toml opens it to the file's group).

A request is one line: {"protocol": 1, "command": ..., "params": {...}, "as_user": ...}. The answer
is any number of frames ({"token": ...} while a model writes, {"item": ...} for exports) and then
one final frame, {"result": ...} or {"error": ..., "type": ..., "exit_code": ...}.

Who asks is never read from the request: the server takes the peer's uid from the kernel
(SO_PEERCRED) and its account name from the password database; the daemon maps that account to a
policy user exactly as the CLI maps its own, and honours `as_user` only for admins.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memex.errors import MemexError

PROTOCOL = 1
MAX_LINE = 1 << 20  # a request is a question, not a document
READ_TIMEOUT = 30.0  # seconds a client may take to send its request
MAX_PATH = 100  # sun_path holds 108 bytes; longer paths go through /proc/self/fd


class DaemonUnavailable(MemexError):
    """There is a socket but it cannot be used (permissions, a daemon too old or too new)."""


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int
    user: str  # the account name of `uid`


def peer_of(sock: socket.socket) -> Peer:
    """The process on the other end, as the kernel tells (not as it says)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid:{uid}"  # an account without a name maps to no policy user
    return Peer(pid, uid, gid, user)


@contextmanager
def _address(path: Path) -> Iterator[str]:
    """A path short enough for sun_path: itself, or /proc/self/fd/N/NAME through its folder."""
    if len(os.fsencode(str(path))) < MAX_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


# -- server --------------------------------------------------------------------------------------
Send = Callable[[dict[str, Any]], None]
Handler = Callable[[dict[str, Any], Peer, Send], None]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: str, handler: Handler, mode: int) -> None:
        self.handle_request_with = handler
        self.mode = mode
        super().__init__(address, _Connection)

    def server_bind(self) -> None:
        old = os.umask(0o777 & ~self.mode)  # born with its final mode: no window where it is wider
        try:
            self.socket.bind(self.server_address)
        finally:
            os.umask(old)


class _Connection(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(READ_TIMEOUT)
        lock = threading.Lock()

        def send(frame: dict[str, Any]) -> None:
            data = (json.dumps(frame, ensure_ascii=False, default=str) + "\n").encode()
            with lock:
                sock.sendall(data)

        try:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                send(_error("the request is too large", "BadRequest"))
                return
            request = json.loads(line)
            if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
                send(
                    _error(
                        f"this daemon speaks protocol {PROTOCOL}; restart it after upgrading", "BadRequest"
                    )
                )
                return
            sock.settimeout(None)  # an answer may take as long as the model takes
            self.server.handle_request_with(request, peer_of(sock), send)
        except (ValueError, UnicodeDecodeError):
            send(_error("the request is not JSON", "BadRequest"))
        except (OSError, TimeoutError):
            pass  # the client went away


def _error(message: str, kind: str, exit_code: int = 1) -> dict[str, Any]:
    return {"error": message, "type": kind, "exit_code": exit_code}


def error_frame(exc: MemexError) -> dict[str, Any]:
    return _error(str(exc), type(exc).__name__, exc.exit_code)


class Server:
    """Serves `handler(request, peer, send)` on the socket at `path`, one thread per connection.
    `handler` sends frames and must end with a final one."""

    def __init__(self, path: Path, handler: Handler, *, mode: int = 0o600) -> None:
        self.path = path
        self._handler = handler
        self._mode = mode
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # a stale socket: whoever calls start holds the daemon's pid lock
        with _address(self.path) as address:
            self._server = _Server(address, self._handler, self._mode)
        os.chmod(self.path, self._mode)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="memex-socket", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


# -- client --------------------------------------------------------------------------------------
def connect(path: Path, *, timeout: float | None = 5.0) -> socket.socket | None:
    """A connection to the daemon, or None if none is listening (no socket, or a stale one)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _address(path) as address:
            sock.connect(address)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        sock.close()
        return None
    except PermissionError:
        sock.close()
        raise DaemonUnavailable(
            f"a memex daemon owns {path.parent}, but its socket is not open to your account; ask its "
            f"owner to set socket_mode = 0o660 in config.toml and add you to the socket's group"
        ) from None
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(f"cannot reach the memex daemon at {path}: {exc}") from None
    sock.settimeout(None)
    return sock


def request_line(command: str, params: dict[str, Any] | None = None, *, as_user: str | None = None) -> bytes:
    request = {"protocol": PROTOCOL, "command": command, "params": params or {}, "as_user": as_user}
    return (json.dumps(request) + "\n").encode()


def call(
    path: Path,
    command: str,
    params: dict[str, Any] | None = None,
    *,
    as_user: str | None = None,
    on_frame: Callable[[dict[str, Any]], None] | None = None,
    sock: socket.socket | None = None,
) -> dict[str, Any] | None:
    """Send one request; frames before the final one go to `on_frame`. Returns the final frame,
    or None if no daemon is listening."""
    sock = sock or connect(path)
    if sock is None:
        return None
    with sock, sock.makefile("rb") as replies:
        sock.sendall(request_line(command, params, as_user=as_user))
        for line in replies:
            frame = json.loads(line)
            if "result" in frame or "error" in frame:
                return frame
            if on_frame is not None:
                on_frame(frame)
    raise DaemonUnavailable("the memex daemon closed the connection without an answer (see daemon.log)")
