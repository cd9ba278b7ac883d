"""Conversations through the read facade: each method for one principal, on their own
conversations only (nobody else's, admins included), and each turn shown only while its owner
may still read every chunk it was built from.

A turn built from a chunk its owner can no longer read (a role removed, the policy tightened, the
source deleted or changed) is withheld: its question stays, its answer, sources and evidence are
replaced by a notice, and it is never given to the model again as history. The searched
(standalone) question of every later turn is withheld too, as it may repeat the hidden answer; a
follow-up rewritten from the conversation counts as built from the turns its rewrite was given,
so it is withheld with them.
"""

from __future__ import annotations

import builtins  # `list` is also a method here: annotations after it name the type
import threading
from collections.abc import Callable, Sequence
from typing import Any

from memex.access import Principal
from memex.answer.followup import MAX_TURNS_GIVEN, Exchange
from memex.answer.pipeline import Answer
from memex.errors import Forbidden
from memex.index import Index, Narrowing
from memex.store.conversations import Conversation, ConversationStore, NoSuchConversation, Turn

WITHHELD = "hidden: it used sources you can no longer read"
NEW = "new"  # `conversation=new` starts one, titled with its first question


class Conversations:
    def __init__(
        self, open_store: Callable[[], ConversationStore], index: Callable[[], Index], lock: threading.RLock
    ):
        self._open_store = open_store
        self._index = index
        self._lock = lock
        self._store: ConversationStore | None = None

    @property
    def store(self) -> ConversationStore:
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- what the doors call --
    def start(self, title: str, *, principal: Principal) -> dict[str, Any]:
        with self._lock:
            return self.store.create(_owner(principal), title).summary()

    def list(self, *, principal: Principal) -> list[dict[str, Any]]:
        with self._lock:
            return [c.summary() for c in self.store.list(_owner(principal))]

    def show(self, conversation_id: str, *, principal: Principal) -> dict[str, Any]:
        """The conversation with its turns, each as its owner may see it now."""
        with self._lock:
            conversation = self.store.get(str(conversation_id), _owner(principal))
            shown = self._as_seen(conversation, principal)
        return {**conversation.summary(), "turns": shown}

    def rename(self, conversation_id: str, title: str, *, principal: Principal) -> dict[str, Any]:
        with self._lock:
            self.store.rename(str(conversation_id), _owner(principal), title)
            return self.store.get(str(conversation_id), _owner(principal)).summary()

    def delete(self, conversation_id: str, *, principal: Principal) -> None:
        with self._lock:
            self.store.delete(str(conversation_id), _owner(principal))

    # -- what ask uses --
    def resolve(self, conversation_id: str | None, question: str, *, principal: Principal) -> str | None:
        """The id a question continues (checked now, so that a wrong one fails before the model
        is asked), a new conversation's for `new`, or None."""
        if conversation_id is None:
            return None
        with self._lock:
            if conversation_id == NEW:
                return self.store.create(_owner(principal), question).id
            self.store.get(str(conversation_id), _owner(principal))
        return str(conversation_id)

    def history(self, conversation_id: str, *, principal: Principal) -> builtins.list[Exchange]:
        """The turns the model may be given: only those the owner may still read, oldest first,
        as `show` gives them (after a withheld turn, each later one with its question as asked:
        its searched question may repeat the hidden answer)."""
        with self._lock:
            conversation = self.store.get(conversation_id, _owner(principal))
            return [
                Exchange(t["question"], t["standalone"], t["answer"])
                for t in self._as_seen(conversation, principal)
                if "answer" in t
            ]

    def record(self, conversation_id: str, answer: Answer, *, principal: Principal, question: str) -> int:
        chunk_ids, source_ids = _built_from(answer)
        with self._lock:
            if answer.asked is not None:
                # A follow-up searched as rewritten from the conversation is built from the turns
                # the rewrite was given too: it is withheld with them (its searched question, and
                # so its answer, may repeat theirs).
                conversation = self.store.get(conversation_id, _owner(principal))
                given = [t for t, visible in self._visibility(conversation, principal) if visible]
                for earlier in given[-MAX_TURNS_GIVEN:]:
                    chunk_ids = tuple(dict.fromkeys(chunk_ids + earlier.chunk_ids))
                    source_ids = tuple(dict.fromkeys(source_ids + earlier.source_ids))
            turn = Turn(
                n=0,
                question=question,
                standalone=answer.question,
                answer=answer.text,
                citations=[c.to_json() for c in answer.citations],
                evidence=[e.to_json() for e in answer.evidence],
                chunk_ids=chunk_ids,
                source_ids=source_ids,
                created=0.0,
            )
            return self.store.add_turn(conversation_id, _owner(principal), turn).n

    def screen(self, history: Sequence[Exchange], *, principal: Principal) -> builtins.list[Exchange]:
        """History a client sent back (the OpenAI messages): an answer is kept only if memex gave
        it to this user and they may still read everything it was built from; any other answer
        text (withheld, unknown, edited) is dropped, the user's own questions stay."""
        out = []
        with self._lock:
            for exchange in history:
                answer = exchange.answer if self._may_see_answer(exchange.answer, principal) else ""
                out.append(Exchange(exchange.question, exchange.standalone, answer))
        return out

    def remember(self, answer: Answer, *, principal: Principal) -> None:
        """An answer whose conversation the client keeps: what it was built from, by its text."""
        chunk_ids, source_ids = _built_from(answer)
        with self._lock:
            self.store.remember_answer(_owner(principal), answer.text, chunk_ids, source_ids)

    # -- internals --
    def _may_see_answer(self, text: str, principal: Principal) -> bool:
        if not text.strip() or not principal.known:
            return False
        found = self.store.served_answer(principal.name, text)
        if found is None:
            return False
        chunk_ids, source_ids = found
        return self._readable(chunk_ids, source_ids, principal)

    def _readable(self, chunk_ids: Sequence[str], source_ids: Sequence[str], principal: Principal) -> bool:
        if not chunk_ids:
            return True
        hits = self._index().search(
            None, principal=principal, k=10_000, narrowing=Narrowing(source_ids=frozenset(source_ids))
        )
        return set(chunk_ids) <= {h.chunk_id for h in hits}

    def _visibility(
        self, conversation: Conversation, principal: Principal
    ) -> builtins.list[tuple[Turn, bool]]:
        index = self._index()
        out = []
        for turn in conversation.turns:
            if not turn.chunk_ids:
                out.append((turn, True))
                continue
            hits = index.search(
                None,
                principal=principal,
                k=10_000,
                narrowing=Narrowing(source_ids=frozenset(turn.source_ids)),
            )
            out.append((turn, set(turn.chunk_ids) <= {h.chunk_id for h in hits}))
        return out

    def _as_seen(self, conversation: Conversation, principal: Principal) -> builtins.list[dict[str, Any]]:
        shown, hidden_before = [], False
        for turn, visible in self._visibility(conversation, principal):
            entry: dict[str, Any] = {"n": turn.n, "question": turn.question, "created": turn.created}
            if visible:
                entry |= {"answer": turn.answer, "citations": turn.citations, "evidence": turn.evidence}
                entry["standalone"] = turn.question if hidden_before else turn.standalone
            else:
                entry |= {"withheld": WITHHELD, "standalone": turn.question}
                hidden_before = True
            shown.append(entry)
        return shown


def _built_from(answer: Answer) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the model was given (chunk ids, source ids), when the answer shows any of it."""
    if not answer.citations:
        return (), ()
    return tuple(h.chunk_id for h in answer.hits), tuple(dict.fromkeys(h.source_id for h in answer.hits))


def _owner(principal: Principal) -> str:
    if not principal.known:
        raise Forbidden(f"user {principal.name!r} is not in the policy: no conversations")
    return principal.name


__all__ = ["NEW", "WITHHELD", "Conversations", "NoSuchConversation"]
