"""An oracle for the output rules, written apart from memex/answer/output_rules.py: what in a text a
reader, a Markdown renderer, a browser or a linkifier could take for an image, a link, a tag or a
URL."""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote

_LOOKALIKE_DOTS = "。｡︒․"
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*://[^\s<>\"'`]*", re.I)
_ORACLE = re.compile(
    r"[a-z][a-z0-9+.\-]*://[^\s<>\"'`]*"
    r"|(?<![/\w])//[\w\-]+(?:\.[\w\-]+)+[^\s<>\"'`]*"
    r"|\bwww\.[^\s<>\"'`]+"
    r"|\b(?:data|javascript|vbscript|mailto|file|https?|ftp):[^\s<>\"'`]+"
    r"|(?<![\w.\-])(?:[\w\-]+\.)+[^\W\d_]{2,}(?::\d+|/[^\s<>\"'`]*|\?[^\s<>\"'`]+)",
    re.I,
)


def _rendered(text: str) -> str:
    """What a renderer shows: look-alikes folded (NFKC), character references decoded."""
    out = unicodedata.normalize("NFKC", text)
    for _ in range(3):
        out = html.unescape(out)
    return out


def _refanged(text: str) -> str:
    """What a reader would retype: defanged URLs refanged, backslashes as slashes."""
    out = _rendered(text)
    for dot in _LOOKALIKE_DOTS:
        out = out.replace(dot, ".")
    out = re.sub(r"[\[({]\.[\])}]|\[dot\]|\(dot\)", ".", out, flags=re.I)
    out = out.replace("[:]", ":").replace("\\", "/")
    return re.sub(r"hxxp", "http", out, flags=re.I)


def violations(output: str, allowed: set[str]) -> list[str]:
    """Everything in `output` that could be an image, a link, a tag or a URL not allowed."""
    found = []
    views = [(output, _ORACLE), (_refanged(output), _ORACLE), (unquote(_refanged(output)), _SCHEME)]
    for view, pattern in views:
        for match in pattern.finditer(view):
            url = match.group(0).rstrip(".,;:!?)]'\"")
            if url not in allowed:
                found.append(url)
    for view in (output, html.unescape(html.unescape(output))):  # markup is ASCII: no NFKC here
        # a mail address in angle brackets (<a@b.example>) can carry no attribute: not a tag
        found += re.findall(
            r"!\[|\]\(|\]:|\]\[|<(?![\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+>)[a-z/!?]", view, flags=re.I
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co") and ch not in "\n\t" for ch in output):
        found.append("invisible characters")
    return found
