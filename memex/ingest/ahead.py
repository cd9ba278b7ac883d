"""Long parses in the background, for the watcher: a recording's transcription can take minutes,
and a folder's loop that waited for it would leave every file saved meanwhile unsearchable.

A parse that asks for more time than the pool's limit (a connector's `parse_timeout`: a long
recording) is started here, in a pool and a thread of its own, and the watcher's batch goes on
without it. When it is done, `on_ready(uri)` asks the watcher to read that file again; the
pipeline then takes the finished parse instead of parsing (`take`). A file changed meanwhile has
another fingerprint, so its old parse is never used.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from memex.documents import SourceDocument
from memex.ingest.sandbox import Limits, ParserPool

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (source id, fingerprint): one version of one source


class ParseAhead:
    def __init__(
        self,
        *,
        on_ready: Callable[[str], None],
        on_note: Callable[[str], None] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self._on_ready = on_ready
        self._on_note = on_note
        self._lock = threading.Lock()
        self._wanted: deque[tuple[Key, str, Callable[[], Any]]] = deque()
        self._started: set[Key] = set()  # wanted or being parsed
        self._done: dict[Key, Any] = {}  # elements, or the ParseError
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def runs_long(self, doc: SourceDocument) -> bool:
        asked = getattr(doc.parse, "parse_timeout", None)
        return isinstance(asked, int | float) and asked > self.limits.timeout

    def take(self, doc: SourceDocument) -> Any:
        """This version's finished parse (once), or None: then it is started, if it is not yet."""
        key = (doc.source_id, doc.fingerprint or "")
        with self._lock:
            if key in self._done:
                return self._done.pop(key)
            if key not in self._started and doc.parse is not None:
                self._started.add(key)
                self._wanted.append((key, doc.uri, doc.parse))
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="memex-parse-ahead", daemon=True)
                    self._thread.start()
        self._wake.set()
        return None

    @property
    def busy(self) -> int:
        """Parses wanted or running."""
        with self._lock:
            return len(self._started)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        pool = ParserPool(workers=1, limits=self.limits)
        if self._on_note is not None:
            pool.on_note = lambda _key, text: self._on_note(text)  # type: ignore[misc]
        uris: dict[Key, str] = {}
        try:
            while not self._stopping.is_set():
                with self._lock:
                    while self._wanted and pool.pending == 0:
                        key, uri, parse = self._wanted.popleft()
                        uris[key] = uri
                        pool.submit(key, parse)
                if not pool.pending:
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                for key, parsed in pool.poll(1.0):
                    pool.take_warnings(key)
                    self._finish(key, parsed)
                    self._on_ready(uris.pop(key))
        except Exception:  # a bug here must not take the watcher down; the files stay as they were
            log.exception("background parsing stopped")
        finally:
            pool.close()

    def _finish(self, key: Key, parsed: Any) -> None:
        with self._lock:
            self._started.discard(key)
            for older in [k for k in self._done if k[0] == key[0]]:
                del self._done[older]  # an earlier version of the same source: never wanted now
            self._done[key] = parsed
