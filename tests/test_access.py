"""The visibility rule, principals, source rules and policy validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memex.access import Access, Principal, allowed, denial_reasons
from memex.access.policyfile import parse_policy
from memex.errors import AccessRefused, PolicyError

POLICY = """
version: 1
labels: [staff, hr, finance]
levels: [public, internal, secret]
roles:
  staff: {labels: [staff], level: internal}
  hr: {inherits: [staff], labels: [hr]}
  boss: {inherits: [hr], labels: [finance], level: secret}
  auditor: {labels: [staff], level: internal, all_access_lists: true}
groups:
  people: {roles: [hr], members: [hana], emails: [hr@x.example]}
users:
  hana: {emails: [hana@x.example]}
  sam: {roles: [staff], os_users: [sam]}
  bo: {roles: [boss]}
  nobody: {}
  audrey: {roles: [auditor]}
sources:
  - {name: all, match: {connector: files}, labels: [staff], level: internal}
  - {name: hr, match: {path: "hr/**"}, labels: [hr]}
  - {name: mail-hr, match: {address: "hr@x.example"}, labels: [hr]}
  - {name: vault, match: {path: "/srv/vault/*.txt"}, level: secret}
"""


@pytest.fixture
def policy():
    return parse_policy(POLICY, origin="test.yaml")


def access(labels=(), level="public", acl=None):
    if acl is None:
        return Access(frozenset(labels), level)
    return Access(frozenset(labels), level, restricted=True, acl=frozenset(acl))


def test_principal_resolution(policy):
    hana = policy.principal("hana")
    assert hana.known and hana.groups == ("people",) and hana.roles == ("hr",)
    assert hana.labels == {"staff", "hr"}
    assert hana.levels == {"public", "internal"} and hana.clearance == "internal"
    assert hana.identities == {"user:hana", "group:people", "email:hana@x.example", "email:hr@x.example"}
    bo = policy.principal("bo")
    assert bo.labels == {"staff", "hr", "finance"} and bo.clearance == "secret"
    nobody = policy.principal("nobody")
    assert nobody.known and nobody.labels == frozenset() and nobody.levels == {"public"}


@pytest.mark.parametrize(
    "user, chunk, expected",
    [
        ("sam", access(["staff"], "internal"), True),
        ("sam", access(["staff", "hr"], "internal"), False),  # lacks a label
        ("sam", access(["staff"], "secret"), False),  # clearance too low
        ("hana", access(["staff", "hr"], "internal"), True),
        ("hana", access(["hr"], "internal", acl=["email:hr@x.example"]), True),  # via group address
        ("sam", access(["staff"], "internal", acl=["email:hr@x.example"]), False),  # not on the ACL
        ("sam", access(["staff"], "internal", acl=[]), False),  # restricted, empty ACL: nobody
        ("bo", access(["finance"], "secret"), True),
        ("nobody", access([], "public"), True),
        ("nobody", access([], "internal"), False),
        ("mallory", access([], "public"), False),  # unknown users see nothing
        ("bo", access(["staff"], "unknown-level"), False),  # a level the policy lacks
        ("audrey", access(["staff"], "internal", acl=["email:x@y.example"]), True),  # passes access lists
        ("audrey", access(["staff"], "internal", acl=[]), True),
        ("audrey", access(["staff", "hr"], "internal", acl=[]), False),  # but not labels
        ("audrey", access(["staff"], "secret", acl=[]), False),  # nor levels
    ],
)
def test_visibility_table(policy, user, chunk, expected):
    assert allowed(principal=policy.principal(user), access=chunk) is expected
    assert (denial_reasons(principal=policy.principal(user), access=chunk) == []) is expected


def test_allowed_is_keyword_only(policy):
    with pytest.raises(TypeError):
        allowed(policy.principal("sam"), access(["staff"], "internal"))  # type: ignore[misc]


def test_source_rules_union_labels_and_take_highest_level(policy):
    labeling = policy.label({"connector": "files", "path": "/home/x/hr/pay.txt"})
    assert labeling.labels == {"staff", "hr"} and labeling.level == "internal"
    assert labeling.rules == ("all", "hr")
    vault = policy.label({"connector": "files", "path": "/srv/vault/keys.txt"})
    assert vault.level == "secret"
    # '*' does not cross folders, and a rooted pattern does not match elsewhere
    assert policy.label({"connector": "files", "path": "/srv/vault/sub/keys.txt"}).level == "internal"
    assert policy.label({"connector": "files", "path": "/x/srv/vault/keys.txt"}).level == "internal"


def test_address_rules_are_case_insensitive(policy):
    labeling = policy.label({"connector": "mail", "address": ["Bob@Y.example", "HR@X.EXAMPLE"]})
    assert labeling.labels == {"hr"}


def test_unmatched_source_is_refused_with_the_rule_to_add(policy):
    with pytest.raises(AccessRefused) as caught:
        policy.label({"connector": "chat", "channel": "random"})
    message = str(caught.value)
    assert "no source rule in test.yaml matches channel=random connector=chat" in message
    assert "connector: chat" in message and "labels: [LABEL]" in message


def test_os_user_mapping(policy):
    assert policy.user_for_os_user("sam") == "sam"
    assert policy.user_for_os_user("someone-else") is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("labels: [a]\nroles:\n  r: {labels: [b]}\n", "test.yaml:3: roles.r.labels: unknown label(s) b"),
        ("labels: [a]\nroles:\n  r: {level: top}\n", "test.yaml:3: roles.r.level: unknown level 'top'"),
        ("labels: [a]\nusers:\n  u: {roles: [ghost]}\n", "test.yaml:3: users.u.roles: unknown role 'ghost'"),
        (
            "labels: [a]\nroles:\n  x: {inherits: [y]}\n  y: {inherits: [x]}\n",
            "roles.x.inherits: role inheritance cycle: x -> y -> x",
        ),
        ("labels: [a]\nusers:\n  u: {rolez: [x]}\n", "test.yaml:3: users.u.rolez: unknown field"),
        ("labels: [a]\nsources:\n  - {labels: [a]}\n", "test.yaml:3: sources[0]: missing 'match'"),
        (
            "labels: [a]\nsources:\n  - match: {colour: red}\n",
            "test.yaml:3: sources[0].match.colour: unknown attribute 'colour'",
        ),
        ("roles: {}\n", "test.yaml:1: labels: missing"),
        ("labels: [a\n", "test.yaml:2: not valid YAML"),
        ("", "the policy is empty"),
        (
            "labels: []\nusers:\n  a: {os_users: [x]}\n  b: {os_users: [x]}\n",
            "OS user 'x' is mapped to both 'a' and 'b'",
        ),
        (
            "labels: [a]\ncases:\n  - {user: u, expect: maybe}\n",
            "test.yaml:3: cases[0].expect: must be allow or deny",
        ),
    ],
)
def test_policy_errors_name_line_and_field(text, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, origin="test.yaml")
    assert message in str(caught.value)


# --- properties of the visibility rule ----------------------------------------------------

LABELS = ["a", "b", "c", "d"]
LEVELS = ["l0", "l1", "l2"]
IDENTITIES = ["user:u", "user:v", "group:g", "email:e@x"]

accesses = st.builds(
    lambda labels, level, restricted, acl: Access(frozenset(labels), level, restricted, frozenset(acl)),
    st.sets(st.sampled_from(LABELS)),
    st.sampled_from(LEVELS),
    st.booleans(),
    st.sets(st.sampled_from(IDENTITIES)),
)
principals = st.builds(
    lambda known, labels, clearance, ids: Principal(
        name="p",
        known=known,
        labels=frozenset(labels),
        levels=frozenset(LEVELS[: clearance + 1]),
        clearance=LEVELS[clearance],
        identities=frozenset(ids),
    ),
    st.booleans(),
    st.sets(st.sampled_from(LABELS)),
    st.integers(0, len(LEVELS) - 1),
    st.sets(st.sampled_from(IDENTITIES), min_size=1),
)


@given(principals, accesses)
def test_allowed_matches_the_written_rule(principal, chunk):
    expected = (
        principal.known
        and chunk.labels <= principal.labels
        and LEVELS.index(chunk.level) <= LEVELS.index(principal.clearance)
        and (not chunk.restricted or bool(chunk.acl & principal.identities))
    )
    assert allowed(principal=principal, access=chunk) == expected


@given(principals, accesses, st.sampled_from(LABELS))
def test_more_labels_on_a_chunk_never_widen(principal, chunk, label):
    stricter = Access(chunk.labels | {label}, chunk.level, chunk.restricted, chunk.acl)
    if allowed(principal=principal, access=stricter):
        assert allowed(principal=principal, access=chunk)


@given(principals, accesses, st.sampled_from(LABELS))
def test_more_labels_on_a_principal_never_narrow(principal, chunk, label):
    richer = Principal(
        principal.name,
        principal.known,
        principal.labels | {label},
        principal.levels,
        principal.clearance,
        principal.identities,
    )
    if allowed(principal=principal, access=chunk):
        assert allowed(principal=richer, access=chunk)


@given(accesses)
def test_unknown_principals_see_nothing(chunk):
    assert not allowed(principal=Principal(name="x", known=False), access=chunk)


def test_field_rules_label_records_by_value():
    policy = parse_policy(
        "labels: [finance]\nsources:\n"
        "  - {match: {connector: database}}\n"
        "  - {match: {table: employees, field.department: Finance}, labels: [finance]}\n"
    )
    finance = {"connector": "database", "table": "employees", "field.department": "Finance"}
    sales = {**finance, "field.department": "Sales"}
    assert policy.label(finance).labels == {"finance"}
    assert policy.label(sales).labels == frozenset()
