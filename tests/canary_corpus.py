"""A synthetic corpus for leak tests and the access benchmark: many access classes, each chunk
with a unique canary string, and users on every edge of the policy.

Chunk texts are random words from a fixed vocabulary (so each chunk is findable by its own words)
followed by the canary. Queries use a chunk's words without its canary, so any canary in an output
came from a retrieved chunk, never from the question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from memex.access import Access
from memex.access.policyfile import parse_policy
from memex.documents import Chunk, chunk_id_for

POLICY = """
version: 1
labels: [a, b, c, d]
levels: [l0, l1, l2, l3]
roles:
  top-no-labels: {level: l3}
  bottom-all-labels: {labels: [a, b, c, d], level: l0}
  only-a: {labels: [a], level: l1}
  only-b-l2: {labels: [b], level: l2}
  ab: {labels: [a, b], level: l1}
  everything: {labels: [a, b, c, d], level: l3}
  ac: {labels: [a, c], level: l2}
  nothing: {}
groups:
  g1: {roles: [only-a], members: [g1-member]}
  g2: {roles: [ac], members: [g2-member]}
users:
  top-no-labels: {roles: [top-no-labels]}
  bottom-all-labels: {roles: [bottom-all-labels]}
  only-a: {roles: [only-a]}
  only-b-l2: {roles: [only-b-l2]}
  ab: {roles: [ab]}
  everything: {roles: [everything]}
  g1-member: {}
  g2-member: {}
  acl-user: {}
  email-user: {roles: [only-b-l2], emails: [x@ex.example]}
  u-one: {roles: [ac]}
  no-roles: {}
sources:
  - {match: {connector: synthetic}, labels: []}
"""

USERS = [
    "top-no-labels",
    "bottom-all-labels",
    "only-a",
    "only-b-l2",
    "ab",
    "everything",
    "g1-member",
    "g2-member",
    "acl-user",
    "email-user",
    "u-one",
    "no-roles",
    "unknown-user",  # not in the policy
]


@dataclass(frozen=True)
class Klass:
    name: str
    access: Access
    share: float  # fraction of the corpus


def _access(labels, level, acl=None) -> Access:
    if acl is None:
        return Access(frozenset(labels), level)
    return Access(frozenset(labels), level, restricted=True, acl=frozenset(acl))


CLASSES = [
    Klass("open-l0", _access([], "l0"), 0.004),  # visible to every known user: kept tiny
    Klass("open-l2", _access([], "l2"), 0.06),
    Klass("a-l0", _access(["a"], "l0"), 0.08),
    Klass("a-l1", _access(["a"], "l1"), 0.08),
    Klass("b-l1", _access(["b"], "l1"), 0.07),
    Klass("ab-l1", _access(["a", "b"], "l1"), 0.07),
    Klass("ab-l3", _access(["a", "b"], "l3"), 0.06),
    Klass("c-l2", _access(["c"], "l2"), 0.07),
    Klass("d-l0", _access(["d"], "l0"), 0.06),
    Klass("abcd-l3", _access(["a", "b", "c", "d"], "l3"), 0.06),
    Klass("acl-user", _access([], "l0", ["user:acl-user"]), 0.006),
    Klass("acl-g1", _access(["a"], "l1", ["group:g1"]), 0.05),
    Klass("acl-email", _access(["b"], "l2", ["email:x@ex.example"]), 0.05),
    Klass("acl-nobody", _access([], "l0", []), 0.03),
    Klass("cd-l1", _access(["c", "d"], "l1"), 0.06),
    Klass("acl-g2-one", _access(["a", "c"], "l2", ["group:g2", "user:u-one"]), 0.05),
    Klass("d-l3", _access(["d"], "l3"), 0.06),
    Klass("bc-l0", _access(["b", "c"], "l0"), 0.06),
]

VOCABULARY = [
    f"{a}{b}"
    for a in ("ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "ve", "zo", "bi", "do", "fa", "gu", "ha", "je")
    for b in (
        "ron",
        "lis",
        "mat",
        "dex",
        "pol",
        "san",
        "vin",
        "tor",
        "gal",
        "fen",
        "quo",
        "wex",
        "yul",
        "zim",
    )
]


@dataclass(frozen=True)
class Item:
    chunk: Chunk
    canary: str
    klass: str
    query: str


def policy():
    return parse_policy(POLICY, origin="canary-policy")


def build(n: int, *, seed: int = 7) -> list[Item]:
    rng = random.Random(seed)
    items = []
    total = sum(k.share for k in CLASSES)
    counts = {k.name: max(1, round(k.share / total * n)) for k in CLASSES}
    for klass in CLASSES:
        for i in range(counts[klass.name]):
            words = rng.sample(VOCABULARY, 12)
            canary = f"CANARY{klass.name.replace('-', '')}{i:05d}X{rng.randrange(16**6):06x}"
            query = " ".join(words)
            text = f"{query} {canary}"
            source_id = f"synthetic:{klass.name}/{i}"
            chunk = Chunk(
                chunk_id=chunk_id_for(source_id, text, 0),
                source_id=source_id,
                ordinal=0,
                text=text,
                uri=source_id,
                title=f"{klass.name} {i}",
                section="",
                page=None,
                access=klass.access,
            )
            items.append(Item(chunk, canary, klass.name, query))
    return items
