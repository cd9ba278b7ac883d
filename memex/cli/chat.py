"""`memex chat` (a conversation at the prompt) and `memex conversations ...` (yours: list,
show, rename, delete, export). Follow-ups are searched as standalone questions, shown as
"Searched: ..."; a turn built from sources you can no longer read is shown withheld."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from memex.cli.context import note as _note
from memex.cli.context import read as _read
from memex.cli.output import AS_USER, JSON
from memex.cli.output import emit as _emit
from memex.cli.output import fail as _fail
from memex.errors import MemexError

conversations_app = typer.Typer(
    help="Your conversations (memex chat, memex ask --conversation): list, show, rename, delete, export.",
    no_args_is_help=True,
)

CHAT_HELP = """Type a question; follow-ups may lean on the conversation ("who was on call?").
  /new       start a new conversation
  /sources   the sources and evidence of the last answer
  /history   this conversation so far
  /quit      leave (Ctrl-D works too; Ctrl-C stops an answer)"""


def print_sources(answer: dict[str, Any]) -> None:
    if answer.get("citations"):
        typer.secho("\nSources:", bold=True)
        for citation in answer["citations"]:
            where = [citation["source"], citation["section"] or None]
            where.append(f"page {citation['page']}" if citation["page"] is not None else None)
            typer.echo(f"[{citation['n']}] {', '.join(w for w in where if w)}")
    if answer.get("evidence"):
        typer.secho("\nEvidence:", bold=True)
        for item in answer["evidence"]:
            typer.echo(f"[{item['n']}] {item['sentence']}")


def _on_token(piece: str) -> None:
    typer.echo(piece, nl=False)
    sys.stdout.flush()


def chat(
    model: Optional[str] = typer.Option(
        None, "--model", metavar="NAME|PATH.gguf", help="A model of `memex models`, or any GGUF file."
    ),
    conversation: Optional[str] = typer.Option(
        None, "--conversation", "-c", metavar="ID", help="Go on with one of your conversations."
    ),
    as_user: Optional[str] = AS_USER,
) -> None:
    """Talk with your archives: ask, then ask follow-ups. Answers cite their sources."""
    try:
        import readline  # noqa: F401  (line editing and history at the prompt)
    except ImportError:  # pragma: no cover - not on every platform
        pass
    typer.secho(CHAT_HELP, dim=True)
    current, last = conversation, None
    if current:
        try:
            _print_history(_read("conversations", {"action": "show", "id": current}, as_user))
        except MemexError as exc:
            _fail(exc, False)
    while True:
        try:
            line = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo("")
            return
        if not line:
            continue
        if line in ("/quit", "/exit", "/q"):
            return
        if line == "/help":
            typer.echo(CHAT_HELP)
            continue
        if line == "/new":
            current, last = None, None
            typer.secho("(a new conversation)", dim=True)
            continue
        if line == "/sources":
            print_sources(last or {}) if last else typer.secho("(no answer yet)", dim=True)
            continue
        if line == "/history":
            if current:
                _print_history(_read("conversations", {"action": "show", "id": current}, as_user))
            continue
        params = {"question": line, "model": model, "conversation": current or "new"}
        try:
            typer.echo("")
            last = _read("ask", params, as_user, on_token=_on_token, on_note=_note)
            current = last.get("conversation", current)
            typer.echo("")
        except KeyboardInterrupt:
            typer.secho("\n(stopped)", dim=True)
        except MemexError as exc:
            typer.secho(f"memex: {exc}", err=True, fg=typer.colors.RED)


@conversations_app.command("list")
def conversations_list(as_user: Optional[str] = AS_USER, as_json: bool = JSON) -> None:
    """Your conversations, the latest first."""
    found = _call({"action": "list"}, as_user, as_json)
    if as_json:
        _emit(found)
        return
    if not found:
        typer.echo("No conversations yet: `memex chat`, or `memex ask --conversation new QUESTION`.")
    for item in found:
        typer.echo(f"{item['id']}  {item['title']}")


@conversations_app.command("show")
def conversations_show(
    conversation: str = typer.Argument(..., metavar="ID"),
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """One of your conversations, turn by turn (withheld where it used what you can no longer read)."""
    found = _call({"action": "show", "id": conversation}, as_user, as_json)
    _emit(found) if as_json else _print_history(found)


@conversations_app.command("export")
def conversations_export(
    conversation: str = typer.Argument(..., metavar="ID"), as_user: Optional[str] = AS_USER
) -> None:
    """One of your conversations as JSON (what you may still read of it)."""
    _emit(_call({"action": "show", "id": conversation}, as_user, True))


@conversations_app.command("rename")
def conversations_rename(
    conversation: str = typer.Argument(..., metavar="ID"),
    title: str = typer.Argument(...),
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """Give one of your conversations another title."""
    found = _call({"action": "rename", "id": conversation, "title": title}, as_user, as_json)
    _emit(found) if as_json else typer.echo(f"{found['id']}  {found['title']}")


@conversations_app.command("delete")
def conversations_delete(
    conversation: str = typer.Argument(..., metavar="ID"),
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """Delete one of your conversations, for good."""
    found = _call({"action": "delete", "id": conversation}, as_user, as_json)
    _emit(found) if as_json else typer.echo(f"Deleted {conversation}.")


def _call(params: dict[str, Any], as_user: Optional[str], as_json: bool) -> Any:
    try:
        return _read("conversations", params, as_user)
    except MemexError as exc:
        _fail(exc, as_json)


def _print_history(conversation: dict[str, Any]) -> None:
    typer.secho(f"{conversation['title']} ({conversation['id']})", bold=True)
    for turn in conversation["turns"]:
        typer.secho(f"\nyou> {turn['question']}", bold=True)
        if turn.get("standalone") and turn["standalone"] != turn["question"]:
            typer.secho(f"Searched: {turn['standalone']}", dim=True)
        if "withheld" in turn:
            typer.secho(f"({turn['withheld']})", dim=True)
            continue
        typer.echo(turn["answer"])
        print_sources(turn)
