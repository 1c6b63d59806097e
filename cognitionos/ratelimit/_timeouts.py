"""How long the limiter waits for its backend before ``on_backend_error`` decides instead."""

from __future__ import annotations

import math

from cognitionos.errors import ConfigurationError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_POSTGRES_TIMEOUT",
    "DEFAULT_SQLITE_BUSY_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "check_timeout",
    "effective",
]

#: Seconds one request may wait for a reply on the limiter's own Redis connections, unless
#: the limiter or the client sets another bound.
DEFAULT_TIMEOUT = 1.0
#: Seconds a decision waits for a SQLite write lock (the store's connections wait 30 s).
#: Longer than Redis's bound: SQLite's busy wait is not a queue, and 4 processes writing
#: on a loaded 2-core machine were seen waiting up to 4 s for their turn; a bound that
#: short would trip ``on_backend_error`` for every caller under mere contention.
DEFAULT_SQLITE_BUSY_TIMEOUT = 5.0
#: Seconds a PostgreSQL decision may take (server-side statement and lock timeouts, then the
#: limiter's watchdog closes the connection): the SQLite bound, for the same reason.
DEFAULT_POSTGRES_TIMEOUT = DEFAULT_SQLITE_BUSY_TIMEOUT
#: Seconds to open one of the limiter's own Redis connections (PostgreSQL: at least 2 s,
#: libpq's floor).
DEFAULT_CONNECT_TIMEOUT = 1.0


def check_timeout(name: str, value: object) -> float | None:
    """``value`` as a positive finite number of seconds, or None; else ConfigurationError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(
            f"{name} must be a positive finite number of seconds, got {value!r}"
        )
    return float(value)


def effective(chosen: float | None, client: object, default: float) -> float:
    """The limiter's own choice, else the client's setting (if a positive number), else default."""
    if chosen is not None:
        return chosen
    if isinstance(client, int | float) and not isinstance(client, bool) and client > 0:
        return float(client)
    return default
