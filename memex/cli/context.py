"""What the CLI's commands share: the global options, opening a Memex, and reading through the
daemon or the read facade."""

from __future__ import annotations

from typing import Any, Optional

import typer

state: dict[str, Any] = {"policy": None, "no_daemon": False}


def open_memex(**kwargs: Any):
    from memex.api.wiring import Memex

    return Memex.open(policy_path=state["policy"], **kwargs)


def read(command: str, params: dict[str, Any], as_user: Optional[str], **hooks: Any) -> Any:
    """A read command's JSON: from the daemon while one owns the store, else through the read
    facade on our own Memex (memex.api.commands maps the command onto it either way)."""
    from memex.api import commands
    from memex.api.reads import Reads
    from memex.daemon import client

    served, result = client.through_daemon(
        command, params, as_user=as_user, policy=state["policy"], start=not state["no_daemon"], **hooks
    )
    if served:
        return result
    with open_memex(model_path=params.get("model")) as memex:
        principal, actor = memex.cli_principal(as_user)
        reads = Reads(memex)
        try:
            return commands.run(
                reads, command, params, principal=principal, actor=actor, channel="cli", **hooks
            )
        finally:
            reads.close()


def note(line: str) -> None:
    typer.secho(line, err=True, dim=True)
