"""The plugin contract. Built-in connectors register through it exactly like third-party ones."""

import pluggy

hookspec = pluggy.HookspecMarker("memex")
hookimpl = pluggy.HookimplMarker("memex")


@hookspec
def register_connectors(register):
    """Call `register(ConnectorClass)` for each connector the plugin provides."""


@hookspec
def parser_modules():
    """Return the names of modules the sandboxed parser workers import once, when their fork
    server starts (so that every parse starts with its parsers loaded)."""


@hookspec
def ignored_name(name):
    """Return True for a file or folder name that is never read (an editor's swap file, an
    unfinished download): the watcher and the folder walk skip it."""


@hookspec
def readers():
    """Return what the plugin reads with optional engines, for `memex status`: a list of dicts
    {"reads": "speech in recordings and videos", "engine": "faster-whisper, Whisper tiny.en" or
    None when it is not installed, "install": "pip install 'memex[media]'"}."""
