"""The asynchronous twin of the request path: :class:`AsyncExperimentEngine`.

``assign`` reads the compiled snapshot (no I/O); ``track``/``track_many`` and
``track_exposure``/``track_exposures`` are coroutines. Redis runs the same Lua scripts and
event-log append through ``redis.asyncio``; memory is called inline (it never blocks on
I/O); SQL runs each call's transaction in a worker thread, so the event loop never waits on
the database driver::

    engine = AsyncExperimentEngine("redis://localhost:6379/0")
    a = await engine.assign("checkout-v2", "u1", {"country": "NL"})
    await engine.track_exposure("checkout-v2", "u1")
    await engine.track("checkout-v2", "u1", "revenue", 12.5, event_id="order-17")

Definitions and analysis stay on the synchronous :class:`ExperimentEngine` in
:attr:`AsyncExperimentEngine.sync` (admin path), which shares the store's statistics.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.experiments._ingest import (
    _lua,
    expose_args,
    track_args,
)
from cognitionos.experiments.engine import ExperimentEngine, _counts
from cognitionos.experiments.models import Assignment, AssignmentReason

__all__ = ["AsyncExperimentEngine"]


class AsyncExperimentEngine:
    """Async twin of :class:`ExperimentEngine`'s request path (see it for the arguments).

    ``store`` is a storage URL (``memory://``, ``sqlite:///...``, ``postgresql+psycopg://``,
    ``redis://``) or a store from ``open_async_store``. Other keyword arguments go to the
    synchronous engine (``clock``, ``namespace``, ``sticky``, ``log_events``,
    ``dedupe_window``).
    """

    def __init__(self, store: Any = "memory://", **options: Any) -> None:
        from cognitionos.storage import open_async_store, open_store

        if isinstance(store, str):
            astore = open_async_store(store, clock=options.get("clock"))
            self._owns_async = True
        elif callable(getattr(store, "require", None)) and hasattr(store, "append_many"):
            astore = store
            self._owns_async = False
        else:
            raise ConfigurationError(
                "AsyncExperimentEngine store must be a storage URL or a store from "
                f"open_async_store(), got {type(store).__name__}"
            )
        self._astore = astore
        sync_store = getattr(astore, "sync", None)
        self._native = sync_store is None  # redis.asyncio
        self._owns_sync = False
        if sync_store is None:  # the async Redis store has no sync twin: open one (admin path)
            sync_store = open_store(astore.url.raw, clock=options.get("clock"))
            self._owns_sync = True
        self._offload = bool(getattr(astore, "_offload", False))
        self.sync = ExperimentEngine(store=sync_store, **options)
        if self._native:
            self._expose_script = astore.script(_lua("exp_expose"))
            self._track_script = astore.script(_lua("exp_track"))

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._offload:
            return fn(*args, **kwargs)
        import anyio.to_thread

        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    async def _script(self, script: Any, keys: list[str], args: list[Any], what: str) -> Any:
        from redis.exceptions import RedisError

        try:
            return await script(keys, args)
        except RedisError as exc:
            raise StorageError(f"redis store: {what} failed: {exc}") from exc

    def _keys(self, key: str, *names: str) -> list[str]:
        scoped = self.sync._scoped(key)
        return [self._astore.key(f"exp:{scoped}", n) for n in names]

    async def _append(self, key: str, payloads: list[bytes]) -> None:
        s = self.sync
        if s._log_events and payloads:
            await self._astore.append_many(f"{s._namespace}experiments.{key}", payloads)

    # -- request path ------------------------------------------------------------------------
    async def assign(
        self, key: str, unit_id: str, attributes: Mapping[str, Any] | None = None
    ) -> Assignment:
        """The arm of ``unit_id`` (see :meth:`ExperimentEngine.assign`; no I/O)."""
        return self.sync.assign(key, unit_id, attributes)

    async def track_exposures(self, key: str, records: Iterable[tuple[str, str]]) -> int:
        """Record many ``(unit_id, variant)`` exposures; returns the first exposures."""
        if not self._native:
            return int(await self._run(self.sync.track_exposures, key, list(records)))
        s = self.sync
        batch = s._exposure_batch(key, records)
        if not batch:
            return 0
        reply = await self._script(
            self._expose_script,
            self._keys(key, "units", "arms", "multi"),
            expose_args(batch, s._phase(key)),
            "experiment exposure",
        )
        first = [bool(int(x)) for x in reply]
        await self._append(key, s._exposure_payloads(batch, first))
        return sum(first)

    async def track_exposure(
        self,
        key: str,
        unit_id: str,
        *,
        variant: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Assignment:
        """Record that ``unit_id`` saw the experiment (see
        :meth:`ExperimentEngine.track_exposure`); returns the assignment recorded."""
        if variant is None:
            a = self.sync.assign(key, unit_id, attributes)
            if not a.in_experiment:
                return a
            variant = a.variant
        else:
            compiled = self.sync._compiled(key)
            if variant not in compiled.keys:
                raise ConfigurationError(
                    f"experiment {key!r} has no arm {variant!r} (arms: {', '.join(compiled.keys)})"
                )
            a = Assignment(variant, True, None, key, AssignmentReason.ASSIGNED)
        assert variant is not None
        await self.track_exposures(key, [(str(unit_id), variant)])
        return a

    async def track_many(self, key: str, events: Iterable[Any]) -> dict[str, Any]:
        """Record many metric events; counts per outcome (see
        :meth:`ExperimentEngine.track_many`)."""
        return await self._track_many(key, events, False)

    async def _track_many(self, key: str, events: Iterable[Any], detail: bool) -> dict[str, Any]:
        s = self.sync
        if not self._native:
            result: dict[str, Any] = await self._run(
                s.track_many, key, list(events), _detail=detail
            )
            return result
        batch = s._event_batch(key, events)
        now = s._clock.time_ns()
        specs = s._compiled(key).specs
        status: list[int] = []
        if batch:
            reply = await self._script(
                self._track_script,
                self._keys(key, "seenz", "units", "unit_metrics", "stats"),
                track_args(specs, batch, now // 1_000_000_000),
                "experiment tracking",
            )
            status = [int(x) for x in reply]
        await self._prune(key, now / 1e9)
        await self._append(key, s._event_payloads(batch, status, now))
        return _counts(status, detail)

    async def track(
        self,
        key: str,
        unit_id: str,
        metric: str,
        value: float = 1.0,
        event_id: str | None = None,
        *,
        denominator: float = 0.0,
        covariate: float | None = None,
    ) -> str:
        """Record one metric event: ``"counted"``, ``"duplicate"`` or ``"unexposed"``."""
        counts = await self._track_many(
            key, [(unit_id, metric, value, event_id, denominator, covariate)], True
        )
        return str(counts["status"][0])

    async def _prune(self, key: str, now_s: float) -> None:
        """Redis: the engine's throttled pruning of old event ids, through redis.asyncio."""
        from redis.exceptions import RedisError

        s = self.sync
        scoped = s._scoped(key)
        window = s._dedupe_window
        if window is None or now_s - s._last_prune.get(scoped, float("-inf")) < window / 24:
            return
        s._last_prune[scoped] = now_s
        (seen,) = self._keys(key, "seenz")
        try:
            await self._astore.client.zremrangebyscore(seen, "-inf", f"({int(now_s - window)}")
        except RedisError:  # the events are in; pruning is retried later
            s._last_prune.pop(scoped, None)

    # -- lifecycle ---------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the stores this engine opened."""
        self.sync.close()
        if self._owns_sync:
            self.sync.store.close()
        if self._owns_async:
            await self._astore.aclose()

    async def __aenter__(self) -> AsyncExperimentEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncExperimentEngine(store={self._astore!r})"
