"""The web page in headless Chromium (Debian's chromium, driven by Playwright; never
`playwright install`): sign in with a token, ask, see the streamed answer and a numbered source;
model output shown as text, never run; a bad token refused; signing out forgets the token."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memex.api.wiring import Memex
from memex.config import Paths
from memex.models.embeddings import HashingEmbedder
from memex.models.llm import FakeModel
from memex.service.app import create_app
from tests.conftest import EXAMPLES
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


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def served(tmp_path, company_policy):
    archive = tmp_path / "archive" / "kestrel"
    shutil.copytree(EXAMPLES / "handbook", archive / "handbook")
    (archive / "hr").mkdir()
    for name in ("parental-leave-policy.md", "salaries-2026.csv"):  # text files: quick to ingest
        shutil.copy(EXAMPLES / "hr" / name, archive / "hr" / name)
    model = FakeModel(echo=False)
    memex = Memex(
        Paths(tmp_path / "home"),
        policy=company_policy,
        embedder=HashingEmbedder(),
        model=model,
        writable=True,
    )
    assert memex.ingest([str(archive)]).failures == []
    service, tokens = make_service(memex)
    with live_server(create_app(service)) as url:
        yield url, tokens, model, archive
    service.close()
    memex.close()


def test_sign_in_ask_and_see_the_streamed_answer_and_its_sources(browser, served):
    url, tokens, model, archive = served
    token, _ = tokens.create("alice", expires=None)
    model.enqueue(
        'Employees get 25 working days of paid vacation [1]. <img src=x onerror="window.pwned=1"> '
        "<script>window.pwned=2</script>"
    )
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    assert page.title() == "memex"
    page.fill("#token", token)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#ask:not([hidden])")
    assert page.text_content("#who") == "Signed in as alice"
    assert page.evaluate("sessionStorage.getItem('memex-token')") == token
    page.fill("#question", QUESTION)
    page.click("#ask-button")
    page.wait_for_selector("#sources li")
    answer = page.text_content("#answer")
    assert answer.startswith("Employees get 25 working days of paid vacation [1].")
    assert "<" not in answer  # the output rules removed the tags; the page would show them as text
    first = page.text_content("#sources li .source")
    assert first == f"{archive}/handbook/employee-handbook.md, Kestrel Labs Employee Handbook > Vacation"
    assert page.eval_on_selector("#sources li", "li => li.value") == 1
    assert "/hr/" not in page.text_content("#sources")  # alice is an engineer
    assert page.evaluate("window.pwned") is None
    assert page.locator("#answer *").count() == 0  # text only, no elements
    evidence = page.text_content("#evidence")
    assert "[1] Every employee gets 25 working days of paid vacation per year" in evidence
    page.click("#sources li button")  # show the source's text
    page.wait_for_selector("#sources li .source-text")
    assert "25 working days of paid vacation" in page.text_content("#sources li .source-text")
    assert page.text_content("#state") == ""
    page.click("#sign-out")
    assert page.evaluate("sessionStorage.getItem('memex-token')") is None
    assert page.is_visible("#sign-in") and not page.is_visible("#ask")
    assert errors == []


def test_a_bad_token_is_refused(browser, served):
    url, _, _, _ = served
    page = browser.new_page()
    page.goto(url)
    page.fill("#token", "mx_not_a_token")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_function("document.getElementById('sign-in-error').textContent.length > 0")
    assert page.text_content("#sign-in-error") == "Sign-in failed: invalid or unknown token"
    assert page.is_visible("#sign-in") and not page.is_visible("#ask")
    assert page.evaluate("sessionStorage.getItem('memex-token')") is None
