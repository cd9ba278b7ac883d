"""What an ingest has to say besides its progress, kept out of the progress bars:

- a connector's notices for the person (loggers under `memex.connectors`, INFO and up: "Chinook:
  reading 9 tables ..., skipping PlaylistTrack (a link table) ...") go to the progress's `note`
  and into the report;
- third-party warnings (Python's warnings, other libraries' log records at WARNING and up, text
  a parser prints on stderr) go into the report with the file they came from, shown with
  `memex ingest --verbose`, instead of being printed through the bars.

`capture` covers the ingesting process; `captured` wraps one parse in a parser process
(memex.ingest.sandbox) and returns its warnings with the result.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

CONNECTOR_LOGGERS = ("memex.connectors", "connectors")
MAX_WARNINGS = 2000  # per run: a parser that warns for every line must not fill the memory
MAX_TEXT = 500


def _is_connector(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in CONNECTOR_LOGGERS)


class _Collector(logging.Handler):
    def __init__(self, on_notice: Callable[[str], None], on_warning: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.on_notice = on_notice
        self.on_warning = on_warning

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()[:MAX_TEXT]
        except Exception:  # a broken log call must not break the ingest
            return
        if _is_connector(record.name):
            self.on_notice(text)
        elif record.levelno >= logging.WARNING and not record.name.startswith("memex"):
            self.on_warning(f"{record.name}: {text}")


@contextlib.contextmanager
def capture(report: Any, progress: Any) -> Iterator[None]:
    """For the length of an ingest in this process: connectors' notices to `progress.note` and
    `report.notices`, third-party warnings to `report.warnings` (not to the terminal)."""
    note = getattr(progress, "note", None)

    def on_notice(text: str) -> None:
        report.notices.append(text)
        if note is not None:
            note(text)

    def on_warning(text: str) -> None:
        add_warning(report, "", text)

    collector = _Collector(on_notice, on_warning)
    root = logging.getLogger()
    connector_loggers = [logging.getLogger(name) for name in CONNECTOR_LOGGERS]
    levels = [logger.level for logger in connector_loggers]
    root_level = root.level
    for logger in connector_loggers:
        logger.setLevel(logging.INFO)  # a notice reaches the collector whatever the root's level
    root.addHandler(collector)
    if root_level > logging.WARNING or root_level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")

            def show(message, category, filename, lineno, file=None, line=None) -> None:
                add_warning(report, "", f"{category.__name__}: {message}")

            warnings.showwarning = show
            yield
    finally:
        root.removeHandler(collector)
        root.setLevel(root_level)
        for logger, level in zip(connector_loggers, levels, strict=True):
            logger.setLevel(level)


def add_warning(report: Any, uri: str, text: str) -> None:
    if len(report.warnings) < MAX_WARNINGS:
        report.warnings.append((uri, " ".join(text.split())[:MAX_TEXT]))


def captured(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """`fn()` and what it warned (warnings, log records at WARNING and up, text printed on
    stderr or stdout), in a parser process. Exceptions pass through."""
    said: list[str] = []
    handler = _Collector(lambda text: None, said.append)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [handler]
    printed = io.StringIO()
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stderr(printed),
            contextlib.redirect_stdout(printed),
        ):
            warnings.simplefilter("default")
            result = fn()
    finally:
        root.handlers = saved
    said += [f"{w.category.__name__}: {w.message}" for w in caught]
    said += [line for line in printed.getvalue().splitlines() if line.strip()]
    return result, [" ".join(text.split())[:MAX_TEXT] for text in said[:50]]
