"""Who may read what: the pure access rules (`rules`: labels, principals, the policy and its
decision), the policy file (`policyfile`: YAML in, a checked Policy out) and the policy report
(`policycheck`). Nothing here does I/O except reading the policy file.

The rules are re-exported here: `from memex.access import Principal, allowed`.
"""

from memex.access.rules import (
    CASE_INSENSITIVE_KEYS,
    FIELD_PREFIX,
    MATCH_KEYS,
    Access,
    Case,
    Group,
    Labeling,
    Policy,
    Principal,
    Role,
    SourceRule,
    User,
    allowed,
    denial_reasons,
    describe,
    is_match_key,
    suggest_rule,
)

__all__ = [
    "CASE_INSENSITIVE_KEYS",
    "FIELD_PREFIX",
    "MATCH_KEYS",
    "Access",
    "Case",
    "Group",
    "Labeling",
    "Policy",
    "Principal",
    "Role",
    "SourceRule",
    "User",
    "allowed",
    "denial_reasons",
    "describe",
    "is_match_key",
    "suggest_rule",
]
