"""The web page in headless Chromium (Debian's chromium, driven by Playwright; never
`playwright install`): sign in with a token, chat (a question, its streamed answer and numbered
sources, a follow-up searched as a standalone question, the conversation listed after a reload,
renamed, deleted), with the mouse on a desktop and with the keyboard alone on a phone-sized
screen; a turn built from a source its owner can no longer read shown withheld; model output
shown as text, never run; a bad token refused; signing out forgets the token."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from memex.access.policyfile import PolicySource, load_policy
from memex.api.wiring import Memex
from memex.config import Paths
from memex.models.embeddings import HashingEmbedder
from memex.models.llm import FakeModel
from memex.service.app import create_app
from tests.conftest import EXAMPLES, POLICIES
from tests.service_support import live_server, make_service

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUESTION = "How many vacation days do employees get per year?"
ANSWER = (  # two lines: a line that cites is streamed once it is complete
    "Employees get 25 working days of paid vacation [1].\nVacation is booked in the HR portal [1]."
)
FOLLOW_UP = "How is it carried over?"
REWRITTEN = "How are vacation days carried over?"  # the model's rewrite: words of the conversation
FOLLOW_UP_ANSWER = "Up to 5 unused days carry over to the next year [1]."
WITHHELD = "Answer hidden: it used sources you can no longer read"
PHONE = {"width": 375, "height": 667}
HANDBOOK_FILE_HR_ONLY = """\
  - name: employee-handbook-now-hr-only
    match: {path: "**/kestrel/handbook/employee-handbook.md"}
    labels: [hr]
    level: confidential
"""

# Records every text the answers held, as it was put there: the streamed pieces, then the whole.
WATCH_ANSWERS = """() => {
  window.answerTexts = [];
  new MutationObserver((records) => {
    for (const r of records) {
      if (!r.target.classList || !r.target.classList.contains("answer")) continue;
      for (const node of r.addedNodes) if (node.nodeType === 3) window.answerTexts.push(node.data);
    }
  }).observe(document.getElementById("turns"), { childList: true, subtree: true });
}"""
# Every visible control, and whether it has a name a screen reader can say.
UNNAMED_CONTROLS = """() => [...document.querySelectorAll("button, input, textarea, a[href], summary")]
  .filter((e) => e.offsetParent !== null)
  .filter((e) => {
    const name = (e.getAttribute("aria-label") || (e.labels && e.labels.length ? e.labels[0].textContent : "")
      || e.textContent || "").trim();
    return name === "";
  })
  .map((e) => e.outerHTML.slice(0, 80))"""
# Visible text whose contrast with its background is below WCAG AA (4.5:1, 3:1 for large text).
LOW_CONTRAST = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const e of document.querySelectorAll("body *")) {
    if (e.offsetParent === null) continue;
    if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(e);
    const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(e))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    if (ratio < (size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5)) {
      low.push(`${e.tagName}.${e.className} ${ratio.toFixed(2)}: ${e.textContent.trim().slice(0, 40)}`);
    }
  }
  return low;
}"""
FOCUS = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  return {id: e.id, classes: e.className, tag: e.tagName, text: (e.textContent || "").trim().slice(0, 60),
          outline: style.outlineStyle, width: parseFloat(style.outlineWidth), visible: e.matches(":focus-visible")};
}"""


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@contextmanager
def serve(tmp_path: Path, policy) -> Iterator[tuple[str, object, FakeModel, Path]]:
    archive = tmp_path / "archive" / "kestrel"
    shutil.copytree(EXAMPLES / "handbook", archive / "handbook")
    (archive / "hr").mkdir()
    for name in ("parental-leave-policy.md", "salaries-2026.csv"):  # text files: quick to ingest
        shutil.copy(EXAMPLES / "hr" / name, archive / "hr" / name)
    model = FakeModel(echo=False)
    memex = Memex(
        Paths(tmp_path / "home"),
        policy=policy,
        embedder=HashingEmbedder(),
        model=model,
        writable=True,
    )
    assert memex.ingest([str(archive)]).failures == []
    service, tokens = make_service(memex)
    try:
        with live_server(create_app(service)) as url:
            yield url, tokens, model, archive
    finally:
        service.close()
        memex.close()


@pytest.fixture
def served(tmp_path, company_policy):
    with serve(tmp_path, company_policy) as running:
        yield running


@pytest.fixture
def served_with_policy_file(tmp_path):
    """As `served`, with the policy read from a file that the test may edit (in force at once)."""
    path = tmp_path / "policy.yaml"
    shutil.copy(POLICIES / "company.yaml", path)
    with serve(tmp_path, PolicySource(load_policy(path), path)) as running:
        yield (*running, path)


def watch(page) -> list[str]:
    """The page's script errors and console errors, as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def sign_in(page, url: str, token: str) -> None:
    page.goto(url)
    page.fill("#token", token)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#chat:not([hidden])")


def turns(page) -> list[dict]:
    """Each turn shown: its question, notes, answer, sources and evidence, as text."""
    return page.eval_on_selector_all(
        "#turns .turn",
        """turns => turns.map(t => ({
            question: t.querySelector('.question .text').textContent,
            notes: [...t.querySelectorAll('.note')].map(n => n.textContent),
            answer: t.querySelector('.answer').textContent,
            withheld: t.classList.contains('withheld'),
            sources: [...t.querySelectorAll('.sources li')].map(li => [li.value, li.querySelector('.source').textContent]),
            evidence: [...t.querySelectorAll('.evidence li')].map(li => li.textContent),
        }))""",
    )


def listed(page) -> list[str]:
    return page.eval_on_selector_all(
        "#conversations button.conversation .title", "ts => ts.map(t => t.textContent)"
    )


def stored(page) -> dict:
    """What the API holds for this user (with the page's token): their conversations."""
    return page.evaluate(
        """async () => {
            const auth = {Authorization: 'Bearer ' + sessionStorage.getItem('memex-token')};
            const list = await (await fetch('api/conversations', {headers: auth})).json();
            const out = {};
            for (const c of list.conversations) {
                out[c.id] = await (await fetch('api/conversations/' + c.id, {headers: auth})).json();
            }
            return out;
        }"""
    )


def wait_for_turns(page, count: int) -> None:
    """`count` turns, the last one answered (its sources listed). On a machine busy with other
    work this may take a while; if it never comes, the failure shows what the page holds."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "n => document.querySelectorAll('#turns .turn').length === n && "
            "document.querySelector('#turns .turn:last-child .sources li') !== null && "
            "!document.getElementById('ask-button').disabled",
            arg=count,
            timeout=90_000,
        )
    except PlaywrightTimeout:
        shown = page.eval_on_selector_all("#turns .turn", "ts => ts.map(t => t.textContent)")
        raise AssertionError(f"{count} answered turn(s) never came; the page shows: {shown}") from None


def tab_to(page, selector: str, *, back: bool = False, limit: int = 40) -> dict:
    """Press Tab (Shift+Tab) until `selector` has the focus; that its focus is visible is checked."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            focus = page.evaluate(FOCUS)
            assert focus["visible"] and focus["outline"] != "none" and focus["width"] >= 2, focus
            return focus
        page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"{selector} was not reached with {'Shift+Tab' if back else 'Tab'}")


def no_sideways_scroll(page) -> None:
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert inner == page.viewport_size["width"]  # not zoomed out to fit something too wide
    assert width <= inner, f"the page scrolls sideways: {width} > {inner}"


def screenshot(page, tmp_path: Path, name: str, capsys) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    with capsys.disabled():
        print(f"\nscreenshot: {path}")
    return path


def test_sign_in_ask_and_see_the_streamed_answer_and_its_sources(browser, served):
    url, tokens, model, archive = served
    token, _ = tokens.create("alice", expires=None)
    model.enqueue(
        'Employees get 25 working days of paid vacation [1]. <img src=x onerror="window.pwned=1"> '
        "<script>window.pwned=2</script>"
    )
    page = browser.new_page()
    errors = watch(page)
    page.goto(url)
    assert page.title() == "memex"
    page.fill("#token", token)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#chat:not([hidden])")
    assert page.text_content("#who") == "Signed in as alice"
    assert page.evaluate("sessionStorage.getItem('memex-token')") == token
    page.fill("#question", QUESTION)
    page.click("#ask-button")
    page.wait_for_selector(".turn .sources li")
    answer = page.text_content(".turn .answer")
    assert answer.startswith("Employees get 25 working days of paid vacation [1].")
    assert "<" not in answer  # the output rules removed the tags; the page would show them as text
    first = page.text_content(".turn .sources li .source")
    assert first == f"{archive}/handbook/employee-handbook.md, Kestrel Labs Employee Handbook > Vacation"
    assert page.eval_on_selector(".turn .sources li", "li => li.value") == 1
    assert "/hr/" not in page.text_content(".turn .sources")  # alice is an engineer
    assert page.evaluate("window.pwned") is None
    assert page.locator(".turn .answer *").count() == 0  # text only, no elements
    evidence = page.text_content(".turn .evidence")
    assert "[1] Every employee gets 25 working days of paid vacation per year" in evidence
    page.click(".turn .sources li button")  # show the source's text
    page.wait_for_selector(".turn .sources li .source-text")
    assert "25 working days of paid vacation" in page.text_content(".turn .sources li .source-text")
    assert page.text_content("#state") == ""
    page.click("#sign-out")
    assert page.evaluate("sessionStorage.getItem('memex-token')") is None
    assert page.is_visible("#sign-in") and not page.is_visible("#chat")
    assert errors == []


def test_a_conversation_with_the_mouse_on_a_desktop(browser, served, tmp_path, capsys):
    url, tokens, model, archive = served
    token, _ = tokens.create("alice", expires=None)
    handbook = f"{archive}/handbook/employee-handbook.md, Kestrel Labs Employee Handbook > Vacation"
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = watch(page)
    sign_in(page, url, token)
    assert listed(page) == [] and page.is_visible("#list-empty")
    assert page.text_content("#conversation-title") == "New conversation"
    assert not page.is_visible("#delete-conversation")
    assert not page.is_visible("#toggle-list")  # the list is always shown on a wide screen
    page.evaluate(WATCH_ANSWERS)

    model.enqueue(ANSWER)
    page.fill("#question", QUESTION)
    page.click("#ask-button")
    wait_for_turns(page, 1)
    [first] = turns(page)
    assert first["question"] == QUESTION and first["notes"] == []
    assert first["answer"].startswith(ANSWER)
    assert first["sources"][0] == [1, handbook]
    assert any("25 working days of paid vacation" in line for line in first["evidence"])
    streamed = [t for t in page.evaluate("window.answerTexts") if t and t.strip() != first["answer"].strip()]
    assert streamed and all(first["answer"].startswith(t.strip()) for t in streamed), streamed  # pieces first
    assert page.get_attribute("#turns", "aria-live") == "polite"
    assert page.get_attribute("#turns", "aria-busy") == "false"
    assert page.input_value("#question") == ""
    page.wait_for_function(
        "() => document.querySelectorAll('#conversations button.conversation').length === 1"
    )
    assert listed(page) == [QUESTION]  # titled with its first question
    assert page.get_attribute("#conversations button.conversation", "aria-current") == "true"
    assert page.text_content("#conversation-title") == QUESTION

    model.enqueue(REWRITTEN, FOLLOW_UP_ANSWER)  # the rewrite of the follow-up, then its answer
    page.fill("#question", FOLLOW_UP)
    page.press("#question", "Enter")
    wait_for_turns(page, 2)
    first, second = turns(page)
    assert first["notes"] == []
    assert second["question"] == FOLLOW_UP
    assert second["notes"] == [f"Searched: {REWRITTEN}"]
    assert second["answer"].startswith(FOLLOW_UP_ANSWER)
    assert second["sources"] and second["sources"][0][0] == 1
    assert "carried over" in json.dumps(model.prompts[-2])  # the model was asked for the rewrite
    assert listed(page) == [QUESTION]  # the same conversation, not a new one
    [conversation] = stored(page).values()
    assert [(t["n"], t["question"], t["standalone"]) for t in conversation["turns"]] == [
        (1, QUESTION, QUESTION),
        (2, FOLLOW_UP, REWRITTEN),
    ]
    screenshot(page, tmp_path, "desktop-chat", capsys)

    page.reload()
    page.wait_for_selector("#chat:not([hidden])")
    page.wait_for_function(
        "() => document.querySelectorAll('#conversations button.conversation').length === 1"
    )
    assert listed(page) == [QUESTION]
    page.wait_for_function("() => document.querySelectorAll('#turns .turn').length === 2")  # reopened
    page.click("#new-conversation")
    assert page.locator("#turns .turn").count() == 0
    assert page.get_attribute("#conversations button.conversation", "aria-current") is None
    page.click("#conversations button.conversation")
    page.wait_for_function("() => document.querySelectorAll('#turns .turn').length === 2")
    again = turns(page)
    assert [t["question"] for t in again] == [QUESTION, FOLLOW_UP]
    assert again[1]["notes"] == [f"Searched: {REWRITTEN}"]
    assert again[0]["answer"].startswith(ANSWER) and again[1]["answer"].startswith(FOLLOW_UP_ANSWER)
    assert again[0]["sources"] == first["sources"] and again[0]["evidence"] == first["evidence"]

    page.once("dialog", lambda dialog: dialog.accept("Vacation days"))
    assert page.evaluate(LOW_CONTRAST) == []  # every text on the page, notes and hints included
    page.click("#rename-conversation")
    page.wait_for_function(
        "() => document.getElementById('conversation-title').textContent === 'Vacation days'"
    )
    page.wait_for_function(
        "() => document.querySelector('#conversations .title').textContent === 'Vacation days'"
    )

    asked: list[str] = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#delete-conversation")
    assert asked and "Vacation days" in asked[0]
    assert listed(page) == ["Vacation days"] and len(stored(page)) == 1  # dismissed: kept

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-conversation")
    page.wait_for_function(
        "() => document.querySelectorAll('#conversations button.conversation').length === 0"
    )
    assert stored(page) == {}
    assert page.locator("#turns .turn").count() == 0
    assert page.text_content("#conversation-title") == "New conversation"
    assert page.is_visible("#list-empty")
    page.reload()
    page.wait_for_selector("#chat:not([hidden])")
    assert listed(page) == [] and page.locator("#turns .turn").count() == 0
    assert errors == []


def test_a_conversation_with_the_keyboard_alone_on_a_phone(browser, served, tmp_path, capsys):
    url, tokens, model, _ = served
    token, _ = tokens.create("alice", expires=None)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = watch(page)
    page.goto(url)
    no_sideways_scroll(page)
    tab_to(page, "#token")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat:not([hidden])")
    page.wait_for_function("() => document.activeElement.id === 'question'")  # ready to ask
    assert not page.is_visible("#sidebar")  # folded away behind the Conversations button
    assert page.get_attribute("#toggle-list", "aria-expanded") == "false"
    assert page.evaluate(UNNAMED_CONTROLS) == []

    model.enqueue(ANSWER)
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    wait_for_turns(page, 1)
    model.enqueue(REWRITTEN, FOLLOW_UP_ANSWER)
    assert page.evaluate("document.activeElement.id") == "question"  # the next question, at once
    page.keyboard.type(FOLLOW_UP)
    page.keyboard.press("Enter")
    wait_for_turns(page, 2)
    first, second = turns(page)
    assert first["answer"].startswith(ANSWER) and first["sources"]
    assert second["notes"] == [f"Searched: {REWRITTEN}"] and second["sources"]
    no_sideways_scroll(page)
    assert page.evaluate(UNNAMED_CONTROLS) == []
    screenshot(page, tmp_path, "phone-chat", capsys)

    # Shift+Enter is a new line, not a question.
    page.keyboard.type("a first line")
    page.keyboard.press("Shift+Enter")
    assert page.input_value("#question") == "a first line\n"
    assert page.locator("#turns .turn").count() == 2
    page.fill("#question", "")

    # The skip link comes first and takes the focus to the question.
    tab_to(page, "#toggle-list", back=True)
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "skip"
    tab_to(page, "#skip")
    assert page.evaluate("document.getElementById('skip').getBoundingClientRect().top") >= 0  # shown
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "question"

    page.reload()
    page.wait_for_selector("#chat:not([hidden])")
    page.wait_for_function("() => document.activeElement.id === 'question'")
    assert not page.is_visible("#sidebar")
    tab_to(page, "#toggle-list", back=True)
    page.keyboard.press("Enter")
    page.wait_for_selector("#sidebar", state="visible")
    assert page.get_attribute("#toggle-list", "aria-expanded") == "true"
    page.wait_for_function(
        "() => document.querySelectorAll('#conversations button.conversation').length === 1"
    )
    assert listed(page) == [QUESTION]
    no_sideways_scroll(page)
    screenshot(page, tmp_path, "phone-list", capsys)
    page.wait_for_function("() => document.querySelectorAll('#turns .turn').length === 2")  # reopened
    tab_to(page, "#new-conversation")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'question'")
    assert page.locator("#turns .turn").count() == 0
    assert page.text_content("#conversation-title") == "New conversation"
    assert not page.is_visible("#sidebar")
    tab_to(page, "#toggle-list", back=True)
    page.keyboard.press("Enter")
    tab_to(page, "#conversations button.conversation")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'question'")
    assert not page.is_visible("#sidebar")  # folded again once one is chosen
    page.wait_for_function("() => document.querySelectorAll('#turns .turn').length === 2")
    again = turns(page)
    assert [t["question"] for t in again] == [QUESTION, FOLLOW_UP]
    assert again[1]["notes"] == [f"Searched: {REWRITTEN}"]
    no_sideways_scroll(page)

    # Escape folds the list and gives the focus back to its button.
    tab_to(page, "#toggle-list", back=True)
    page.keyboard.press("Enter")
    tab_to(page, "#new-conversation")
    page.keyboard.press("Escape")
    assert not page.is_visible("#sidebar")
    assert page.evaluate("document.activeElement.id") == "toggle-list"

    page.once("dialog", lambda dialog: dialog.accept())
    tab_to(page, "#delete-conversation")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#conversations button.conversation').length === 0"
    )
    assert stored(page) == {}
    assert page.locator("#turns .turn").count() == 0
    assert page.evaluate("document.activeElement.id") == "question"
    no_sideways_scroll(page)
    assert errors == []
    context.close()


def test_a_turn_whose_sources_the_user_can_no_longer_read_is_withheld(
    browser, served_with_policy_file, tmp_path, capsys
):
    url, tokens, model, archive, policy = served_with_policy_file
    token, _ = tokens.create("alice", expires=None)
    page = browser.new_page()
    errors = watch(page)
    sign_in(page, url, token)
    model.enqueue(ANSWER)
    page.fill("#question", QUESTION)
    page.press("#question", "Enter")
    wait_for_turns(page, 1)
    [first] = turns(page)
    assert first["sources"][0][1].startswith(f"{archive}/handbook/employee-handbook.md")
    assert not first["withheld"]

    # The employee handbook becomes HR-only: alice (an engineer) may no longer read it.
    text = policy.read_text()
    policy.write_text(text.replace("sources:\n", "sources:\n" + HANDBOOK_FILE_HR_ONLY, 1))
    model.enqueue("The office is at Rua das Flores 28 in Lisbon [1].")
    page.fill("#question", "Where is the Kestrel Labs office in Lisbon?")
    page.press("#question", "Enter")
    wait_for_turns(page, 2)
    second = turns(page)[1]
    assert second["sources"] and all("office-guide.txt" in where for _, where in second["sources"])

    page.reload()
    page.wait_for_selector("#chat:not([hidden])")
    page.wait_for_function(
        "() => document.querySelectorAll('#conversations button.conversation').length === 1"
    )
    page.click("#conversations button.conversation")
    page.wait_for_function("() => document.querySelectorAll('#turns .turn').length === 2")
    hidden, shown = turns(page)
    assert hidden["withheld"] and hidden["question"] == QUESTION
    assert hidden["answer"] == WITHHELD
    assert hidden["sources"] == [] and hidden["evidence"] == []
    assert "25 working days" not in page.text_content("#turns .turn.withheld")
    assert not shown["withheld"] and shown["answer"].startswith("The office is at Rua das Flores 28")
    assert shown["sources"] == second["sources"]
    screenshot(page, tmp_path, "desktop-withheld", capsys)
    assert errors == []


def test_a_bad_token_is_refused(browser, served):
    url, _, _, _ = served
    page = browser.new_page()
    page.goto(url)
    page.fill("#token", "mx_not_a_token")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('sign-in-error').textContent.length > 0")
    assert page.text_content("#sign-in-error") == "Sign-in failed: invalid or unknown token"
    assert page.is_visible("#sign-in") and not page.is_visible("#chat")
    assert page.evaluate("sessionStorage.getItem('memex-token')") is None
