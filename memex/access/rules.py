"""The access model: labels on chunks, principals, policies, and the one visibility rule.

Pure: no I/O. A policy is loaded from YAML by `memex.access.policyfile`; everything that decides who may
read what lives here, so it can be tested as a table.

A principal may read a chunk iff
  - it is a known user,
  - it holds every label of the chunk,
  - its clearance is at least the chunk's level, and
  - where the chunk carries an ACL, the principal (or one of its groups or addresses) is on it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from memex.errors import AccessRefused, PolicyError

# Document attributes a source rule may match on. Connectors describe their documents with these.
MATCH_KEYS = frozenset(
    {
        "connector",  # files, mail, chat, database, calendar, ...
        "path",  # absolute POSIX path of a file, or of the archive a record came from
        "address",  # any mail address of the sender or a recipient
        "domain",  # any mail domain of the sender or a recipient
        "folder",  # mail folder / mailbox
        "workspace",  # chat workspace or export name
        "channel",  # chat channel
        "database",  # database name or URL without credentials
        "table",  # database table
        "column",  # database column (column-level rules)
        "kind",  # a connector's own record kind (event, bookmark, visit, todo, photo, track ...)
    }
)
# Plus "field.NAME": a value of a record's field (a database column, a front-matter key), for
# rules like "rows of employees whose department is Finance get the finance label".
FIELD_PREFIX = "field."


def is_match_key(key: str) -> bool:
    return key in MATCH_KEYS or (key.startswith(FIELD_PREFIX) and len(key) > len(FIELD_PREFIX))


CASE_INSENSITIVE_KEYS = frozenset({"address", "domain"})


@dataclass(frozen=True)
class Access:
    """The access labels one chunk carries.

    `acl` lists identities such as ``user:alice``, ``group:hr`` or ``email:bob@acme.com``. It only
    restricts when `restricted` is true; a restricted chunk with an empty ACL is visible to nobody.
    """

    labels: frozenset[str]
    level: str
    restricted: bool = False
    acl: frozenset[str] = frozenset()

    def key(self) -> tuple:
        """A canonical, hashable form: equal keys mean equal access."""
        return (tuple(sorted(self.labels)), self.level, self.restricted, tuple(sorted(self.acl)))

    def to_dict(self) -> dict:
        return {
            "labels": sorted(self.labels),
            "level": self.level,
            "restricted": self.restricted,
            "acl": sorted(self.acl),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Access:
        return cls(
            labels=frozenset(data["labels"]),
            level=data["level"],
            restricted=bool(data["restricted"]),
            acl=frozenset(data["acl"]),
        )


@dataclass(frozen=True)
class Principal:
    """Who is asking, resolved from a policy. Build it with `Policy.principal`."""

    name: str
    known: bool
    labels: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()  # the level names at or below this principal's clearance
    clearance: str | None = None
    identities: frozenset[str] = frozenset()
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    admin: bool = False
    # Granted by a role with `all_access_lists: true`: passes every access list (labels and
    # levels still apply). For the owner of a personal archive: their mail and chats are theirs.
    all_access_lists: bool = False

    def on_access_list(self, access: Access) -> bool:
        return self.all_access_lists or bool(access.acl & self.identities)


def allowed(*, principal: Principal, access: Access) -> bool:
    """The visibility rule. The only place it is written."""
    if not principal.known:
        return False
    if not access.labels <= principal.labels:
        return False
    if access.level not in principal.levels:
        return False
    if access.restricted and not principal.on_access_list(access):
        return False
    return True


def denial_reasons(*, principal: Principal, access: Access) -> list[str]:
    """Why `allowed` says no, in words (for `memex policy explain`, shown to admins only)."""
    if not principal.known:
        return [f"user {principal.name!r} is not in the policy"]
    reasons = []
    missing = sorted(access.labels - principal.labels)
    if missing:
        reasons.append(f"lacks label(s) {', '.join(missing)}")
    if access.level not in principal.levels:
        reasons.append(f"clearance {principal.clearance!r} is below level {access.level!r}")
    if access.restricted and not principal.on_access_list(access):
        reasons.append("is not on the document's access list")
    return reasons


# --- policies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    name: str
    labels: frozenset[str] = frozenset()
    level: str | None = None
    inherits: tuple[str, ...] = ()
    admin: bool = False
    all_access_lists: bool = False


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    os_users: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    name: str
    roles: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceRule:
    """Gives labels and a level to documents whose attributes match every key of `match`."""

    name: str
    match: Mapping[str, tuple[str, ...]]
    labels: frozenset[str] = frozenset()
    level: str | None = None

    def matches(self, attributes: Mapping[str, object]) -> bool:
        for key, patterns in self.match.items():
            values = _as_strings(attributes.get(key))
            if not any(_glob_match(p, v, key) for p in patterns for v in values):
                return False
        return True


@dataclass(frozen=True)
class Labeling:
    """What the policy gives a document: labels, a level, and the names of the rules that matched."""

    labels: frozenset[str]
    level: str
    rules: tuple[str, ...]

    def access(self, *, acl: Iterable[str] | None = None) -> Access:
        if acl is None:
            return Access(self.labels, self.level)
        return Access(self.labels, self.level, restricted=True, acl=frozenset(acl))


@dataclass(frozen=True)
class Case:
    """One row of a policy's decision table."""

    user: str
    labels: frozenset[str]
    level: str
    acl: tuple[str, ...] | None
    expect: bool
    line: int | None = None

    def access(self) -> Access:
        if self.acl is None:
            return Access(self.labels, self.level)
        return Access(self.labels, self.level, restricted=True, acl=frozenset(self.acl))


@dataclass(frozen=True)
class Policy:
    labels: frozenset[str]
    levels: tuple[str, ...]
    roles: Mapping[str, Role]
    users: Mapping[str, User]
    groups: Mapping[str, Group] = field(default_factory=dict)
    sources: tuple[SourceRule, ...] = ()
    cases: tuple[Case, ...] = ()
    origin: str = "<policy>"
    # Where each field was written ("users.alice.roles" -> line), so errors can point at it.
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self._check()
        except PolicyError as exc:
            if exc.field is None:
                raise
            line = self._line_of(exc.field)
            where = f"{self.origin}:{line}" if line else self.origin
            raise PolicyError(f"{where}: {exc.field}: {exc}", field=exc.field) from None

    def _line_of(self, field_name: str) -> int | None:
        while field_name:
            if field_name in self.lines:
                return self.lines[field_name]
            field_name = field_name.rpartition(".")[0]
        return None

    # -- validation of references (the YAML loader checks shapes and adds line numbers) --
    def _check(self) -> None:
        if not self.levels:
            raise PolicyError("a policy needs at least one level", field="levels")
        if len(set(self.levels)) != len(self.levels):
            raise PolicyError("levels must be unique", field="levels")
        for role in self.roles.values():
            field = f"roles.{role.name}"
            self._check_labels(role.labels, f"{field}.labels")
            self._check_level(role.level, f"{field}.level")
            self._check_names(role.inherits, self.roles, "role", f"{field}.inherits")
        for role_name in self.roles:
            self._role_closure(role_name, ())
        for user in self.users.values():
            self._check_names(user.roles, self.roles, "role", f"users.{user.name}.roles")
            self._check_names(user.groups, self.groups, "group", f"users.{user.name}.groups")
        for group in self.groups.values():
            self._check_names(group.roles, self.roles, "role", f"groups.{group.name}.roles")
            self._check_names(group.members, self.users, "user", f"groups.{group.name}.members")
        os_users: dict[str, str] = {}
        for user in self.users.values():
            for os_user in user.os_users:
                if os_user in os_users:
                    raise PolicyError(
                        f"OS user {os_user!r} is mapped to both {os_users[os_user]!r} and {user.name!r}",
                        field=f"users.{user.name}.os_users",
                    )
                os_users[os_user] = user.name
        for i, rule in enumerate(self.sources):
            field = f"sources[{i}]"
            self._check_labels(rule.labels, f"{field}.labels")
            self._check_level(rule.level, f"{field}.level")
            for key in rule.match:
                if not is_match_key(key):
                    raise PolicyError(
                        f"unknown attribute {key!r} (known: {', '.join(sorted(MATCH_KEYS))}, field.NAME)",
                        field=f"{field}.match.{key}",
                    )
        for i, case in enumerate(self.cases):
            self._check_labels(case.labels, f"cases[{i}].labels")
            self._check_level(case.level, f"cases[{i}].level")

    def _check_labels(self, labels: Iterable[str], field: str) -> None:
        unknown = sorted(set(labels) - self.labels)
        if unknown:
            raise PolicyError(
                f"unknown label(s) {', '.join(unknown)}; declare them under 'labels:'", field=field
            )

    def _check_level(self, level: str | None, field: str) -> None:
        if level is not None and level not in self.levels:
            raise PolicyError(f"unknown level {level!r} (levels: {', '.join(self.levels)})", field=field)

    @staticmethod
    def _check_names(names: Iterable[str], known: Mapping[str, object], kind: str, field: str) -> None:
        for name in names:
            if name not in known:
                raise PolicyError(f"unknown {kind} {name!r}", field=field)

    def _role_closure(self, name: str, path: tuple[str, ...]) -> list[Role]:
        if name in path:
            cycle = " -> ".join((*path, name))
            raise PolicyError(f"role inheritance cycle: {cycle}", field=f"roles.{path[0]}.inherits")
        role = self.roles[name]
        out = [role]
        for parent in role.inherits:
            out.extend(self._role_closure(parent, (*path, name)))
        return out

    # -- principals --
    def user_for_os_user(self, os_user: str) -> str | None:
        """The policy user an OS account acts as on the CLI, if the policy maps it."""
        wildcard = None
        for user in self.users.values():
            if os_user in user.os_users:
                return user.name
            if "*" in user.os_users:
                wildcard = user.name
        return wildcard

    def principal(self, name: str) -> Principal:
        """Resolve a user name. An unknown user gets a principal that can read nothing."""
        user = self.users.get(name)
        if user is None:
            return Principal(name=name, known=False)
        groups = set(user.groups) | {g.name for g in self.groups.values() if name in g.members}
        role_names = set(user.roles)
        for group in groups:
            role_names |= set(self.groups[group].roles)
        roles = [r for role in sorted(role_names) for r in self._role_closure(role, ())]
        labels = frozenset().union(*(r.labels for r in roles)) if roles else frozenset()
        ranks = [self.levels.index(r.level) for r in roles if r.level is not None]
        clearance_rank = max(ranks, default=0)
        identities = {f"user:{name}"} | {f"group:{g}" for g in groups}
        identities |= {f"email:{e.lower()}" for e in user.emails}
        for group in groups:
            identities |= {f"email:{e.lower()}" for e in self.groups[group].emails}
        return Principal(
            name=name,
            known=True,
            labels=labels,
            levels=frozenset(self.levels[: clearance_rank + 1]),
            clearance=self.levels[clearance_rank],
            identities=frozenset(identities),
            roles=tuple(sorted(role_names)),
            groups=tuple(sorted(groups)),
            admin=any(r.admin for r in roles),
            all_access_lists=any(r.all_access_lists for r in roles),
        )

    # -- labelling documents at ingest --
    def matching_rules(self, attributes: Mapping[str, object]) -> list[SourceRule]:
        return [rule for rule in self.sources if rule.matches(attributes)]

    def label(self, attributes: Mapping[str, object]) -> Labeling:
        """Labels for a document. Every matching rule contributes (more rules never widen access).

        Raises AccessRefused, naming the rule to add, when no rule matches: nothing is stored
        unlabelled.
        """
        rules = self.matching_rules(attributes)
        if not rules:
            raise AccessRefused(
                f"no source rule in {self.origin} matches {describe(attributes)}; "
                f"add one under 'sources:', for example:\n{suggest_rule(attributes)}"
            )
        labels = frozenset().union(*(r.labels for r in rules))
        ranks = [self.levels.index(r.level) for r in rules if r.level is not None]
        return Labeling(
            labels=labels,
            level=self.levels[max(ranks, default=0)],
            rules=tuple(r.name for r in rules),
        )


def describe(attributes: Mapping[str, object]) -> str:
    parts = []
    for key in sorted(attributes):
        if is_match_key(key):
            values = _as_strings(attributes[key])
            if values:
                parts.append(f"{key}={','.join(values)}")
    return " ".join(parts) or "(no attributes)"


def suggest_rule(attributes: Mapping[str, object]) -> str:
    connector = next(iter(_as_strings(attributes.get("connector"))), "files")
    lines = ["  - name: my-" + connector, "    match:", f"      connector: {connector}"]
    paths = _as_strings(attributes.get("path"))
    if paths:
        parent = paths[0].rsplit("/", 1)[0] or "/"
        lines.append(f"      path: '{parent}/**'")
    lines.append("    labels: [LABEL]")
    return "\n".join(lines)


def _as_strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence | set | frozenset):
        return tuple(str(v) for v in value)
    return (str(value),)


def _glob_match(pattern: str, value: str, key: str) -> bool:
    if key in CASE_INSENSITIVE_KEYS:
        pattern, value = pattern.lower(), value.lower()
    if key == "path":
        return _path_regex(pattern).fullmatch(value) is not None
    return fnmatch.fnmatchcase(value, pattern)


@lru_cache(maxsize=1024)
def _path_regex(pattern: str) -> re.Pattern[str]:
    """gitignore-like globs: `*` stays within a path segment, `**` spans segments, and a
    pattern that does not start with `/` may match at any depth."""
    if not pattern.startswith("/") and not pattern.startswith("**"):
        pattern = "**/" + pattern
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
