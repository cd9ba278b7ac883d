"""Where memex keeps its data, and the settings in MEMEX_HOME/config.toml."""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from memex.errors import ConfigError

DEFAULT_POLICY = "personal.yaml"


def home() -> Path:
    """MEMEX_HOME, else the platform's user data directory (e.g. ~/.local/share/memex)."""
    configured = os.environ.get("MEMEX_HOME")
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("memex", appauthor=False))


# policies/ sits beside memex/, both in a checkout and in site-packages once installed.
POLICIES = Path(__file__).resolve().parent.parent / "policies"


def bundled_policy(name: str) -> Path:
    """A policy shipped in policies/."""
    path = POLICIES / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not path.is_file():
        known = sorted(p.name for p in POLICIES.glob("*.yaml"))
        raise ConfigError(f"no bundled policy {name!r}; bundled: {', '.join(known)}")
    return path


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def audit(self) -> Path:
        return self.root / "audit.sqlite"

    @property
    def policy(self) -> Path:
        return self.root / "policy.yaml"

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def lock(self) -> Path:
        return self.root / "store.lock"

    @property
    def daemon_pid(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def daemon_log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def socket(self) -> Path:
        return self.root / "daemon.sock"


@dataclass(frozen=True)
class Settings:
    """config.toml; every key is optional."""

    embedding_model: str | None = None  # "minilm-l6-v2" (default), "minilm-l6-v2-int8" or a folder
    llm_model: str | None = None  # a catalogue name or a GGUF path; default: the best installed
    llm_url: str | None = None  # an OpenAI-compatible server instead of the in-process model
    store_url: str | None = None  # a Chroma server instead of the embedded store
    store_ca_file: str | None = None  # CA certificate(s) for an https:// store_url
    llm_ca_file: str | None = None  # CA certificate(s) for an https:// llm_url
    allow_insecure_store: bool = False  # a store beyond loopback without TLS and MEMEX_STORE_TOKEN
    allow_insecure_llm: bool = False  # a model server beyond loopback without TLS and MEMEX_LLM_API_KEY
    k: int = 5
    parse_workers: int = 1
    parse_timeout: float = 120.0  # seconds per file
    parse_memory_mb: int = 3072  # per parser process
    max_file_mb: int = 1024  # larger files are refused (with the reason) before they are read
    context_tokens: int = 4096
    llm_threads: int = 0  # CPU threads for the local model; 0: every core (fewer on a busy machine)
    max_answer_tokens: int = 256
    # A follow-up ("who was on call?") is rewritten by the model into a standalone question
    # (checked; a rule takes over when the rewrite brings in new words). false: the rule only.
    condense_with_model: bool = True
    watched: tuple[str, ...] = field(default_factory=tuple)  # folders `memex watch` keeps current
    ignore: tuple[str, ...] = field(default_factory=tuple)  # more names never indexed, e.g. "*.log"
    watch_quiet_seconds: float = 0.5  # a changed file is read once it has been quiet this long
    watch_reconcile_minutes: float = 30.0  # how often the daemon compares the disk with the ledger
    watch_poll_seconds: float = 5.0  # scan interval where events are not available (NFS, SMB)
    watch_polling: bool = False  # scan instead of inotify everywhere
    socket_mode: int = 0o600  # the daemon's socket; 0o660 lets the file's group use it too
    # Commands hand their work to a background memex (started by the first command that needs
    # it, stopped after daemon_idle_minutes without a request) so that they answer at once and
    # reads go on during an ingest. false (or --no-daemon): each command opens the store itself.
    daemon: bool = True
    daemon_idle_minutes: float = 30.0
    follow_links: bool = False  # read symlinks whose targets lie outside the ingested folder


def load_settings(paths: Paths) -> Settings:
    if not paths.config.exists():
        return Settings()
    try:
        raw = tomllib.loads(paths.config.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{paths.config}: {exc}; fix or delete the file") from None
    known = set(Settings.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{paths.config}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    for key in ("watched", "ignore"):
        if key in raw:
            raw[key] = tuple(raw[key])
    try:
        return Settings(**raw)
    except TypeError as exc:
        raise ConfigError(f"{paths.config}: {exc}") from None


def initialise(paths: Paths, *, policy: Path | None = None, force: bool = False) -> bool:
    """Create MEMEX_HOME with a policy (the bundled personal one unless given). Returns True if
    a policy was written."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.policy.exists() and not force:
        return False
    shutil.copyfile(policy or bundled_policy(DEFAULT_POLICY), paths.policy)
    return True


def save_watched(paths: Paths, folders: list[str]) -> None:
    """Write `watched = [...]` into config.toml, keeping everything else in the file as it is."""
    import json

    line = "watched = [" + ", ".join(json.dumps(f, ensure_ascii=False) for f in folders) + "]"
    strings = r"(?:\s*(?:\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*')\s*,?)*\s*"
    _write_top_level(
        paths, "watched", folders, line, r"^watched\s*=\s*\[" + strings + r"\][ \t]*(?:#[^\n]*)?$"
    )


def save_setting(paths: Paths, key: str, value: str) -> None:
    """Write one top-level string setting (`key = "value"`) into config.toml, keeping the rest."""
    import json
    import re

    if key not in Settings.__dataclass_fields__:
        raise ConfigError(f"unknown setting {key!r}")
    line = f"{key} = {json.dumps(value, ensure_ascii=False)}"
    _write_top_level(paths, key, value, line, rf"^{re.escape(key)}\s*=.*$")


def _write_top_level(paths: Paths, key: str, value: object, line: str, existing: str) -> None:
    """Replace the line matching `existing` (or add `line` before the first [table], where
    top-level keys must be), check that the file then says `key = value`, and replace the file
    atomically."""
    import re

    text = paths.config.read_text(encoding="utf-8") if paths.config.exists() else ""
    pattern = re.compile(existing, re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: line, text, count=1)
    else:
        table = re.search(r"^\[", text, re.M)
        at = table.start() if table else len(text)
        head = text[:at]
        if head and not head.endswith("\n"):
            head += "\n"
        text = head + line + "\n" + text[at:]
    try:
        written = tomllib.loads(text).get(key)
    except tomllib.TOMLDecodeError as exc:
        written = exc
    if written != value:
        raise ConfigError(f"{paths.config}: cannot update `{key}` in it ({written}); edit it by hand")
    paths.root.mkdir(parents=True, exist_ok=True)
    temporary = paths.config.with_name(paths.config.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, paths.config)


def override(settings: Settings, **changes: Any) -> Settings:
    """`settings` with the given values replaced (command-line options over config.toml); a
    model named for answers replaces a server named in config.toml."""
    if changes.get("llm_model"):
        changes.setdefault("llm_url", None)
    return replace(settings, **changes)
