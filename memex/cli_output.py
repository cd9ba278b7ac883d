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
