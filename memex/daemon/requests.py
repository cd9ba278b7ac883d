"""What the daemon answers on its socket: reads through the read facade (for the principal the
kernel vouches for), its own status, watching folders, and ingests handed over by `memex ingest`
(memex.daemon.jobs)."""

from __future__ import annotations

import os
from typing import Any

from memex.api import commands
from memex.daemon.rpc import Peer, Send
from memex.errors import MemexError

Watcher = Any  # memex.daemon.watcher.Watcher, which calls in here (named, not imported: no cycle)


def answer(watcher: Watcher, request: dict[str, Any], peer: Peer, send: Send) -> Any:
    command = request.get("command")
    params = request.get("params") or {}
    as_user = request.get("as_user")
    if not isinstance(params, dict) or not (as_user is None or isinstance(as_user, str)):
        raise MemexError("malformed request")
    if command == "ping":
        return {"pid": os.getpid()}  # where the files are is for the owner and admins (status)
    reader = watcher.reader
    policy = params.pop("policy", None)
    if policy is not None and os.path.realpath(str(policy)) != os.path.realpath(reader.policy.origin):
        raise MemexError(
            f"the memex daemon answers with the policy {reader.policy.origin}; stop it "
            f"(memex daemon stop) to use another one"
        )
    if reader.labels_stale():
        watcher.wake.set()  # the loop relabels; the index's last check covers this read
    principal, actor = reader.cli_principal(as_user, os_user=peer.user)
    if command in commands.COMMANDS:
        return commands.run(
            watcher.reads,
            command,
            params,
            principal=principal,
            actor=actor,
            channel="daemon",
            on_token=lambda piece: send({"token": piece}),
            on_item=lambda item: send({"item": item}),
            on_note=lambda note: send({"note": note}),
        )
    if command in ("ingest", "cancel-ingest"):
        if peer.uid != watcher.owner_uid:
            raise MemexError(
                "only the account the memex daemon runs as may hand it an ingest (it reads the "
                "files with that account's rights); run memex ingest as that account"
            )
        if command == "cancel-ingest":
            return {"stopping": watcher.jobs.cancel(params.get("job"), uid=peer.uid)}
        return _ingest(watcher, params, peer, send)
    owner = peer.uid == watcher.owner_uid or principal.admin
    if command == "daemon-status":
        if not owner:
            return {"pid": os.getpid(), "running": True}
        return watcher.status()
    if command in ("watch", "unwatch"):
        if not owner:
            raise MemexError("only the daemon's owner or an admin may change what it watches")
        folders = params.get("folders")
        if not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
            raise MemexError("folders must be a list of paths")
        changed = [watcher.add(f) if command == "watch" else watcher.remove(f) for f in folders]
        watcher.remember()
        return {"folders": changed, "watched": watcher.watched()}
    raise MemexError(f"unknown command {command!r}")


def _ingest(watcher: Watcher, params: dict[str, Any], peer: Peer, send: Send) -> dict[str, Any]:
    """Queue the ingest for the writing loop and wait for it, streaming its progress; the
    asker's first frame is the job's id (to stop it with `cancel-ingest`)."""
    job = watcher.jobs.submit(params, uid=peer.uid, send=send)
    send({"job": job.id})
    job.done.wait()  # meanwhile the request counts as use: no idle stop
    if job.error is not None:
        if isinstance(job.error, MemexError):
            raise job.error
        raise MemexError(f"the ingest failed: {type(job.error).__name__}: {job.error}")
    assert job.report is not None
    return job.report.to_json()
