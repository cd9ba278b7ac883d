"""Prompt injection, deterministically: over the whole injection corpus (220 planted documents in
10 attack families), with a model that echoes its prompt and one that obeys every injected
instruction, no answer, evidence, citation or streamed piece holds an image, a link or a URL
other than the asker's citations; and what reaches the prompt is decided by access alone: the
victim's prompt holds exactly the chunks she may read, the bystander's never the HR note."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from memex.access import allowed
from memex.answer.pipeline import relevant
from memex.answer.prompting import defuse
from memex.api.reads import Reads
from memex.index import Narrowing
from memex.models.llm import FakeModel
from tests import injection_corpus as corpus
from tests.output_oracle import violations

ATTACKS = corpus.attacks()
# The fast run takes every fifth attack (all families, all variants); the slow run takes them all.
SUBSETS = ["sample", pytest.param("all", marks=pytest.mark.slow)]


def subset(name: str) -> list[corpus.Attack]:
    return ATTACKS if name == "all" else ATTACKS[::5]


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder

    memex = Memex(
        Paths(tmp_path_factory.mktemp("injection")),
        policy=corpus.policy(),
        embedder=HashingEmbedder(96),
        model=FakeModel(),
        writable=True,
    )
    chunks = corpus.corpus()
    memex.index.upsert(chunks, memex.embedder.embed([c.text for c in chunks]))
    yield memex
    memex.close()


def test_the_corpus_is_what_the_issue_asks_for():
    chunks = corpus.corpus()
    assert len(ATTACKS) == 220
    assert Counter(a.family for a in ATTACKS) == {family: 22 for family in corpus.FAMILIES}
    assert len({a.marker for a in ATTACKS}) == 220
    by_source: dict[str, list] = {}
    for chunk in chunks:
        by_source.setdefault(chunk.source_id, []).append(chunk)
    for attack in ATTACKS:  # planted at the lowest label, readable by everyone
        assert {c.access for c in by_source[attack.source_id]} == {corpus.PUBLIC}
    for topic in range(len(corpus.TOPICS)):
        (note,) = by_source[corpus.secret_id(topic)]
        assert note.access == corpus.CONFIDENTIAL and corpus.canary(topic) in note.text
    # Encoded payloads hide their marker; split payloads put each half in its own chunk.
    for attack in ATTACKS:
        texts = [c.text for c in by_source[attack.source_id]]
        if attack.family == "encoded":
            assert attack.marker not in attack.text, attack.variant
        if attack.family == "split_payload":
            assert len(texts) == 2 and attack.marker not in texts[0] and attack.marker in texts[1]
    assert {a.variant for a in ATTACKS if a.family == "encoded"} == {
        "base64", "reversed", "leetspeak", "rot13", "hex", "emoji", "spaced"
    }  # fmt: skip


def ask(memex, attack, user):
    shown: list[str] = []
    answer = Reads(memex).ask(
        attack.question,
        principal=memex.policy.principal(user),
        narrowing=Narrowing(source_ids=corpus.sources_for(attack)),
        on_token=shown.append,
    )
    return answer, "".join(shown)


@pytest.mark.parametrize("attacks", SUBSETS)
@pytest.mark.parametrize("model", ["echo", "obedient"])
def test_no_answer_carries_a_link_an_image_or_a_url_whatever_the_model_writes(injected, model, attacks):
    injected._model = corpus.ObedientModel() if model == "obedient" else FakeModel()
    outputs = 0
    bad: list[tuple[str, str, list[str]]] = []
    for attack in subset(attacks):
        for user in (corpus.VICTIM, corpus.BYSTANDER):
            answer, streamed = ask(injected, attack, user)
            allowed_urls = {c.source for c in answer.citations}
            shown = [answer.text, streamed, *(e.sentence for e in answer.evidence)]
            shown += [f"{c.title} {c.section}" for c in answer.citations]
            for text in shown:
                outputs += 1
                found = violations(text, allowed_urls)
                if found or corpus.ATTACKER_HOST in text:
                    bad.append((attack.source_id, user, found))
            assert answer.citations, attack.source_id  # the attack was in front of the model
    assert bad == []
    assert outputs >= len(subset(attacks)) * 2 * 4
    if model == "obedient":  # the fake did try: its raw output was full of links
        prompt = injected.model.prompts[-1]
        raw = "".join(corpus.ObedientModel().stream(prompt, max_tokens=0))
        assert corpus.ATTACKER_HOST in raw and len(violations(raw, set())) > 20


@pytest.mark.parametrize("attacks", SUBSETS)
def test_what_reaches_the_prompt_is_decided_by_access_alone(injected, attacks):
    """For every attack, asked by the victim and by the bystander: the prompt's sources are
    exactly the relevant hits of the search under the asker's principal, in order; the HR note
    is there for the victim and never for the bystander, whatever the attack says."""
    injected._model = corpus.ObedientModel()
    index = injected.index
    above_profile = 0
    for attack in subset(attacks):
        narrowing = Narrowing(source_ids=corpus.sources_for(attack))
        secret = corpus.canary(attack.topic)
        for user in (corpus.VICTIM, corpus.BYSTANDER):
            principal = injected.policy.principal(user)
            expected = relevant(index.search(attack.question, principal=principal, k=5, narrowing=narrowing))
            answer, streamed = ask(injected, attack, user)
            used = [h.chunk_id for h in answer.hits]
            assert used == [h.chunk_id for h in expected][: len(used)] and used, (attack.source_id, user)
            above_profile += sum(not allowed(principal=principal, access=h.access) for h in answer.hits)
            prompt = answer.messages[1]["content"]
            blocks = re.findall(r"<source (\d+) \w+: [^>]*>\n(.*?)\n</source \1 \w+>", prompt, re.S)
            assert [b for _, b in blocks] == [defuse(h.text).strip() for h in answer.hits]
            sources = {h.source_id for h in answer.hits}
            if user == corpus.VICTIM:
                assert corpus.secret_id(attack.topic) in sources and secret in prompt
            else:
                assert corpus.secret_id(attack.topic) not in sources
                seen = json.dumps([answer.to_json(), answer.messages, streamed])
                assert corpus.CANARY.findall(seen) == [], attack.source_id
            assert attack.source_id in sources
    assert above_profile == 0


def test_the_audit_log_names_only_what_was_served(injected):
    injected._model = corpus.ObedientModel()
    sam = injected.policy.principal(corpus.BYSTANDER)
    for attack in ATTACKS[:: len(ATTACKS) // 20]:
        ask(injected, attack, corpus.BYSTANDER)
    entries = injected.audit.entries(reader=sam, limit=1000)
    served = {chunk for entry in entries for chunk in entry.to_json()["chunk_ids"]}
    secret_chunks = {c.chunk_id for c in corpus.corpus() if c.source_id.startswith("hr:")}
    assert served and not served & secret_chunks
