"""Labels under the policy in force now.

A chunk's labels are computed at ingest from its source's attributes (path, channel, sender...)
and stored with it. When the policy's source rules change, the stored labels are stale until the
sources are relabelled. Two things close that window:

- `CurrentLabels`, the index's last check: every hit's source is labelled again under the policy
  in force (from the attributes and access list the ledger kept), and a hit must pass both its
  stored labels and these (the stricter wins: an edit narrows at once, and widens only once
  relabelled);
- the process that owns the store relabels online when `rules_digest` of the policy differs from
  the one the ledger says the labels follow (`LABELLED_UNDER`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable

from memex.access import Access, Policy
from memex.errors import AccessRefused
from memex.store.ledger import Ledger

LABELLED_UNDER = "labelled_under"  # the ledger state: rules_digest of the policy the labels follow
CACHE_LIMIT = 100_000


def rules_digest(policy: Policy) -> str:
    """What labelling depends on (levels and source rules), as a stable digest: an edit to users
    or roles does not change it."""
    rules = [
        [
            rule.name,
            {key: list(values) for key, values in sorted(rule.match.items())},
            sorted(rule.labels),
            rule.level,
        ]
        for rule in policy.sources
    ]
    text = json.dumps([list(policy.levels), rules], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CurrentLabels:
    """The access each source's chunks get under the policy in force (None: no rule matches it any
    more, so nobody may read it). A source the ledger does not know is left out: its chunks are
    orphans (a crash, a restored ledger; the next ingest deletes them) or were written straight
    into the index by a test, and only their stored labels apply."""

    def __init__(self, policy: Callable[[], Policy], ledger: Callable[[], Ledger]) -> None:
        self._policy = policy
        self._ledger = ledger
        self._for: Policy | None = None
        self._cache: dict[tuple[str, str | None], Access | None] = {}

    def access_of(self, source_ids: Iterable[str]) -> dict[str, Access | None]:
        policy = self._policy()
        if policy is not self._for or len(self._cache) > CACHE_LIMIT:
            self._for, self._cache = policy, {}
        origins = self._ledger().origins(source_ids)
        out: dict[str, Access | None] = {}
        for source_id, origin in origins.items():
            if origin not in self._cache:
                self._cache[origin] = _label(policy, *origin)
            out[source_id] = self._cache[origin]
        return out


def _label(policy: Policy, attributes: str, acl: str | None) -> Access | None:
    try:
        labeling = policy.label(json.loads(attributes))
    except AccessRefused:
        return None
    return labeling.access(acl=None if acl is None else json.loads(acl))
