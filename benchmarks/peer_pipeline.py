"""memex ingest against a peer pipeline a user might pick instead: LlamaIndex's
SimpleDirectoryReader + SentenceSplitter + HuggingFaceEmbedding + Chroma vector store, on the same
folder with the same embedding model (the bundled all-MiniLM-L6-v2), in the same run.

    pip install llama-index-core llama-index-readers-file llama-index-embeddings-huggingface \
        llama-index-vector-stores-chroma        # not memex dependencies: only for this benchmark
    python benchmarks/peer_pipeline.py [--docs 1000] [--rounds 2]

The folder holds --docs Markdown files (SciFact abstracts, one per file, from ../shared/data).
Both sides load their model before the clock starts and write to a fresh on-disk Chroma store;
memex also writes its lexical index and ledger and checks every chunk's access labels. The runs
alternate (memex, LlamaIndex, memex, ...) so a busy machine slows both alike. Reported: seconds,
chunks, chunks/s, and the speed ratio memex / LlamaIndex (goal >= 1.5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest_throughput import POLICY, _noop, write_abstracts  # noqa: E402

from memex.access.policyfile import parse_policy  # noqa: E402
from memex.api.wiring import Memex  # noqa: E402
from memex.config import Paths  # noqa: E402
from memex.models.embeddings import SentenceTransformerEmbedder, default_embedding_path  # noqa: E402


def memex_run(folder: Path, work: Path, embedder) -> tuple[float, int]:
    with Memex(Paths(work), policy=parse_policy(POLICY), embedder=embedder, writable=True) as memex:
        memex.pool.run(_noop)  # the parser worker is up before the clock starts, as in a daemon
        started = time.perf_counter()
        report = memex.ingest([str(folder)])
        return time.perf_counter() - started, report.chunks_added


def llamaindex_run(folder: Path, work: Path, embed_model) -> tuple[float, int]:
    import chromadb
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    started = time.perf_counter()
    client = chromadb.PersistentClient(path=str(work / "chroma"))
    collection = client.get_or_create_collection("peer")
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    documents = SimpleDirectoryReader(str(folder)).load_data()
    index = VectorStoreIndex.from_documents(
        documents,
        storage_context=storage,
        embed_model=embed_model,
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=20)],
    )
    seconds = time.perf_counter() - started
    assert index is not None
    return seconds, collection.count()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    peer_model = HuggingFaceEmbedding(model_name=str(default_embedding_path()), device="cpu")
    peer_model.get_text_embedding("warm up")
    runs: dict[str, list[tuple[float, int]]] = {"memex": [], "llamaindex": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "abstracts"
        write_abstracts(folder, args.docs)
        for n in range(args.rounds):
            runs["memex"].append(memex_run(folder, Path(tmp) / f"memex-{n}", embedder))
            runs["llamaindex"].append(llamaindex_run(folder, Path(tmp) / f"peer-{n}", peer_model))
    result = {}
    for name, measured in runs.items():
        seconds = statistics.median(s for s, _ in measured)
        chunks = measured[-1][1]
        result[name] = {
            "seconds": round(seconds, 1),
            "chunks": chunks,
            "chunks_per_second": round(chunks / seconds, 1),
            "files_per_second": round(args.docs / seconds, 1),
        }
    result["files"] = args.docs
    result["speed_ratio_files"] = round(result["llamaindex"]["seconds"] / result["memex"]["seconds"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
