"""Shared fixtures. Every test gets its own MEMEX_HOME; nothing touches the real one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples" / "kestrel"
POLICIES = ROOT / "policies"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["MEMEX_PLUGINS"] = ""  # built-in connectors only, whatever else is installed
# Commands open the store themselves, as with --no-daemon, unless a test starts memex in the
# background itself (tests/test_background.py, the README and newcomer tests): a daemon per test
# home would outlive its test.
os.environ["MEMEX_NO_DAEMON"] = "1"

# Property tests draw the same examples on every run, so a suite that passed here passes in CI;
# HYPOTHESIS_PROFILE=explore draws new ones (run it when changing memex/answer/output_rules.py).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def parse_all(connector) -> tuple[list, dict[str, str]]:
    """A connector's documents that parse, and {source uri: reason} for those that do not."""
    from memex.errors import ParseError

    good, bad = [], {}
    for doc in connector.load():
        try:
            doc.elements()
        except ParseError as exc:
            bad[doc.uri] = str(exc)
        else:
            good.append(doc)
    return good, bad


def data_dir(name: str) -> Path:
    """A folder of ../shared/data, or skip the test saying what is missing. Resolved, as the
    connectors resolve what they read (../shared may be a link)."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"test data {path} is absent (it lives in ../shared/data beside the checkout)")
    return path.resolve()


@pytest.fixture(autouse=True)
def memex_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "memex-home"
    monkeypatch.setenv("MEMEX_HOME", str(home))
    monkeypatch.delenv("MEMEX_POLICY", raising=False)
    return home


# The example's voice memo and whiteboard photo cost about 10 s of speech and text recognition
# per ingest: tests that are not about media copy the archive without them (tests/test_media.py,
# the README demo and the newcomer test read them).
EXAMPLE_MEDIA = frozenset({"voice-memo-2026-03-12.ogg", "whiteboard-2026-03-12.jpg"})


def without_media(folder, names) -> list[str]:
    """For shutil.copytree(..., ignore=without_media): the example archive less its media."""
    return [name for name in names if name in EXAMPLE_MEDIA]


@pytest.fixture
def kestrel(tmp_path) -> Path:
    """A private copy of the example archive (tests may change it), without its media files."""
    target = tmp_path / "archive" / "kestrel"
    shutil.copytree(EXAMPLES, target, ignore=without_media)
    return target


@pytest.fixture
def company_policy():
    from memex.access.policyfile import load_policy

    return load_policy(POLICIES / "company.yaml")


def memex_with_fakes(home: Path, policy: str = "personal.yaml"):
    """A writable Memex over `home` with a bundled policy, the hashing embedder and the echoing
    fake model (close it when done)."""
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    return Memex(
        Paths(home),
        policy=load_policy(POLICIES / policy),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )


@pytest.fixture
def fake_memex(memex_home, company_policy):
    """A Memex with the company policy, a hashing embedder and an echoing fake model."""
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    memex = Memex(
        Paths(memex_home), policy=company_policy, embedder=HashingEmbedder(), model=FakeModel(), writable=True
    )
    yield memex
    memex.close()


@pytest.fixture(scope="session")
def real_embedder():
    from memex.models.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def real_model():
    from memex.models.llm import LlamaCppModel

    return LlamaCppModel()


@pytest.fixture(scope="session", autouse=True)
def no_daemon_outlives_the_tests(tmp_path_factory):
    """A safety net: a daemon a failed test left running under the tests' folders is stopped (one
    with the real models holds over a GB)."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    import signal

    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"memex.daemon.process" not in command:
            continue
        home = next((e[len(b"MEMEX_HOME=") :].decode() for e in environ if e.startswith(b"MEMEX_HOME=")), "")
        if home.startswith(base):
            os.kill(int(entry.name), signal.SIGTERM)
