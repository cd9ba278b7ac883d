"""Follow-ups in a conversation find what they lean on (memex.answer.followup through
Reads.ask(..., conversation=...)).

The conversations are data (tests/conversations.yaml): two- to six-turn conversations over the
Kestrel archive (company policy, as the user each names) and the personal one (as its owner),
each turn with the sources its answer must be built from, and each follow-up with what it refers
to, which the question that was searched must name. They are asked with the hashing embedder
and the echoing fake model, so the follow-ups are rewritten by the rule (the fake model's echo
is no rewrite: it is refused); the model's rewrite, used or refused, is tested on its own below.

Each follow-up is also asked on its own, outside the conversation: most of them then find
nothing of what they lean on, so it is the conversation that finds it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from memex.answer.followup import Exchange, by_rule, standalone_question
from memex.api.reads import Reads
from memex.models.llm import FakeModel
from tests.conftest import EXAMPLES, memex_with_fakes

CONVERSATIONS = yaml.safe_load((Path(__file__).parent / "conversations.yaml").read_text(encoding="utf-8"))
ARCHIVES = {"kestrel": "company.yaml", "personal": "personal.yaml"}


@dataclass
class Asked:
    """One turn as asked in its conversation, and (a follow-up) asked on its own."""

    question: str
    find: list[str]
    names: list[str]
    searched: str
    sources: list[str]  # the answer's hits: "source source_id", lower case
    conversation: str | None
    turn: int | None
    alone: list[str] | None  # the hits of the follow-up asked outside the conversation


def _sources(answer) -> list[str]:
    return [f"{hit.uri} {hit.source_id}".lower() for hit in answer.hits]


def _found(find: list[str], sources: list[str]) -> bool:
    return all(any(want.lower() in source for source in sources) for want in find)


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """{archive: (Memex, Reads)}: each example archive ingested once, with the fake models."""
    base = tmp_path_factory.mktemp("conversations")
    opened = {}
    try:
        for name, policy in ARCHIVES.items():
            archive = base / "archive" / name
            shutil.copytree(EXAMPLES.parent / name, archive)
            memex = memex_with_fakes(base / f"home-{name}", policy)
            opened[name] = (memex, Reads(memex))
            report = memex.ingest([str(archive)])
            assert report.failures == [], report.to_json()
        yield opened
    finally:
        for memex, reads in opened.values():
            reads.close()
            memex.close()


@pytest.fixture(scope="module")
def asked(archives) -> dict[str, list[Asked]]:
    """Every conversation, turn by turn, by id."""
    out: dict[str, list[Asked]] = {}
    for spec in CONVERSATIONS:
        memex, reads = archives[spec.get("archive", "kestrel")]
        principal = memex.policy.principal(spec["user"])
        conversation, turns = "new", []
        for n, turn in enumerate(spec["turns"]):
            answer = reads.ask(turn["ask"], principal=principal, conversation=conversation)
            conversation = answer.conversation
            alone = None
            if n:
                alone = _sources(reads.ask(turn["ask"], principal=principal))
            turns.append(
                Asked(
                    turn["ask"],
                    turn["find"],
                    turn.get("names", []),
                    answer.question,
                    _sources(answer),
                    answer.conversation,
                    answer.turn,
                    alone,
                )
            )
        out[spec["id"]] = turns
    return out


def test_the_conversations_are_many_and_well_formed(company_policy):
    from memex.access.policyfile import load_policy
    from tests.conftest import POLICIES

    policies = {name: load_policy(POLICIES / file) for name, file in ARCHIVES.items()}
    ids = [spec["id"] for spec in CONVERSATIONS]
    assert len(ids) == len(set(ids)) >= 15
    for spec in CONVERSATIONS:
        assert set(spec) <= {"id", "user", "archive", "turns"}, spec["id"]
        assert 2 <= len(spec["turns"]), spec["id"]
        assert policies[spec.get("archive", "kestrel")].principal(spec["user"]).known, spec["id"]
        for n, turn in enumerate(spec["turns"]):
            assert set(turn) <= {"ask", "find", "names"} and turn["find"], (spec["id"], n)
            assert ("names" in turn) == (n > 0), (spec["id"], n)  # every follow-up says what it means
    assert sum(len(spec["turns"]) >= 3 for spec in CONVERSATIONS) >= 10


@pytest.mark.parametrize("spec", CONVERSATIONS, ids=lambda spec: spec["id"])
def test_each_turn_finds_its_sources(asked, archives, spec):
    turns = asked[spec["id"]]
    conversation = turns[0].conversation
    assert conversation and all(t.conversation == conversation for t in turns)
    assert [t.turn for t in turns] == list(range(1, len(turns) + 1))
    assert turns[0].searched == turns[0].question  # a first question is searched as asked
    for n, turn in enumerate(turns):
        assert _found(turn.find, turn.sources), (
            f"turn {n + 1} {turn.question!r}, searched as {turn.searched!r}, found none of "
            f"{turn.find} in {turn.sources}"
        )
        missing = [name for name in turn.names if name.lower() not in turn.searched.lower()]
        assert not missing, f"turn {n + 1} {turn.question!r} was searched as {turn.searched!r}: no {missing}"
    # The conversation keeps the turns as asked and as searched.
    memex, reads = archives[spec.get("archive", "kestrel")]
    shown = reads.conversations.show(conversation, principal=memex.policy.principal(spec["user"]))
    assert shown["title"] == turns[0].question
    assert [(t["question"], t["standalone"]) for t in shown["turns"]] == [
        (t.question, t.searched) for t in turns
    ]
    assert all("answer" in t and "withheld" not in t for t in shown["turns"])


def test_the_conversation_is_what_finds_them(asked, record_property):
    """Outside the conversation, most follow-ups do not find what they lean on."""
    follow_ups = [turn for turns in asked.values() for turn in turns[1:]]
    with_conversation = sum(_found(t.find, t.sources) for t in follow_ups)
    alone = sum(_found(t.find, t.alone or []) for t in follow_ups)
    turns = sum(len(turns) for turns in asked.values())
    summary = (
        f"{len(asked)} conversations, {turns} turns, {len(follow_ups)} follow-ups: found with the "
        f"conversation {with_conversation}, asked on their own {alone}"
    )
    record_property("follow_ups", summary)
    print(summary)
    assert with_conversation == len(follow_ups), summary
    assert alone <= len(follow_ups) // 2, summary


# -- the model's rewrite, and the rule ---------------------------------------------------------------
OUTAGE = Exchange(
    "What caused the harrier outage in March?",
    "What caused the harrier outage in March?",
    "A certificate for the LoRaWAN network server expired at 02:00 UTC [1]. For 4 hours and 20 "
    "minutes, detections from 310 sensors were not ingested [1].",
)
RULE = "how long did it last? (caused harrier outage March)"


def test_a_good_rewrite_by_the_model_is_used():
    model = FakeModel()
    model.enqueue("How long did the harrier outage in March last?")
    assert standalone_question("how long did it last?", [OUTAGE], model=model) == (
        "How long did the harrier outage in March last?"
    )
    [prompt] = model.prompts  # the conversation was given, the last question named
    given = prompt[-1]["content"]
    assert f"Q: {OUTAGE.standalone}" in given and "Last question: how long did it last?" in given
    assert "4 hours and 20 minutes" in given


@pytest.mark.parametrize(
    "reply",
    [
        "How long did the Osprey dashboard outage in Porto last?",  # invents what nobody said
        "Standalone question: How long did the Nordlys outage at Skylark last?",
        "How long did the harrier outage last?\nIt lasted 4 hours.",  # two lines
        "What caused the harrier outage in March?",  # another question: none of its own words
        "long " * 80 + "harrier?",  # too long
        "",
    ],
    ids=["invented", "invented-with-label", "two-lines", "another-question", "too-long", "empty"],
)
def test_a_bad_rewrite_by_the_model_is_refused_and_the_rule_used(reply):
    model = FakeModel()
    model.enqueue(reply)
    searched = standalone_question("how long did it last?", [OUTAGE], model=model)
    assert len(model.prompts) == 1  # the model was asked
    assert searched == RULE == by_rule("how long did it last?", OUTAGE.standalone)
    assert "Osprey" not in searched and "Nordlys" not in searched


def test_a_model_that_fails_leaves_the_rule():
    class Broken(FakeModel):
        def stream(self, messages, *, max_tokens):
            raise RuntimeError("the model crashed")

    assert standalone_question("how long did it last?", [OUTAGE], model=Broken()) == RULE


@pytest.mark.parametrize(
    "question,history",
    [
        ("What is the parental leave policy for new fathers?", [OUTAGE]),  # complete on its own
        ("how long did it last?", []),  # nothing to lean on
    ],
)
def test_a_question_that_needs_no_conversation_is_searched_as_asked(question, history):
    model = FakeModel()
    model.enqueue("What is the harrier outage?")
    assert standalone_question(question, history, model=model) == question
    assert model.prompts == []  # the model was not asked


@pytest.mark.parametrize(
    "question,previous,names,not_named",
    [
        # words in any script
        ("where does she live?", "Who is Inês?", ["(Inês)"], []),
        ("when is her birthday?", "where does she live? (Inês)", ["Inês"], ["she"]),  # no pronouns
        (
            "whose job is that?",
            "What does the bank covenant with Banco Atlântico require?",
            ["Banco Atlântico"],
            ["Atl "],
        ),
        # a swap: the previous question with the new detail, its time replaced
        (
            "and in April 2026?",
            "how long did it last? (caused harrier outage March 2026)",
            ["April 2026", "harrier outage"],
            ["March"],
        ),
        ("what about Coimbra?", "Who is the account owner for Natuurpunt?", ["account owner", "Coimbra"], []),
        # a follow-up of a follow-up keeps the conversation's subject first
        ("what should he work on?", "how big is it? (Dev Okafor's review wrote raise start)", ["Okafor"], []),
    ],
)
def test_the_rule(question, previous, names, not_named):
    searched = by_rule(question, previous)
    for name in names:
        assert name in searched, searched
    for name in not_named:
        assert name not in searched, searched


def test_a_long_conversation_keeps_its_subject():
    """Six follow-ups on one subject: each searched question still names it."""
    first = "How did Dev Okafor's performance review go?"
    history = [Exchange(first, first, "The sources say so.")]
    for question in [
        "who wrote it?",
        "when does his raise start?",
        "what is his salary now?",
        "how big is it?",
        "what should he work on?",
        "and who reviewed him?",
    ]:
        searched = standalone_question(question, history)
        assert "Okafor's" in searched and "review" in searched, searched
        history.append(Exchange(question, searched, "The sources say so."))


def test_the_models_rewrite_is_what_reads_searches(archives):
    """Through Reads: the model's rewrite is searched when it passes, the rule's when not."""
    memex, reads = archives["kestrel"]
    alice = memex.policy.principal("alice")
    first = reads.ask("What caused the harrier outage in March?", principal=alice, conversation="new")
    memex.model.enqueue("How long did the harrier outage in March 2026 last?")
    good = reads.ask("how long did it last?", principal=alice, conversation=first.conversation)
    assert good.question == "How long did the harrier outage in March 2026 last?"
    assert good.asked == "how long did it last?"
    assert _found(["incident-2026-03-harrier-outage.md"], _sources(good))
    memex.model.enqueue("Who fixed the Kraken uplink in Reykjavik?")  # words nobody said
    bad = reads.ask("who fixed it?", principal=alice, conversation=first.conversation)
    assert bad.question == by_rule("who fixed it?", good.question)
    assert "Kraken" not in bad.question
    shown = reads.conversations.show(first.conversation, principal=alice)
    assert [t["standalone"] for t in shown["turns"]] == [first.question, good.question, bad.question]
