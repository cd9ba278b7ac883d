"""Applying the current policy to every stored source, in place (a policy edit)."""

from __future__ import annotations

from collections.abc import Callable

from memex.access import Policy
from memex.errors import AccessRefused
from memex.index import Index
from memex.ingest.report import Failure
from memex.store.labelling import LABELLED_UNDER, rules_digest
from memex.store.ledger import INDEXED, Ledger


def relabel_all(
    policy: Policy, index: Index, ledger: Ledger, *, remove: Callable[[str], int]
) -> tuple[int, list[Failure]]:
    """Relabel every indexed source whose labels changed; `remove` the sources no rule matches
    any more (default deny). Returns how many changed, and the refused."""
    changed, refused = 0, []
    for record in ledger.records(status=INDEXED):
        try:
            labeling = policy.label(record.attributes)
        except AccessRefused as exc:
            remove(record.source_id)
            refused.append(Failure(record.uri, str(exc), "refused"))
            continue
        access = labeling.access(acl=record.acl)
        if access != record.access:
            ids = ledger.chunk_ids(record.source_id)
            index.relabel({chunk_id: access for chunk_id in ids})
            ledger.set_access(record.source_id, access, labeling.rules)
            changed += 1
    ledger.set_state(LABELLED_UNDER, rules_digest(policy))
    return changed, refused
