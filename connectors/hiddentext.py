"""HTML text a reader does not see: removed before indexing, because hidden text is where an
attacker puts instructions for the model (EchoLeak and the Slack AI disclosure both hid theirs).

Hidden means: the `hidden` attribute; inline or simple stylesheet rules (`.class`, `#id`, `tag`,
`tag.class`) with display:none, visibility:hidden, opacity:0, a font size of 0 or 1px, zero
height or width with overflow hidden, clipping to nothing, or text pushed far off-screen; and text
in the colour of its background (white on white, or on no background at all: pages are white).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DECLARATION = re.compile(r"([a-zA-Z-]+)\s*:\s*([^;]+)")
_RULE = re.compile(r"([^{}@]+)\{([^{}]*)\}")
_SIMPLE_SELECTOR = re.compile(r"^([a-zA-Z][\w-]*)?(?:([.#])([\w-]+))?$")
_NAMED = {
    "white": (255, 255, 255), "black": (0, 0, 0), "snow": (255, 250, 250), "ivory": (255, 255, 240),
    "whitesmoke": (245, 245, 245), "ghostwhite": (248, 248, 255), "floralwhite": (255, 250, 240),
    "mintcream": (245, 255, 250), "azure": (240, 255, 255), "seashell": (255, 245, 238),
    "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "yellow": (255, 255, 0), "navy": (0, 0, 128), "silver": (192, 192, 192),
}  # fmt: skip
WHITE = (255, 255, 255)


def style_of(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2).strip().lower() for m in _DECLARATION.finditer(text or "")}


def hides(style: dict[str, str]) -> str | None:
    """The reason a set of declarations hides its text, or None."""
    value = style.get
    if value("display", "").startswith("none"):
        return "display:none"
    if value("visibility", "").startswith(("hidden", "collapse")):
        return "visibility:hidden"
    if _number(value("opacity", "")) == 0:
        return "opacity:0"
    size = value("font-size", "")
    if size and (_number(size) == 0 or (size.endswith("px") and (_number(size) or 9) <= 1)):
        return "font-size:0"
    if value("overflow", "").startswith("hidden") and any(
        _number(value(k, "")) == 0 for k in ("height", "width", "max-height", "max-width")
    ):
        return "zero size"
    clip = value("clip", "") + value("clip-path", "")
    if re.search(r"rect\(\s*0[a-z]*[\s,]+0[a-z]*[\s,]+0[a-z]*[\s,]+0|inset\(\s*50%", clip):
        return "clipped"
    for key in ("left", "top", "text-indent", "margin-left"):
        number = _number(value(key, ""))
        if number is not None and number <= -999:
            return "off-screen"
    if value("color", "").startswith("transparent"):
        return "transparent text"
    return None


def stylesheet_rules(styles: Iterable[str]) -> dict[str, str]:
    """{selector: reason} for the simple selectors whose rules hide text."""
    hidden: dict[str, str] = {}
    for css in styles:
        css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
        for selectors, body in _RULE.findall(css):
            reason = hides(style_of(body))
            if reason:
                for selector in selectors.split(","):
                    selector = selector.strip().lower()
                    if _SIMPLE_SELECTOR.match(selector) and selector:
                        hidden[selector] = reason
    return hidden


def hidden_reason(element, rules: dict[str, str]) -> str | None:
    """Why an lxml element's text is hidden, or None."""
    if not isinstance(element.tag, str):
        return None
    if element.get("hidden") is not None:
        return "hidden attribute"
    style = style_of(element.get("style") or "")
    reason = hides(style)
    if reason:
        return reason
    if rules:
        tag = element.tag.lower()
        names = [tag]
        for cls in (element.get("class") or "").lower().split():
            names += [f".{cls}", f"{tag}.{cls}"]
        if element.get("id"):
            names += [f"#{element.get('id').lower()}", f"{tag}#{element.get('id').lower()}"]
        for name in names:
            if name in rules:
                return rules[name]
    colour = _colour(style.get("color") or (element.get("color") if element.tag == "font" else None))
    if colour is not None and _close(colour, _background(element)):
        return "text in its background's colour"
    return None


def drop_hidden(root) -> int:
    """Remove the hidden elements of an lxml tree (their tails stay); how many were removed."""
    rules = stylesheet_rules(s.text or "" for s in root.iter("style"))
    doomed = [e for e in root.iter() if hidden_reason(e, rules)]
    removed = 0
    for element in doomed:
        parent = element.getparent()
        if parent is None or any(a in doomed for a in element.iterancestors()):
            continue
        element.drop_tree()  # keeps the tail text
        removed += 1
    return removed


def _background(element) -> tuple[int, int, int]:
    for node in (element, *element.iterancestors()):
        if not isinstance(node.tag, str):
            continue
        style = style_of(node.get("style") or "")
        for value in (style.get("background-color"), style.get("background"), node.get("bgcolor")):
            if value:
                for token in re.findall(r"#[0-9a-fA-F]{3,6}\b|rgba?\([^)]*\)|[a-zA-Z]+", value):
                    colour = _colour(token)
                    if colour is not None:
                        return colour
    return WHITE


def _colour(value: str | None) -> tuple[int, int, int] | None:
    if not value:
        return None
    value = value.strip().lower().split("!")[0].strip()
    if value in _NAMED:
        return _NAMED[value]
    match = re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", value)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    match = re.fullmatch(r"rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)(?:[\s,/]+([\d.]+%?))?\s*\)", value)
    if match:
        alpha = match.group(4)
        if alpha is not None and _number(alpha) == 0:
            return None  # transparent: caught as such
        return tuple(min(255, int(match.group(i))) for i in (1, 2, 3))  # type: ignore[return-value]
    return None


def _close(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) <= 24


def _number(text: str) -> float | None:
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", text or "")
    return float(match.group(1)) if match else None
