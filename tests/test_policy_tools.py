"""`policy explain`, relabelling, the audit log and identity at the CLI edge."""

from __future__ import annotations

import getpass
import json

import pytest

from memex.access import allowed
from memex.access.policycheck import explain, run_cases
from memex.access.policyfile import load_policy
from memex.api.reads import Reads
from memex.errors import MemexError
from tests.conftest import POLICIES


def test_bundled_policies_pass_their_decision_tables():
    for path in sorted(POLICIES.glob("*.yaml")):
        policy = load_policy(path)
        results = run_cases(policy)
        assert len(results) >= 10 and [r.describe() for r in results if not r.passed] == [], path.name


def test_a_wrong_case_is_reported_with_its_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("labels: [a]\nusers:\n  u: {}\ncases:\n  - {user: u, labels: [a], expect: allow}\n")
    (result,) = run_cases(load_policy(path))
    assert not result.passed
    assert result.describe() == "line 5: u on labels=['a'] level=default: expected allow, got deny"


def test_explain_names_rules_labels_and_missing_grants(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    salaries = str(kestrel / "hr" / "salaries-2026.csv")
    denied = explain(fake_memex.policy, fake_memex.ledger, "alice", salaries)
    assert denied["allowed"] is False
    assert denied["rules"] == ["company-files", "hr-files"]
    assert denied["labels"] == ["hr", "staff"] and denied["level"] == "confidential"
    assert denied["reasons"] == ["lacks label(s) hr", "clearance 'internal' is below level 'confidential'"]
    granted = explain(fake_memex.policy, fake_memex.ledger, "hana", salaries)
    assert granted["allowed"] is True and granted["reasons"] == []
    assert granted["summary"] == f"hana can see {salaries}"
    unknown = explain(fake_memex.policy, fake_memex.ledger, "mallory", salaries)
    assert unknown["reasons"] == ["user 'mallory' is not in the policy"]


def test_audit_records_who_asked_and_what_was_served(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    policy = fake_memex.policy
    hana, alice, admin = (policy.principal(u) for u in ("hana", "alice", "root-admin"))
    hits = Reads(fake_memex).search("salaries", principal=hana, k=3, actor="root-admin (as hana)")
    Reads(fake_memex).ask("vacation days", principal=alice, k=2)
    entries = fake_memex.audit.entries(reader=admin)
    assert [(e.principal, e.actor, e.action) for e in entries] == [
        ("alice", "alice", "ask"),
        ("hana", "root-admin (as hana)", "search"),
    ]
    assert entries[1].chunk_ids == [h.chunk_id for h in hits]
    assert entries[1].labels == [sorted(h.access.labels) for h in hits]
    # no chunk text is stored, only ids and labels
    raw = json.dumps([e.to_json() for e in entries])
    assert not any(h.text[:40] in raw for h in hits)
    # a non-admin reads only their own entries; an unknown user nothing
    assert [e.question for e in fake_memex.audit.entries(reader=alice)] == ["vacation days"]
    assert fake_memex.audit.entries(reader=policy.principal("mallory")) == []


def test_cli_identity_comes_from_the_os_user(fake_memex, company_policy, monkeypatch):
    principal, actor = fake_memex.cli_principal(None)
    assert principal.name == "root-admin" and actor == "root-admin"  # os_users: ["*"]
    principal, actor = fake_memex.cli_principal("alice")
    assert principal.name == "alice" and actor == "root-admin (as alice)"
    import dataclasses

    alice_os = dataclasses.replace(company_policy.users["alice"], os_users=(getpass.getuser(),))
    admin = dataclasses.replace(company_policy.users["root-admin"], os_users=())
    fake_memex.policy = dataclasses.replace(
        company_policy, users={**company_policy.users, "alice": alice_os, "root-admin": admin}
    )
    assert fake_memex.cli_principal(None)[0].name == "alice"
    with pytest.raises(MemexError, match="only an admin may use --as"):
        fake_memex.cli_principal("hana")


def test_unmapped_os_user_is_told_what_to_do(fake_memex, company_policy):
    import dataclasses

    admin = dataclasses.replace(company_policy.users["root-admin"], os_users=())
    fake_memex.policy = dataclasses.replace(
        company_policy, users={**company_policy.users, "root-admin": admin}
    )
    with pytest.raises(MemexError, match=f"the OS user '{getpass.getuser()}' is not mapped"):
        fake_memex.cli_principal(None)


def test_export_yields_exactly_the_readable_chunks(fake_memex, kestrel):
    fake_memex.ingest([str(kestrel)])
    policy = fake_memex.policy
    for user in ("alice", "hana", "erin", "vic", "mallory"):
        principal = policy.principal(user)
        exported = list(Reads(fake_memex).export(principal=principal))
        expected = {
            r.source_id
            for r in fake_memex.ledger.records(status="indexed")
            if r.access is not None and allowed(principal=principal, access=r.access)
        }
        assert {h.source_id for h in exported} == expected, user
        assert len(exported) == fake_memex.index.count(principal=principal)["chunks"]
