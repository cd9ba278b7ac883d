"""The `memex` command line. Every command has --json; long work shows progress on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from memex.cli.chat import chat, conversations_app
from memex.cli.context import note as _note
from memex.cli.context import open_memex as _open
from memex.cli.context import read as _read
from memex.cli.context import state as _state
from memex.cli.daemon import register as register_daemon_commands
from memex.cli.eval import eval_command
from memex.cli.ingesting import finish_report, options_from
from memex.cli.models import models_app
from memex.cli.output import AS_USER, JSON, PipeAware, ReaderGone, plain_help
from memex.cli.output import emit as _emit
from memex.cli.output import fail as _fail
from memex.cli.policy import audit, policy_app
from memex.cli.service import serve, token_app, users_app
from memex.errors import MemexError

app = typer.Typer(
    name="memex",
    help="Ask questions of your own archives, privately, on your own machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

NO_DATES = typer.Option(
    False,
    "--no-dates",
    help='Do not read time expressions in the question ("last week", "in March 2024") as a date filter.',
)


@app.callback()
def main(
    policy: Optional[Path] = typer.Option(
        None,
        "--policy",
        envvar="MEMEX_POLICY",
        help="Use this policy file instead of MEMEX_HOME/policy.yaml.",
    ),
    no_daemon: bool = typer.Option(
        False,
        "--no-daemon",
        envvar="MEMEX_NO_DAEMON",
        help="Do not start memex in the background: this command opens the store itself (one that "
        "runs already still answers).",
    ),
) -> None:
    """memex keeps its index, ledger, policy and audit log in MEMEX_HOME (default: your user data
    folder, e.g. ~/.local/share/memex). The first command starts memex in the background, which
    keeps the models loaded so that later commands answer at once; it stops after 30 minutes
    unused (daemon_idle_minutes in config.toml; daemon = false or --no-daemon to do without)."""
    _state["policy"] = policy
    _state["no_daemon"] = no_daemon


@app.command()
def init(
    policy: Optional[str] = typer.Option(
        None, "--policy", help="A policy file, or the name of a bundled one (personal.yaml, company.yaml)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace the policy already in MEMEX_HOME."),
    as_json: bool = JSON,
) -> None:
    """Create MEMEX_HOME with a policy (the bundled personal policy unless --policy)."""
    from memex import config
    from memex.access.policyfile import load_policy

    try:
        paths = config.Paths(config.home())
        source = None
        if policy:
            source = Path(policy) if Path(policy).exists() else config.bundled_policy(policy)
            load_policy(source)  # refuse an invalid policy before copying it
        written = config.initialise(paths, policy=source, force=force)
    except MemexError as exc:
        _fail(exc, as_json)
    result = {"home": str(paths.root), "policy": str(paths.policy), "written": written}
    if as_json:
        _emit(result)
    elif written:
        typer.echo(f"Initialised {paths.root} with policy {source or 'personal.yaml (bundled)'}")
    else:
        typer.echo(f"{paths.root} already has a policy ({paths.policy}); use --force to replace it")


@app.command()
def ingest(
    paths: list[str] = typer.Argument(..., help="Files, folders (recursively) or source URIs."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Try unchanged files that failed before again."
    ),
    option: list[str] = typer.Option(
        [],
        "--option",
        "-o",
        metavar="KEY=VALUE",
        help="An option for the connector (repeatable), e.g. -o workspace=acme or -o window_gap_minutes=60.",
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also show what parsers and libraries warned about, file by file."
    ),
    as_json: bool = JSON,
) -> None:
    """Index files and folders. Unchanged files are skipped; files deleted from an ingested
    folder are removed. Exit code 2 if some files could not be indexed."""
    from memex.cli.ingesting import ingest_here, ingest_in_daemon

    try:
        options = options_from(option)
        report = ingest_in_daemon(paths, retry_failed=retry_failed, options=options, as_json=as_json)
        if report is None:
            report = ingest_here(paths, retry_failed=retry_failed, options=options, as_json=as_json)
    except MemexError as exc:
        _fail(exc, as_json)
    finish_report(report, as_json, verbose=verbose)


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(10, "-k", metavar="N", help="How many hits."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense (embeddings) or lexical (BM25)."),
    no_dates: bool = NO_DATES,
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """Ranked passages for QUERY, without the language model. Time expressions in QUERY ("last
    week", "in March 2024") keep only passages of those dates (the range is shown on stderr)."""
    try:
        params = {"query": query, "k": k, "mode": mode, "no_dates": no_dates}
        hits = _read("search", params, as_user, on_note=_note)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(hits)
        return
    if not hits:
        typer.echo("No matches.")
    for n, hit in enumerate(hits, start=1):
        where = (
            hit["source"]
            + (f" > {hit['section']}" if hit["section"] else "")
            + (f" (page {hit['page']})" if hit["page"] else "")
        )
        typer.secho(f"{n}. {where}  [{', '.join(hit['labels']) or 'no labels'}]", bold=True)
        snippet = " ".join(hit["text"].split())
        typer.echo(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question."),
    k: Optional[int] = typer.Option(
        None, "-k", metavar="N", help="How many passages to give the model (default 5)."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", metavar="NAME|PATH.gguf", help="A model of `memex models`, or any GGUF file."
    ),
    no_dates: bool = NO_DATES,
    conversation: Optional[str] = typer.Option(
        None,
        "--conversation",
        "-c",
        metavar="ID|new",
        help="Ask in one of your conversations (a follow-up may lean on it), or start one: new.",
    ),
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """Answer QUESTION from your archives with the local model, citing numbered sources. Time
    expressions in QUESTION ("next Tuesday", "last week") keep only sources of those dates."""
    from memex.cli.chat import print_sources

    def on_token(piece: str) -> None:
        typer.echo(piece, nl=False)
        sys.stdout.flush()

    try:
        params = {"question": question, "k": k, "model": model, "no_dates": no_dates}
        if conversation:
            params["conversation"] = conversation
        answer = _read(
            "ask", params, as_user, on_token=None if as_json else on_token, on_note=None if as_json else _note
        )
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(answer)
        return
    typer.echo("")
    print_sources(answer)
    if answer.get("conversation"):
        typer.secho(f"\n(conversation {answer['conversation']}, turn {answer['turn']})", dim=True)


@app.command()
def show(
    source: str = typer.Argument(..., help="A path or source id, as listed by search."),
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """Print the indexed text of one source (if you may read it)."""
    try:
        hits = _read("show", {"source": source}, as_user)
    except MemexError as exc:
        _fail(exc, as_json)
    if not hits:
        from memex.api.reads import NOT_FOUND as message

        if as_json:
            _emit({"error": message, "type": "NotFound"})
        else:
            typer.secho(f"memex: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    if as_json:
        _emit(hits)
        return
    for hit in hits:
        typer.echo(hit["text"] + "\n")


@app.command()
def export(as_user: Optional[str] = AS_USER) -> None:
    """Write every chunk you can read to stdout as JSON lines (text, source, labels)."""
    try:
        _read("export", {}, as_user, on_item=lambda hit: typer.echo(json.dumps(hit, ensure_ascii=False)))
    except MemexError as exc:
        _fail(exc, False)


@app.command()
def status(as_user: Optional[str] = AS_USER, as_json: bool = JSON) -> None:
    """What is indexed (that you can read), where the data lives, which models are used."""
    try:
        info = _read("status", {}, as_user)
    except MemexError as exc:
        _fail(exc, as_json)
    loose = _warn_loose_home()
    if loose:
        info["loose_permissions"] = loose
    if as_json:
        _emit(info)
        return
    indexed = info["indexed"]
    if "home" in info:  # an admin's: where the files are
        typer.echo(f"Home:    {info['home']}")
        typer.echo(f"Policy:  {info['policy']}")
    typer.echo(f"As:      {info['principal']}")
    typer.echo(f"Models:  embeddings {info['models']['embedding']}; answers {info['models']['llm']}")
    for number, reader in enumerate(info.get("readers", [])):
        engine = reader["engine"] or f"not installed ({reader['install']})"
        typer.echo(f"{'Reads:' if number == 0 else '':9}{reader['reads']}: {engine}")
    if "ledger" in info:  # an admin: what is indexed in all, beside what this user reads
        ledger = info["ledger"]
        in_all = ", ".join(f"{n} {status}" for status, n in sorted(ledger.items()))
        typer.echo(f"Sources: {sum(ledger.values())} in the ledger ({in_all})")
    typer.echo(
        f"You read: {indexed['sources']} source(s), {indexed['chunks']} chunk(s)"
        + (f" as {info['principal']}" if "ledger" in info else "")
    )
    for label, count in sorted(indexed["by_label"].items()):
        typer.echo(f"  label {label}: {count} chunk(s)")
    for level, count in sorted(indexed["by_level"].items()):
        typer.echo(f"  level {level}: {count} chunk(s)")
    if "failures" in info:
        for root in info["roots"]:
            typer.echo(f"Root:    {root['root']} ({root['connector']})")
        failures = info["failures"]
        if failures:
            typer.echo(f"Not indexed: {len(failures)}")
            for failure in failures[:SHOWN_FAILURES]:
                typer.echo(f"  {failure['source']}: {failure['reason']}")
            if len(failures) > SHOWN_FAILURES:
                typer.echo(
                    f"  ... and {len(failures) - SHOWN_FAILURES} more: memex status --json lists them all"
                )


SHOWN_FAILURES = 10


def _warn_loose_home() -> list[str]:
    """Warn (stderr) about what other accounts may read or write in MEMEX_HOME; those paths."""
    from memex import config
    from memex.store import filemodes

    paths = config.Paths(config.home())
    try:
        socket_mode = config.load_settings(paths).socket_mode
    except MemexError:
        socket_mode = 0o600
    warning = filemodes.warning(paths.root, socket_mode=socket_mode)
    if warning:
        typer.secho(warning, err=True, fg=typer.colors.YELLOW)
    return filemodes.loose_paths(paths.root, socket_mode=socket_mode) if warning else []


@app.command()
def forget(
    target: Optional[str] = typer.Argument(None, help="A path, folder, URI or source id."),
    purge: bool = typer.Option(
        True, "--purge/--no-purge", help="Compact the stores so the text cannot be recovered (default)."
    ),
    as_json: bool = JSON,
) -> None:
    """Remove a source (or everything under a folder) from the index and the ledger, leaving
    nothing recoverable on disk. `memex forget --purge` alone compacts after earlier deletions."""
    try:
        if target is None and not purge:
            raise MemexError("name what to forget, or pass --purge to compact the stores")
        with _open(writable=True) as memex:
            sources, chunks = memex.ingestor().forget(target) if target is not None else ([], 0)
            if purge:
                memex.ingestor().purge()
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"removed_sources": sources, "removed_chunks": chunks, "purged": purge})
    elif target is None:
        typer.echo("Compacted the stores.")
    elif sources:
        typer.echo(f"Removed {len(sources)} source(s) and {chunks} chunk(s).")
    else:
        typer.echo(f"Nothing indexed matches {target}.")


@app.command()
def reindex(as_json: bool = JSON) -> None:
    """Rebuild the index from the ledger's sources (after a model change or a damaged store)."""
    from memex.ingest.progress import RichProgress

    try:
        with _open(writable=True) as memex, RichProgress(enabled=not as_json) as progress:
            report = memex.rebuild(progress=progress)
    except MemexError as exc:
        _fail(exc, as_json)
    finish_report(report, as_json)


@app.command()
def relabel(as_json: bool = JSON) -> None:
    """Apply the current policy to everything stored, in place (no re-embedding)."""
    try:
        with _open(writable=True) as memex:
            changed, refused = memex.ingestor().relabel()
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"relabelled": changed, "removed": [{"source": f.uri, "reason": f.reason} for f in refused]})
        return
    typer.echo(f"Relabelled {changed} source(s); removed {len(refused)} that no rule matches any more.")
    for failure in refused:
        typer.echo(f"  removed: {failure.uri}")


app.command("eval")(eval_command)
app.command("serve")(serve)
register_daemon_commands(app)  # memex watch, memex daemon start|stop|status
app.add_typer(models_app, name="models")
app.add_typer(users_app, name="users")
app.add_typer(token_app, name="token")
app.add_typer(policy_app, name="policy")
app.add_typer(conversations_app, name="conversations")
app.command()(chat)
app.command()(audit)
# --help lists the commands in the order people use them.
ORDER = ["init", "ingest", "ask", "search", "chat", "show", "status", "export", "watch", "forget", "reindex"]
ORDER += ["relabel", "serve", "audit", "eval"]
app.registered_commands.sort(
    key=lambda c: (
        ORDER.index(c.name or c.callback.__name__) if (c.name or c.callback.__name__) in ORDER else 99
    )
)
plain_help()


def run() -> None:
    import os

    sys.stdout = PipeAware(sys.stdout)
    try:
        app()
    except (BrokenPipeError, ReaderGone):
        # `memex ask ... | head`: the reader has what it wanted. Exit as a program killed by
        # SIGPIPE would (128 + 13), silently, without Python's complaint when stdout is flushed.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(141) from None
    except Exception as exc:  # a bug: say so briefly; MEMEX_DEBUG=1 shows the traceback
        if os.environ.get("MEMEX_DEBUG"):
            raise
        typer.secho(
            f"memex: unexpected error: {type(exc).__name__}: {exc}\n"
            "Run again with MEMEX_DEBUG=1 for the full traceback, and please report it.",
            err=True,
            fg=typer.colors.RED,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    run()
