"""`memex serve`, `memex users ...` and `memex token ...`: the company service and its accounts."""

from __future__ import annotations

import getpass
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from memex.cli.output import emit as _emit
from memex.cli.output import fail as _fail
from memex.errors import MemexError

users_app = typer.Typer(help="Add, list and remove the users of the policy (admins).", no_args_is_help=True)
token_app = typer.Typer(
    help="Create, list and revoke API tokens for `memex serve` (admins).", no_args_is_help=True
)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _policy_path(ctx: typer.Context) -> Path:
    from memex import config

    given = ctx.find_root().params.get("policy")
    paths = config.Paths(config.home())
    if given is None:
        config.initialise(paths)
    return Path(given) if given else paths.policy


def _tokens():
    from memex import config
    from memex.service.tokens import TokenStore

    return TokenStore(config.Paths(config.home()).root / "tokens.sqlite")


def _require_admin(policy) -> str:
    """Managing users and tokens is for admins: the OS account must map to an admin user."""
    from memex.access.identity import local_principal, require_admin

    os_user = getpass.getuser()
    principal, _ = local_principal(policy, os_user)
    require_admin(
        principal,
        f"only an admin may manage users and tokens; the OS user {os_user!r} maps to {principal.name}",
    )
    return principal.name


def _names(values: list[str]) -> list[str]:
    """--roles a,b --roles c -> [a, b, c]"""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# -- users --------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's name (what tokens and the audit log show)."),
    roles: list[str] = typer.Option([], "--roles", help="Roles, comma-separated or repeated."),
    groups: list[str] = typer.Option([], "--groups", help="Groups, comma-separated or repeated."),
    emails: list[str] = typer.Option([], "--emails", help="Mail addresses (for access lists)."),
    as_json: bool = JSON,
) -> None:
    """Add a user to the policy file (comments and layout are kept; the result is validated)."""
    from memex.access.policyfile import load_policy
    from memex.service.users import add_user

    try:
        path = _policy_path(ctx)
        _require_admin(load_policy(path))
        policy = add_user(path, name, roles=_names(roles), groups=_names(groups), emails=_names(emails))
        with _tokens() as tokens:
            # Tokens left over from an earlier user of this name must not come back to life.
            stale = tokens.revoke(name)
    except MemexError as exc:
        _fail(exc, as_json)
    principal = policy.principal(name)
    result = {
        "user": name,
        "policy": str(path),
        "roles": list(principal.roles),
        "groups": list(principal.groups),
        "labels": sorted(principal.labels),
        "clearance": principal.clearance,
        "admin": principal.admin,
        "revoked_old_tokens": [t.id for t in stale],
    }
    if as_json:
        _emit(result)
        return
    typer.echo(
        f"Added {name} to {path}: roles {', '.join(principal.roles) or 'none'}; labels "
        f"{', '.join(sorted(principal.labels)) or 'none'}; clearance {principal.clearance}."
    )
    if stale:
        typer.echo(f"Revoked {len(stale)} old token(s) of an earlier user named {name}.")
    typer.echo(f"Give them a token: memex token create {name}")


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The policy's users: roles, groups, labels, clearance and active tokens."""
    from memex.access.policyfile import load_policy

    try:
        policy = load_policy(_policy_path(ctx))
        _require_admin(policy)
        with _tokens() as tokens:
            active: dict[str, int] = {}
            for info in tokens.list():
                if info.state() == "active":
                    active[info.user] = active.get(info.user, 0) + 1
    except MemexError as exc:
        _fail(exc, as_json)
    rows = []
    for name in sorted(policy.users):
        p = policy.principal(name)
        rows.append(
            {
                "user": name,
                "roles": list(p.roles),
                "groups": list(p.groups),
                "labels": sorted(p.labels),
                "clearance": p.clearance,
                "admin": p.admin,
                "emails": list(policy.users[name].emails),
                "active_tokens": active.get(name, 0),
            }
        )
    if as_json:
        _emit(rows)
        return
    for row in rows:
        flags = " (admin)" if row["admin"] else ""
        typer.echo(
            f"{row['user']}{flags}: roles {', '.join(row['roles']) or '-'}; labels "
            f"{', '.join(row['labels']) or '-'}; clearance {row['clearance']}; {row['active_tokens']} token(s)"
        )


@users_app.command("remove")
def users_remove(
    ctx: typer.Context, name: str = typer.Argument(..., help="The user to remove."), as_json: bool = JSON
) -> None:
    """Remove a user from the policy file and revoke their tokens."""
    from memex.access.policyfile import load_policy
    from memex.service.users import remove_user

    try:
        path = _policy_path(ctx)
        admin = _require_admin(load_policy(path))
        if name == admin:
            raise MemexError(f"{name} is the user you act as; another admin must remove it")
        remove_user(path, name)
        with _tokens() as tokens:
            revoked = tokens.revoke(name)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"user": name, "policy": str(path), "revoked_tokens": [t.id for t in revoked]})
    else:
        typer.echo(f"Removed {name} from {path}; revoked {len(revoked)} token(s).")


# -- tokens -------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The policy user the token signs in as."),
    expires: str = typer.Option(
        "90d", "--expires", help="A duration (90d, 12h, 2w), a date (2027-01-31) or never."
    ),
    note: str = typer.Option("", "--note", help="What the token is for (shown in lists)."),
    as_json: bool = JSON,
) -> None:
    """Create a token for USER. It is shown once; only a salted hash is kept."""
    from memex.access.policyfile import load_policy
    from memex.service.tokens import parse_expiry

    try:
        path = _policy_path(ctx)
        policy = load_policy(path)
        _require_admin(policy)
        if name not in policy.users:
            raise MemexError(f"no user {name!r} in {path}; add one with `memex users add {name} --roles ...`")
        with _tokens() as tokens:
            secret, info = tokens.create(name, expires=parse_expiry(expires), note=note)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"token": secret, **info.to_json()})
        return
    typer.echo(secret)
    typer.echo(
        f"Token {info.id} for {name}, expires {info.to_json()['expires'] or 'never'}. It is shown only "
        "now: hand it over safely (clients send it as `Authorization: Bearer TOKEN`).",
        err=True,
    )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Optional[str] = typer.Option(None, "--user", help="Only this user's tokens."),
    everything: bool = typer.Option(False, "--all", help="Include revoked and expired tokens."),
    as_json: bool = JSON,
) -> None:
    """Tokens (never their secrets): id, user, state, expiry, last use."""
    from memex.access.policyfile import load_policy

    try:
        _require_admin(load_policy(_policy_path(ctx)))
        with _tokens() as tokens:
            infos = [i for i in tokens.list(user=user) if everything or i.state() == "active"]
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit([i.to_json() for i in infos])
        return
    if not infos:
        typer.echo("No tokens." if everything else "No active tokens (--all shows revoked and expired ones).")
    for info in infos:
        data = info.to_json()
        typer.echo(
            f"{info.id}  {info.user:12} {data['state']:8} expires {data['expires'] or 'never'}  "
            f"last used {data['last_used'] or 'never'}" + (f"  ({info.note})" if info.note else "")
        )


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A token id, or a user name (all their tokens)."),
    as_json: bool = JSON,
) -> None:
    """Revoke a token, or every token of a user. Takes effect at the next request."""
    from memex.access.policyfile import load_policy

    try:
        _require_admin(load_policy(_policy_path(ctx)))
        with _tokens() as tokens:
            revoked = tokens.revoke(target)
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"revoked": [i.to_json() for i in revoked]})
    elif revoked:
        typer.echo(f"Revoked {len(revoked)} token(s): {', '.join(i.id for i in revoked)}.")
    else:
        typer.echo(f"No active token has the id or user {target!r}.")
    if not revoked:
        raise typer.Exit(1)


# -- serve --------------------------------------------------------------------------------------


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8765, "--port", help="Port (0: any free port)."),
    store: Optional[str] = typer.Option(
        None, "--store", metavar="URL", help="A Chroma server (chroma run), e.g. http://db:8000."
    ),
    llm: Optional[str] = typer.Option(
        None, "--llm", metavar="URL", help="An OpenAI-compatible server, e.g. http://gpu:8080/v1."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", metavar="PATH.gguf", help="Another local GGUF model."
    ),
    queue: int = typer.Option(8, "--queue", help="Questions that may wait for the model before 429."),
    per_user: int = typer.Option(2, "--per-user", help="Questions one user may have waiting or running."),
    ssl_certfile: Optional[Path] = typer.Option(
        None, "--ssl-certfile", help="Serve HTTPS with this certificate."
    ),
    ssl_keyfile: Optional[Path] = typer.Option(None, "--ssl-keyfile", help="The certificate's private key."),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1", "--forwarded-allow-ips", help="Proxies whose X-Forwarded-* headers are trusted."
    ),
    root_path: str = typer.Option("", "--root-path", help="The path prefix a proxy serves memex under."),
    allowed_host: list[str] = typer.Option(
        [],
        "--allowed-host",
        metavar="NAME",
        help="A Host name clients use (repeatable); localhost and the --host address always work.",
    ),
    as_json: bool = JSON,
) -> None:
    """Run the company service: the web page, the JSON and OpenAI-compatible APIs and MCP."""
    import uvicorn

    try:
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise MemexError("--ssl-certfile and --ssl-keyfile go together")
        if queue < 1 or per_user < 1:
            raise MemexError("--queue and --per-user must be at least 1")
        service, memex, tokens = _build(
            _policy_path(ctx), store=store, llm=llm, model=model, queue=queue, per_user=per_user
        )
        sock = _bind(host, port)
    except MemexError as exc:
        _fail(exc, as_json)
    from memex.store import filemodes

    loose = filemodes.warning(memex.paths.root, socket_mode=memex.settings.socket_mode)
    if loose:
        typer.secho(loose, err=True, fg=typer.colors.YELLOW)
    from memex.service.app import create_app
    from memex.service.guard import allowed_hosts

    bound_port = sock.getsockname()[1]
    scheme = "https" if ssl_certfile else "http"
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown_host}:{bound_port}{root_path}/"
    info = {
        "url": url,
        "home": str(memex.paths.root),
        "policy": memex.policy.origin,
        "pid": __import__("os").getpid(),
    }
    if as_json:
        typer.echo(json.dumps(info))
    else:
        typer.echo(f"memex serving {memex.paths.root} at {url} (Ctrl-C stops it)")
    if host not in LOOPBACK and not ssl_certfile:
        typer.secho(
            "memex: listening beyond this machine over plain HTTP; put it behind a TLS proxy "
            "(see README) or pass --ssl-certfile/--ssl-keyfile",
            err=True,
            fg=typer.colors.YELLOW,
        )
    sys.stdout.flush()
    config = uvicorn.Config(
        create_app(service, hosts=allowed_hosts(host, allowed_host)),
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        root_path=root_path,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        log_level="info",
        log_config=_log_config(),
        timeout_graceful_shutdown=10,
    )
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again: make that an
    # exception here, so that the model process and the stores are closed and the exit is clean.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.close()
        memex.close()
        tokens.close()
    if not as_json:
        typer.echo("memex stopped")


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, all of it on stderr (stdout is for --json)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    return config


class _Stopped(Exception):
    pass


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped()


def _build(policy_path: Path, *, store, llm, model, queue: int, per_user: int):
    from memex.api.wiring import Memex
    from memex.service.auth import Authenticator
    from memex.service.core import Service

    overrides = {"store_url": store, "llm_url": llm, "llm_model": model}
    memex = Memex.open(
        policy_path=policy_path, writable=True, overrides={k: v for k, v in overrides.items() if v}
    )
    memex.on_note = lambda line: typer.secho(line, err=True)
    try:
        # Found now, not at the first question: a missing model, a bad URL, TLS or key.
        factory = memex.model_factory(separate_process=True)
        if memex.settings.llm_url:
            factory()
        # One policy in force for identities and for the index's last check. The service owns
        # an embedded store (exclusively): it relabels online after a policy edit.
        memex.index  # noqa: B018 - open the store now: a busy or unreachable one stops us here
        memex.keep_labels_current()
    except MemexError:
        memex.close()
        raise
    tokens = _tokens()
    service = Service(
        memex,
        Authenticator(tokens, memex.policy_source),
        model_factory=factory,
        queue_size=queue,
        per_user=per_user,
    )
    return service, memex, tokens


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MemexError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
