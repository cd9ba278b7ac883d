"""Add and remove policy users from the command line, editing the policy YAML in place.

The edit is textual where it can be (a new line at the end of a block `users:` mapping, or the
lines of one user removed), so comments, order and hand formatting survive; otherwise the file
is rewritten through ruamel.yaml's round trip. Either way the new text is parsed and validated
as a policy, checked to say what was asked, and only then replaces the file atomically (a
temporary file in the same folder, fsync, rename), under a lock against concurrent edits.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

from memex.access import Policy, User
from memex.access.policyfile import parse_policy
from memex.errors import PolicyError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
EMAIL = re.compile(r"^[^@\s,\[\]{}]+@[^@\s,\[\]{}]+\.[^@\s,\[\]{}]+$")
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


def add_user(
    path: Path,
    name: str,
    *,
    roles: Sequence[str] = (),
    groups: Sequence[str] = (),
    emails: Sequence[str] = (),
) -> Policy:
    """Write a new user into the policy file at `path`; returns the new policy."""
    if not NAME.match(name):
        raise PolicyError(f"user name {name!r}: use letters, digits and . _ @ + - (at most 100)")
    for email in emails:
        if not EMAIL.match(email):
            raise PolicyError(f"{email!r} is not a mail address")
    with _locked(path):
        text = path.read_text(encoding="utf-8")
        policy = parse_policy(text, origin=str(path))
        if name in policy.users:
            raise PolicyError(f"user {name!r} is already in {path}")
        for role in roles:
            if role not in policy.roles:
                raise PolicyError(f"unknown role {role!r} (roles: {', '.join(sorted(policy.roles))})")
        for group in groups:
            if group not in policy.groups:
                known = ", ".join(sorted(policy.groups)) or "none"
                raise PolicyError(f"unknown group {group!r} (groups: {known})")
        fields = {"roles": list(roles), "groups": list(groups), "emails": [e.lower() for e in emails]}
        new_text = _insert_user(text, name, {k: v for k, v in fields.items() if v})
        new = parse_policy(new_text, origin=str(path))
        expected = User(name, tuple(roles), tuple(groups), tuple(e.lower() for e in emails))
        if new.users.get(name) != expected or set(new.users) != set(policy.users) | {name}:
            raise PolicyError(f"could not add {name!r} to {path} safely; edit the file by hand")
        _replace(path, new_text)
        return new


def remove_user(path: Path, name: str) -> Policy:
    """Remove a user from the policy file at `path`; returns the new policy."""
    with _locked(path):
        text = path.read_text(encoding="utf-8")
        policy = parse_policy(text, origin=str(path))
        if name not in policy.users:
            raise PolicyError(f"no user {name!r} in {path}")
        member_of = sorted(g.name for g in policy.groups.values() if name in g.members)
        if member_of:
            raise PolicyError(
                f"{name!r} is listed under members: of group(s) {', '.join(member_of)} in {path}; "
                f"remove them there first"
            )
        new_text = _delete_user(text, name)
        new = parse_policy(new_text, origin=str(path))
        if set(new.users) != set(policy.users) - {name}:
            raise PolicyError(f"could not remove {name!r} from {path} safely; edit the file by hand")
        _replace(path, new_text)
        return new


# -- editing ------------------------------------------------------------------------------------


def _scalar(value: str) -> str:
    return (
        value
        if _PLAIN.match(value) and value not in ("null", "true", "false", "yes", "no")
        else json.dumps(value)
    )


def _flow(fields: dict[str, list[str]]) -> str:
    parts = [f"{key}: [{', '.join(_scalar(v) for v in values)}]" for key, values in fields.items()]
    return "{" + ", ".join(parts) + "}"


def _users_node(text: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise PolicyError("the policy is not a mapping")
    for key, value in root.value:
        if key.value == "users":
            return key, value
    return None, None


def _last_line(node: yaml.Node) -> int:
    """The 0-based line where a node's own text ends (block collections end at the next token,
    which may be lines later, so look at their last child instead)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _last_line(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _last_line(node.value[-1])
    end = node.end_mark
    return end.line if end.column > 0 else end.line - 1


def _insert_user(text: str, name: str, fields: dict[str, list[str]]) -> str:
    key, users = _users_node(text)
    entry = f"{_scalar(name)}: {_flow(fields)}"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if key is None:
        return "".join(lines) + f"\nusers:\n  {entry}\n"
    assert users is not None
    if isinstance(users, yaml.MappingNode) and not users.flow_style and users.value:
        indent = users.value[0][0].start_mark.column
        at = _last_line(users.value[-1][1]) + 1
        return "".join(lines[:at] + [" " * indent + entry + "\n"] + lines[at:])
    return _insert_round_trip(text, name, fields)


def _insert_round_trip(text: str, name: str, fields: dict[str, list[str]]) -> str:
    """For a flow-style or empty `users:`: ruamel.yaml keeps comments, not every line break."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    loader = YAML()
    loader.preserve_quotes = True
    loader.indent(mapping=2, sequence=4, offset=2)
    data = loader.load(text)
    if data.get("users") is None:
        data["users"] = CommentedMap()
    entry = CommentedMap()
    for field_name, values in fields.items():
        seq = CommentedSeq(values)
        seq.fa.set_flow_style()
        entry[field_name] = seq
    entry.fa.set_flow_style()
    data["users"][name] = entry
    out = io.StringIO()
    loader.dump(data, out)
    return out.getvalue()


def _delete_user(text: str, name: str) -> str:
    _, users = _users_node(text)
    if not (isinstance(users, yaml.MappingNode) and not users.flow_style):
        return _delete_round_trip(text, name)
    lines = text.splitlines(keepends=True)
    for key, value in users.value:
        if key.value == name:
            start = key.start_mark.line
            end = _last_line(value) + 1
            if lines[start][: key.start_mark.column].strip():  # shares its line with something else
                return _delete_round_trip(text, name)
            return "".join(lines[:start] + lines[end:])
    raise PolicyError(f"no user {name!r}")


def _delete_round_trip(text: str, name: str) -> str:
    from ruamel.yaml import YAML

    loader = YAML()
    loader.preserve_quotes = True
    loader.indent(mapping=2, sequence=4, offset=2)
    data = loader.load(text)
    del data["users"][name]
    out = io.StringIO()
    loader.dump(data, out)
    return out.getvalue()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _replace(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, keeping the file's permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
