"""`memex chat` and `memex conversations` as a person uses them at the terminal: a question, a
follow-up searched with the conversation ("Searched: ..."), /sources, /history, /new, /quit; the
conversation then listed, shown, renamed, exported and deleted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import POLICIES

COMPANY = POLICIES / "company.yaml"


@pytest.fixture
def home(memex_home, kestrel, monkeypatch):
    from memex.api.wiring import Memex
    from memex.cli import context
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    def fake_open(**kwargs):
        return Memex.open(
            policy_path=context.state["policy"], embedder=HashingEmbedder(), model=FakeModel(), **kwargs
        )

    monkeypatch.setattr(context, "open_memex", fake_open)
    monkeypatch.setenv("MEMEX_HOME", str(memex_home))
    with _ingested(memex_home, kestrel):
        pass
    return memex_home


class _ingested:
    def __init__(self, home, archive):
        from memex.access.policyfile import load_policy
        from memex.api.wiring import Memex
        from memex.config import Paths
        from memex.models.embeddings import HashingEmbedder
        from memex.models.llm import FakeModel

        self.memex = Memex(
            Paths(home),
            policy=load_policy(COMPANY),
            embedder=HashingEmbedder(),
            model=FakeModel(),
            writable=True,
        )
        self.memex.ingest([str(archive)])

    def __enter__(self):
        return self.memex

    def __exit__(self, *exc):
        self.memex.close()


def memex(*args: str, input: str | None = None):
    from memex.cli.main import app

    return CliRunner().invoke(app, ["--policy", str(COMPANY), *args], input=input, catch_exceptions=False)


def test_a_chat_at_the_terminal(home):
    typed = "How many vacation days do employees get per year?\nhow is it carried over?\n/sources\n/history\n/new\n/quit\n"
    run = memex("chat", "--as", "alice", input=typed)
    assert run.exit_code == 0, run.output
    out = run.output
    assert "Searched: how is it carried over? (" in out and "vacation" in out.split("Searched:", 1)[1].lower()
    assert "Sources:" in out and "employee-handbook.md" in out
    assert "(a new conversation)" in out

    listed = json.loads(memex("conversations", "list", "--as", "alice", "--json").stdout)
    assert [c["title"] for c in listed] == ["How many vacation days do employees get per year?"]
    conversation = listed[0]["id"]
    shown = json.loads(memex("conversations", "show", conversation, "--as", "alice", "--json").stdout)
    assert [t["question"] for t in shown["turns"]] == [
        "How many vacation days do employees get per year?",
        "how is it carried over?",
    ]
    assert "vacation" in shown["turns"][1]["standalone"].lower()

    # Another user, an admin included, cannot see it: the same answer as for no such conversation.
    for other in ("pat", None):
        as_other = ["--as", other] if other else []
        refused = memex("conversations", "show", conversation, *as_other, "--json")
        assert refused.exit_code == 1 and json.loads(refused.stdout)["type"] == "NoSuchConversation"
        assert "vacation" not in refused.stdout.lower()

    renamed = json.loads(
        memex("conversations", "rename", conversation, "Vacation days", "--as", "alice", "--json").stdout
    )
    assert renamed["title"] == "Vacation days"
    exported = json.loads(memex("conversations", "export", conversation, "--as", "alice").stdout)
    assert exported["title"] == "Vacation days" and len(exported["turns"]) == 2
    assert memex("conversations", "delete", conversation, "--as", "alice").exit_code == 0
    gone = memex("conversations", "show", conversation, "--as", "alice", "--json")
    assert gone.exit_code == 1 and json.loads(gone.stdout)["type"] == "NoSuchConversation"


def test_ask_in_a_conversation_and_go_on_with_it(home):
    first = json.loads(
        memex(
            "ask", "-c", "new", "Where is the Kestrel Labs office in Lisbon?", "--as", "alice", "--json"
        ).stdout
    )
    assert first["conversation"] and first["turn"] == 1
    second = json.loads(
        memex("ask", "-c", first["conversation"], "when does it open?", "--as", "alice", "--json").stdout
    )
    assert (second["conversation"], second["turn"]) == (first["conversation"], 2)
    assert second["asked"] == "when does it open?" and "lisbon" in second["question"].lower()
    wrong = memex("ask", "-c", "no-such-id", "when does it open?", "--as", "alice", "--json")
    assert wrong.exit_code == 1 and json.loads(wrong.stdout)["type"] == "NoSuchConversation"
