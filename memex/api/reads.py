"""The read facade: the one way every door reads. The CLI (directly or through the daemon's
socket), the service's JSON, OpenAI and MCP doors and the web page call these methods and
nothing else, so they check, answer, fail and audit alike.

Every method takes the principal keyword-only, resolved at the door (the kernel's word on a
socket, the OS account, a token); nothing here decides who someone is. Every read is audited
with the door's channel.

Concurrency: the index, the embedder and the SQLite connections of one Memex are not made for
concurrent use, so reads hold one lock (a search is a few milliseconds). Generation does not:
answers go through the GenerationWorker, whose thread takes the lock only while it retrieves
and picks evidence (`prepare`), never while the model writes, so searches keep being answered
while the model is busy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from memex.access import Principal
from memex.access.identity import require_admin
from memex.answer.followup import Exchange, standalone_question
from memex.answer.pipeline import Answer, Prepared, generate, prepare, retrieve
from memex.answer.timeparse import DateRange, find_dates
from memex.api.conversing import Conversations
from memex.api.params import k_param, local_now, text_param
from memex.api.wiring import Memex
from memex.api.worker import GenerationWorker, Interruptible, Job
from memex.documents import Hit
from memex.errors import BadRequest, EmptyIndex, MemexError
from memex.index import NO_NARROWING, Narrowing
from memex.ingest.plugins import readers
from memex.models.llm import LanguageModel
from memex.store.audit import AuditEntry
from memex.store.conversations import ConversationStore

log = logging.getLogger(__name__)

SEARCH_MODES = ("hybrid", "dense", "lexical")
MAX_AUDIT = 10_000
# What every door says when `show` finds nothing: a source one may not read and one that does not
# exist look the same.
NOT_FOUND = "no such source, or you may not read it"

Note = Callable[[str], None]
Dates = bool | DateRange | None


class Reads:
    def __init__(
        self,
        memex: Memex,
        *,
        model_factory: Callable[[], LanguageModel] | None = None,
        queue_size: int = 8,
        per_user: int = 2,
    ) -> None:
        """`model_factory` builds the model in the worker's thread (default: the Memex's own)."""
        self.memex = memex
        self.lock = threading.RLock()
        self._owns_model = model_factory is not None
        self._model_factory = model_factory or (lambda: memex.model)
        self._queue_size = queue_size
        self._per_user = per_user
        self._worker: GenerationWorker | None = None
        self._worker_lock = threading.Lock()
        self._model: LanguageModel | None = None  # for `ask`, in the caller's thread
        self._model_lock = threading.Lock()
        self.conversations = Conversations(
            lambda: ConversationStore(memex.paths.root / "conversations.sqlite"),
            lambda: memex.index,
            self.lock,
        )

    @property
    def worker(self) -> GenerationWorker:
        """Started at the first question: a search-only command starts no thread."""
        with self._worker_lock:
            if self._worker is None:
                self._worker = GenerationWorker(
                    self._model_factory,
                    queue_size=self._queue_size,
                    per_user=self._per_user,
                    owns_model=self._owns_model,
                )
            return self._worker

    def warm_up(self) -> None:
        """Open the index and load the embedder and the model now, not at the first request."""
        with self.lock:
            self.memex.index.embedder.embed_query("warm up")
        self.worker.warm_up()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        close = getattr(self._model, "close", None) if self._owns_model else None
        if close is not None:
            close()
        self.conversations.close()

    # -- reading --
    def search(
        self,
        query: str,
        *,
        principal: Principal,
        actor: str | None = None,
        channel: str = "cli",
        k: int = 10,
        mode: str = "hybrid",
        dates: Dates = True,
        narrowing: Narrowing = NO_NARROWING,
        on_note: Note | None = None,
    ) -> list[Hit]:
        """The passages `principal` may read that best match `query`. A time expression in it
        ("last week") puts passages of those dates first, unless `dates` is False."""
        query = text_param(query, "query")
        k = k_param(k)
        if mode not in SEARCH_MODES:
            raise BadRequest(f"mode must be one of {', '.join(SEARCH_MODES)}")
        date_range = self._dates(query, dates, on_note)
        self._keep_labels_current()
        with self.lock:
            self._require_content(principal)
            hits, note = retrieve(
                query,
                principal=principal,
                index=self.memex.index,
                k=k,
                mode=mode,
                narrowing=narrowing,
                dates=date_range,
            )
            self._audit(principal, actor, channel, "search", query, hits)
        if note and on_note:
            on_note(note)
        return hits

    def submit_ask(self, question: str, *, principal: Principal, **options: Any) -> Job:
        """Queue a question for the generation worker; raises Busy when there is no room. The
        job's result is an Answer; `on_token` gets the answer as it is written, in the worker's
        thread. Options as for `ask`. For doors that serve many at once (the service)."""
        run = self._ask_job(question, principal=principal, **options)
        return self.worker.submit(run, owner=principal.name)

    def ask(
        self, question: str, *, principal: Principal, on_note: Note | None = None, **options: Any
    ) -> Answer:
        """The answer to `question` from what `principal` may read, in this thread, one at a time
        per model (a Ctrl-C stops the model at once). `on_token` gets the answer as it is written
        (already through the output rules and the answer check).

        A follow-up is searched as a standalone question (memex.answer.followup), made from the
        turns of `conversation` (one of the asker's, or "new") that the asker may still read,
        or from `history` (sent back by a client that keeps the conversation itself, the OpenAI
        door's; `client_keeps_history` remembers each answer's sources so that an answer sent back
        is used only while the asker may still read them); the answer becomes the conversation's
        next turn."""
        run = self._ask_job(question, principal=principal, on_note=on_note, **options)
        with self._model_lock:
            if self._model is None:
                self._model = self._model_factory()
            answer = run(self._model, Job(run, principal.name))
        if answer.dates_note and on_note is not None:
            on_note(answer.dates_note)
        return answer

    def _ask_job(
        self,
        question: str,
        *,
        principal: Principal,
        actor: str | None = None,
        channel: str = "cli",
        k: int | None = None,
        dates: Dates = True,
        narrowing: Narrowing = NO_NARROWING,
        on_token: Callable[[str], None] | None = None,
        on_note: Note | None = None,
        conversation: str | None = None,
        history: Sequence[Exchange] = (),
        client_keeps_history: bool = False,
    ) -> Callable[[LanguageModel, Job], Answer]:
        """Check the question now (a bad one fails before it waits for the model) and return what
        answers it with a model. The options of `ask` and `submit_ask`."""
        question = text_param(question, "question")
        k = k_param(self.memex.settings.k if k is None else k)
        date_range = self._dates(question, dates, on_note)
        settings = self.memex.settings
        prompt_key = self.memex.prompt_key
        self._keep_labels_current()
        with self.lock:
            self._require_content(principal)
        conversation = self.conversations.resolve(conversation, question, principal=principal)

        def run(model: LanguageModel, job: Job) -> Answer:
            served: Sequence[Hit] = ()
            searched = question
            try:
                earlier = self.conversations.screen(history, principal=principal) if history else []
                if conversation is not None:
                    earlier = self.conversations.history(conversation, principal=principal)
                searched = standalone_question(
                    question, earlier, model=model if settings.condense_with_model else None
                )
                if searched != question and on_note is not None:
                    on_note(f"Searched: {searched}")
                with self.lock:
                    prepared: Prepared = prepare(
                        searched,
                        principal=principal,
                        index=self.memex.index,
                        model=model,
                        k=k,
                        narrowing=narrowing,
                        dates=date_range,
                        max_tokens=settings.max_answer_tokens,
                        prompt_key=prompt_key,
                    )
                served = prepared.used
                answer = generate(
                    prepared,
                    model=Interruptible(model, job),
                    max_tokens=settings.max_answer_tokens,
                    on_token=on_token,
                )
                if searched != question:
                    answer.asked = question
                if client_keeps_history:
                    self.conversations.remember(answer, principal=principal)
                if conversation is not None:
                    answer.conversation = conversation
                    answer.turn = self.conversations.record(
                        conversation, answer, principal=principal, question=question
                    )
                return answer
            finally:  # what was retrieved for the asker counts as served, answered or not
                said = question if searched == question else f"{question} [searched: {searched}]"
                with self.lock:
                    self._audit(principal, actor, channel, "ask", said, served)

        return run

    def show(
        self, source: str, *, principal: Principal, actor: str | None = None, channel: str = "cli"
    ) -> list[Hit]:
        """The readable chunks of one source (a path, a citation's URI, a source id), in order. A
        source the principal may not read and one that does not exist give the same empty list."""
        source = text_param(source, "source")
        self._keep_labels_current()
        with self.lock:
            ledger = self.memex.ledger
            source_ids = {source}
            if "://" not in source:
                path = Path(source).expanduser().resolve().as_posix()
                source_ids.add(f"file:{path}")
                source_ids.update(ledger.inside(path))  # a mailbox file: its messages
            source_ids.update(ledger.with_uri(source))  # a citation: narrows only, search decides
            hits = self.memex.index.search(
                None, principal=principal, k=10_000, narrowing=Narrowing(source_ids=frozenset(source_ids))
            )
            self._audit(principal, actor, channel, "show", source, hits)
        return hits

    def export(
        self, *, principal: Principal, actor: str | None = None, channel: str = "cli"
    ) -> Iterator[Hit]:
        """Every chunk `principal` may read, source by source, in document order."""
        self._keep_labels_current()
        with self.lock:
            source_ids = self.memex.index.readable_source_ids(principal=principal)
        for start in range(0, len(source_ids), 100):
            batch = frozenset(source_ids[start : start + 100])
            with self.lock:
                hits = self.memex.index.search(
                    None, principal=principal, k=10**9, narrowing=Narrowing(source_ids=batch)
                )
                self._audit(principal, actor, channel, "export", "", hits)
            yield from hits

    def status(self, *, principal: Principal) -> dict[str, Any]:
        """What `principal` can read, the models; for admins also where the files are, the
        ledger's totals across every label, failures and the generation queue."""
        self._keep_labels_current()
        memex = self.memex
        with self.lock:
            out: dict[str, Any] = {
                "principal": principal.name,
                "roles": list(principal.roles),
                "admin": principal.admin,
                "indexed": memex.index.count(principal=principal),
                "models": {"embedding": memex.embedder.name, "llm": memex.model_name()},
                "readers": readers(),
            }
            if principal.admin:  # where the files are, and figures across every label
                out["home"] = str(memex.paths.root)
                out["policy"] = memex.policy.origin
                out["ledger"] = memex.ledger.counts()
                out["roots"] = [
                    {"root": r, "connector": c, "last_ingest": t} for r, c, t in memex.ledger.roots()
                ]
                out["failures"] = [
                    {"source": r.uri, "reason": r.error} for r in memex.ledger.records(status="failed")
                ]
        if principal.admin and self._worker is not None:
            out["generation"] = self._worker.status()
        return out

    def audit(self, *, principal: Principal, limit: int = 100) -> list[AuditEntry]:
        """The newest audit entries `principal` may see: an admin all, anyone else their own."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BadRequest(f"limit must be a whole number from 1 to {MAX_AUDIT}")
        with self.lock:
            return self.memex.audit.entries(reader=principal, limit=min(limit, MAX_AUDIT))

    def explain(self, user: str, source: str, *, principal: Principal) -> dict[str, Any]:
        """Why `user` can or cannot read `source`: rules, labels, roles. For admins only."""
        from memex.access.policycheck import explain

        require_admin(principal, "only an admin may explain the policy")
        user, source = text_param(user, "user"), text_param(source, "source")
        with self.lock:
            return explain(self.memex.policy, self.memex.ledger, user, source)

    @staticmethod
    def find_dates(text: str, *, now: datetime | None = None) -> DateRange | None:
        """The date range a question's time expressions name ("last week", "in March 2024"),
        relative to `now` (default: the local time), or None."""
        return find_dates(text, now or local_now())

    # -- internals --
    def _dates(self, text: str, dates: Dates, on_note: Note | None) -> DateRange | None:
        if isinstance(dates, DateRange):
            return dates
        if not dates:
            return None
        found = self.find_dates(text)
        if found is not None and on_note is not None:
            on_note(f"Dates: {found.describe()}; --no-dates for all dates.")
        return found

    def _require_content(self, principal: Principal) -> None:
        if self.memex.index.count(principal=principal)["chunks"] == 0:
            raise EmptyIndex(
                "nothing you can read is indexed yet: run `memex ingest PATH` first"
                + ("" if principal.known else f" (user {principal.name!r} is not in the policy)")
            )

    def _keep_labels_current(self) -> None:
        """After a policy edit, relabel online, at the first read (the index's last check
        already hides what the policy in force hides; this makes the stored labels, and so the
        counts, agree). Only where this process owns the store: an embedded one it holds
        exclusively, or a Chroma server (relabelling is idempotent)."""
        memex = self.memex
        if not (memex.writable or memex.settings.store_url):
            return
        with self.lock:
            try:
                memex.keep_labels_current()
            except MemexError as exc:  # the last check still applies; the next read tries again
                log.error("could not relabel after a policy change: %s", exc)

    def _audit(
        self,
        principal: Principal,
        actor: str | None,
        channel: str,
        action: str,
        question: str,
        hits: Sequence[Hit],
    ) -> None:
        self.memex.audit.record(
            principal=principal, action=action, question=question, hits=hits, actor=actor, channel=channel
        )
