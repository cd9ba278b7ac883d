"""The plugin contract. Built-in connectors register through it exactly like third-party ones."""

import pluggy

hookspec = pluggy.HookspecMarker("memex")
hookimpl = pluggy.HookimplMarker("memex")


@hookspec
def register_connectors(register):
    """Call `register(ConnectorClass)` for each connector the plugin provides."""
