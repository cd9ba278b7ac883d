"""What every command prints: JSON for scripts (`--json`), and errors either way."""

from __future__ import annotations

import json
from typing import Any

import typer

from memex.errors import MemexError


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(exc: MemexError, as_json: bool) -> None:
    """Report `exc` (as JSON on stdout with --json, else in red on stderr) and exit with its code."""
    if as_json:
        emit({"error": str(exc), "type": type(exc).__name__})
    else:
        typer.secho(f"memex: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(exc.exit_code)


def plain_help() -> None:
    """--help without type placeholders (`<bool>`, `<list[str]>`): a flag shows nothing beside
    its name, an option its metavar (PATH, KEY=VALUE...), an argument its name."""
    from typer import core

    def option_type(self: core.TyperOption, ctx: object) -> str | None:
        return None if self.is_flag else self.metavar

    def argument_type(self: core.TyperArgument, ctx: object) -> str | None:
        return self.metavar

    core.TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign]


JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
AS_USER = typer.Option(None, "--as", metavar="USER", help="Act as this policy user (admins only; audited).")


class ReaderGone(BaseException):
    """stdout's reader closed the pipe (`memex export | head`). Not an OSError, so that click
    does not turn it into exit code 1, and not an Exception, so that nothing on the way swallows it."""


class PipeAware:
    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise ReaderGone() from None

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise ReaderGone() from None

    def __getattr__(self, name):
        return getattr(self._stream, name)
