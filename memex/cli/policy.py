"""`memex policy check|explain` and `memex audit`: the policy and the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from memex.cli.context import open_memex as _open
from memex.cli.context import read as _read
from memex.cli.context import state as _state
from memex.cli.output import AS_USER, JSON
from memex.cli.output import emit as _emit
from memex.cli.output import fail as _fail
from memex.errors import MemexError

policy_app = typer.Typer(help="Check and explain access policies.", no_args_is_help=True)


def audit(
    limit: int = typer.Option(50, "--limit", help="How many entries, newest first."),
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """Read the audit log (admins see everything, others their own entries)."""
    try:
        entries = _read("audit", {"limit": limit}, as_user)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(entries)
        return
    import datetime as dt

    for entry in entries:
        when = dt.datetime.fromtimestamp(entry["time"]).isoformat(timespec="seconds")
        typer.echo(
            f"{when} {entry['actor']} [{entry['channel']} {entry['action']}] {entry['question']!r} "
            f"-> {len(entry['chunk_ids'])} chunk(s)"
        )


@policy_app.command("check")
def policy_check(
    path: Optional[Path] = typer.Argument(None, help="Policy file (default: the one in use)."),
    as_json: bool = JSON,
) -> None:
    """Validate a policy and run its decision table (`cases`)."""
    from memex import config
    from memex.access.policycheck import run_cases
    from memex.access.policyfile import load_policy

    try:
        policy = load_policy(path or _state["policy"] or config.Paths(config.home()).policy)
    except MemexError as exc:
        _fail(exc, as_json)
    results = run_cases(policy)
    failed = [r for r in results if not r.passed]
    if as_json:
        _emit({"policy": policy.origin, "cases": len(results), "failed": [r.to_json() for r in failed]})
    else:
        typer.echo(f"{policy.origin}: valid; {len(results) - len(failed)}/{len(results)} case(s) pass.")
        for r in failed:
            typer.secho(f"  FAIL {r.describe()}", fg=typer.colors.RED)
    if failed:
        raise typer.Exit(1)


@policy_app.command("explain")
def policy_explain(
    user: str = typer.Argument(..., help="A policy user."),
    source: str = typer.Argument(..., help="A path, or a source id as stored in the ledger."),
    as_json: bool = JSON,
) -> None:
    """Why USER can or cannot see SOURCE: which rules label it, which roles grant what (admins)."""
    from memex.api.reads import Reads

    try:
        with _open() as memex:
            principal, _ = memex.cli_principal(None)
            result = Reads(memex).explain(user, source, principal=principal)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(result)
        return
    typer.echo(result["summary"])
    for line in result["details"]:
        typer.echo(f"  {line}")
