"""Running a policy's decision table, and explaining a decision (pure, apart from reading the
ledger's record of a source)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memex.access import Case, Policy, allowed, denial_reasons
from memex.errors import AccessRefused
from memex.store.ledger import INDEXED, Ledger


@dataclass(frozen=True)
class CaseResult:
    case: Case
    got: bool

    @property
    def passed(self) -> bool:
        return self.got == self.case.expect

    def describe(self) -> str:
        case = self.case
        acl = "" if case.acl is None else f" acl={list(case.acl)}"
        return (
            f"line {case.line}: {case.user} on labels={sorted(case.labels)} level={case.level}{acl}: "
            f"expected {'allow' if case.expect else 'deny'}, got {'allow' if self.got else 'deny'}"
        )

    def to_json(self) -> dict[str, Any]:
        return {"line": self.case.line, "user": self.case.user, "expected": self.case.expect, "got": self.got}


def run_cases(policy: Policy) -> list[CaseResult]:
    return [
        CaseResult(case, allowed(principal=policy.principal(case.user), access=case.access()))
        for case in policy.cases
    ]


def explain(policy: Policy, ledger: Ledger, user: str, source: str) -> dict[str, Any]:
    """Why `user` can or cannot see `source`, for an admin: rules, labels, roles."""
    principal = policy.principal(user)
    given = Path(source).expanduser()
    real = given.resolve()
    record = (
        ledger.get(source)
        or ledger.get(f"file:{real.as_posix()}")
        or ledger.get(f"file:{given.absolute().as_posix()}")  # a link not read: its reason
    )
    details: list[str] = []
    if os.path.lexists(given) and given.absolute() != real:
        details.append(f"{source} is a symbolic link (or lies in a linked folder): memex labels it as {real}")
    if principal.known:
        details.append(
            f"{user}: roles {', '.join(principal.roles) or '(none)'}; groups {', '.join(principal.groups) or '(none)'}; "
            f"labels {', '.join(sorted(principal.labels)) or '(none)'}; clearance {principal.clearance}"
        )
    if record is None or record.status != INDEXED:
        return {
            "user": user,
            "source": source,
            "allowed": False,
            "summary": f"{source} is not indexed" + (f" ({record.error})" if record else ""),
            "details": details,
        }
    try:
        labeling = policy.label(record.attributes)
    except AccessRefused as exc:
        return {
            "user": user,
            "source": source,
            "allowed": False,
            "summary": f"no rule labels {source}: {exc}",
            "details": details,
        }
    access = labeling.access(acl=record.acl)
    details.append(f"rules matched: {', '.join(labeling.rules)}")
    details.append(f"labels {', '.join(sorted(access.labels)) or '(none)'}; level {access.level}")
    if access.restricted:
        details.append(f"access list: {', '.join(sorted(access.acl)) or '(empty)'}")
    ok = allowed(principal=principal, access=access)
    reasons = denial_reasons(principal=principal, access=access)
    details.extend(reasons)
    verdict = "can" if ok else "cannot"
    return {
        "user": user,
        "source": record.uri,
        "allowed": ok,
        "rules": list(labeling.rules),
        "labels": sorted(access.labels),
        "level": access.level,
        "reasons": reasons,
        "summary": f"{user} {verdict} see {record.uri}",
        "details": details,
    }
