"""Progress bars on stderr for long work (rich, which typer brings)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)


class RichProgress:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.shows_totals = enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def begin(self, stage: str, total: int | None) -> None:
        """A phase's bar (a phase begun again, e.g. by a second target, starts over)."""
        if self._progress is None:
            return
        if stage in self._tasks:
            self._progress.reset(self._tasks[stage], total=total)
        else:
            self._tasks[stage] = self._progress.add_task(stage, total=total)

    def grow(self, stage: str, n: int) -> None:
        """More work found for a phase: its total grows, its bar and time left go on."""
        if self._progress is None:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=n)
            return
        task = self._progress.tasks[self._index(stage)]
        self._progress.update(self._tasks[stage], total=(task.total or 0) + n)

    def advance(self, stage: str, n: int = 1) -> None:
        if self._progress is None or stage not in self._tasks:
            return
        task = self._progress.tasks[self._index(stage)]
        if task.total is not None and task.completed + n > task.total:
            # A total is an estimate (an mbox file counts once but holds many messages): the bar
            # never runs past its end; it grows instead.
            self._progress.update(self._tasks[stage], total=task.completed + n)
        self._progress.advance(self._tasks[stage], n)

    def _index(self, stage: str) -> int:
        wanted = self._tasks[stage]
        return next(i for i, task in enumerate(self._progress.tasks) if task.id == wanted)

    def note(self, text: str) -> None:
        """A line above the bars (printed around them, so they are not torn)."""
        if self._progress is not None:
            self._progress.console.print(text, style="dim", markup=False, highlight=False)
        else:
            sys.stderr.write(text + "\n")
