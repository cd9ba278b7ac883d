"""Deterministic rules on what an answer may contain, whatever the model wrote: no images, no
links or URLs other than the asker's own citations, no reference-style links, no data: URIs,
no HTML. Applied in the CLI, the web page and the APIs alike (they all get text from here)."""

from __future__ import annotations

import re

REMOVED = "[link removed]"
_IMAGE = re.compile(r"!\[[^\]]*\]\s*(\([^)]*\)|\[[^\]]*\])")
_REFERENCE_DEFINITION = re.compile(r"(?m)^\s{0,3}\[[^\]]+\]:\s*\S+.*$")
_INLINE_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?([^)>\s]*)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
_REFERENCE_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_URL = re.compile(
    r"(?i)\b(?:https?|ftp|file|data|javascript|vbscript|mailto|blob):[^\s<>\"'\])]*"
    r"|\bwww\.[^\s<>\"'\])]+"
)


def clean_answer(text: str, *, allowed_urls: set[str] | frozenset[str] = frozenset()) -> str:
    text = _IMAGE.sub("", text)
    text = _REFERENCE_DEFINITION.sub("", text)
    text = _INLINE_LINK.sub(lambda m: m.group(1) if m.group(1).strip() else "", text)
    text = _REFERENCE_LINK.sub(lambda m: m.group(1), text)
    text = _HTML_TAG.sub("", text)
    return _URL.sub(lambda m: m.group(0) if _is_allowed(m.group(0), allowed_urls) else REMOVED, text)


def _is_allowed(url: str, allowed: set[str] | frozenset[str]) -> bool:
    if url.lower().startswith(("data:", "javascript:", "vbscript:", "blob:")):
        return False
    return url.rstrip(".,;:") in allowed
