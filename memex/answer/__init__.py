"""Answering from retrieved chunks: retrieval with dates as a preference and the answer
pipeline (`pipeline`), the prompt (`prompting`), the output rules every shown text passes
(`output_rules`), and the answer check against the sources (`facts`, `grounding`, `evidence`).
`timeparse` reads the time expressions of questions."""
