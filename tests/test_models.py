"""The model catalogue: which models are installed, the default is the best one installed, a
model in pieces is assembled once and only with its pinned SHA-256, and `--model` takes a
catalogue name or any GGUF path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memex.cli.main import app
from memex.errors import ModelError
from memex.models import catalogue as models


@pytest.fixture(autouse=True)
def private_model_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMEX_MODELS", str(tmp_path / "models"))


def _pieces(tmp_path: Path, contents: list[bytes]) -> list[Path]:
    paths = []
    for i, data in enumerate(contents, start=1):
        path = tmp_path / "pkg" / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_pieces_are_joined_in_order_and_verified(tmp_path):
    pieces = _pieces(tmp_path, [b"GGUF-first-", b"second-", b"third"])
    target = tmp_path / "out" / "m.gguf"
    models.assemble(pieces, target, sha256=hashlib.sha256(b"GGUF-first-second-third").hexdigest())
    assert target.read_bytes() == b"GGUF-first-second-third"


def test_a_damaged_piece_is_refused_and_nothing_is_left(tmp_path):
    pieces = _pieces(tmp_path, [b"GGUF-first-", b"tampered-", b"third"])
    target = tmp_path / "out" / "m.gguf"
    with pytest.raises(ModelError, match="not the pinned"):
        models.assemble(pieces, target, sha256=hashlib.sha256(b"GGUF-first-second-third").hexdigest())
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_catalogue_model_in_pieces_is_assembled_once(tmp_path, monkeypatch):
    data = [b"GGUF", b"-pieces"]
    pieces = _pieces(tmp_path, data)
    fake = models.CatalogueModel(
        name="tiny",
        title="Tiny",
        size_bytes=11,
        speed="fast",
        packages=("a==1", "b==1"),
        files=("x", "y"),
        sha256=hashlib.sha256(b"".join(data)).hexdigest(),
        extra="tiny",
    )
    monkeypatch.setattr(models, "installed_pieces", lambda model: pieces)
    notes: list[str] = []
    path = models.gguf_path(fake, on_note=notes.append)
    assert path.read_bytes() == b"GGUF-pieces" and len(notes) == 1
    assert models.gguf_path(fake, on_note=notes.append) == path and len(notes) == 1  # not again


def test_the_default_is_the_best_installed(monkeypatch):
    installed = {"qwen2.5-0.5b", "smollm2-135m"}
    monkeypatch.setattr(models, "is_installed", lambda model: model.name in installed)
    assert models.default_model().name == "qwen2.5-0.5b"
    installed.add("qwen2.5-1.5b")
    assert models.default_model().name == "qwen2.5-1.5b"
    installed.clear()
    with pytest.raises(ModelError, match="memex models install qwen2.5-1.5b"):
        models.default_model()


def test_model_choices_by_name_path_or_default(tmp_path):
    own = tmp_path / "my-llama-3.gguf"
    own.write_bytes(b"GGUF")
    chosen = models.resolve(str(own))
    assert chosen.path == own and chosen.name == "my-llama-3"
    small = models.resolve("smollm2-135m")
    assert small.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and small.sampling["repeat_penalty"] > 1
    with pytest.raises(ModelError, match="neither a GGUF file nor a model of the catalogue"):
        models.resolve("gpt-17")


def test_models_command_lists_and_chooses(memex_home):
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    names = [m["name"] for m in listed["models"]]
    assert names == ["qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m"]
    small = next(m for m in listed["models"] if m["name"] == "smollm2-135m")
    assert small["installed"] is True and small["path"].endswith(".gguf")
    result = runner.invoke(app, ["models", "use", "smollm2-135m", "--json"])
    assert result.exit_code == 0, result.stdout
    assert 'llm_model = "smollm2-135m"' in (memex_home / "config.toml").read_text()
    listed = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert [m["name"] for m in listed["models"] if m["in_use"]] == ["smollm2-135m"]
    refused = runner.invoke(app, ["models", "use", "gpt-17"])
    assert refused.exit_code == 1 and "neither a GGUF file" in refused.stderr
