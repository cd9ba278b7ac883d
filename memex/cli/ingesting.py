"""`memex ingest`'s two ways: handed to memex in the background (started if need be), its
progress streamed back, so that reads go on meanwhile; or here, in this process (--no-daemon).
Either way Ctrl-C stops between documents and the report says what was kept."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any

import typer

from memex.cli.context import open_memex, state
from memex.cli.output import emit
from memex.daemon.client import STOPPING, ingest_through_daemon
from memex.errors import MemexError
from memex.ingest.progress import RichProgress
from memex.ingest.report import IngestReport


def ingest_in_daemon(
    targets: list[str], *, retry_failed: bool, options: dict[str, str], as_json: bool
) -> IngestReport | None:
    """The report of the ingest memex in the background ran (started unless --no-daemon; one
    that runs takes it either way, as it owns the store), or None if none can take it."""
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


def options_from(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MemexError(f"--option wants KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


def finish_report(report, as_json: bool, *, verbose: bool = False) -> None:
    """An ingest's or a rebuild's report, and exit code 2 if some sources could not be read."""
    if as_json:
        emit(report.to_json())
    else:
        print_report(report, verbose=verbose)
    if report.stopped:
        raise typer.Exit(130)  # as a program stopped by Ctrl-C; what was read is kept
    if not report.ok:
        raise typer.Exit(2)


def print_report(report, *, verbose: bool = False) -> None:
    typer.echo(
        f"Indexed {len(report.indexed)} source(s), {report.unchanged} unchanged, "
        f"{len(report.failures)} not indexed, {len(report.removed)} removed; "
        f"chunks: {report.chunks_added} added, {report.chunks_removed} removed "
        f"({report.seconds:.1f}s)."
    )
    if report.stopped:
        typer.secho(
            f"Stopped at your request: the {len(report.indexed)} source(s) above are indexed and kept; "
            f"nothing was removed. Run the same memex ingest again to read the rest.",
            fg=typer.colors.YELLOW,
        )
    if report.relabelled:
        typer.echo(f"Relabelled {report.relabelled} unchanged source(s) under the current policy.")
    for failure in report.failures:
        typer.secho(f"  {failure.kind}: {failure.uri}: {failure.reason}", fg=typer.colors.YELLOW)
    for removed in report.removed:
        typer.echo(f"  removed: {removed}")
    for skipped, kept in report.duplicates:
        typer.echo(f"  duplicate: {skipped}: the same source as {kept} (found first, kept)")
    if report.warnings and verbose:
        for uri, text in report.warnings:
            typer.secho(f"  warning: {uri or 'while reading'}: {text}", dim=True)
    elif report.warnings:
        files = len({uri for uri, _ in report.warnings})
        typer.secho(
            f"  {len(report.warnings)} warning(s) from parsers and libraries about {files} file(s), "
            f"none of them stopping a file (memex ingest --verbose shows them)",
            dim=True,
        )
