"""No leaks: the canary sweep and the differential oracle over a synthetic corpus with 18 access
classes and 13 users on every edge of the policy."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from memex.access import allowed
from memex.api.reads import Reads
from memex.errors import EmptyIndex
from tests import canary_corpus

CANARY = re.compile(r"CANARY[a-z0-9]+X[0-9a-f]{6}")

# Which classes each user may read, written out by hand from the policy (not computed by memex).
EXPECTED = {
    "top-no-labels": {"open-l0", "open-l2"},
    "bottom-all-labels": {"open-l0", "a-l0", "d-l0", "bc-l0"},
    "only-a": {"open-l0", "a-l0", "a-l1"},
    "only-b-l2": {"open-l0", "open-l2", "b-l1"},
    "ab": {"open-l0", "a-l0", "a-l1", "b-l1", "ab-l1"},
    "everything": {
        "open-l0", "open-l2", "a-l0", "a-l1", "b-l1", "ab-l1", "ab-l3", "c-l2", "d-l0", "abcd-l3",
        "cd-l1", "d-l3", "bc-l0",
    },
    "g1-member": {"open-l0", "a-l0", "a-l1", "acl-g1"},
    "g2-member": {"open-l0", "open-l2", "a-l0", "a-l1", "c-l2", "acl-g2-one"},
    "acl-user": {"open-l0", "acl-user"},
    "email-user": {"open-l0", "open-l2", "b-l1", "acl-email"},
    "u-one": {"open-l0", "open-l2", "a-l0", "a-l1", "c-l2", "acl-g2-one"},
    "no-roles": {"open-l0"},
    "unknown-user": set(),
}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    items = canary_corpus.build(2016)
    memex = Memex(
        Paths(tmp_path_factory.mktemp("leaks")),
        policy=canary_corpus.policy(),
        embedder=HashingEmbedder(96),
        model=FakeModel(),
        writable=True,
    )
    chunks = [item.chunk for item in items]
    for start in range(0, len(chunks), 500):
        batch = chunks[start : start + 500]
        memex.index.upsert(batch, memex.embedder.embed([c.text for c in batch]))
    yield memex, items
    memex.close()


def test_the_corpus_is_what_the_issue_asks_for(corpus):
    memex, items = corpus
    assert len(items) >= 2000
    assert len({i.chunk.access for i in items}) >= 16
    assert len(canary_corpus.USERS) >= 12
    assert len({i.canary for i in items}) == len(items)


def test_expected_table_matches_the_rule(corpus):
    memex, items = corpus
    for user in canary_corpus.USERS:
        principal = memex.policy.principal(user)
        visible = {i.klass for i in items if allowed(principal=principal, access=i.chunk.access)}
        assert visible == EXPECTED[user], user


@pytest.mark.slow
@pytest.mark.parametrize("user", canary_corpus.USERS)
def test_canary_sweep(corpus, user):
    """For every chunk, search and ask with that chunk's own words: no canary of a chunk the user
    may not read appears anywhere the user can see."""
    memex, items = corpus
    principal = memex.policy.principal(user)
    readable = {i.canary for i in items if i.klass in EXPECTED[user]}
    readable_ids = {i.chunk.chunk_id for i in items if i.klass in EXPECTED[user]}
    leaks: list[str] = []
    found_self = 0

    def check(where: str, text: str) -> None:
        leaks.extend(f"{where}: {c}" for c in CANARY.findall(text) if c not in readable)

    for item in items:
        try:
            hits = Reads(memex).search(item.query, principal=principal, k=10)
        except EmptyIndex as exc:
            assert not EXPECTED[user]
            check("error", str(exc))
            hits = []
        assert {h.chunk_id for h in hits} <= readable_ids, user
        check("search", json.dumps([h.to_json() for h in hits]))
        found_self += bool(hits) and hits[0].chunk_id == item.chunk.chunk_id
        try:
            answer = Reads(memex).ask(item.query, principal=principal, k=5)
        except EmptyIndex as exc:
            check("error", str(exc))
            continue
        check("answer", json.dumps(answer.to_json()))
        check("prompt", json.dumps(answer.messages))
        assert {c.chunk_id for c in answer.citations} <= readable_ids
    check("audit", json.dumps([e.to_json() for e in memex.audit.entries(reader=principal, limit=10**6)]))
    assert leaks == []
    # The sweep is meaningful: the user's own chunks are found by their words.
    readable_items = sum(1 for i in items if i.klass in EXPECTED[user])
    assert found_self >= 0.9 * readable_items


@pytest.mark.parametrize("user", [u for u in canary_corpus.USERS if EXPECTED[u]])
def test_secure_top_k_equals_brute_force_over_the_allowed_subset(corpus, user):
    memex, items = corpus
    principal = memex.policy.principal(user)
    subset = [i for i in items if i.klass in EXPECTED[user]]
    vectors = memex.embedder.embed([i.chunk.text for i in subset])
    rng = random.Random(user)
    recalls = []
    for item in rng.sample(items, 25):
        query = memex.embedder.embed_query(item.query)
        similarity = vectors @ query
        order = np.argsort(-similarity)[:10]
        threshold = similarity[order[-1]] - 1e-5
        hits = memex.index.search(item.query, principal=principal, k=10, mode="dense")
        by_id = {i.chunk.chunk_id: s for i, s in zip(subset, similarity, strict=True)}
        good = sum(1 for h in hits if by_id[h.chunk_id] >= threshold)
        recalls.append(good / min(10, len(subset)))
    share = len(subset) / len(items)
    assert np.mean(recalls) >= 0.95, (user, share, recalls)


@pytest.mark.parametrize("user", [u for u in canary_corpus.USERS if EXPECTED[u]])
def test_the_filter_is_inside_both_halves_of_the_query(corpus, user):
    """Before any second check, the vector query and the lexical query return only readable
    chunks, and as many as were asked for: top-k is computed over the readable chunks."""
    from memex.index import NO_NARROWING

    memex, items = corpus
    index = memex.index
    principal = memex.policy.principal(user)
    readable = {i.chunk.chunk_id for i in items if i.klass in EXPECTED[user]}
    visible = index._visible_classes(principal, NO_NARROWING)
    for item in random.Random(user).sample(items, 10):
        dense = index._vectors.query(
            memex.embedder.embed_query(item.query),
            wanted=40,
            visible=visible,
            classes=index._lexical.classes(),
            counts=index._lexical.class_counts(),
            classes_of=index._lexical.classes_of,
        )
        assert {c for c, _ in dense} <= readable
        assert len(dense) == min(40, len(readable))
        lexical = index._lexical.search(item.query, visible, NO_NARROWING.sql_where(), 40)
        assert {c for c, _ in lexical} <= readable and lexical


def test_the_second_check_catches_a_corrupted_filter(corpus, caplog):
    """If the class table lied (a bug, a tampered file), the per-hit check still refuses."""
    from memex.index.lexical import access_json

    memex, items = corpus
    index = memex.index
    secret = next(i for i in items if i.klass == "abcd-l3")
    (ac,) = {a for a, acc in index._lexical.classes().items() if acc == secret.chunk.access}
    original = index._lexical.db.execute("SELECT access FROM classes WHERE ac = ?", (ac,)).fetchone()[0]
    open_access = next(i.chunk.access for i in items if i.klass == "open-l0")
    try:
        index._lexical.db.execute(
            "UPDATE classes SET access = ? WHERE ac = ?", (access_json(open_access), ac)
        )
        index._lexical.invalidate()
        hits = memex.index.search(secret.query, principal=memex.policy.principal("no-roles"), k=10)
        assert secret.chunk.chunk_id not in {h.chunk_id for h in hits}
        assert all(h.access == open_access for h in hits)
        assert "access check refused chunk" in caplog.text
    finally:
        index._lexical.db.execute("UPDATE classes SET access = ? WHERE ac = ?", (original, ac))
        index._lexical.invalidate()
