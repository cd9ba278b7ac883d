"""The models memex runs: the catalogue of language models shipped in PyPI packages
(`catalogue`: assemble, verify, choose), the language-model clients (`llm`: llama.cpp in
process, or an OpenAI-compatible server) and the embedders (`embeddings`)."""
