"""`memex ingest`'s two ways: handed to memex in the background (started if need be), its
progress streamed back, so that reads go on meanwhile; or here, in this process (--no-daemon).
Either way Ctrl-C stops between documents and the report says what was kept."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any

from memex.cli.context import open_memex, state
from memex.ingest.progress import RichProgress
from memex.ingest.report import IngestReport

STOPPING = "stopping after the document being read; what was read is kept (Ctrl-C again to leave now)"


def ingest_in_daemon(
    targets: list[str], *, retry_failed: bool, options: dict[str, str], as_json: bool
) -> IngestReport | None:
    """The report of the ingest memex in the background ran (started unless --no-daemon; one
    that runs takes it either way, as it owns the store), or None if none can take it."""
    from memex.daemon.client import ingest_through_daemon

    with RichProgress(enabled=not as_json) as progress:
        result = ingest_through_daemon(
            targets,
            retry_failed=retry_failed,
            options=options,
            policy=state["policy"],
            progress=progress,
            on_note=progress.note,
            start=not state["no_daemon"],
        )
    return None if result is None else IngestReport.from_json(result)


def ingest_here(
    targets: list[str], *, retry_failed: bool, options: dict[str, str], as_json: bool
) -> IngestReport:
    with open_memex(writable=True) as memex, RichProgress(enabled=not as_json) as progress:
        with _first_interrupt_stops(progress.note) as stop:
            return memex.ingest(
                targets, progress=progress, retry_failed=retry_failed, options=options, stop=stop
            )


@contextmanager
def _first_interrupt_stops(note: Any):
    """The first Ctrl-C sets the event (the ingest stops between documents and writes what it
    read); a second one interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        note(STOPPING)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
