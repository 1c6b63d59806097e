"""Predictive and cost-aware policies: provision ahead of the start-up delay.

Model (stated so results can be reproduced and criticised):

* **seasonal profile**: for each minute of the season (a day by default), the median over
  the last ``history_days`` seasons of the ``smoothing_minutes`` rolling mean of the observed
  load; refitted with numpy once per completed season, from observations only (causal);
* **level**: the ratio of the recent observed mean to the profile over the same minutes
  (tracks days that run hotter or colder than usual, and outages);
* **point forecast** for minute m: level x profile[m] (before a full season is observed:
  the recent mean);
* **headroom**: z x sqrt(forecast), z the ``quantile`` of past standardized errors
  (actual - forecast) / sqrt(forecast) at the same lead (Poisson-like scaling; empirical,
  recomputed hourly over the history window), so bursts are priced from data;
* **lead**: replicas asked for now are ready after ``startup_delay``; the decision covers
  every minute up to then, from data that is ``metric_lag`` old;
* **scale-down**: the largest recommendation of the last ``scale_down_window`` seconds
  (damps direction flips); the wrapped HPA's decision is a floor under everything.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from cognitionos.autoscale.hpa import HPAPolicy
from cognitionos.autoscale.models import Decision, ScalingInput
from cognitionos.errors import ConfigurationError

__all__ = ["CostAwarePolicy", "PredictivePolicy"]


class PredictivePolicy:
    """Seasonal forecast + empirical headroom, scaled ahead of the start-up delay, HPA floor.

    The observed request rate is read from the ``metric`` external metric of the input
    (milli-requests per minute, summed)::

        p = PredictivePolicy(capacity_per_replica=10.0, startup_delay=120, metric_lag=60)
        d = p.decide(inp)   # Decision(replicas, reason="Forecast" | "HPAFloor" | ...)
    """

    def __init__(
        self,
        *,
        capacity_per_replica: float,
        min_replicas: int = 2,
        max_replicas: int = 100,
        startup_delay: float = 120.0,
        metric_lag: float = 60.0,
        target_utilization: float = 1.0,
        quantile: float = 0.99,
        season_minutes: int = 1440,
        history_days: int = 7,
        smoothing_minutes: int = 15,
        level_minutes: int = 10,
        scale_down_window: float = 900.0,
        floor: HPAPolicy | None = None,
        metric: str = "requests_per_minute",
    ) -> None:
        if not capacity_per_replica > 0:
            raise ConfigurationError(
                f"capacity_per_replica must be > 0, got {capacity_per_replica!r}"
            )
        if not 0.5 <= quantile < 1:
            raise ConfigurationError(f"quantile must be in [0.5, 1), got {quantile!r}")
        if not 0 < target_utilization <= 1:
            raise ConfigurationError(
                f"target_utilization must be in (0, 1], got {target_utilization!r}"
            )
        if min_replicas < 0 or max_replicas < max(1, min_replicas):
            raise ConfigurationError("need 0 <= min_replicas <= max_replicas, max_replicas >= 1")
        for name, v in (
            ("startup_delay", startup_delay),
            ("metric_lag", metric_lag),
            ("scale_down_window", scale_down_window),
        ):
            if v < 0:
                raise ConfigurationError(f"{name} must be >= 0, got {v!r}")
        if season_minutes < 2 or history_days < 1 or smoothing_minutes < 1 or level_minutes < 1:
            raise ConfigurationError(
                "season_minutes, history_days, smoothing and level windows must be positive"
            )
        self.capacity_per_replica = float(capacity_per_replica)
        self._min = min_replicas
        self._max = max_replicas
        self.lead = math.ceil(startup_delay / 60) + math.ceil(metric_lag / 60)
        self.lag = math.ceil(metric_lag / 60)
        self.target_utilization = target_utilization
        self.quantile = quantile
        self.season = season_minutes
        self.history_days = history_days
        self.smoothing = smoothing_minutes
        self.level_minutes = level_minutes
        self.scale_down_window = scale_down_window
        self.floor = (
            floor
            if floor is not None
            else HPAPolicy(
                min_replicas=min_replicas, max_replicas=max_replicas, target_utilization=0.9
            )
        )
        self.metric = metric
        self.reset()

    @property
    def min_replicas(self) -> int:
        """Lowest replica count recommended."""
        return self._min

    @property
    def max_replicas(self) -> int:
        """Highest replica count recommended."""
        return self._max

    def reset(self) -> None:
        """Forget the observed history and the fitted model."""
        self.observed: list[float] = []
        self._first_minute: int | None = None
        self._profile: list[float] | None = None
        self._fitted_seasons = 0
        self._pending: deque[tuple[int, float]] = deque()  # (target minute, point forecast)
        self._ratios: deque[float] = deque(maxlen=self.season * self.history_days)
        self._z = 3.0  # until a day of forecast errors is known
        self._since_refit = 0
        self._recent: deque[tuple[float, int]] = deque()
        self.floor.reset()

    # -- model --------------------------------------------------------------------------

    def _observe(self, minute: int, value: float) -> None:
        if self._first_minute is None:
            self._first_minute = minute
        index = minute - self._first_minute
        if index < len(self.observed):
            return
        last = self.observed[-1] if self.observed else value
        while len(self.observed) < index:
            self.observed.append(last)  # decisions sparser than a minute: hold the last value
        self.observed.append(value)
        while self._pending and self._pending[0][0] <= minute:
            target, predicted = self._pending.popleft()
            if target == minute:
                # Poisson-like scaling: bursts grow with the square root of the level
                self._ratios.append((value - predicted) / math.sqrt(max(predicted, 1.0)))
        seasons = len(self.observed) // self.season
        if seasons > self._fitted_seasons:
            self._fit(seasons)
        self._since_refit += 1
        if self._since_refit >= 60 and len(self._ratios) >= 60:
            import numpy as np

            self._z = max(0.0, float(np.quantile(np.fromiter(self._ratios, float), self.quantile)))
            self._since_refit = 0

    def _fit(self, seasons: int) -> None:
        import numpy as np

        use = min(seasons, self.history_days)
        data = np.asarray(
            self.observed[(seasons - use) * self.season : seasons * self.season], float
        )
        kernel = np.ones(self.smoothing) / self.smoothing
        padded = np.concatenate([np.full(self.smoothing - 1, data[0]), data])
        smooth = np.convolve(padded, kernel, mode="valid")
        profile = np.median(smooth.reshape(use, self.season), axis=0)
        self._profile = [float(x) for x in profile]
        self._fitted_seasons = seasons

    def seasonal_profile(self) -> list[float] | None:
        """The fitted per-minute profile of one season (None before a full season)."""
        return None if self._profile is None else list(self._profile)

    @property
    def headroom_z(self) -> float:
        """Current headroom multiplier of sqrt(forecast) (the error quantile)."""
        return self._z

    def point_forecast(self, ahead: int) -> float:
        """Expected load ``ahead`` minutes after the newest observation."""
        if not self.observed:
            return 0.0
        recent = self.observed[-self.level_minutes :]
        mean_recent = sum(recent) / len(recent)
        if self._profile is None or self._first_minute is None:
            return mean_recent
        n = len(self.observed)
        base = [self._profile[(i) % self.season] for i in range(n - len(recent), n)]
        mean_base = sum(base) / len(base)
        level = mean_recent / mean_base if mean_base > 0 else 1.0
        level = min(max(level, 0.0), 10.0)
        return level * self._profile[(n - 1 + ahead) % self.season]

    def required_replicas(self) -> int:
        """Replicas that cover the headroom-adjusted forecast through the start-up delay."""
        point = 0.0
        for ahead in range(self.lag, self.lead + 1):
            point = max(point, self.point_forecast(ahead))
        need = point + self._z * math.sqrt(max(point, 1.0))
        return math.ceil(need / (self.capacity_per_replica * self.target_utilization) - 1e-9)

    # -- decision -----------------------------------------------------------------------

    def decide(self, inp: ScalingInput) -> Decision:
        """Forecast-driven replica count, never below the HPA floor's decision."""
        raw = inp.metrics.get(self.metric)
        if raw is None:
            hpa = self.floor.decide(inp)
            return Decision(hpa.replicas, "HPAFloor (no " + self.metric + ")", metric=hpa.metric)
        series: list[object] = list(raw) if isinstance(raw, (list, tuple)) else [raw]
        try:
            observed = sum(int(v) for v in series) / 1000  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"metric {self.metric!r} must be milli-requests (an integer or a list of them)"
            ) from None
        minute = math.floor(inp.now / 60) - self.lag
        self._observe(minute, observed)
        predicted_minute = minute + self.lead
        self._pending.append((predicted_minute, self.point_forecast(self.lead)))
        want = self.required_replicas()
        hpa = self.floor.decide(inp)
        reason = "Forecast"
        if hpa.replicas > want:
            want, reason = hpa.replicas, "HPAFloor"
        # scale down only to the largest recommendation of the window
        now = inp.now
        self._recent.append((now, want))
        while self._recent and self._recent[0][0] <= now - self.scale_down_window:
            self._recent.popleft()
        stabilized = max(w for _, w in self._recent)
        if stabilized > want:
            want, reason = stabilized, "ScaleDownStabilized"
        if want > self._max:
            return Decision(self._max, "TooManyReplicas", desired=want)
        if want < self._min:
            return Decision(self._min, "TooFewReplicas", desired=want)
        return Decision(want, reason, desired=want)

    def describe(self) -> dict[str, Any]:
        """Parameters, for reports and KEDA rendering."""
        return {
            "capacity_per_replica": self.capacity_per_replica,
            "min_replicas": self._min,
            "max_replicas": self._max,
            "lead_minutes": self.lead,
            "quantile": self.quantile,
            "target_utilization": self.target_utilization,
            "season_minutes": self.season,
            "history_days": self.history_days,
            "scale_down_window": self.scale_down_window,
        }


class CostAwarePolicy(PredictivePolicy):
    """Predictive policy whose headroom quantile comes from prices (the newsvendor rule).

    Holding one more replica for a minute costs its price; leaving load unserved for a minute
    costs ``violation_cost_per_minute``. The cost-minimising quantile of the load is
    ``1 - price_per_minute / violation_cost_per_minute`` (clamped to [0.5, 0.999]).
    ``spot_share`` of the replicas run at ``spot_price`` (the rest on demand); the blended
    price feeds both the quantile and the simulator's cost::

        CostAwarePolicy(capacity_per_replica=10.0, on_demand_price=0.10, spot_price=0.03,
                        spot_share=0.5, violation_cost_per_minute=2.0)
    """

    def __init__(
        self,
        *,
        capacity_per_replica: float,
        on_demand_price: float = 0.10,
        spot_price: float = 0.03,
        spot_share: float = 0.0,
        violation_cost_per_minute: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if on_demand_price < 0 or spot_price < 0 or violation_cost_per_minute <= 0:
            raise ConfigurationError("prices must be >= 0 and violation_cost_per_minute > 0")
        if not 0 <= spot_share <= 1:
            raise ConfigurationError(f"spot_share must be in [0, 1], got {spot_share!r}")
        self.on_demand_price = on_demand_price
        self.spot_price = spot_price
        self.spot_share = spot_share
        self.violation_cost_per_minute = violation_cost_per_minute
        hourly = (1 - spot_share) * on_demand_price + spot_share * spot_price
        q = 1 - (hourly / 60) / violation_cost_per_minute
        kwargs.setdefault("quantile", min(0.999, max(0.5, q)))
        super().__init__(capacity_per_replica=capacity_per_replica, **kwargs)

    @property
    def price_per_replica_hour(self) -> float:
        """Blended hourly price of one replica."""
        return (1 - self.spot_share) * self.on_demand_price + self.spot_share * self.spot_price

    def price_per_replica_minute(self, replicas: int) -> float:
        """What ``replicas`` cost for one minute (used by :func:`simulate`)."""
        return replicas * self.price_per_replica_hour / 60
