"""Measuring quality: retrieval on BEIR-style sets (`retrieval`) and answers against question
sets with expected facts (`answers`)."""
