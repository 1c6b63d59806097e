"""Heavy work of the routes (fits, simulations, analyses): bounded, off the event loop, JSON-safe.

:func:`offload` runs a function in a worker thread under the app's compute limiter
(``COGNITIONOS_COMPUTE_WORKERS`` at once; later requests wait their turn), turning the
engines' refusals into problem documents. :func:`plain` makes a result JSON-ready:
NaN and infinities become ``null`` (JSON has no such numbers), numpy scalars and arrays
become Python numbers and lists.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import Request

from cognitionos.errors import CognitionError, StorageError
from cognitionos.server._http import state_of
from cognitionos.server._problems import ApiError

__all__ = ["engine_errors", "offload", "plain"]

T = TypeVar("T")


def engine_errors(fn: Callable[[], T]) -> T:
    """Run ``fn``; a refused input becomes 422, a store failure 503 (both naming the cause)."""
    try:
        return fn()
    except StorageError as exc:
        raise ApiError(503, str(exc)) from None
    except (CognitionError, ValueError, ArithmeticError, Warning) as exc:
        # ValueError covers numpy's LinAlgError; a Warning raised as an error (warnings
        # filters set to "error") is a computation that did not go through
        raise ApiError(422, f"cannot compute this: {exc}") from None


async def offload(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, at most ``compute_workers`` at once."""
    import asyncio
    import weakref

    import anyio
    import anyio.to_thread

    state = state_of(request)
    # a limiter belongs to one event loop: one per loop (uvicorn runs one per process)
    if state.compute_limiter is None:
        state.compute_limiter = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    limiter = state.compute_limiter.get(loop)
    if limiter is None:
        limiter = state.compute_limiter[loop] = anyio.CapacityLimiter(
            state.settings.compute_workers
        )
    call = functools.partial(engine_errors, functools.partial(fn, *args, **kwargs))
    return await anyio.to_thread.run_sync(call, limiter=limiter)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (non-finite floats -> None, numpy -> Python)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return plain(tolist())
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(value)
