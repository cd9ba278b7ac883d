"""Conversations are private, withheld once their sources are no longer readable, and gone when
deleted: through every door (the read facade, `memex conversations ... --json` and `memex ask
--conversation`, the same CLI through the daemon's socket, /api/conversations and /api/ask, MCP's
ask tool).

One MEMEX_HOME (the Kestrel handbook, HR, engineering and finance folders and the company mail,
the company policy copied to MEMEX_HOME/policy.yaml) is served by one door after the other, as
only one process may own the store: the read facade on a writable Memex, the CLI on its own, the
service (HTTP and MCP under uvicorn), the CLI while a daemon owns the store. Through each door:

- privacy: alice's conversation is, for pat and for root-admin (an admin), one that does not
  exist: show, rename, delete and asking in it fail as for an unknown id, and list leaves it out;
- revocation, between two turns of one conversation, while the door is serving:
    hana's role removed (she leaves the people team: her turn on the parental leave policy),
    the policy tightened (the finance folder becomes executive-only: frank's turn on the bank
    covenant), and (once, in the first phase) a source forgotten with memex.ingestor().forget
    (the harrier post-mortem: alice's turn on the outage);
  the old turn is shown withheld, its answer (a phrase only its source holds) is in no response
  of that door afterwards, and (where the door runs in this process) in no prompt the fake
  model is given afterwards, while the turn still readable is given as history;
- deletion: a deleted conversation is gone, and its text is not left in conversations.sqlite.

Each phase records what its door answered; the tests read that record, door by door.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from memex.api.conversing import WITHHELD
from memex.daemon import process as daemon_process
from memex.errors import MemexError
from tests.conftest import EXAMPLES, POLICIES, without_media
from tests.service_support import bearer, live_server, make_service
from tests.watch_support import stop_daemon

ADMIN = "root-admin"  # who the OS account running the tests is (os_users: ["*"])
FOLDERS = ("handbook", "hr", "engineering", "finance", "mail")
DOORS = ("reads", "cli", "http", "daemon")
OTHERS = ("pat", ADMIN)  # who must never see alice's conversation

# A staff turn every revocation leaves readable (asked with k=1: its best source only).
VISIBLE = "What is the Wi-Fi network at the office?"
# Phrases that only one source holds, and that the revoked turn's answer quotes.
HR_ONLY = "return dates are tracked in the HR portal"  # hr/parental-leave-policy.md
FINANCE_ONLY = "current burn of EUR 205,000"  # finance/budget-notes-2026.txt
OUTAGE_ONLY = "For 4 hours and 20 minutes"  # engineering/incident-2026-03-harrier-outage.md
INCIDENT = "engineering/incident-2026-03-harrier-outage.md"

PRIVATE = ["Where is the Lisbon office?", "how do I get in?"]  # alice's, for nobody else
UNKNOWN = "0123456789abcdef01234567"  # an id no conversation has


@dataclass(frozen=True)
class Scenario:
    """A revocation between two turns: `user` asks VISIBLE, then `revoked` (its answer quotes
    `phrase`), then access goes, then the follow-up."""

    name: str
    user: str
    revoked: str
    phrase: str
    follow_up: str


ROLE = Scenario(
    "role-removed", "hana", "What is the parental leave policy?", HR_ONLY, "how long does it last?"
)
TIGHTENED = Scenario(
    "policy-tightened",
    "frank",
    "What does the bank covenant with Banco Atlântico require?",
    FINANCE_ONLY,
    "who reports it to the board?",
)
FORGOTTEN = Scenario(
    "source-forgotten",
    "alice",
    "What caused the harrier outage in March?",
    OUTAGE_ONLY,
    "how long did it last?",
)
EDITED = (ROLE, TIGHTENED)  # revoked in every phase by editing the policy file


def revoke(policy: Path) -> None:
    """hana leaves the people team (staff only now); the finance folder becomes executive-only."""
    text = policy.read_text()
    group = "people-team: {roles: [hr], members: [hana], emails: [hr@kestrel.example]}"
    user = "hana: {emails: [hana@kestrel.example]}"
    assert group in text and user in text
    text = text.replace(group, "people-team: {roles: [hr], members: [], emails: [hr@kestrel.example]}")
    text = text.replace(user, "hana: {roles: [staff], emails: [hana@kestrel.example]}")
    rule = '  - name: finance-now-executive-only\n    match: {path: "**/kestrel/finance/**"}\n    labels: [executive]\n'
    policy.write_text(text.replace("sources:\n", "sources:\n" + rule, 1))


# -- the doors -----------------------------------------------------------------------------------------
Outcome = dict[str, Any]  # {ok: True, value} or {ok: False, type, code, message}


def _failed(exc: Exception) -> Outcome:
    return {"ok": False, "type": type(exc).__name__, "code": None, "message": str(exc)}


class ReadsDoor:
    """The read facade on the Memex of this process."""

    def __init__(self, reads, memex) -> None:
        self.reads, self.memex = reads, memex

    def _call(self, fn: Callable[[], Any]) -> Outcome:
        try:
            return {"ok": True, "value": fn()}
        except MemexError as exc:
            return _failed(exc)

    def _who(self, user: str):
        return self.memex.policy.principal(user)

    def ask(self, user: str, question: str, conversation: str, k: int | None = None) -> Outcome:
        return self._call(
            lambda: self.reads.ask(
                question, principal=self._who(user), conversation=conversation, k=k
            ).to_json()
        )

    def show(self, user: str, conversation: str) -> Outcome:
        return self._call(lambda: self.reads.conversations.show(conversation, principal=self._who(user)))

    def listing(self, user: str) -> Outcome:
        return self._call(lambda: self.reads.conversations.list(principal=self._who(user)))

    def rename(self, user: str, conversation: str, title: str) -> Outcome:
        return self._call(
            lambda: self.reads.conversations.rename(conversation, title, principal=self._who(user))
        )

    def delete(self, user: str, conversation: str) -> Outcome:
        return self._call(lambda: self.reads.conversations.delete(conversation, principal=self._who(user)))


class CliDoor:
    """`memex ... --json` as a person runs it (in-process): on its own, or through the daemon."""

    def __init__(self, home: Path, policy: Path) -> None:
        self.home, self.policy = home, policy

    def _run(self, user: str, *args: str) -> Outcome:
        from memex.cli.main import app

        who = [] if user == ADMIN else ["--as", user]
        run = CliRunner().invoke(
            app,
            ["--policy", str(self.policy), *args, *who, "--json"],
            env={"MEMEX_HOME": str(self.home)},
            catch_exceptions=False,
        )
        try:
            data = json.loads(run.stdout)
        except ValueError:
            raise AssertionError(f"memex {' '.join(args)}: {run.exit_code} {run.output!r}") from None
        if run.exit_code == 0:
            return {"ok": True, "value": data}
        return {"ok": False, "type": data["type"], "code": run.exit_code, "message": data["error"]}

    def ask(self, user: str, question: str, conversation: str, k: int | None = None) -> Outcome:
        return self._run(
            user, "ask", question, "--conversation", conversation, *(["-k", str(k)] if k else [])
        )

    def show(self, user: str, conversation: str) -> Outcome:
        return self._run(user, "conversations", "show", conversation)

    def listing(self, user: str) -> Outcome:
        return self._run(user, "conversations", "list")

    def rename(self, user: str, conversation: str, title: str) -> Outcome:
        return self._run(user, "conversations", "rename", conversation, title)

    def delete(self, user: str, conversation: str) -> Outcome:
        return self._run(user, "conversations", "delete", conversation)


class HttpDoor:
    """The JSON API, each user with a token of their own."""

    def __init__(self, client: httpx.Client, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def _send(self, user: str, method: str, path: str, body: dict | None = None) -> Outcome:
        response = self.client.request(method, path, json=body, headers=bearer(self.tokens[user]))
        data = response.json()
        if response.status_code == 200:
            return {"ok": True, "value": data}
        return {"ok": False, "type": None, "code": response.status_code, "message": data.get("error", data)}

    def ask(self, user: str, question: str, conversation: str, k: int | None = None) -> Outcome:
        return self._send(
            user, "POST", "/api/ask", {"question": question, "conversation": conversation, "k": k}
        )

    def show(self, user: str, conversation: str) -> Outcome:
        return self._send(user, "GET", f"/api/conversations/{conversation}")

    def listing(self, user: str) -> Outcome:
        outcome = self._send(user, "GET", "/api/conversations")
        return {"ok": True, "value": outcome["value"]["conversations"]} if outcome["ok"] else outcome

    def rename(self, user: str, conversation: str, title: str) -> Outcome:
        return self._send(user, "PATCH", f"/api/conversations/{conversation}", {"title": title})

    def delete(self, user: str, conversation: str) -> Outcome:
        return self._send(user, "DELETE", f"/api/conversations/{conversation}")


def mcp_asks(url: str, token: str, calls: list[dict[str, Any]]) -> list[Outcome]:
    """MCP `ask` tool calls in one session (the official client, streamable HTTP)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> list[Outcome]:
        import httpx2

        out = []
        async with httpx2.AsyncClient(headers=bearer(token), timeout=60) as client:
            async with streamable_http_client(url + "mcp", http_client=client) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    for arguments in calls:
                        result = await session.call_tool("ask", arguments)
                        [content] = result.content
                        if result.is_error:
                            out.append(
                                {"ok": False, "type": None, "code": "tool error", "message": content.text}
                            )
                        else:
                            out.append({"ok": True, "value": json.loads(content.text)})
        return out

    return asyncio.run(run())


# -- what each phase records ---------------------------------------------------------------------------
@dataclass
class Revocation:
    conversation: str
    first: Outcome  # VISIBLE, asked before
    revoked: Outcome  # the turn whose sources go, asked before
    before: Outcome | None  # show, before the revocation (None: revoked in an earlier phase)
    after: Outcome  # show, after it
    follow_up: Outcome  # asked after it
    final: Outcome  # show, after the follow-up


@dataclass
class Phase:
    door: str
    private: str = ""  # alice's conversation id
    privacy: dict[tuple[str, str], Outcome] = field(default_factory=dict)  # (user, action) -> outcome
    private_before: Outcome | None = None
    private_after: Outcome | None = None
    revocations: dict[str, Revocation] = field(default_factory=dict)
    responses_after: list[str] = field(default_factory=list)  # every response after the revocations
    # What the fake model was given after each revocation (doors in this process only).
    prompts_after: dict[str, list[str]] = field(default_factory=dict)
    marks: dict[str, dict[int, int]] = field(default_factory=dict)  # revocation -> model -> prompts
    deleted: dict[str, Any] = field(default_factory=dict)
    mcp: dict[str, Outcome] = field(default_factory=dict)


@dataclass
class World:
    archive: Path
    home: Path
    policy: Path
    phases: dict[str, Phase]
    forgotten: Revocation | None = None  # the source-forgotten conversation, as first asked


def _json(outcome: Outcome) -> str:
    return json.dumps(outcome, ensure_ascii=False)


def _mark(phase: Phase, name: str, models: list) -> None:
    phase.marks[name] = {id(model): len(model.prompts) for model in models}


def _collect(phase: Phase, models: list) -> None:
    """What each model was given since each mark (a model made after a mark: all of it)."""
    for name, marks in phase.marks.items():
        phase.prompts_after[name] = [
            message["content"]
            for model in models
            for prompt in model.prompts[marks.get(id(model), 0) :]
            for message in prompt
        ]


def _private_conversation(door) -> str:
    first = door.ask("alice", PRIVATE[0], "new")
    assert first["ok"], first
    conversation = first["value"]["conversation"]
    second = door.ask("alice", PRIVATE[1], conversation)
    assert second["ok"], second
    return conversation


def _private_checks(door, phase: Phase) -> None:
    phase.private = _private_conversation(door)
    phase.private_before = door.show("alice", phase.private)
    for user in OTHERS:
        phase.privacy[(user, "show")] = door.show(user, phase.private)
        phase.privacy[(user, "show-unknown")] = door.show(user, UNKNOWN)
        phase.privacy[(user, "list")] = door.listing(user)
        phase.privacy[(user, "ask")] = door.ask(user, "how do I get in?", phase.private)
        phase.privacy[(user, "rename")] = door.rename(user, phase.private, "mine now")
        phase.privacy[(user, "delete")] = door.delete(user, phase.private)
    phase.private_after = door.show("alice", phase.private)


def _ask_before(door, scenario: Scenario) -> tuple[str, Outcome, Outcome]:
    first = door.ask(scenario.user, VISIBLE, "new", k=1)  # the office guide alone
    assert first["ok"], first
    assert [c["labels"] for c in first["value"]["citations"]] == [["staff"]], first
    conversation = first["value"]["conversation"]
    revoked = door.ask(scenario.user, scenario.revoked, conversation)
    assert revoked["ok"], revoked
    return conversation, first, revoked


def _after(door, phase: Phase, scenario: Scenario, conversation: str, first, revoked, before) -> None:
    after = door.show(scenario.user, conversation)
    follow_up = door.ask(scenario.user, scenario.follow_up, conversation)
    final = door.show(scenario.user, conversation)
    phase.responses_after += [_json(after), _json(follow_up), _json(final)]
    phase.revocations[scenario.name] = Revocation(
        conversation, first, revoked, before, after, follow_up, final
    )


def _holds(path: Path, marker: str) -> bool:
    """Whether the conversations file (and its write-ahead log) holds `marker`, after a checkpoint."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        db.close()
    files = [path, path.with_name(path.name + "-wal")]
    return any(marker.encode() in f.read_bytes() for f in files if f.exists())


def _delete_checks(door, phase: Phase, home: Path) -> None:
    marker = f"quokka{phase.door}"  # a word of this conversation only
    asked = door.ask("alice", f"Is the Lisbon office open for the {marker} team?", "new")
    assert asked["ok"], asked
    conversation = asked["value"]["conversation"]
    path = home / "conversations.sqlite"
    phase.deleted["id"] = conversation
    phase.deleted["stored"] = _holds(path, marker)  # it was there
    phase.deleted["delete"] = door.delete("alice", conversation)
    phase.deleted["show"] = door.show("alice", conversation)
    phase.deleted["listed"] = door.listing("alice")
    phase.deleted["left"] = _holds(path, marker)


def _run_phase(door, phase: Phase, world: World, models: Callable[[], list]) -> None:
    """Privacy; the policy-edit revocations, between two turns, while `door` serves; the
    forgotten source's conversation, asked again; deletion."""
    _private_checks(door, phase)
    started = {s.name: _ask_before(door, s) for s in EDITED}
    before = {s.name: door.show(s.user, started[s.name][0]) for s in EDITED}
    _mark(phase, "edited", models())
    revoke(world.policy)
    for scenario in EDITED:
        _after(door, phase, scenario, *started[scenario.name], before[scenario.name])
    if phase.door != "reads":  # forgotten in the first phase: asked again here
        assert world.forgotten is not None
        _mark(phase, FORGOTTEN.name, models())
        f = world.forgotten
        _after(door, phase, FORGOTTEN, f.conversation, f.first, f.revoked, None)
    _delete_checks(door, phase, world.home)


def _restore(world: World) -> None:
    """The company policy again, the stored labels relabelled to it (no door runs now)."""
    from memex.access.policyfile import PolicySource, load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    shutil.copy(POLICIES / "company.yaml", world.policy)
    with Memex(
        Paths(world.home),
        policy=PolicySource(load_policy(world.policy), world.policy),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    ) as memex:
        memex.keep_labels_current()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from memex.access.policyfile import PolicySource, load_policy
    from memex.api.reads import Reads
    from memex.api.wiring import Memex
    from memex.cli import context
    from memex.config import Paths
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel
    from memex.service.app import create_app

    base = tmp_path_factory.mktemp("conversation-access")
    archive = base / "archive" / "kestrel"
    for folder in FOLDERS:
        shutil.copytree(EXAMPLES / folder, archive / folder, ignore=without_media)
    home = base / "home"
    home.mkdir()
    policy = home / "policy.yaml"
    world = World(archive, home, policy, {door: Phase(door) for door in DOORS})

    def opened() -> Memex:
        return Memex(
            Paths(home),
            policy=PolicySource(load_policy(policy), policy),
            embedder=HashingEmbedder(),
            model=FakeModel(),
            writable=True,
        )

    shutil.copy(POLICIES / "company.yaml", policy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMEX_HOME", str(home))
        patch.delenv("MEMEX_POLICY", raising=False)

        # 1. The read facade, on the Memex that ingested the archive; the source forgotten here.
        memex = opened()
        reads = Reads(memex)
        try:
            report = memex.ingest([str(archive)])
            assert report.failures == [], report.to_json()
            door = ReadsDoor(reads, memex)
            phase = world.phases["reads"]
            conversation, first, revoked = _ask_before(door, FORGOTTEN)
            before = door.show(FORGOTTEN.user, conversation)
            _mark(phase, FORGOTTEN.name, [memex.model])
            removed, _ = memex.ingestor().forget(str(archive / INCIDENT))
            assert removed, "the post-mortem was not forgotten"
            _after(door, phase, FORGOTTEN, conversation, first, revoked, before)
            world.forgotten = phase.revocations[FORGOTTEN.name]
            _run_phase(door, phase, world, lambda: [memex.model])
            _collect(phase, [memex.model])
        finally:
            reads.close()
            memex.close()

        # 2. The CLI on its own: it opens the store for each command (the fake models injected).
        _restore(world)
        cli_models: list[FakeModel] = []

        def fake_open(**kwargs):
            model = FakeModel()
            cli_models.append(model)
            return Memex.open(
                policy_path=context.state["policy"], embedder=HashingEmbedder(), model=model, **kwargs
            )

        patch.setattr(context, "open_memex", fake_open)
        _run_phase(CliDoor(home, policy), world.phases["cli"], world, lambda: cli_models)
        _collect(world.phases["cli"], cli_models)

        # 3. The service (HTTP and MCP), owning the store as `memex serve` does.
        _restore(world)
        memex = opened()
        service, tokens = make_service(memex)
        try:
            keys = {
                user: tokens.create(user, expires=None)[0]
                for user in ("alice", "pat", "hana", "frank", ADMIN)
            }
            with live_server(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
                phase = world.phases["http"]
                _run_phase(HttpDoor(client, keys), phase, world, lambda: [memex.model])
                hana = phase.revocations[ROLE.name].conversation
                for user, question, conversation in [
                    *((user, "how do I get in?", phase.private) for user in OTHERS),  # another's
                    ("alice", "and on Tuesdays?", phase.private),  # her own
                    ("hana", "who handles it?", hana),  # after her role was removed
                ]:
                    [phase.mcp[user]] = mcp_asks(
                        url, keys[user], [{"question": question, "conversation": conversation}]
                    )
                phase.responses_after.append(_json(phase.mcp["hana"]))
                _collect(phase, [memex.model])
        finally:
            service.close()
            memex.close()

        # 4. The CLI while a daemon owns the store: through its socket.
        _restore(world)
        patch.setattr(context, "open_memex", _no_open)
        patch.setenv(daemon_process.TEST_MODELS_ENV, str(home))
        paths = Paths(home)
        watched = base / "watched"  # the daemon needs a folder; the archive is already in
        watched.mkdir()
        pid = daemon_process.start(paths, folders=[str(watched)], policy_path=policy)
        try:
            _run_phase(CliDoor(home, policy), world.phases["daemon"], world, lambda: [])
            assert daemon_process.running_pid(paths) == pid  # it answered; the CLI opened nothing
        finally:
            stop_daemon(paths)
        assert "Traceback" not in paths.daemon_log.read_text()
    return world


def _no_open(**kwargs):
    raise AssertionError("the CLI opened the store itself while a daemon owns it")


# -- privacy -------------------------------------------------------------------------------------------
NOTHING_TO_READ = "nothing you can read is indexed yet"


def _error_kind(door: str, outcome: Outcome) -> tuple[Any, Any]:
    """What a door says for a conversation that is not yours: its error type and code."""
    assert not outcome["ok"], f"{door} answered: {str(outcome)[:300]}"
    return outcome["type"], outcome["code"]


NOT_YOURS = {
    "reads": ("NoSuchConversation", None),
    "cli": ("NoSuchConversation", 1),
    "daemon": ("NoSuchConversation", 1),
    "http": (None, 404),
}


@pytest.mark.parametrize("door", DOORS)
def test_a_conversation_is_nobody_elses_not_even_an_admins(world, door):
    phase = world.phases[door]
    before, after = phase.private_before, phase.private_after
    assert before is not None and before["ok"], before  # alice sees it...
    assert [t["question"] for t in before["value"]["turns"]] == PRIVATE
    private_text = [t["answer"] for t in before["value"]["turns"]]
    for user in OTHERS:  # ... nobody else does, admins included
        for action in ("show", "ask", "rename", "delete"):
            outcome = phase.privacy[(user, action)]
            if user == ADMIN and action == "ask":  # the admin role reads nothing: refused before
                assert not outcome["ok"] and outcome["message"].startswith(NOTHING_TO_READ), outcome
                continue
            assert _error_kind(door, outcome) == NOT_YOURS[door], (user, action, outcome)
            assert "no conversation" in outcome["message"], (user, action, outcome)
            shown = _json(outcome)
            assert PRIVATE[0] not in shown and not any(text in shown for text in private_text), (user, action)
        listed = phase.privacy[(user, "list")]
        assert listed["ok"] and phase.private not in {c["id"] for c in listed["value"]}, (user, listed)
    # nothing they tried changed it
    assert after == before


@pytest.mark.parametrize("door", DOORS)
def test_someone_elses_conversation_looks_like_one_that_does_not_exist(world, door):
    phase = world.phases[door]
    for user in OTHERS:
        theirs, unknown = phase.privacy[(user, "show")], phase.privacy[(user, "show-unknown")]
        assert not unknown["ok"] and unknown["message"] == f"no conversation {UNKNOWN!r} of yours", unknown
        assert _json(theirs).replace(phase.private, "ID") == _json(unknown).replace(UNKNOWN, "ID"), user


def test_mcp_asks_in_no_one_elses_conversation(world):
    phase = world.phases["http"]
    for user in OTHERS:
        outcome = phase.mcp[user]
        assert not outcome["ok"] and outcome["code"] == "tool error", (user, outcome)
        refusal = NOTHING_TO_READ if user == ADMIN else f"no conversation {phase.private!r} of yours"
        assert outcome["message"].startswith(f"Error executing tool ask: {refusal}"), (user, outcome)
        assert PRIVATE[0] not in outcome["message"]
    own = phase.mcp["alice"]  # the owner may
    assert own["ok"] and own["value"]["conversation"] == phase.private, own
    assert own["value"]["turn"] == 3  # after the two of _private_conversation, none of the others'


# -- revocation ----------------------------------------------------------------------------------------
CASES = [(door, scenario) for door in DOORS for scenario in (ROLE, TIGHTENED, FORGOTTEN)]
IN_PROCESS = [(door, scenario) for door, scenario in CASES if door != "daemon"]


def _turn(shown: Outcome, n: int) -> dict[str, Any]:
    assert shown["ok"], shown
    [turn] = [t for t in shown["value"]["turns"] if t["n"] == n]
    return turn


@pytest.mark.parametrize("door,scenario", CASES, ids=lambda v: v if isinstance(v, str) else v.name)
def test_a_turn_whose_sources_are_gone_is_withheld(world, door, scenario):
    r = world.phases[door].revocations[scenario.name]
    first, revoked = r.first["value"], r.revoked["value"]
    hidden = revoked["answer"]
    # What the revocation takes away was given before it: the phrase only that source holds.
    assert scenario.phrase in hidden and scenario.phrase not in first["answer"], (door, scenario.name)
    if r.before is not None:
        assert all("answer" in t and "withheld" not in t for t in r.before["value"]["turns"])
        assert scenario.phrase in _json(r.before)
    for shown in (r.after, r.final):
        turn = _turn(shown, revoked["turn"])
        assert turn["withheld"] == WITHHELD and turn["question"] == scenario.revoked
        assert not {"answer", "citations", "evidence"} & set(turn), turn
        assert _turn(shown, first["turn"])["answer"] == first["answer"]  # the readable one stays
    assert r.follow_up["ok"], r.follow_up
    assert "withheld" not in _turn(r.final, r.follow_up["value"]["turn"])
    for outcome in (r.after, r.follow_up, r.final):
        assert scenario.phrase not in _json(outcome) and hidden not in _json(outcome)


@pytest.mark.parametrize("door", DOORS)
def test_no_response_after_a_revocation_holds_what_it_took(world, door):
    phase = world.phases[door]
    assert len(phase.responses_after) >= 9
    for scenario in (ROLE, TIGHTENED, FORGOTTEN):
        hidden = phase.revocations[scenario.name].revoked["value"]["answer"]
        for response in phase.responses_after:
            assert scenario.phrase not in response and hidden not in response, (scenario.name, response[:300])


@pytest.mark.parametrize("door,scenario", IN_PROCESS, ids=lambda v: v if isinstance(v, str) else v.name)
def test_a_withheld_turn_is_never_given_to_the_model(world, door, scenario):
    phase = world.phases[door]
    mark = FORGOTTEN.name if scenario is FORGOTTEN else "edited"
    prompts = phase.prompts_after[mark]
    hidden = phase.revocations[scenario.name].revoked["value"]["answer"]
    assert any(f"Q: {VISIBLE}" in prompt for prompt in prompts), "the readable turn was not given as history"
    for prompt in prompts:
        assert scenario.phrase not in prompt and hidden not in prompt, prompt[:500]


def test_a_follow_up_rewritten_from_a_withheld_turn_is_withheld_with_it(tmp_path, fake_memex):
    """A follow-up whose searched question the model wrote from a turn now withheld repeats that
    turn's answer ("the outage that lasted 4 hours and 20 minutes"): it is withheld with it, and
    neither its searched question nor its answer is given to the model again."""
    from memex.api.reads import Reads
    from memex.index import Narrowing

    archive = tmp_path / "archive" / "kestrel"
    for folder in ("engineering", "mail"):
        shutil.copytree(EXAMPLES / folder, archive / folder, ignore=without_media)
    fake_memex.ingest([str(archive)])
    reads = Reads(fake_memex)
    alice = fake_memex.policy.principal("alice")
    model = fake_memex.model
    try:
        first = reads.ask(FORGOTTEN.revoked, principal=alice, conversation="new")
        assert OUTAGE_ONLY in first.text
        rewrite = "Who was told about the outage that lasted 4 hours and 20 minutes?"
        model.enqueue(rewrite)  # words of the first answer: the check lets it through
        mail = Narrowing(source_ids=frozenset({"mail:20260316103000.heartbeat.alice@kestrel.example"}))
        second = reads.ask(
            "who was told about it?", principal=alice, conversation=first.conversation, narrowing=mail
        )
        assert second.question == rewrite and {h.source_id for h in second.hits} == set(mail.source_ids)
        seen = len(model.prompts)
        fake_memex.ingestor().forget(str(archive / INCIDENT))

        shown = reads.conversations.show(first.conversation, principal=alice)
        assert [t.get("withheld") for t in shown["turns"]] == [WITHHELD, WITHHELD]
        assert "4 hours" not in _json(shown)
        assert reads.conversations.history(first.conversation, principal=alice) == []
        third = reads.ask("when was that?", principal=alice, conversation=first.conversation)
        assert third.question == "when was that?"  # nothing left to lean on
        for prompt in model.prompts[seen:]:
            for message in prompt:
                assert "4 hours" not in message["content"] and rewrite not in message["content"]
        # A follow-up rewritten after the revocation, from what is still readable, stays.
        reads.ask("When did the heartbeat sensor go live?", principal=alice, conversation=first.conversation)
        fifth = reads.ask("who was told?", principal=alice, conversation=first.conversation, narrowing=mail)
        assert fifth.question == "who was told? (heartbeat sensor live)"
        shown = reads.conversations.show(first.conversation, principal=alice)
        assert ["withheld" in t for t in shown["turns"]] == [True, True, False, False, False]
    finally:
        reads.close()


# -- deletion ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("door", DOORS)
def test_a_deleted_conversation_is_gone_from_the_file_too(world, door):
    deleted = world.phases[door].deleted
    assert deleted["stored"], "the conversation's text was never in the file"
    assert deleted["delete"]["ok"], deleted["delete"]
    assert _error_kind(door, deleted["show"]) == NOT_YOURS[door]
    assert deleted["listed"]["ok"] and deleted["id"] not in {c["id"] for c in deleted["listed"]["value"]}
    assert not deleted["left"], "the deleted conversation's text is still in conversations.sqlite"


def test_a_conversation_id_can_be_typed_after_the_command(tmp_path):
    """`memex conversations show ID`: an id that began with "-" would be read as an option."""
    from memex.store.conversations import ConversationStore

    store = ConversationStore(tmp_path / "conversations.sqlite")
    try:
        ids = [store.create("alice", "a title").id for _ in range(500)]
    finally:
        store.close()
    assert len(set(ids)) == 500 and not [i for i in ids if i.startswith("-")]
