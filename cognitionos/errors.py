"""Every exception cognitionos raises.

Engines answer with decision objects; they raise only for misuse and for
backend failure. All exceptions share one root so callers can catch
everything from the framework in one clause::

    CognitionError
     ├── ConfigurationError          bad arguments, definitions, URLs (also a ValueError)
     │    └── UnsupportedCapability  a backend lacks what an engine needs
     ├── MissingDependency           an optional package is absent (also an ImportError)
     └── StorageError                a backend failed while doing its job
          └── BackendUnavailable     the backend could not be reached at all

Example::

    try:
        store = open_store("redis://cache:6379/0")
    except StorageError as exc:
        log.error("store down: %s", exc)
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "CognitionError",
    "ConfigurationError",
    "MissingDependency",
    "StorageError",
    "UnsupportedCapability",
]


class CognitionError(Exception):
    """Root of every exception raised by cognitionos."""


class ConfigurationError(CognitionError, ValueError):
    """The caller passed something invalid: a URL, a limit, a rule, a flag definition.

    The message names the offending part, e.g. ``unknown storage scheme 'mysql'``.
    """


class UnsupportedCapability(ConfigurationError):
    """A storage backend does not offer a capability an engine requires.

    ``UnsupportedCapability("memcached", "event_log", "Experiments")``
    """

    def __init__(self, backend: str, capability: str, needed_by: str | None = None) -> None:
        self.backend = backend
        self.capability = capability
        self.needed_by = needed_by
        who = f"{needed_by} needs" if needed_by else "needed"
        super().__init__(
            f"storage backend {backend!r} does not support capability {capability!r} ({who} it)"
        )


class MissingDependency(CognitionError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class StorageError(CognitionError):
    """A storage backend failed during an operation. Nothing was half-written.

    The original exception is chained as ``__cause__``.
    """


class BackendUnavailable(StorageError):
    """The backend could not be reached (connection refused, DNS, authentication)."""
