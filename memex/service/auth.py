"""Identity at the edge: a bearer token names a policy user; the policy (re-read when its file
changes) turns that user into a principal, at every request. Nothing else in a request (body,
query, other headers) is consulted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from memex.access import Principal
from memex.access.identity import require_admin
from memex.access.policyfile import PolicySource  # noqa: F401  (re-exported: it used to live here)
from memex.errors import Forbidden, MemexError
from memex.service.tokens import TokenStore

log = logging.getLogger(__name__)


class Unauthenticated(MemexError):
    """No usable token: HTTP 401."""


@dataclass(frozen=True)
class Caller:
    """Who is asking: the principal, and the token that proved it (for the audit log)."""

    principal: Principal
    token_id: str

    @property
    def actor(self) -> str:
        return f"{self.principal.name} (token {self.token_id})"

    @property
    def identity(self) -> dict[str, Any]:
        """The read facade's `principal` and `actor` keywords for this caller."""
        return {"principal": self.principal, "actor": self.actor}


class Authenticator:
    def __init__(self, tokens: TokenStore, policy: PolicySource) -> None:
        self.tokens = tokens
        self.policy = policy

    def caller(self, authorization: str | None) -> Caller:
        """The caller behind an `Authorization` header value. Raises Unauthenticated (401) for a
        missing, malformed, unknown, revoked or expired token and Forbidden (403) for a valid
        token whose user is no longer in the policy."""
        if not authorization:
            raise Unauthenticated("missing bearer token (Authorization: Bearer mx_...)")
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthenticated("invalid or unknown token")
        verdict = self.tokens.verify(presented.strip())
        if verdict.info is None:
            # Expired is worth saying (the holder should ask for a new one); anything else is
            # one answer, so that probing tells nothing.
            if verdict.reason == "expired token":
                raise Unauthenticated("token expired; ask an admin for a new one")
            raise Unauthenticated("invalid or unknown token")
        principal = self.policy.current().principal(verdict.info.user)
        if not principal.known:
            raise Forbidden(f"user {verdict.info.user!r} is not in the policy")
        return Caller(principal, verdict.info.id)

    def admin(self, authorization: str | None) -> Caller:
        caller = self.caller(authorization)
        require_admin(caller.principal)
        return caller
