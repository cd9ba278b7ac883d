"""connector -> label (policy) -> parse -> chunk -> embed -> index, recorded in the ledger.

Unchanged sources cost a stat (fingerprint) or a hash; changed ones re-embed only the chunks whose
text changed; a source that fails is reported with its reason and the run goes on.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from memex.access import Access, Policy
from memex.connector import Connector
from memex.documents import DEFAULT_MAX_FILE_BYTES, Element, SourceDocument
from memex.errors import AccessRefused, ConfigError, ParseError
from memex.index import Index
from memex.ingest.ahead import ParseAhead
from memex.ingest.chunking import chunk_elements
from memex.ingest.notices import add_warning, capture
from memex.ingest.plugins import connector_for, connectors
from memex.ingest.relabelling import relabel_all
from memex.ingest.report import Failure, IngestReport, Progress, Silent, StopSignal
from memex.ingest.sandbox import ParserPool
from memex.ingest.steps import Candidate, Prepared, chunks_for, failure_kind, normalise_target, parse_here
from memex.links import Scope, is_link_path, resolve, skipped_link
from memex.store import sqlite
from memex.store.ledger import FAILED, INDEXED, PENDING, Ledger

EMBED_BATCH_CHUNKS = 256


class Ingestor:
    def __init__(
        self,
        *,
        policy: Policy,
        index: Index,
        ledger: Ledger,
        pool: ParserPool | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        data_root: Path | None = None,
        ahead: ParseAhead | None = None,
    ) -> None:
        """`data_root`: where connectors keep state of their own (MEMEX_HOME), one folder each.
        `ahead`: long parses go there instead of holding up the others (the watcher's)."""
        self.data_root = data_root
        self.max_file_bytes = max_file_bytes  # larger files are refused before they are read
        self.policy = policy
        self.index = index
        self.ledger = ledger
        self.pool = pool
        self.ahead = ahead

    # -- public --------------------------------------------------------------------------
    def ingest(
        self,
        targets: Sequence[str],
        *,
        progress: Progress | None = None,
        retry_failed: bool = False,
        options: dict[str, Any] | None = None,
        stop: StopSignal | None = None,
    ) -> IngestReport:
        """Read `targets` into the index. `stop`, once set, ends the run between documents: what
        was read is written, nothing unseen is removed, `report.stopped` says so."""
        progress = progress or Silent()
        report = IngestReport()
        started = time.monotonic()
        if self._may_have_orphans():
            self.remove_orphans()
        own_pool = self.pool is None
        pool = self.pool or ParserPool()
        try:
            with capture(report, progress):
                for target in targets:
                    if report.stopped:
                        break
                    self._ingest_target(target, report, progress, retry_failed, options or {}, pool, stop)
        finally:
            if own_pool:
                pool.close()
        report.seconds = time.monotonic() - started
        return report

    def forget(self, target: str) -> tuple[list[str], int]:
        """Remove sources named by `target` (a path, folder, URI or source id)."""
        resolved = normalise_target(target)
        source_ids = self.ledger.find(resolved) or self.ledger.find(target)
        removed_chunks = 0
        for source_id in source_ids:
            removed_chunks += self._remove_source(source_id)
        self.ledger.drop_root(resolved)
        return source_ids, removed_chunks

    def purge(self) -> None:
        """Compact the stores, so that what was removed cannot be read back from free pages."""
        self.index.compact()
        sqlite.truncate_wal(self.ledger.db)

    def _may_have_orphans(self) -> bool:
        """Cheap: a crash leaves a pending source, a lost ledger leaves unequal counts."""
        if self.ledger.counts().get(PENDING):
            return True
        ledger_chunks = self.ledger.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return self.index.sizes() != (ledger_chunks, ledger_chunks)

    def update_paths(
        self,
        root: str,
        paths: Sequence[str],
        *,
        progress: Progress | None = None,
        options: dict[str, Any] | None = None,
        stop: StopSignal | None = None,
    ) -> IngestReport:
        """Bring what was read from `paths` (files and folders inside the ingested folder `root`:
        a watcher's changed paths) up to date, as part of `root`. A path that exists is read by
        the connector that reads it and its sources are recorded under `root` (it does not become
        a root of its own); sources read from a path before (`Ledger.at_path`) that are not read
        from it again are removed: deleted files, both ends of a move, deleted folders. A path
        whose reading breaks off removes nothing."""
        progress = progress or Silent()
        report = IngestReport()
        started = time.monotonic()
        root = normalise_target(root)
        targets = list(dict.fromkeys(normalise_target(p) for p in paths))
        broken: set[str] = set()

        scope = Scope.of(root, options)
        opts = {**(options or {}), "within": root}

        def documents() -> Iterable[SourceDocument]:
            for path in targets:
                read = path
                if os.path.lexists(path) and is_link_path(path, root):
                    real, _ = resolve(path, scope)
                    if real is None:
                        yield skipped_link(Path(path), scope)
                        continue
                    read = str(real)
                if not os.path.exists(read):
                    continue
                try:
                    yield from self._connector(connector_for(read), read, opts).load()
                except (ParseError, ConfigError, OSError, ValueError) as exc:
                    broken.add(path)
                    report.failures.append(Failure(path, f"stopped reading: {exc}", "failed"))

        own_pool = self.pool is None
        pool = self.pool or ParserPool()
        try:
            with capture(report, progress):
                seen, error = self._stream(
                    documents(), root, f"reading {root}", report, progress, False, pool, stop=stop
                )
        finally:
            if own_pool:
                pool.close()
        if error is not None:
            report.failures.append(Failure(root, f"stopped reading: {error}", "failed"))
        elif not report.stopped:
            before = set().union(*(self.ledger.at_path(p) for p in targets if p not in broken))
            self._remove_unseen(before - seen, report)
        report.seconds = time.monotonic() - started
        return report

    def remove_orphans(self) -> int:
        """Delete index chunks the ledger does not know (left by a crash or a restored ledger)."""
        known = self.ledger.all_chunk_ids()
        orphans = self.index.chunk_ids() - known
        return self.index.delete(orphans) if orphans else 0

    def _connector(self, connector_class: type[Connector], target: str, options: dict[str, Any]) -> Connector:
        """A connector for `target`, handed the registry (to delegate what it finds) and its
        own data folder."""
        data_dir = None if self.data_root is None else self.data_root / connector_class.name
        return connector_class(target, others=connectors(), data_dir=data_dir, **options)

    def relabel(self) -> tuple[int, list[Failure]]:
        """Apply the current policy to every stored source, in place. Sources no rule matches any
        more are removed (default deny)."""
        return relabel_all(self.policy, self.index, self.ledger, remove=self._remove_source)

    # -- one target ----------------------------------------------------------------------
    def _ingest_target(
        self,
        target: str,
        report: IngestReport,
        progress: Progress,
        retry_failed: bool,
        options: dict[str, Any],
        pool: ParserPool,
        stop: StopSignal | None,
    ) -> None:
        """Stream the target's documents. Sources the target no longer yields are removed, but
        only after a complete read."""
        connector_class = connector_for(target)
        root = normalise_target(target)
        connector = self._connector(connector_class, root, options)
        seen, error = self._stream(
            connector.load(),
            root,
            f"reading {target}",
            report,
            progress,
            retry_failed,
            pool,
            stop=stop,
            # Counting ahead walks the target once more: only for a bar someone watches.
            total=connector.count() if getattr(progress, "shows_totals", True) else None,
        )
        if error is not None:
            report.failures.append(Failure(target, f"stopped reading: {error}", "failed"))
        elif not report.stopped:
            self._remove_unseen(self.ledger.sources_within(root) - seen, report)
        if error is None or seen:
            self.ledger.mark_root(root, connector_class.name)

    def _stream(
        self,
        documents: Iterable[SourceDocument],
        root: str,
        stage: str,
        report: IngestReport,
        progress: Progress,
        retry_failed: bool,
        pool: ParserPool,
        *,
        stop: StopSignal | None = None,
        total: int | None = None,
    ) -> tuple[set[str], Exception | None]:
        """Check each document (cheap), parse changed ones in the sandbox a few ahead, embed and
        write in batches, recording them under `root`. Memory stays bounded whatever the number
        of documents. Returns the source ids seen, and the error that stopped the read, if any
        (a stop on request is no error: `report.stopped`)."""
        progress.begin(stage, total)
        seen: set[str] = set()
        error: Exception | None = None
        batch: list[Prepared] = []
        pending_chunks = 0
        waiting: dict[int, Candidate] = {}
        lookahead = 2 * pool.size + 2
        note = getattr(progress, "note", None)  # how far a long parse is (sandbox.tell)
        pool.on_note = (lambda _key, text: note(text)) if note is not None else None

        def handle(
            candidate: Candidate, parsed: list[Element] | ParseError, said: Sequence[str] = ()
        ) -> None:
            nonlocal batch, pending_chunks
            progress.advance(stage)
            for text in said:
                add_warning(report, candidate.doc.uri, text)
            prepared = self._assemble(candidate, parsed, report)
            if prepared is None:
                return
            batch.append(prepared)
            pending_chunks += len(prepared.to_embed)
            if pending_chunks >= EMBED_BATCH_CHUNKS:
                self._write(batch, report, progress)
                batch, pending_chunks = [], 0

        def drain(timeout: float | None) -> None:
            for key, parsed in pool.poll(timeout):
                handle(waiting.pop(key), parsed, pool.take_warnings(key))

        first: dict[str, str] = {}  # source id -> the uri it was read from in this run
        keys = itertools.count()
        try:
            for doc in documents:
                if stop is not None and stop.is_set():
                    report.stopped = True
                    break
                if first.get(doc.source_id, doc.uri) != doc.uri:
                    # One source in two files in one run (a message saved as .eml and as .msg):
                    # the first found in walk order is kept, so a re-run is a no-op.
                    report.duplicates.append((doc.uri, first[doc.source_id]))
                    progress.advance(stage)
                    continue
                first[doc.source_id] = doc.uri
                seen.add(doc.source_id)
                candidate = self._check(doc, root, report, retry_failed)
                if candidate is None:
                    progress.advance(stage)
                elif self.ahead is not None and self.ahead.runs_long(candidate.doc):
                    parsed = self.ahead.take(candidate.doc)
                    if parsed is None:
                        report.notices.append(f"{doc.uri}: read in the background (it takes a while)")
                        progress.advance(stage)
                    else:
                        handle(candidate, parsed)
                elif candidate.doc.isolated and candidate.doc.parse:
                    key = next(keys)
                    waiting[key] = candidate
                    pool.submit(key, candidate.doc.parse)
                    while pool.pending > lookahead:
                        drain(None)
                    drain(0.0)
                else:
                    handle(candidate, parse_here(candidate.doc))
        except (ParseError, ConfigError, OSError, ValueError) as exc:
            error = exc
        while pool.pending:
            drain(None)
        self._write(batch, report, progress)
        return seen, error

    def _remove_unseen(self, source_ids: set[str], report: IngestReport) -> None:
        for source_id in sorted(source_ids):
            record = self.ledger.get(source_id)
            report.chunks_removed += self._remove_source(source_id)
            report.removed.append(record.uri if record else source_id)

    def _check(
        self, doc: SourceDocument, root: str, report: IngestReport, retry_failed: bool
    ) -> Candidate | None:
        """Cheap checks first: unchanged (fingerprint, then hash), known failure, policy rule."""
        record = self.ledger.get(doc.source_id)
        fingerprint_same = (
            record is not None and doc.fingerprint is not None and record.fingerprint == doc.fingerprint
        )
        if record and record.status == FAILED and fingerprint_same and not retry_failed:
            kind, _, reason = (record.error or "failed: unknown").partition(": ")
            report.failures.append(Failure(doc.uri, reason, kind))
            return None
        try:
            labeling = self.policy.label(doc.attributes)
        except AccessRefused as exc:
            return self._fail(doc, root, report, str(exc), "refused")
        access = labeling.access(acl=doc.acl)
        if record and record.status == INDEXED and fingerprint_same:
            self._keep(record, doc, root, access, labeling.rules, report)
            return None
        try:
            content_hash = doc.content_hash(max_bytes=self.max_file_bytes)
        except OSError as exc:
            return self._fail(doc, root, report, f"cannot read: {exc.strerror or exc}", "failed")
        except ParseError as exc:
            return self._fail(doc, root, report, str(exc), failure_kind(exc))
        if record and record.status == INDEXED and record.content_hash == content_hash:
            self._keep(record, doc, root, access, labeling.rules, report)
            return None
        return Candidate(doc, root, content_hash, access, labeling.rules, record)

    def _assemble(
        self, candidate: Candidate, parsed: list[Element] | ParseError, report: IngestReport
    ) -> Prepared | None:
        doc, root, record, access = candidate.doc, candidate.root, candidate.record, candidate.access
        if isinstance(parsed, ParseError):
            return self._fail(doc, root, report, str(parsed), failure_kind(parsed))
        pieces = chunk_elements(parsed, title=doc.title)
        if not pieces:
            return self._fail(doc, root, report, "no text found", "failed")
        chunks = chunks_for(doc, pieces, access)
        old = set(self.ledger.chunk_ids(doc.source_id)) if record else set()
        if record and record.status == PENDING:
            old = self.index.existing(old)  # a crash may have left some of them out
        new_ids = {c.chunk_id for c in chunks}
        relabel = record is not None and record.access != access
        return Prepared(
            doc=doc,
            root=root,
            content_hash=candidate.content_hash,
            access=access,
            rules=candidate.rules,
            chunks=chunks,
            to_embed=[c for c in chunks if c.chunk_id not in old],
            to_relabel=sorted(new_ids & old) if relabel else [],
            to_delete=sorted(old - new_ids),
        )

    def _keep(self, record, doc: SourceDocument, root: str, access: Access, rules, report) -> None:
        """An unchanged source: refresh its fingerprint and root; relabel if the policy changed."""
        report.unchanged += 1
        if record.fingerprint != doc.fingerprint or record.root != root:
            self.ledger.touch(doc.source_id, fingerprint=doc.fingerprint, root=root)
        if access != record.access:
            ids = self.ledger.chunk_ids(doc.source_id)
            self.index.relabel({chunk_id: access for chunk_id in ids})
            self.ledger.set_access(doc.source_id, access, rules)
            report.relabelled += 1
        attributes = json.loads(json.dumps(dict(doc.attributes), default=str, sort_keys=True))
        if record.acl != doc.acl or record.attributes != attributes:
            self.ledger.set_origin(doc.source_id, acl=doc.acl, attributes=attributes)

    def _write(self, batch: list[Prepared], report: IngestReport, progress: Progress) -> None:
        if not batch:
            return
        to_embed = [chunk for item in batch for chunk in item.to_embed]
        if to_embed:
            progress.grow("embedding", len(to_embed))
        vectors = self.index.embedder.embed(
            [c.text for c in to_embed], progress=lambda n: progress.advance("embedding", n)
        )
        for item in batch:
            self.ledger.begin(
                source_id=item.doc.source_id,
                root=item.root,
                connector=item.doc.connector,
                uri=item.doc.uri,
                title=item.doc.title,
                fingerprint=item.doc.fingerprint,
                content_hash=item.content_hash,
                access=item.access,
                rules=item.rules,
                attributes=dict(item.doc.attributes),
                acl=item.doc.acl,
                chunk_ids=[c.chunk_id for c in item.chunks],
            )
        self.index.upsert(to_embed, vectors)
        relabel = {cid: item.access for item in batch for cid in item.to_relabel}
        self.index.relabel(relabel)
        deleted = [cid for item in batch for cid in item.to_delete]
        self.index.delete(deleted)
        for item in batch:
            self.ledger.commit(item.doc.source_id, keep=[c.chunk_id for c in item.chunks])
            report.indexed.append(item.doc.uri)
        report.chunks_added += len(to_embed)
        report.chunks_removed += len(deleted)

    def _fail(self, doc: SourceDocument, root: str, report: IngestReport, reason: str, kind: str) -> None:
        removed = self._remove_chunks(doc.source_id)
        report.chunks_removed += removed
        self.ledger.record_failure(
            source_id=doc.source_id,
            root=root,
            connector=doc.connector,
            uri=doc.uri,
            fingerprint=doc.fingerprint,
            error=f"{kind}: {reason}",
        )
        report.failures.append(Failure(doc.uri, reason, kind))
        return None

    def _remove_chunks(self, source_id: str) -> int:
        ids = self.ledger.chunk_ids(source_id)
        return self.index.delete(ids) if ids else 0

    def _remove_source(self, source_id: str) -> int:
        removed = self._remove_chunks(source_id)
        self.ledger.remove(source_id)
        return removed
