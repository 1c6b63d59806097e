"""The server's ``/metrics``: every engine it runs, read when Prometheus scrapes.

Engines made per tenant (flags, experiments) are summed into one set per engine, so a
series exists once per process whatever the number of tenants. Pricing and autoscale are
stateless computations: the server counts the ones it ran (``ServerState.engine_counters``).
DR gauges (backup ages, catalogued and unverified backups) are read from the backup catalog
when ``COGNITIONOS_BACKUP_DIR`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cognitionos.errors import CognitionError
from cognitionos.experiments.engine import COUNTER_HELP as EXPERIMENT_COUNTERS
from cognitionos.flags.engine import _COUNTER_HELP as FLAG_COUNTERS
from cognitionos.integrations.prometheus import EngineCollector
from cognitionos.metrics import CounterSet
from cognitionos.ratelimit.engine import COUNTER_HELP as RATELIMIT_COUNTERS

if TYPE_CHECKING:
    from cognitionos.server._state import ServerState

__all__ = ["PRICING_COUNTERS", "AUTOSCALE_COUNTERS", "ServerCollector"]

log = logging.getLogger("cognitionos.server")

PRICING_COUNTERS = {
    "elasticity_fits": "Price elasticity regressions fitted",
    "clv_fits": "CLV models fitted (BG/NBD or Pareto/NBD, with Gamma-Gamma when spend is given)",
    "clv_predictions": "CLV prediction requests answered",
    "price_decisions": "Optimal prices computed",
}
AUTOSCALE_COUNTERS = {
    "decisions": "HPA decisions computed (/v1/autoscale/recommend)",
    "simulations": "Load traces replayed through a policy (/v1/autoscale/simulate)",
}


class ServerCollector:
    """A Prometheus collector over one :class:`ServerState` (register it once per app)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def counter_sets(self) -> list[Any]:
        """The sets exposed now: WAF, rate limit (the API's limiter and the guards'), flags,
        experiments, APM, pricing, autoscale."""
        state = self.state
        limiters = [state.limiter.counters]
        if state.guard_limiter is not state.limiter:  # with Redis the guards have their own
            limiters.append(state.guard_limiter.counters)
        return [
            state.firewall.counters,
            CounterSet.merged("ratelimit", limiters, names=RATELIMIT_COUNTERS),
            CounterSet.merged(
                "flags",
                [e.counters for e in list(state._flags.values())],
                names=FLAG_COUNTERS,
                help=FLAG_COUNTERS,
            ),
            CounterSet.merged(
                "experiments",
                [e.counters for e in list(state._experiments.values())],
                names=EXPERIMENT_COUNTERS,
                help=EXPERIMENT_COUNTERS,
            ),
            state.tracer_provider.counters,
            state.latency.counters,
            state.engine_counters["pricing"],
            state.engine_counters["autoscale"],
        ]

    def collect(self) -> Iterator[Any]:
        """Called by prometheus_client at scrape time."""
        yield from EngineCollector(*self.counter_sets()).collect()
        settings = self.state.settings
        if settings.backup_dir:
            from cognitionos.dr import BackupManager

            try:
                with BackupManager(
                    settings.database_url, target="file://" + settings.backup_dir
                ) as manager:
                    yield from EngineCollector(manager.gauges()).collect()
            except CognitionError as exc:  # a scrape never fails for the catalog
                log.warning("DR gauges not read: %s", exc)

    def describe(self) -> Iterator[Any]:
        """Nothing up front: the names are known at scrape time."""
        return iter(())
