"""Loading connectors: the built-ins explicitly, then installed plugins (entry point group
"memex"), unless MEMEX_PLUGINS pins the set ("" loads none; "a,b" loads only those)."""

from __future__ import annotations

import fnmatch
import importlib
import os
from collections.abc import Sequence
from functools import lru_cache

import pluggy

from memex import hookspecs
from memex.connector import Connector
from memex.errors import ConfigError

BUILTIN = ("connectors.builtin",)


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("memex")
    manager.add_hookspecs(hookspecs)
    for name in BUILTIN:
        manager.register(importlib.import_module(name), name)
    pinned = os.environ.get("MEMEX_PLUGINS")
    if pinned is None:
        manager.load_setuptools_entrypoints("memex")
    else:
        for name in filter(None, (p.strip() for p in pinned.split(","))):
            manager.load_setuptools_entrypoints("memex", name=name)
    return manager


def connectors() -> list[type[Connector]]:
    found: list[type[Connector]] = []
    plugin_manager().hook.register_connectors(register=found.append)
    # Built-ins register last among hook implementations (pluggy calls newest first), and the
    # files connector, which accepts any path, must be asked last.
    found.sort(key=lambda c: c.name == "files")
    return found


def connector_for(target: str) -> type[Connector]:
    for connector in connectors():
        if connector.accepts(target):
            return connector
    raise ConfigError(
        f"{target}: no such file or folder, and no connector reads it "
        f"(connectors: {', '.join(c.name for c in connectors())})"
    )


def parser_modules() -> list[str]:
    """What the plugins want loaded in every parser worker."""
    return list(
        dict.fromkeys(name for names in plugin_manager().hook.parser_modules() for name in names or ())
    )


def readers() -> list[dict[str, str | None]]:
    """What the plugins read with optional engines, and whether each engine is installed."""
    return [reader for found in plugin_manager().hook.readers() for reader in found or ()]


def is_ignored(name: str, patterns: Sequence[str] = ()) -> bool:
    """Whether a plugin never reads files of this name, or it matches one of `patterns` (shell
    globs on names: the `ignore` setting)."""
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
        return True
    return any(plugin_manager().hook.ignored_name(name=name))
