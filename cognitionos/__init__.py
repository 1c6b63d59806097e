"""cognitionos: composable engines a SaaS backend needs around its business logic.

Each engine is its own package (``cognitionos.storage``, and the engines built on it);
this top-level package holds only the kernel: errors, clocks and the version.
Importing it is cheap: no numpy, SQLAlchemy, redis or web framework is loaded.

    from cognitionos.storage import open_store
    store = open_store("sqlite:///app.db")
"""

from __future__ import annotations

from cognitionos.clock import Clock, ManualClock, SystemClock
from cognitionos.errors import (
    BackendUnavailable,
    CognitionError,
    ConfigurationError,
    MissingDependency,
    StorageError,
    UnsupportedCapability,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Clock",
    "CognitionError",
    "ConfigurationError",
    "ManualClock",
    "MissingDependency",
    "StorageError",
    "SystemClock",
    "UnsupportedCapability",
    "__version__",
]
