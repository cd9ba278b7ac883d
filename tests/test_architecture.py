"""The shape of the code that the security argument rests on."""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("memex", "connectors")


@functools.cache
def modules() -> dict[str, ast.Module]:
    """Every module of the packages, parsed once per run."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            out[name] = ast.parse(path.read_text(), filename=str(path))
    return out


def imports(tree: ast.Module) -> set[str]:
    """Modules imported; `from package import module` counts as importing that module (a
    package's __init__ importing its own submodules is not a cycle)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & MODULE_NAMES
            found |= submodules or {node.module}
    return found


MODULE_NAMES = {
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in PACKAGES
    for path in (ROOT / package).rglob("*.py")
}


def test_only_the_index_package_imports_chromadb():
    users = {
        name for name, tree in modules().items() if any(i.split(".")[0] == "chromadb" for i in imports(tree))
    }
    assert users == {"memex.index.vectors"}


def test_search_requires_a_keyword_only_principal_without_default():
    from memex.index import Index

    for method in (Index.search, Index.count, Index.readable_source_ids):
        parameter = inspect.signature(method).parameters["principal"]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, method.__name__
        assert parameter.default is inspect.Parameter.empty, method.__name__


def test_index_has_no_unchecked_public_read_path():
    """Public methods that return stored content all take a principal."""
    from memex.index import Index

    readers = {"search", "count", "readable_source_ids"}
    writers = {"open", "close", "upsert", "delete", "relabel", "compact"}
    ids_only = {"chunk_ids", "existing", "sizes"}  # ids for reconciling with the ledger: no text, no labels
    public = {name for name, _ in inspect.getmembers(Index, inspect.isfunction) if not name.startswith("_")}
    public |= {name for name, value in vars(Index).items() if isinstance(value, classmethod)}
    assert public == readers | writers | ids_only


def test_no_bypass_parameters():
    from memex.index import Index

    for name in ("search", "count"):
        parameters = set(inspect.signature(getattr(Index, name)).parameters)
        assert not parameters & {"bypass", "bypass_acl", "skip_access", "unfiltered", "admin", "sudo"}


def test_connectors_do_not_reach_into_the_store():
    """Data flows one way: connectors produce documents; they never touch the index, the ledger
    or answers."""
    forbidden = {
        "memex.index",
        "memex.store.ledger",
        "memex.ingest.pipeline",
        "memex.answer.pipeline",
        "memex.api.wiring",
        "memex.cli.main",
    }
    for name, tree in modules().items():
        if name.startswith("connectors"):
            assert not imports(tree) & forbidden, name


def test_no_import_cycles():
    graph = {
        name: {i for i in imports(tree) if i.split(".")[0] in PACKAGES and i in modules()}
        for name, tree in modules().items()
    }
    visiting, done = set(), set()

    def visit(node, path):
        assert node not in visiting, "import cycle: " + " -> ".join([*path, node])
        if node in done:
            return
        visiting.add(node)
        for target in graph.get(node, ()):
            visit(target, [*path, node])
        visiting.discard(node)
        done.add(node)

    for name in graph:
        visit(name, [])


def test_access_rule_is_pure():
    """memex.access.rules does no I/O: it imports nothing beyond the standard library's pure parts."""
    allowed = {"__future__", "fnmatch", "re", "collections.abc", "dataclasses", "functools", "memex.errors"}
    assert imports(modules()["memex.access.rules"]) <= allowed
    assert imports(modules()["memex.access"]) == {"memex.access.rules"}


def test_modules_stay_small():
    for path in sorted((ROOT / "memex").rglob("*.py")):
        assert len(path.read_text().splitlines()) < 600, f"{path.name} is growing too big: split it"


def test_policies_folder_is_data():
    assert not list(Path(ROOT / "policies").glob("*.py"))


def test_the_index_internals_are_used_only_by_the_index():
    """LexicalStore and VectorStore read without a principal: only memex.index may hold them."""
    for name, tree in modules().items():
        if not name.startswith("memex.index"):
            assert not imports(tree) & {"memex.index.lexical", "memex.index.vectors"}, name
