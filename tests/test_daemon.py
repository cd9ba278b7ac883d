"""The daemon as a process and as a server: one per store, reads from other terminals through its
socket with the same access checks, and kill -9 at any moment loses nothing.

The background daemon runs with the hashing embedder and the echoing fake model
(MEMEX_TEST_FAKE_MODELS = its MEMEX_HOME) and the company policy.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memex import config
from memex.daemon import process as daemon_process
from memex.daemon import rpc
from memex.daemon.rpc import Peer
from tests.conftest import POLICIES
from tests.watch_support import Running, consistent, disk_state, index_state, stop_daemon, wait_until

COMPANY = POLICIES / "company.yaml"
SECRETS = {"hr": "zebrafinch", "board": "okapiroad"}  # words only HR and the board files hold


def make_archive(root: Path) -> Path:
    """A watched folder with files for everyone on staff, for HR only and for the board only."""
    for folder, name, text in [
        ("handbook", "welcome.md", "# Welcome\n\nThe Lisbon office opens at nine. Coffee is free.\n"),
        ("handbook", "travel.txt", "Book trains to the Lisbon office, not planes, under 600 km.\n"),
        ("hr", "salaries.txt", f"Salary bands for the Lisbon office: {SECRETS['hr']} band C.\n"),
        ("board", "nordlys.txt", f"Nordlys acquisition talks, Lisbon office plan {SECRETS['board']}.\n"),
    ]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text(text)
    return root


def memex_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`memex ARGS` in a process of its own: another terminal."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("memex")), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture
def paths(memex_home, monkeypatch) -> config.Paths:
    monkeypatch.setenv(daemon_process.TEST_MODELS_ENV, str(memex_home))
    return config.Paths(memex_home)


@pytest.fixture
def daemon(paths, tmp_path):
    """A background daemon watching a Kestrel-like folder, stopped (killed if need be) after."""
    root = make_archive(tmp_path / "kestrel")
    pid = daemon_process.start(paths, folders=[str(root)], policy_path=COMPANY)
    try:
        assert wait_until(lambda: _status(paths).get("counts", {}).get("reconciles", 0) >= 1, timeout=90)
        yield root, pid
    finally:
        stop_daemon(paths)


def _ledger_counts(paths) -> dict[str, int]:
    import sqlite3

    if not paths.ledger.exists():
        return {}
    with sqlite3.connect(f"file:{paths.ledger}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT status, COUNT(*) FROM sources GROUP BY status"))


def _status(paths) -> dict:
    return daemon_process.status(paths)


# -- one daemon per store ----------------------------------------------------------------------------
def test_a_second_daemon_and_other_writers_are_refused_clearly(daemon, paths, tmp_path):
    root, pid = daemon
    with pytest.raises(daemon_process.DaemonRunning) as refused:
        daemon_process.start(paths, folders=[], policy_path=COMPANY)
    assert str(refused.value) == f"a memex daemon (pid {pid}) already runs for {paths.root}"
    # The process itself refuses too (systemd starting a second one, a race between two starts).
    run = subprocess.run(
        [sys.executable, "-m", "memex.daemon.process", str(root)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 3
    assert f"a memex daemon (pid {pid}) already runs for {paths.root}; only one may" in run.stderr
    watch = memex_cli("watch")  # the remembered folders are handed to it, not a second watcher
    assert watch.returncode == 0, watch.stderr
    assert f"memex in the background (pid {pid}) watches {root}" in watch.stdout
    forget = memex_cli("--policy", str(COMPANY), "forget", str(root))  # a writer that is not handed over
    assert forget.returncode == 3
    assert f"is in use by process {pid} (memex daemon)" in forget.stderr
    assert _status(paths)["pid"] == pid  # still the one daemon


def test_a_killed_daemon_leaves_a_stale_pid_that_never_blocks_a_start(paths, tmp_path):
    root = make_archive(tmp_path / "kestrel")
    pid = daemon_process.start(paths, folders=[str(root)], policy_path=COMPANY)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: daemon_process.running_pid(paths) is None, timeout=10)
    assert _status(paths)["stale_pid"] == pid
    again = daemon_process.start(paths, folders=[], policy_path=COMPANY)  # resumes the remembered folder
    try:
        assert again != pid
        assert [w["root"] for w in _status(paths)["watched"]] == [str(root)]
    finally:
        daemon_process.stop(paths, timeout=30, force=True)


# -- reads from another terminal ----------------------------------------------------------------
def test_search_ask_status_from_another_terminal_go_through_the_daemon(daemon, paths):
    root, pid = daemon
    everyone = [(root / "handbook" / n).as_posix() for n in ("travel.txt", "welcome.md")]
    assert wait_until(lambda: _uris(memex_cli("search", "Lisbon office", "--as", "hana", "--json")) != [])

    def search(user: str) -> list[str]:
        return _uris(memex_cli("search", "Lisbon office", "--as", user, "--json", "-k", "20"))

    assert search("alice") == everyone
    assert search("hana") == sorted([*everyone, (root / "hr" / "salaries.txt").as_posix()])
    assert search("erin") == sorted([*everyone, (root / "board" / "nordlys.txt").as_posix()])
    vic = memex_cli("search", "Lisbon office", "--as", "vic", "--json")  # public only: nothing
    assert (vic.returncode, json.loads(vic.stdout)) == (
        1,
        {"error": "nothing you can read is indexed yet: run `memex ingest PATH` first", "type": "EmptyIndex"},
    )
    ask = memex_cli("ask", "when does the Lisbon office open?", "--as", "alice", "--json")
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert sorted({c["source"] for c in answer["citations"]}) == everyone
    assert not any(secret in ask.stdout for secret in SECRETS.values())
    status = memex_cli("status", "--json")  # root maps to root-admin: ledger figures and roots
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert (info["principal"], info["roots"][0]["root"], info["failures"]) == ("root-admin", str(root), [])
    assert info["ledger"]["indexed"] == 4
    assert daemon_process.running_pid(paths) == pid  # it answered; nobody else opened the store
    shown = memex_cli("daemon", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert (info["running"], info["pid"], info["watched"]) == (
        True,
        pid,
        [{"root": str(root), "mode": "events", "reason": ""}],
    )
    assert info["counts"]["indexed"] == 4 and info["counts"]["errors"] == 0
    log = paths.daemon_log.read_text()
    assert "Traceback" not in log


def _uris(run: subprocess.CompletedProcess) -> list[str]:
    assert run.returncode == 0, run.stderr
    return sorted({hit["source"] for hit in json.loads(run.stdout)})


def test_the_socket_is_the_owners_only(daemon, paths):
    assert oct(paths.socket.stat().st_mode & 0o777) == "0o600"
    peer = None

    def record(request, who, send):
        nonlocal peer
        peer = who
        send({"result": None})

    server = rpc.Server(paths.root / "probe.sock", record)
    server.start()
    try:
        assert rpc.call(paths.root / "probe.sock", "ping") == {"result": None}
    finally:
        server.close()
    assert (peer.pid, peer.uid) == (os.getpid(), os.getuid())  # from the kernel, not the request


# -- the same access checks, through the socket ----------------------------------------------------
POLICY_WITH_ACCOUNTS = (
    COMPANY.read_text()
    .replace('os_users: ["*"]', "os_users: [root]")
    .replace(
        "alice: {emails: [alice@kestrel.example]}",
        "alice: {emails: [alice@kestrel.example], os_users: [alice]}",
    )
    .replace(
        "hana: {emails: [hana@kestrel.example]}", "hana: {emails: [hana@kestrel.example], os_users: [hana]}"
    )
)


@pytest.fixture
def served(memex_home, tmp_path):
    """The daemon's Service in a thread, over a policy that maps OS accounts to users."""
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.models.embeddings import HashingEmbedder
    from memex.models.llm import FakeModel

    assert POLICY_WITH_ACCOUNTS.count("os_users: [") == 3
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(POLICY_WITH_ACCOUNTS)
    memex = Memex(
        config.Paths(memex_home),
        policy=load_policy(policy_path),
        embedder=HashingEmbedder(),
        model=FakeModel(),
        writable=True,
    )
    root = make_archive(tmp_path / "kestrel")
    with Running(memex, [root]) as running:
        assert wait_until(lambda: index_state(memex) == disk_state(root) and consistent(memex))
        yield running.service, root
    memex.close()


def request(service, command: str, params: dict | None = None, *, user: str, as_user=None, uid=4242):
    """One request as the account `user` (uid) would send it through the socket."""
    frames: list[dict] = []
    service.handle(
        {"command": command, "params": params or {}, "as_user": as_user},
        Peer(1, uid, uid, user),
        frames.append,
    )
    return frames


def test_a_user_through_the_socket_sees_only_what_policy_allows(served):
    service, root = served
    hr, board = (root / "hr" / "salaries.txt").as_posix(), (root / "board" / "nordlys.txt").as_posix()
    every = request(service, "export", user="alice")
    items = [f["item"]["source"] for f in every if "item" in f]
    assert sorted(set(items)) == sorted(
        (root / "handbook" / n).as_posix() for n in ("travel.txt", "welcome.md")
    )
    assert every[-1] == {"result": len(items)}
    for query in ["Lisbon office", SECRETS["hr"], SECRETS["board"], "salary bands Nordlys"]:
        hits = request(service, "search", {"query": query, "k": 50}, user="alice")[-1]["result"]
        assert not {hit["source"] for hit in hits} & {hr, board}, query
    frames = request(
        service,
        "ask",
        {"question": "what are the salary bands and the Nordlys acquisition plan for Lisbon?"},
        user="alice",
    )
    text = json.dumps(frames)
    assert "Lisbon office opens at nine" in text  # the prompt echo holds what alice may read
    assert not any(secret in text for secret in SECRETS.values())  # answer, prompt echo, citations
    assert request(service, "show", {"source": hr}, user="alice")[-1] == {"result": []}
    # The user who may read it does, through the same door.
    hits = request(service, "search", {"query": SECRETS["hr"], "k": 50}, user="hana")[-1]["result"]
    assert hr in {hit["source"] for hit in hits} and board not in {hit["source"] for hit in hits}
    assert [h["source"] for h in request(service, "show", {"source": hr}, user="hana")[-1]["result"]] == [hr]


def test_as_is_for_admins_only_and_unknown_accounts_read_nothing(served):
    service, root = served
    hr = (root / "hr" / "salaries.txt").as_posix()
    refused = request(service, "show", {"source": hr}, user="alice", as_user="hana")
    assert refused == [
        {
            "error": "only an admin may use --as (it is for testing a policy)",
            "type": "Forbidden",
            "exit_code": 1,
        }
    ]
    allowed = request(service, "show", {"source": hr}, user="root", as_user="hana", uid=0)
    assert [h["source"] for h in allowed[-1]["result"]] == [hr]
    stranger = request(service, "search", {"query": "Lisbon"}, user="mallory")
    assert (
        stranger[-1]["type"] == "MemexError"
        and "the OS user 'mallory' is not mapped" in stranger[-1]["error"]
    )
    # Only the owner (same uid) or an admin may see the daemon's details or change what it watches.
    assert set(request(service, "daemon-status", user="alice")[-1]["result"]) == {"pid", "running"}
    assert request(service, "watch", {"folders": [str(root)]}, user="alice")[-1]["error"] == (
        "only the daemon's owner or an admin may change what it watches"
    )
    assert "counts" in request(service, "daemon-status", user="alice", uid=os.getuid())[-1]["result"]


# -- crash safety ---------------------------------------------------------------------------------
CRASH_TRIALS = int(os.environ.get("MEMEX_CRASH_TRIALS", "8"))


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing(paths, tmp_path):
    """Kill -9 the daemon at a random moment of a large ingest, change files, start it again;
    after the last trial the index equals the disk: counts equal the ledger, no duplicate ids,
    no orphan chunks, nothing pending."""
    rng = random.Random(8)
    root = tmp_path / "kestrel"
    bulk = root / "handbook" / "bulk"
    bulk.mkdir(parents=True)
    for n in range(600):
        (bulk / f"doc-{n:04d}.txt").write_text(f"Document {n}: word{n}a about the Falcon 2 sensor.\n" * 20)
    killed_while = []
    for trial in range(CRASH_TRIALS):
        pid = daemon_process.start(paths, folders=[str(root)], policy_path=COMPANY)
        if trial % 2:  # at a random moment of the run
            time.sleep(rng.uniform(0.5, 12.0))
        else:  # while it embeds and writes (found by polling what it is busy with)
            wait_until(lambda: _status(paths).get("busy") == "embedding", 60, 0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: daemon_process.running_pid(paths) is None, timeout=10)
        killed_while.append(_ledger_counts(paths))
        for n in rng.sample(range(600), 40):  # changes while it is down, for the next run to do
            path = bulk / f"doc-{n:04d}.txt"
            if path.exists() and n % 3 == 0:
                path.unlink()
            else:
                path.write_text(
                    f"Document {n}, trial {trial}: word{n}t{trial} about the harrier outage.\n" * 20
                )
    print(f"{CRASH_TRIALS} kill -9 trials; ledger when killed: {killed_while}")
    # Kills landed in the middle of writing (sources recorded as pending, their chunks partly in
    # the store), the moment a crash can do most harm.
    assert any(c.get("pending") for c in killed_while), killed_while
    pid = daemon_process.start(paths, folders=[], policy_path=COMPANY)
    assert wait_until(lambda: _status(paths).get("counts", {}).get("reconciles", 0) >= 1, timeout=240)
    daemon_process.stop(paths, timeout=60)
    from memex.api.wiring import Memex
    from memex.models.embeddings import HashingEmbedder

    with Memex.open(home=paths.root, policy_path=COMPANY, embedder=HashingEmbedder()) as memex:
        assert index_state(memex) == disk_state(root)
        assert consistent(memex)
        records = memex.ledger.records()
        uris = [r.uri for r in records]
        assert len(uris) == len(set(uris)) == len(disk_state(root))
        chunk_ids = memex.index.chunk_ids()
        assert chunk_ids == memex.ledger.all_chunk_ids()
        assert memex.index.sizes() == (len(chunk_ids), len(chunk_ids))


def test_daemon_start_status_stop_on_the_command_line(paths, tmp_path):
    root = make_archive(tmp_path / "kestrel")
    started = memex_cli("--policy", str(COMPANY), "daemon", "start", str(root), "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    pid = info["pid"]
    try:
        assert (info["running"], [w["root"] for w in info["watched"]]) == (True, [str(root)])
        assert config.load_settings(paths).watched == (str(root),)  # remembered for the next start
    finally:
        stopped = memex_cli("daemon", "stop", "--json")
    assert (stopped.returncode, json.loads(stopped.stdout)) == (0, {"stopped": True, "pid": pid})
    assert daemon_process.running_pid(paths) is None and not paths.socket.exists()
    again = memex_cli("daemon", "stop", "--json")
    assert json.loads(again.stdout) == {"stopped": False, "pid": None}
    status = memex_cli("daemon", "status", "--json")
    assert json.loads(status.stdout)["watched"] == [{"root": str(root), "mode": "stopped", "reason": ""}]
    assert "stale_pid" not in json.loads(status.stdout)  # a clean stop


def test_memex_watch_in_the_foreground_prints_events_and_stops_on_ctrl_c(paths, tmp_path):
    root = make_archive(tmp_path / "kestrel")
    watch = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("memex")),
            "--policy",
            str(COMPANY),
            "watch",
            str(root),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = []
        for line in watch.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "reconcile":
                break
        assert [e["event"] for e in events] == ["watching", "started", "reconcile"]
        assert len(events[-1]["indexed"]) == 4
        new = root / "handbook" / "harrier.md"
        new.write_text("The harrier outage ended at noon.\n")
        batch = json.loads(watch.stdout.readline())
        assert (batch["event"], batch["indexed"], batch["removed"]) == ("batch", [new.as_posix()], [])
        watch.send_signal(signal.SIGINT)
        rest = [json.loads(line) for line in watch.stdout]
        assert watch.wait(30) == 0, watch.stderr.read()
        assert [e["event"] for e in rest] == ["stopped"]
    finally:
        if watch.poll() is None:
            watch.kill()
    assert config.load_settings(paths).watched == (str(root),)


# -- systemd ----------------------------------------------------------------------------------------
UNIT = Path(__file__).resolve().parent.parent / "examples" / "systemd" / "memex-daemon.service"


def test_the_systemd_unit_is_valid_and_the_daemon_tells_systemd_when_ready(paths, tmp_path, monkeypatch):
    import shutil
    import socket

    text = UNIT.read_text()
    assert (
        "\nType=notify\n" in text
        and "\nExecStart=%h/.local/share/memex-venv/bin/python -m memex.daemon.process\n" in text
    )
    if shutil.which("systemd-analyze"):
        copy = tmp_path / "memex-daemon.service"
        copy.write_text(text.replace("%h/.local/share/memex-venv/bin/python", sys.executable))
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
        )
        assert (verify.returncode, verify.stderr.strip()) == (0, "")
    # Type=notify: the daemon sends READY=1 once it answers, STOPPING=1 when it stops.
    address = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(60)
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    root = make_archive(tmp_path / "kestrel")
    pid = daemon_process.start(paths, folders=[str(root)], policy_path=COMPANY)
    try:
        assert listener.recv(100) == b"READY=1"
    finally:
        daemon_process.stop(paths, timeout=30, force=True)
    assert listener.recv(100) == b"STOPPING=1"
    listener.close()
    assert pid > 0


# -- another account, through the kernel's credentials -------------------------------------------
@pytest.mark.skipif(
    os.getuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root and setpriv"
)
def test_another_account_through_the_socket_reads_as_its_policy_user(monkeypatch, tmp_path):
    """A real second account (nobody, mapped to alice) asks through a socket opened to it
    (socket_mode 0o666): the daemon takes who it is from the kernel, so it reads as alice and
    cannot use --as; root (an admin) can."""
    import shutil
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="memex-shared-home-"))
    try:
        home.chmod(0o711)
        (home / "config.toml").write_text("socket_mode = 0o666\n")
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY_WITH_ACCOUNTS.replace("os_users: [alice]", "os_users: [nobody]"))
        monkeypatch.setenv("MEMEX_HOME", str(home))
        monkeypatch.setenv(daemon_process.TEST_MODELS_ENV, str(home))
        paths = config.Paths(home)
        root = make_archive(tmp_path / "kestrel")
        daemon_process.start(paths, folders=[str(root)], policy_path=policy)
        try:
            assert wait_until(lambda: _status(paths).get("counts", {}).get("reconciles", 0) >= 1, timeout=90)
            assert oct(paths.socket.stat().st_mode & 0o777) == "0o666"
            everyone = [(root / "handbook" / n).as_posix() for n in ("travel.txt", "welcome.md")]
            as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

            def search(*extra: str, account: list[str] = as_nobody) -> subprocess.CompletedProcess:
                command = [*account, str(Path(sys.executable).with_name("memex")), "search", "Lisbon office"]
                return subprocess.run(
                    [*command, "-k", "20", "--json", *extra],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    cwd="/",
                    env={**os.environ, "HOME": "/nonexistent"},
                )

            assert _uris(search()) == everyone  # alice's view: no HR, no board file
            refused = search("--as", "hana")
            assert (refused.returncode, json.loads(refused.stdout)) == (
                1,
                {"error": "only an admin may use --as (it is for testing a policy)", "type": "Forbidden"},
            )
            assert _uris(search("--as", "hana", account=[])) == sorted(
                [*everyone, (root / "hr" / "salaries.txt").as_posix()]
            )
        finally:
            daemon_process.stop(paths, timeout=30, force=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
