"""Memex: the pieces wired together for one MEMEX_HOME. Heavy things (models, the store) are
opened on first use. Tests inject fakes through the constructor."""

from __future__ import annotations

import getpass
import logging
import os
import secrets
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from memex import config
from memex.access import Policy, Principal
from memex.access.identity import local_principal
from memex.access.policyfile import PolicySource, load_policy
from memex.errors import MemexError
from memex.index import Index
from memex.ingest.ahead import ParseAhead
from memex.ingest.pipeline import Ingestor
from memex.ingest.plugins import parser_modules
from memex.ingest.report import IngestReport, Progress, StopSignal
from memex.ingest.sandbox import Limits, ParserPool, set_limits, set_preload
from memex.models import catalogue as models
from memex.models.choice import configured_embedder
from memex.models.embeddings import Embedder
from memex.models.llm import LanguageModel, LlamaCppModel, OpenAICompatibleModel
from memex.models.process import ModelProcess
from memex.remote import store_server
from memex.store import filemodes
from memex.store.audit import AuditLog
from memex.store.labelling import LABELLED_UNDER, CurrentLabels, rules_digest
from memex.store.ledger import Ledger
from memex.store.locking import FileLock, StoreLock

log = logging.getLogger(__name__)


class Memex:
    def __init__(
        self,
        paths: config.Paths,
        *,
        policy: Policy | PolicySource,
        settings: config.Settings | None = None,
        embedder: Embedder | None = None,
        model: LanguageModel | None = None,
        writable: bool = False,
        index: Index | None = None,
    ) -> None:
        """`policy`: a PolicySource re-reads its file when it changes (reads always use the
        policy in force); a Policy is fixed. `index`: an index already open (the daemon's second,
        read-only view of the store it owns), so that this Memex takes no store lock of its own."""
        self.paths = paths
        self.policy_source = policy if isinstance(policy, PolicySource) else PolicySource(policy)
        self.settings = settings or config.Settings()
        self.writable = writable
        self._embedder = embedder
        self._model = model
        self._index: Index | None = index
        if index is not None:
            index.current = self._current_labels()
        self._ledger: Ledger | None = None
        self._labelled_under: tuple[Policy, str] | None = None
        self._audit: AuditLog | None = None
        self._lock: FileLock | None = None
        self._pool: ParserPool | None = None
        self._prompt_key: bytes | None = None
        self.on_note: Callable[[str], None] | None = None  # one-time notes (a model being assembled)
        filemodes.secure_home(paths.root, socket_mode=self.settings.socket_mode)

    @classmethod
    def open(
        cls,
        *,
        home: Path | None = None,
        policy_path: Path | None = None,
        writable: bool = False,
        model_path: str | None = None,
        overrides: dict[str, Any] | None = None,
        embedder: Embedder | None = None,
        model: LanguageModel | None = None,
    ) -> Memex:
        """The one wiring from settings, for every door: MEMEX_HOME (made on first use), its
        config.toml with `overrides` (command-line options), the policy file (re-read when it
        changes). Parts open on first use; `writable` takes the store for writing."""
        paths = config.Paths(home or config.home())
        filemodes.use_private_umask()
        config.initialise(paths)  # on first use, the bundled personal policy is written
        settings = config.load_settings(paths)
        changes = dict(overrides or {})
        if model_path:
            changes["llm_model"] = model_path
        if changes:
            settings = config.override(settings, **changes)
        policy = PolicySource(load_policy(policy_path or paths.policy), policy_path or paths.policy)
        return cls(paths, policy=policy, settings=settings, embedder=embedder, model=model, writable=writable)

    def reader(self) -> Memex:
        """A second view of this Memex's store, for reads while it writes (the daemon): the same
        policy in force, settings, embedder and model, its own connections, so that readers see
        committed writes only. The embedder must be safe to share (SerialisedEmbedder)."""
        return Memex(
            self.paths,
            policy=self.policy_source,
            settings=self.settings,
            embedder=self.embedder,
            model=self._model,
            index=Index.open(self.paths.store, embedder=self.embedder, url=store_server(self.settings)),
        )

    @property
    def policy(self) -> Policy:
        """The policy in force (re-read when its file changed)."""
        return self.policy_source.current()

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self.policy_source = PolicySource(policy)

    # -- lazily opened parts --
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = configured_embedder(self.settings.embedding_model)
        return self._embedder

    @property
    def model(self) -> LanguageModel:
        if self._model is None:
            self._model = self.model_factory()()
        return self._model

    def model_factory(self, *, separate_process: bool = False) -> Callable[[], LanguageModel]:
        """What builds the language model the settings name: a client of an OpenAI-compatible
        server, or a catalogue model or GGUF file run by llama.cpp (with `separate_process`, in
        a child process, so that a crash in the model's code takes down no request but its own;
        the service's way). A model to assemble or a missing one is found now, not at the first
        question."""
        settings = self.settings
        if settings.llm_url:
            return partial(
                OpenAICompatibleModel,
                settings.llm_url,
                ca_file=settings.llm_ca_file,
                allow_insecure=settings.allow_insecure_llm,
            )
        chosen = models.resolve(settings.llm_model, on_note=self.on_note)
        local = partial(
            LlamaCppModel,
            str(chosen.path),
            context_tokens=settings.context_tokens,
            threads=settings.llm_threads or None,
            name=chosen.name,
            sampling=chosen.sampling,
        )
        if not separate_process:
            return local
        return partial(ModelProcess, local, context_tokens=settings.context_tokens)

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = self._open_index(reset=False)
        return self._index

    def _open_index(self, *, reset: bool) -> Index:
        if self._lock is None and not self.settings.store_url:
            self._lock = StoreLock(
                self.paths.lock, exclusive=self.writable, wait_seconds=0 if self.writable else 5
            )
            self._lock.acquire()
        index = Index.open(
            self.paths.store, embedder=self.embedder, url=store_server(self.settings), reset=reset
        )
        index.current = self._current_labels()
        return index

    def _current_labels(self) -> CurrentLabels:
        return CurrentLabels(lambda: self.policy, lambda: self.ledger)

    @property
    def pool(self) -> ParserPool:
        if self._pool is None:
            limits = Limits(timeout=self.settings.parse_timeout, memory_mb=self.settings.parse_memory_mb)
            set_limits(limits)  # the same limits for what connectors parse while listing
            set_preload(parser_modules())
            self._pool = ParserPool(workers=self.settings.parse_workers, limits=limits)
        return self._pool

    @property
    def prompt_key(self) -> bytes:
        """This home's secret for the prompt's boundary tokens (memex.answer.pipeline.prompt_boundary)."""
        if self._prompt_key is not None:
            return self._prompt_key
        self._prompt_key = self._read_prompt_key()
        return self._prompt_key

    def _read_prompt_key(self) -> bytes:
        path = self.paths.root / "prompt.key"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        return path.read_bytes()

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.paths.ledger)
        return self._ledger

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            self._audit = AuditLog(self.paths.audit)
        return self._audit

    def close(self) -> None:
        for part in (self._index, self._ledger, self._audit, self._pool):
            if part is not None:
                part.close()
        if self._lock is not None:
            self._lock.release()
        self._index = self._ledger = self._audit = self._pool = None
        self._lock = None

    def __enter__(self) -> Memex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity --
    def cli_principal(
        self, as_user: str | None = None, *, os_user: str | None = None
    ) -> tuple[Principal, str]:
        """The principal for a CLI command and the actor to audit. The OS account (this process's,
        or `os_user`: the daemon passes the account the kernel says is on the other end of its
        socket) maps to a policy user; `--as` is for admins testing the policy."""
        return local_principal(self.policy, os_user or getpass.getuser(), as_user)

    # -- work --
    def ingestor(self, *, ahead: ParseAhead | None = None) -> Ingestor:
        """`ahead`: where long parses go instead of holding up the others (the watcher's)."""
        return Ingestor(
            policy=self.policy,
            index=self.index,
            ledger=self.ledger,
            pool=self.pool,
            max_file_bytes=self.settings.max_file_mb * 1024 * 1024,
            data_root=self.paths.root,
            ahead=ahead,
        )

    def ingest(
        self,
        targets: list[str],
        *,
        progress: Progress | None = None,
        retry_failed: bool = False,
        options: dict[str, Any] | None = None,
        stop: StopSignal | None = None,
        ahead: ParseAhead | None = None,
    ) -> IngestReport:
        """The `ignore` patterns of config.toml reach the files connector's walk as its option.
        A policy whose source rules changed is applied to every stored source first. `stop`:
        see Ingestor.ingest."""
        options = {**self.ignore_option(), **(options or {})}
        self.keep_labels_current()
        return self.ingestor(ahead=ahead).ingest(
            targets, progress=progress, retry_failed=retry_failed, options=options, stop=stop
        )

    def labels_stale(self) -> bool:
        """Whether the stored labels follow other source rules than the policy in force. Until
        they are relabelled the index's last check applies both (the stricter wins)."""
        policy = self.policy
        if self._labelled_under is None or self._labelled_under[0] is not policy:
            self._labelled_under = (policy, rules_digest(policy))
        return self.ledger.state(LABELLED_UNDER) != self._labelled_under[1]

    def keep_labels_current(self) -> int:
        """Relabel every stored source in place if the policy's source rules changed since the
        labels were computed (cheap when they did not). For the process that owns the store:
        ingest, the daemon's loop and the service call it, so an edit needs no `memex relabel`
        and no restart. Returns the number of sources relabelled or removed."""
        if not self.labels_stale():
            return 0
        changed, removed = self.ingestor().relabel()
        if changed or removed:
            log.warning(
                "the policy's source rules changed: relabelled %d source(s), removed %d that no rule "
                "matches any more",
                changed,
                len(removed),
            )
        return changed + len(removed)

    def ignore_option(self) -> dict[str, Any]:
        """The walk's options from config.toml: `ignore` patterns, and `follow_links`."""
        options: dict[str, Any] = {"follow_links": True} if self.settings.follow_links else {}
        if self.settings.ignore:
            options["ignore"] = ",".join(self.settings.ignore)
        return options

    def rebuild(self, *, progress: Progress | None = None) -> IngestReport:
        """Rebuild the index from scratch: every root in the ledger is read and embedded again."""
        roots = [root for root, _, _ in self.ledger.roots()]
        if self._index is not None:
            self._index.close()
        self._index = self._open_index(reset=True)
        self.ledger.clear_sources()
        return self.ingest(roots, progress=progress)

    def model_name(self) -> str:
        """The language model's name, without loading it."""
        return self.settings.llm_url or self.settings.llm_model or _default_model_name()


def _default_model_name() -> str:
    try:
        return models.default_model().name
    except MemexError as exc:
        return str(exc)
