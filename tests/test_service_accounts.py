"""Users and tokens for `memex serve`: the token store, expiry, and the `memex users` and
`memex token` commands (which edit the policy file in place and keep its comments)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time

import pytest
from typer.testing import CliRunner

from memex.access.policyfile import load_policy
from memex.cli.main import app
from memex.errors import PolicyError
from memex.service.tokens import TokenError, TokenStore, parse_expiry
from memex.service.users import add_user, remove_user
from tests.conftest import POLICIES

runner = CliRunner()


def memex(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def company_home(memex_home):
    assert memex("init", "--policy", "company.yaml").exit_code == 0
    return memex_home


# -- the token store ------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_stored_as_a_salted_hash(tmp_path):
    store = TokenStore(tmp_path / "tokens.sqlite")
    token, info = store.create("alice", expires=None, note="laptop")
    assert token.startswith(f"mx_{info.id}_") and len(token) == 3 + 12 + 1 + 43
    assert (info.user, info.note, info.expires, info.revoked) == ("alice", "laptop", None, None)
    verdict = store.verify(token)
    assert verdict.info is not None and (verdict.info.id, verdict.info.user) == (info.id, "alice")
    store.close()
    secret = token[16:]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw
    db = sqlite3.connect(tmp_path / "tokens.sqlite")
    salt, digest = db.execute("SELECT salt, hash FROM tokens").fetchone()
    assert len(salt) == 16 and digest == hashlib.sha256(salt + secret.encode()).digest()
    assert (tmp_path / "tokens.sqlite").stat().st_mode & 0o777 == 0o600


def test_tokens_that_do_not_verify_say_why(tmp_path):
    store = TokenStore(tmp_path / "tokens.sqlite")
    good, info = store.create("alice", expires=None)
    old, _ = store.create("alice", expires=time.time() - 1)
    gone, gone_info = store.create("bob", expires=None)
    assert [i.id for i in store.revoke(gone_info.id)] == [gone_info.id]
    wrong_secret = good[:-1] + ("A" if good[-1] != "A" else "B")
    verdicts = {
        "malformed": store.verify("not-a-token").reason,
        "truncated": store.verify(good[:-2]).reason,
        "wrong secret": store.verify(wrong_secret).reason,
        "unknown id": store.verify("mx_000000000000_" + good[16:]).reason,
        "expired": store.verify(old).reason,
        "revoked": store.verify(gone).reason,
        "good": store.verify(good).reason,
    }
    assert verdicts == {
        "malformed": "malformed token",
        "truncated": "malformed token",
        "wrong secret": "unknown token",
        "unknown id": "unknown token",
        "expired": "expired token",
        "revoked": "revoked token",
        "good": "",
    }
    assert [i.state() for i in store.list()] == ["active", "expired", "revoked"]


def test_revoking_a_user_revokes_all_their_active_tokens(tmp_path):
    store = TokenStore(tmp_path / "tokens.sqlite")
    a1, _ = store.create("alice", expires=None)
    a2, _ = store.create("alice", expires=None)
    b, _ = store.create("bob", expires=None)
    assert len(store.revoke("alice")) == 2
    assert store.revoke("alice") == []
    assert [store.verify(t).reason for t in (a1, a2, b)] == ["revoked token", "revoked token", ""]


def test_expiry_parsing():
    now = 1_800_000_000.0
    assert parse_expiry("90d", now=now) == now + 90 * 86400
    assert parse_expiry("12h", now=now) == now + 12 * 3600
    assert parse_expiry("30m", now=now) == now + 1800
    assert parse_expiry("2w", now=now) == now + 14 * 86400
    assert parse_expiry("never", now=now) is None
    end_of_day = dt.datetime(2027, 2, 1, tzinfo=dt.UTC).timestamp()
    assert parse_expiry("2027-01-31", now=now) == end_of_day
    for bad, message in [
        ("2020-01-01", "is in the past"),
        ("soon", "use a duration"),
        ("0d", "must be positive"),
    ]:
        with pytest.raises(TokenError, match=message):
            parse_expiry(bad, now=now)


# -- editing the policy -----------------------------------------------------------------------------


def test_adding_a_user_adds_one_line_and_keeps_everything_else(tmp_path):
    path = tmp_path / "policy.yaml"
    original = (POLICIES / "company.yaml").read_text()
    path.write_text(original)
    policy = add_user(
        path, "zoe", roles=["engineer"], groups=["finance-team"], emails=["Zoe@Kestrel.example"]
    )
    new = path.read_text()
    added = [line for line in new.splitlines() if line not in original.splitlines()]
    assert added == ["  zoe: {roles: [engineer], groups: [finance-team], emails: [zoe@kestrel.example]}"]
    assert new.replace(added[0] + "\n", "") == original
    zoe = policy.principal("zoe")
    assert (zoe.roles, zoe.groups, zoe.clearance) == (
        ("engineer", "finance"),
        ("finance-team",),
        "confidential",
    )
    assert "email:zoe@kestrel.example" in zoe.identities
    assert load_policy(path).users["zoe"] == policy.users["zoe"]
    remove_user(path, "zoe")
    assert path.read_text() == original


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("alice", {}, "already in"),
        ("zoe", {"roles": ["wizard"]}, "unknown role 'wizard'"),
        ("zoe", {"groups": ["nobody"]}, "unknown group 'nobody'"),
        ("zoe", {"emails": ["not-an-address"]}, "is not a mail address"),
        ("zoe: {roles: [executive]}", {}, "user name"),
        ("-x", {}, "user name"),
    ],
)
def test_bad_additions_are_refused_and_change_nothing(tmp_path, name, kwargs, message):
    path = tmp_path / "policy.yaml"
    original = (POLICIES / "company.yaml").read_text()
    path.write_text(original)
    with pytest.raises(PolicyError, match=message):
        add_user(path, name, **kwargs)
    assert path.read_text() == original
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["policy.yaml"]


def test_flow_style_and_missing_users_sections(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("labels: [x]\nroles: {r: {labels: [x]}}\nusers: {a: {roles: [r]}}  # everyone\n")
    add_user(path, "b", roles=["r"])
    assert (
        path.read_text()
        == "labels: [x]\nroles: {r: {labels: [x]}}\nusers: {a: {roles: [r]}, b: {roles: [r]}} # everyone\n"
    )
    remove_user(path, "a")
    assert set(load_policy(path).users) == {"b"}
    path.write_text("labels: [x]\nroles: {r: {labels: [x]}}\n")
    add_user(path, "c", roles=["r"])
    assert path.read_text() == "labels: [x]\nroles: {r: {labels: [x]}}\n\nusers:\n  c: {roles: [r]}\n"


def test_a_group_member_is_not_removed_behind_the_groups_back(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text((POLICIES / "company.yaml").read_text())
    with pytest.raises(PolicyError, match="members: of group.s. engineering"):
        remove_user(path, "alice")
    with pytest.raises(PolicyError, match="no user 'nobody'"):
        remove_user(path, "nobody")


# -- the commands ---------------------------------------------------------------------------------


def test_users_and_tokens_from_the_command_line(company_home):
    added = memex(
        "users", "add", "zoe", "--roles", "sales,engineer", "--emails", "zoe@kestrel.example", "--json"
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.output) == {
        "user": "zoe",
        "policy": str(company_home / "policy.yaml"),
        "roles": ["engineer", "sales"],
        "groups": [],
        "labels": ["engineering", "sales", "staff"],
        "clearance": "internal",
        "admin": False,
        "revoked_old_tokens": [],
    }
    created = memex("token", "create", "zoe", "--expires", "30d", "--note", "laptop", "--json")
    assert created.exit_code == 0, created.output
    token = json.loads(created.output)
    assert token["token"].startswith(f"mx_{token['id']}_") and token["state"] == "active"
    listed = json.loads(memex("token", "list", "--json").output)
    assert [(t["id"], t["user"], t["note"], t["state"]) for t in listed] == [
        (token["id"], "zoe", "laptop", "active")
    ]
    assert "token" not in listed[0]
    users = {u["user"]: u for u in json.loads(memex("users", "list", "--json").output)}
    assert users["zoe"]["active_tokens"] == 1 and users["alice"]["active_tokens"] == 0
    assert users["root-admin"]["admin"] is True and users["erin"]["clearance"] == "secret"
    revoked = memex("token", "revoke", token["id"], "--json")
    assert revoked.exit_code == 0 and [t["id"] for t in json.loads(revoked.output)["revoked"]] == [
        token["id"]
    ]
    again = memex("token", "revoke", token["id"])
    assert again.exit_code == 1 and "No active token" in again.output
    assert json.loads(memex("token", "list", "--json").output) == []
    assert len(json.loads(memex("token", "list", "--all", "--json").output)) == 1
    second = json.loads(memex("token", "create", "zoe", "--json").output)
    removed = memex("users", "remove", "zoe", "--json")
    assert json.loads(removed.output) == {
        "user": "zoe",
        "policy": str(company_home / "policy.yaml"),
        "revoked_tokens": [second["id"]],
    }
    assert "zoe" not in load_policy(company_home / "policy.yaml").users


def test_the_commands_refuse_what_they_should(company_home):
    unknown = memex("token", "create", "mallory")
    assert unknown.exit_code == 1 and "no user 'mallory'" in unknown.output
    bad_expiry = memex("token", "create", "alice", "--expires", "tomorrowish")
    assert bad_expiry.exit_code == 1 and "use a duration" in bad_expiry.output
    duplicate = memex("users", "add", "alice", "--roles", "staff")
    assert duplicate.exit_code == 1 and "already in" in duplicate.output
    self_removal = memex("users", "remove", "root-admin")
    assert self_removal.exit_code == 1 and "another admin" in self_removal.output


def test_a_name_reused_after_a_hand_edit_does_not_revive_old_tokens(company_home):
    old = json.loads(memex("token", "create", "sam", "--json").output)
    path = company_home / "policy.yaml"
    path.write_text(path.read_text().replace("  sam: {roles: [sales], emails: [sam@kestrel.example]}\n", ""))
    result = json.loads(memex("users", "add", "sam", "--roles", "visitor", "--json").output)
    assert result["revoked_old_tokens"] == [old["id"]]


def test_only_admins_manage_users_and_tokens(memex_home):
    policy = (POLICIES / "company.yaml").read_text()
    policy = policy.replace('    os_users: ["*"]', "").replace(
        "alice: {emails: [alice@kestrel.example]}",
        'alice: {emails: [alice@kestrel.example], os_users: ["*"]}',
    )
    memex_home.mkdir(parents=True)
    (memex_home / "policy.yaml").write_text(policy)
    for args in (
        ["users", "add", "zoe", "--roles", "staff"],
        ["token", "create", "alice"],
        ["token", "list"],
    ):
        result = memex(*args)
        assert result.exit_code == 1 and "only an admin may manage users and tokens" in result.output, args
    assert "zoe" not in (memex_home / "policy.yaml").read_text()
