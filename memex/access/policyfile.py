"""Load a policy from YAML, with errors that name the file, the line and the field.

This module checks shapes (a mapping here, a list of names there) and records where each field
was written; the meaning (unknown labels, roles, cycles) is checked by `memex.access.Policy`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from memex.access import Case, Group, Policy, Role, SourceRule, User
from memex.errors import PolicyError

log = logging.getLogger(__name__)

TOP_LEVEL = {"version", "labels", "levels", "roles", "users", "groups", "sources", "cases"}
DEFAULT_LEVEL = "default"
_CONSTRUCTOR = yaml.SafeLoader("")


@dataclass(frozen=True)
class Node:
    """A YAML value with the line it came from."""

    value: Any
    line: int


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            f"policy file {path} does not exist; run `memex init` or pass --policy PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    return parse_policy(text, origin=str(path))


class PolicySource:
    """The policy in force. With a file, it is re-read when the file changes (after `memex users
    add` or an edit), at the next `current()`: every door and the index's last check ask for it at
    each request. An invalid new version is refused (logged) and the last good one stays in force.

    A change is noticed by the file's (mtime, inode, size); a file changed within the last two
    seconds is also compared by content, since two edits within the clock's granularity can
    leave all three equal."""

    RECENT_SECONDS = 2.0

    def __init__(self, policy: Policy, path: str | Path | None = None) -> None:
        self._policy = policy
        self._path = Path(path) if path is not None else None
        self._stamp = self._stat()
        self._text = self._read() if self._path is not None else None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path | None:
        return self._path

    def _stat(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def _read(self) -> str | None:
        try:
            return self._path.read_text(encoding="utf-8") if self._path is not None else None
        except (OSError, UnicodeDecodeError):
            return None

    def current(self) -> Policy:
        if self._path is None:
            return self._policy
        stamp = self._stat()
        recent = stamp is not None and time.time() - stamp[0] / 1e9 < self.RECENT_SECONDS
        if stamp is not None and (stamp != self._stamp or recent):
            with self._lock:
                text = self._read()
                if text is not None and text != self._text:
                    try:
                        self._policy = parse_policy(text, origin=str(self._path))
                        log.info("policy %s reloaded", self._path)
                    except PolicyError as exc:
                        log.error(
                            "policy %s changed but is invalid; keeping the previous one: %s", self._path, exc
                        )
                    self._text = text
                self._stamp = stamp
        return self._policy


def parse_policy(text: str, *, origin: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark else origin
        raise PolicyError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        raise PolicyError(f"{origin}: the policy is empty; it needs at least 'labels' and 'users'")
    return _Reader(origin).policy(_located(root))


def _located(node: yaml.Node) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            out[str(_CONSTRUCTOR.construct_object(key_node))] = _located(value_node)
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_located(item) for item in node.value], line)
    return Node(_CONSTRUCTOR.construct_object(node), line)


class _Reader:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.lines: dict[str, int] = {}

    def fail(self, node: Node, field: str, message: str) -> PolicyError:
        return PolicyError(f"{self.origin}:{node.line}: {field}: {message}", field=field)

    def at(self, node: Node | None, field: str) -> Node | None:
        if node is not None:
            self.lines[field] = node.line
        return node

    def mapping(self, node: Node | None, field: str, allowed: set[str] | None = None) -> dict[str, Node]:
        if node is None or node.value is None:
            return {}
        self.at(node, field)
        if not isinstance(node.value, dict):
            raise self.fail(node, field, "must be a mapping (key: value)")
        for key, value in node.value.items():
            if allowed is not None and key not in allowed:
                raise self.fail(
                    value, f"{field}.{key}", f"unknown field (allowed: {', '.join(sorted(allowed))})"
                )
            self.at(value, f"{field}.{key}")
        return node.value

    def sequence(self, node: Node | None, field: str) -> list[Node]:
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, list):
            raise self.fail(node, field, "must be a list")
        return node.value

    def names(self, node: Node | None, field: str) -> tuple[str, ...]:
        if node is None or node.value is None:
            return ()
        items = node.value if isinstance(node.value, list) else [node]
        out = []
        for item in items:
            value = item.value
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                raise self.fail(item, field, "must be a name or a list of names")
            out.append(str(value))
        return tuple(out)

    def name(self, node: Node | None, field: str) -> str | None:
        if node is None or node.value is None:
            return None
        if not isinstance(node.value, str) or not node.value:
            raise self.fail(node, field, "must be a name")
        return node.value

    def boolean(self, node: Node | None, field: str) -> bool:
        if node is None:
            return False
        if not isinstance(node.value, bool):
            raise self.fail(node, field, "must be true or false")
        return node.value

    def policy(self, root: Node) -> Policy:
        top = self.mapping(root, "policy", TOP_LEVEL)
        version = top.get("version")
        if version is not None and version.value != 1:
            raise self.fail(version, "version", "only version 1 is supported")
        if "labels" not in top:
            raise self.fail(root, "labels", "missing: declare the closed set of labels (may be [])")
        levels = self.names(top.get("levels"), "levels") or (DEFAULT_LEVEL,)
        roles = {
            name: self.role(name, node) for name, node in self.mapping(top.get("roles"), "roles").items()
        }
        groups = {
            name: self.group(name, node) for name, node in self.mapping(top.get("groups"), "groups").items()
        }
        users = {
            name: self.user(name, node) for name, node in self.mapping(top.get("users"), "users").items()
        }
        sources = tuple(
            self.source_rule(i, node) for i, node in enumerate(self.sequence(top.get("sources"), "sources"))
        )
        cases = tuple(
            self.case(i, node, levels[0]) for i, node in enumerate(self.sequence(top.get("cases"), "cases"))
        )
        return Policy(
            labels=frozenset(self.names(top["labels"], "labels")),
            levels=levels,
            roles=roles,
            users=users,
            groups=groups,
            sources=sources,
            cases=cases,
            origin=self.origin,
            lines=self.lines,
        )

    def role(self, name: str, node: Node) -> Role:
        field = f"roles.{name}"
        body = self.mapping(node, field, {"labels", "level", "inherits", "admin", "all_access_lists"})
        return Role(
            name=name,
            labels=frozenset(self.names(body.get("labels"), f"{field}.labels")),
            level=self.name(body.get("level"), f"{field}.level"),
            inherits=self.names(body.get("inherits"), f"{field}.inherits"),
            admin=self.boolean(body.get("admin"), f"{field}.admin"),
            all_access_lists=self.boolean(body.get("all_access_lists"), f"{field}.all_access_lists"),
        )

    def group(self, name: str, node: Node) -> Group:
        field = f"groups.{name}"
        body = self.mapping(node, field, {"roles", "members", "emails"})
        return Group(
            name=name,
            roles=self.names(body.get("roles"), f"{field}.roles"),
            members=self.names(body.get("members"), f"{field}.members"),
            emails=self.names(body.get("emails"), f"{field}.emails"),
        )

    def user(self, name: str, node: Node) -> User:
        field = f"users.{name}"
        body = self.mapping(node, field, {"roles", "groups", "emails", "os_users"})
        return User(
            name=name,
            roles=self.names(body.get("roles"), f"{field}.roles"),
            groups=self.names(body.get("groups"), f"{field}.groups"),
            emails=self.names(body.get("emails"), f"{field}.emails"),
            os_users=self.names(body.get("os_users"), f"{field}.os_users"),
        )

    def source_rule(self, i: int, node: Node) -> SourceRule:
        field = f"sources[{i}]"
        body = self.mapping(node, field, {"name", "match", "labels", "level"})
        if "match" not in body:
            raise self.fail(node, field, "missing 'match' (e.g. match: {connector: files})")
        match = {
            key: self.names(value, f"{field}.match.{key}")
            for key, value in self.mapping(body["match"], f"{field}.match").items()
        }
        if not match:
            raise self.fail(body["match"], f"{field}.match", "must name at least one attribute")
        return SourceRule(
            name=self.name(body.get("name"), f"{field}.name") or field,
            match=match,
            labels=frozenset(self.names(body.get("labels"), f"{field}.labels")),
            level=self.name(body.get("level"), f"{field}.level"),
        )

    def case(self, i: int, node: Node, lowest_level: str) -> Case:
        field = f"cases[{i}]"
        body = self.mapping(node, field, {"user", "labels", "level", "acl", "expect"})
        for required in ("user", "expect"):
            if required not in body:
                raise self.fail(node, field, f"missing '{required}'")
        expect = body["expect"].value
        if expect not in ("allow", "deny"):
            raise self.fail(body["expect"], f"{field}.expect", "must be allow or deny")
        acl = body.get("acl")
        return Case(
            user=str(body["user"].value),
            labels=frozenset(self.names(body.get("labels"), f"{field}.labels")),
            level=self.name(body.get("level"), f"{field}.level") or lowest_level,
            acl=None if acl is None else self.names(acl, f"{field}.acl"),
            expect=expect == "allow",
            line=node.line,
        )
