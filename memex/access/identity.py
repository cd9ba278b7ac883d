"""Who a local caller is, and the one admin check. Pure: the caller's OS account is given (the
CLI's own, or the one the kernel names on the daemon's socket); nothing here asks the system."""

from __future__ import annotations

from memex.access.rules import Policy, Principal
from memex.errors import Forbidden, MemexError


def local_principal(policy: Policy, os_user: str, as_user: str | None = None) -> tuple[Principal, str]:
    """The principal for a command run by the OS account `os_user`, and the actor to audit.
    The account maps to a policy user (`os_users`); `as_user` is for admins testing the policy."""
    own_name = policy.user_for_os_user(os_user)
    own = policy.principal(own_name) if own_name else None
    if as_user is None or as_user == own_name:
        if own is None:
            raise MemexError(
                f"the OS user {os_user!r} is not mapped to a user in the policy "
                f"({policy.origin}); add `os_users: [{os_user}]` to a user, or ask an "
                f"admin to run the command with --as"
            )
        return own, own.name
    require_admin(own, "only an admin may use --as (it is for testing a policy)")
    assert own is not None
    if as_user not in policy.users:
        known = ", ".join(sorted(policy.users))
        raise MemexError(f"there is no user {as_user!r} in the policy ({policy.origin}); its users: {known}")
    return policy.principal(as_user), f"{own.name} (as {as_user})"


def require_admin(principal: Principal | None, refusal: str = "this needs an admin") -> Principal:
    """`principal` if it is a known admin of the policy in force; else Forbidden(refusal)."""
    if principal is None or not principal.known or not principal.admin:
        raise Forbidden(refusal)
    return principal
