"""The parser sandbox: hangs, memory blow-ups and crashes are killed and reported; other files
keep going."""

from __future__ import annotations

from functools import partial

from memex.errors import ParseError
from memex.ingest.sandbox import Limits, ParserPool
from tests import hostile


def test_misbehaving_parsers_are_contained():
    tasks = [
        ("hang", hostile.hang),
        ("ok-1", partial(hostile.fine, "first")),
        ("memory", hostile.eat_memory),
        ("segfault", hostile.segfault),
        ("explode", hostile.explode),
        ("ok-2", partial(hostile.fine, "second")),
    ]
    with ParserPool(workers=2, limits=Limits(timeout=3, memory_mb=512)) as pool:
        results = dict(pool.map(tasks))
        assert pool.restarts == 2  # hang and segfault; a MemoryError leaves its worker usable
    assert [e.text for e in results["ok-1"]] == ["first"]
    assert [e.text for e in results["ok-2"]] == ["second"]
    assert str(results["hang"]) == "refused: parsing took longer than 3 s"
    assert str(results["memory"]) == "refused: parsing needs more than the 512 MB memory limit"
    assert str(results["segfault"]) == "the parser crashed (signal 11)"
    assert str(results["explode"]) == "parser error (RuntimeError: kaboom)"
    assert all(isinstance(results[k], ParseError) for k in ("hang", "memory", "segfault", "explode"))


def test_unpicklable_task_is_reported():
    with ParserPool(limits=Limits(timeout=5)) as pool:
        ((key, result),) = list(pool.map([("lambda", lambda: [])]))
    assert key == "lambda" and "cannot hand the file to a parser process" in str(result)


def test_ingest_goes_on_past_a_hanging_file(fake_memex, kestrel, monkeypatch):
    import connectors.files as files

    real = files.parse_file

    def choose(path):
        return hostile.hang if path.name == "office-guide.txt" else partial(real, path)

    monkeypatch.setattr(files, "partial", lambda fn, path: choose(path))
    # The worker is started with its parsers imported first (in a fresh pytest that alone takes
    # seconds), then held to 3 s a file.
    fake_memex._pool = ParserPool(limits=Limits(timeout=60))
    assert fake_memex._pool.run(partial(real, kestrel / "handbook" / "employee-handbook.md"))
    fake_memex._pool.limits = Limits(timeout=3)
    report = fake_memex.ingest([str(kestrel / "handbook")])
    assert [(f.uri.rsplit("/", 1)[1], f.reason) for f in report.failures] == [
        ("office-guide.txt", "refused: parsing took longer than 3 s")
    ]
    assert [u.rsplit("/", 1)[1] for u in report.indexed] == ["employee-handbook.md"]
