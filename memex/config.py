"""Where memex keeps its data, and the settings in MEMEX_HOME/config.toml."""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class Settings:
    """config.toml; every key is optional."""

    embedding_model: str | None = None  # a sentence-transformers folder; default: bundled MiniLM
    llm_model: str | None = None  # a GGUF path; default: bundled SmolLM2
    llm_url: str | None = None  # an OpenAI-compatible server instead of the in-process model
    store_url: str | None = None  # a Chroma server instead of the embedded store
    k: int = 5
    parse_workers: int = 1
    parse_timeout: float = 120.0  # seconds per file
    parse_memory_mb: int = 3072  # per parser process
    context_tokens: int = 4096
    max_answer_tokens: int = 256
    watched: tuple[str, ...] = field(default_factory=tuple)


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
    if "watched" in raw:
        raw["watched"] = tuple(raw["watched"])
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
