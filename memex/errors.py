"""One exception hierarchy. Every message says what went wrong and what to do about it."""


class MemexError(Exception):
    """Base class: anything memex raises on purpose. The CLI prints these without a traceback."""

    exit_code = 1


class ConfigError(MemexError):
    """The configuration or data directory is unusable."""


class PolicyError(MemexError):
    """The policy is invalid. `field` (e.g. "users.alice.roles") lets the YAML loader add the line."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AccessRefused(MemexError):
    """A document cannot be stored because no policy rule labels it (default deny at ingest)."""


class ParseError(MemexError):
    """A source could not be read or parsed; it is skipped and reported."""


class UnsupportedFormat(ParseError):
    """No parser handles this kind of file."""


class ModelError(MemexError):
    """A model is missing, broken, or unreachable."""


class StoreBusy(MemexError):
    """Another process owns the embedded store."""

    exit_code = 3


class EmptyIndex(MemexError):
    """Nothing the asker can read has been indexed yet."""


class BadRequest(MemexError):
    """The request itself is wrong: an empty question, a k out of range (HTTP 400)."""

    exit_code = 2


class Forbidden(MemexError):
    """The asker may not do this (an admin's command): HTTP 403."""
