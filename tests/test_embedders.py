"""The int8 ONNX embedder (memex.models.onnx_embedder) against the bundled fp32 model, the choice
of embedder from config.toml, and an index that refuses vectors of another embedder."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from memex.errors import ModelError
from memex.models import onnx_embedder
from memex.models.choice import configured_embedder
from memex.models.embeddings import HashingEmbedder, SentenceTransformerEmbedder
from memex.models.onnx_embedder import OnnxInt8Embedder

SENTENCES = [
    "The quarterly budget for the Lisbon office was approved on 3 March.",
    "Vitamin D deficiency is associated with an increased risk of respiratory infections.",
    "Restart the ingest gateway after renewing its TLS certificate.",
    "a",
    # longer than 128 tokens (its tokenizer.json's limit) and shorter than 256 (the model's)
    " ".join(f"Patients in cohort {i} received {i * 10} mg of the drug daily." for i in range(15)),
]
DOCUMENTS = [
    "The cat sat on the warm windowsill all afternoon.",
    "Interest rates were raised by the central bank to curb inflation.",
    "Mitochondria produce most of the chemical energy needed by the cell.",
    "The football match was postponed because of heavy snow.",
    "Python lists grow automatically when items are appended.",
]
QUERIES = ["Why did the bank change borrowing costs?", "what powers a cell", "game cancelled by weather"]


@pytest.fixture(scope="module")
def int8():
    return OnnxInt8Embedder()


@pytest.mark.slow
def test_int8_embeds_like_the_fp32_model(int8, real_embedder):
    quantised, full = int8.embed(SENTENCES), real_embedder.embed(SENTENCES)
    cosines = (quantised * full).sum(axis=1)
    assert quantised.shape == (len(SENTENCES), 384)
    assert np.allclose(np.linalg.norm(quantised, axis=1), 1.0, atol=1e-5)
    assert cosines.min() > 0.99, cosines


@pytest.mark.slow
def test_int8_ranks_like_the_fp32_model(int8, real_embedder):
    def rankings(embedder):
        scores = embedder.embed(QUERIES) @ embedder.embed(DOCUMENTS).T
        return np.argsort(-scores, axis=1).tolist()

    assert rankings(int8) == rankings(real_embedder)
    assert [row[0] for row in rankings(int8)] == [1, 2, 3]


def test_int8_returns_rows_in_the_order_given(int8):
    """Texts are batched by length; each vector must still come back in its text's row."""
    texts = [SENTENCES[4], SENTENCES[3], SENTENCES[0]]
    together = int8.embed(texts)
    alone = np.stack([int8.embed([text])[0] for text in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_int8_runs_without_torch():
    code = (
        "import sys; from memex.models.onnx_embedder import OnnxInt8Embedder; "
        "OnnxInt8Embedder().embed(['hello']); print(sorted(m for m in sys.modules if m.startswith('torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_model_file_that_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    monkeypatch.setattr(onnx_embedder, "default_onnx_path", lambda: fake)
    with pytest.raises(ModelError, match="is not the pinned int8 embedding model"):
        OnnxInt8Embedder().embed(["hello"])


def test_config_names_the_embedder():
    assert isinstance(configured_embedder(None), SentenceTransformerEmbedder)
    assert configured_embedder(None).name == "minilm-l6-v2"
    assert configured_embedder("minilm-l6-v2").name == "minilm-l6-v2"
    assert isinstance(configured_embedder("minilm-l6-v2-int8"), OnnxInt8Embedder)


class Named(HashingEmbedder):
    """A stand-in with another embedder's name and the same dimension."""

    def __init__(self, name: str) -> None:
        super().__init__(384)
        self.name = name


def test_an_index_built_with_another_embedder_is_refused(tmp_path):
    from memex.index import Index

    Index.open(tmp_path, embedder=Named("minilm-l6-v2")).close()
    with pytest.raises(ModelError) as refused:
        Index.open(tmp_path, embedder=Named("minilm-l6-v2-int8"))
    message = str(refused.value)
    assert "built with embedding model 'minilm-l6-v2'" in message
    assert "'minilm-l6-v2-int8'" in message and "memex reindex" in message
    Index.open(tmp_path, embedder=Named("minilm-l6-v2")).close()  # its own embedder still opens it
    # a rebuild (memex reindex) takes the new one
    Index.open(tmp_path, embedder=Named("minilm-l6-v2-int8"), reset=True).close()
    Index.open(tmp_path, embedder=Named("minilm-l6-v2-int8")).close()
