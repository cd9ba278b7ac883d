"""The scale-out servers memex talks to: a Chroma server (`store_url`) and an OpenAI-compatible
model server (`llm_url`). Both receive chunk text (the store keeps it with its labels, prompts
quote it), so:

- the URL's scheme is honoured: `https://` is TLS, verified against the system's CAs or against
  `store_ca_file` / `llm_ca_file` from config.toml;
- credentials come from the environment only (never from a file memex reads or writes):
  MEMEX_STORE_TOKEN is sent as `Authorization: Bearer TOKEN` (or, raw, in the header named by
  MEMEX_STORE_TOKEN_HEADER), MEMEX_LLM_API_KEY as the model server's bearer key;
- a server beyond this machine (not a loopback address) is refused without both TLS and
  credentials, unless `allow_insecure_store = true` / `allow_insecure_llm = true` says the network
  in between is trusted.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from memex.errors import ConfigError

STORE_TOKEN_ENV = "MEMEX_STORE_TOKEN"
STORE_HEADER_ENV = "MEMEX_STORE_TOKEN_HEADER"
LLM_KEY_ENV = "MEMEX_LLM_API_KEY"


@dataclass(frozen=True)
class Endpoint:
    """A checked server address, with what to send it. `repr` never shows the credentials."""

    url: str  # without a trailing slash
    host: str
    port: int
    tls: bool
    ca_file: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    token: str | None = field(default=None, repr=False)

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx's `verify` takes: the CA file's context, or the system's CAs."""
        if not self.tls:
            return True
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True


def is_loopback(host: str) -> bool:
    """Only literal loopback addresses and `localhost` count: a name could resolve anywhere."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def store_endpoint(
    url: str,
    *,
    ca_file: str | None = None,
    allow_insecure: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    env = os.environ if environ is None else environ
    token = env.get(STORE_TOKEN_ENV) or None
    header = (env.get(STORE_HEADER_ENV) or "Authorization").strip()
    headers = {}
    if token:
        headers[header] = f"Bearer {token}" if header.lower() == "authorization" else token
    return _endpoint(
        url,
        what="store",
        default_port=8000,
        ca_file=ca_file,
        token=token,
        headers=headers,
        allow_insecure=allow_insecure,
        token_env=STORE_TOKEN_ENV,
    )


def llm_endpoint(
    url: str,
    *,
    ca_file: str | None = None,
    allow_insecure: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    env = os.environ if environ is None else environ
    token = env.get(LLM_KEY_ENV) or None
    return _endpoint(
        url,
        what="llm",
        default_port=None,
        ca_file=ca_file,
        token=token,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        allow_insecure=allow_insecure,
        token_env=LLM_KEY_ENV,
    )


def _endpoint(
    url: str,
    *,
    what: str,
    default_port: int | None,
    ca_file: str | None,
    token: str | None,
    headers: dict[str, str],
    allow_insecure: bool,
    token_env: str,
) -> Endpoint:
    setting = f"{what}_url"
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{setting} {url!r} should look like https://host:port")
    if parsed.username or parsed.password:
        raise ConfigError(
            f"{setting} {url!r} carries credentials; give them in the environment ({token_env}) instead"
        )
    tls = parsed.scheme == "https"
    if ca_file:
        if not tls:
            raise ConfigError(f"{what}_ca_file is set but {setting} {url!r} is not https://")
        if not os.path.isfile(os.path.expanduser(ca_file)):
            raise ConfigError(f"{what}_ca_file {ca_file!r} does not exist")
        ca_file = os.path.expanduser(ca_file)
    missing = ([] if tls else ["TLS (an https:// URL)"]) + ([] if token else [f"credentials ({token_env})"])
    if missing and not is_loopback(parsed.hostname) and not allow_insecure:
        raise ConfigError(
            f"refusing {setting} {url}: it is beyond this machine and lacks {' and '.join(missing)}, "
            f"so chunk text would cross the network {'in clear text' if not tls else 'to anyone'}. "
            f"Put the server behind a TLS proxy that requires a token (README: Scale-out) and set "
            f"{token_env}, or set allow_insecure_{what} = true in config.toml if the network in "
            f"between is trusted"
        )
    port = parsed.port or (443 if tls else default_port or 80)
    return Endpoint(
        url=url.rstrip("/"),
        host=parsed.hostname,
        port=port,
        tls=tls,
        ca_file=ca_file or None,
        headers=headers,
        token=token,
    )


def store_server(settings) -> Endpoint | None:
    """The checked Chroma server of config.toml's settings (`store_url`), or None: embedded."""
    if not settings.store_url:
        return None
    return store_endpoint(
        settings.store_url, ca_file=settings.store_ca_file, allow_insecure=settings.allow_insecure_store
    )
