"""The shape of the code that the security argument rests on."""

from __future__ import annotations

import ast
import functools
import inspect
import re
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


SDK = {"memex.documents", "memex.errors", "memex.hookspecs", "memex.connector", "memex.links"}
DOORS = ("memex.cli", "memex.daemon", "memex.service")


def ours(tree: ast.Module) -> set[str]:
    return {i for i in imports(tree) if i.split(".")[0] in PACKAGES and i in MODULE_NAMES}


def test_connectors_import_only_the_connector_sdk():
    """Data flows one way: connectors produce documents through the SDK; they never touch the
    index, the ledger, answers, settings or the registry."""
    for name, tree in modules().items():
        if name.startswith("connectors"):
            core = {i for i in ours(tree) if i.startswith("memex")}
            assert core <= SDK, (name, core - SDK)


def test_the_sdk_stands_on_the_access_rules_and_the_sandbox_only():
    allowed = SDK | {"memex.access", "memex.access.rules", "memex.ingest.sandbox"}
    for name in SDK:
        assert ours(modules()[name]) <= allowed, name


def test_the_core_imports_no_connector():
    """memex reaches connectors only through the plugin loader (by name, at run time)."""
    for name, tree in modules().items():
        if name.startswith("memex"):
            assert not {i for i in ours(tree) if i.startswith("connectors")}, name


def test_no_door_reaches_the_index_or_the_stores():
    """The CLI, the daemon and the service read through the facade (memex.api.reads) only."""
    stores = {"memex.index", "memex.store.ledger", "memex.store.audit", "memex.store.labelling"}
    stores |= {n for n in MODULE_NAMES if n.startswith("memex.index.")}
    readers = {"retrieve", "prepare", "generate"}
    for name, tree in modules().items():
        if not name.startswith(DOORS):
            continue
        assert not ours(tree) & stores, name
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "memex.answer.pipeline":
                assert not {a.name for a in node.names} & readers, name
            if isinstance(node, ast.Attribute) and node.attr in {"search", "count", "entries", "records"}:
                inner = node.value
                reached = isinstance(inner, ast.Attribute) and inner.attr in {"index", "ledger", "audit"}
                assert not reached, (name, ast.unparse(node))


def test_the_facade_takes_a_keyword_only_principal_without_default():
    from memex.api.reads import Reads

    for name in ("search", "ask", "submit_ask", "show", "export", "status", "audit", "explain"):
        parameter = inspect.signature(getattr(Reads, name)).parameters["principal"]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameter.default is inspect.Parameter.empty, name


def test_the_doors_call_the_facade():
    """Each door names the facade (or the command map onto it) where it reads."""
    facade = {"memex.api.reads", "memex.api.commands"}
    users = {name for name, tree in modules().items() if facade & ours(tree)}
    assert {"memex.cli.context", "memex.daemon.watcher", "memex.service.core"} <= users


def test_packages_say_what_they_own():
    for path in sorted((ROOT / "memex").rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert len(docstring) > 60, f"{path.relative_to(ROOT)} needs a docstring that says what it owns"


def test_the_layout_in_the_readme_matches_the_packages():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    packages = sorted(p.parent.name for p in (ROOT / "memex").glob("*/__init__.py"))
    listed = re.findall(r"^  ([a-z_]+)/ ", layout, re.M)  # the subpackages, indented under memex/
    assert sorted(listed) == packages, "README's Layout and memex/'s subpackages differ"
    for name in SDK:
        assert name.removeprefix("memex.") + ".py" in layout, f"README's Layout does not list {name}"


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
        lines = len(path.read_text().splitlines())
        assert lines <= 450, f"{path.relative_to(ROOT)} is growing too big ({lines} lines): split it"


def test_policies_folder_is_data():
    assert not list(Path(ROOT / "policies").glob("*.py"))


def test_the_index_internals_are_used_only_by_the_index():
    """LexicalStore and VectorStore read without a principal: only memex.index may hold them."""
    for name, tree in modules().items():
        if not name.startswith("memex.index"):
            assert not imports(tree) & {"memex.index.lexical", "memex.index.vectors"}, name
