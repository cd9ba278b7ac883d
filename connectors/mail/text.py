"""Message bodies as readable text: HTML turned into paragraphs, and quoted replies left out (the
message they quote is indexed on its own, so a thread's text is indexed once)."""

from __future__ import annotations

import re

from connectors.hiddentext import hidden_reason, stylesheet_rules

# HTML elements whose content is never text a reader sees.
_INVISIBLE = {"script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe"}
# Elements that end a paragraph, and those that end a line.
_PARAGRAPH = {
    "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "table",
    "ul", "ol", "dl", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "center", "form",
    "hr", "address", "figure",
}  # fmt: skip
_LINE = {"br", "tr", "li", "dt", "dd", "caption", "figcaption"}
_CELL = {"td", "th"}
# Where mailers put the message being replied to (Outlook's reply header and everything after
# it; Gmail's, Thunderbird's, Apple Mail's and Yahoo's quote blocks).
_CUT_AT_IDS = {"divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}
_QUOTE_CLASSES = {"gmail_quote", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote"}


def html_to_text(html: str) -> str:
    """The visible text of an HTML body, a blank line between paragraphs, quotes left out."""
    from lxml import etree
    from lxml import html as lxml_html

    if not html.strip():
        return ""
    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return _collapse(re.sub(r"<[^>]*>", " ", html))
    out: list[str] = []
    skipped: set = set()
    rules = stylesheet_rules(s.text or "" for s in root.iter("style"))
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if event == "start":
            if not tag or tag in _INVISIBLE or _is_quote(element) or hidden_reason(element, rules):
                skipped.add(element)
                walker.skip_subtree()
                continue
            if _is_cut(element):
                break
            if tag in _PARAGRAPH:
                out.append("\n\n")
            elif tag in _LINE:
                out.append("\n- " if tag == "li" else "\n")
            elif tag in _CELL:
                out.append(" | ")
            if tag == "pre":
                out.append((element.text or "").replace(" ", "\u00a0"))
            elif element.text:
                out.append(_spaced(element.text))
        else:
            if element not in skipped and tag in _PARAGRAPH:
                out.append("\n\n")
            if element.tail and element is not root:
                out.append(_spaced(element.tail))
    return _collapse("".join(out)).replace("\u00a0", " ")


def _spaced(text: str) -> str:
    """HTML whitespace: runs become one space, kept at the edges so words do not run together."""
    inner = " ".join(text.split())
    if not inner:
        return " " if text else ""
    return (" " if text[0].isspace() else "") + inner + (" " if text[-1].isspace() else "")


def _is_quote(element) -> bool:
    classes = set((element.get("class") or "").lower().split())
    if classes & _QUOTE_CLASSES:
        # Gmail marks forwarded messages the same way; a forward is new content, keep it.
        return "forwarded message" not in " ".join(element.itertext())[:300].lower()
    return element.tag == "blockquote" and (element.get("type") or "").lower() == "cite"


def _is_cut(element) -> bool:
    return (element.get("id") or "").lower() in _CUT_AT_IDS


def _collapse(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\r", "").split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"(?m)^ ?\| ?", "", text)  # a table row's first cell separator
    return text.strip()


# --- quoted replies ----------------------------------------------------------------------

_QUOTED = re.compile(r"^\s*>")
_ATTRIBUTION = re.compile(
    r"(wrote|writes|schrieb|a écrit|escribió|scrisse|schreef|escreveu|napisał|kirjoitti|skrev|"
    r"написал|napsal|írta|yazdı)\s*:?\s*$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(
    r"^\s*(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|mensagem original)\s*-{2,}|_{10,})\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FIELD = re.compile(r"^\s*\*?(from|von|de|da|van|sent|gesendet|envoyé|enviado|date|to|an|à|"
                            r"para|subject|betreff|objet|asunto|cc)\s*:\*?\s", re.IGNORECASE)  # fmt: skip


def strip_quoted(text: str, *, forwarded: bool = False) -> str:
    """The text a message adds: quoted lines (">"), the "On ... wrote:" line before them, and a
    top-posted original ("-----Original Message-----", an Outlook From/Sent/To block) left out.
    A forwarded message (`forwarded`, e.g. the subject starts with "Fwd:") keeps the original:
    it is new to this thread, not a quote of something indexed already."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not forwarded:
        lines = _cut_original(lines)
    keep = [not _QUOTED.match(line) for line in lines]
    for i in range(len(lines)):
        if keep[i] or (i and not keep[i - 1]):
            continue
        # The start of a quote block: drop its attribution line(s) just above.
        j = i - 1
        while j >= 0 and keep[j] and not lines[j].strip():
            j -= 1
        if j >= 0 and keep[j] and _ATTRIBUTION.search(lines[j]):
            keep[j] = False
            if j >= 1 and keep[j - 1] and lines[j - 1].strip() and len(lines[j - 1]) + len(lines[j]) < 200:
                joined = f"{lines[j - 1]} {lines[j]}"
                if re.match(r"^\s*(on|am|le|el|il|op|em|w dniu)\b", joined, re.IGNORECASE):
                    keep[j - 1] = False
    out = "\n".join(line for line, k in zip(lines, keep, strict=True) if k)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def _cut_original(lines: list[str]) -> list[str]:
    """Everything from a top-posted original on, if something was written above it."""
    for i, line in enumerate(lines):
        if i == 0 or not any(line.strip() for line in lines[:i]):
            continue
        if _ORIGINAL.match(line) and _looks_like_header(lines[i + 1 : i + 6], minimum=1):
            return lines[:i]
        if _ORIGINAL.match(line) and "_" not in line:
            return lines[:i]
        if _OUTLOOK_FIELD.match(line) and line.strip().lower().startswith(("from", "*from", "von", "de")):
            if _looks_like_header(lines[i : i + 6], minimum=3) and not lines[i - 1].strip():
                return lines[:i]
    return lines


def _looks_like_header(lines: list[str], *, minimum: int) -> bool:
    return sum(1 for line in lines if _OUTLOOK_FIELD.match(line)) >= minimum
