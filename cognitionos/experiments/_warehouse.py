"""Warehouse-native statistics: per-arm sums computed inside the user's database.

Events stay where they are; one query per metric returns ``arms`` rows. The semantics are
the ingestion path's (:mod:`cognitionos.experiments._ingest`), so both give the same numbers
for the same events:

- a unit's arm is the variant of its first exposure (earliest timestamp; ties broken by
  the smallest variant name), within ``[since, until)``;
- metric rows are de-duplicated by ``(unit, event id)`` inside the SQL (the copy with the
  earliest timestamp counts; event ids must not be NULL);
- a metric row counts when its timestamp is at or after the unit's first exposure;
- per unit, values are summed and turned into y (0/1 for binomial, capped total
  otherwise) and d (capped denominator total, ratio metrics); the final ``GROUP BY
  variant`` returns COUNT, SUM(y), SUM(y*y), SUM(d), SUM(d*d), SUM(y*d). Units without
  metric rows count with y = d = 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.experiments._summary import ArmSummary
from cognitionos.experiments.models import Metric

__all__ = ["DEFAULT_COLUMNS", "WarehouseSnapshot", "summaries_from_sql", "warehouse_snapshot"]

#: logical column -> column name used when ``columns`` does not say otherwise
DEFAULT_COLUMNS = {
    "unit_id": "unit_id",
    "variant": "variant",
    "timestamp": "timestamp",
    "experiment": "experiment",
    "metric": "metric",
    "value": "value",
    "event_id": "event_id",
    "denominator": "denominator",
}


def _metric(m: Metric | Mapping[str, Any] | str) -> Metric:
    if isinstance(m, Metric):
        return m
    from pydantic import ValidationError

    try:
        return Metric.model_validate({"name": m} if isinstance(m, str) else m)
    except ValidationError as exc:
        raise ConfigurationError(f"metric {m!r:.80}: {exc.errors()[0]['msg']}") from None


#: sums per (arm, metric) row of the query: y, y^2, d, d^2, y d, x, x^2, x y, then ratio_pre
_N_SUMS = 14


def _clip(sa: Any, expr: Any, lo: float | None, hi: float | None) -> Any:
    whens = []
    if lo is not None:
        whens.append((expr < lo, sa.literal(float(lo))))
    if hi is not None:
        whens.append((expr > hi, sa.literal(float(hi))))
    return sa.case(*whens, else_=expr) if whens else expr


def summaries_from_sql(
    engine_or_url: Any,
    exposures_table: str,
    events_table: str,
    *,
    metrics: Sequence[Metric | Mapping[str, Any] | str],
    experiment: str | None = None,
    arms: Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
    columns: Mapping[str, str] | None = None,
    schema: str | None = None,
    cuped_lookback: Any = None,
) -> list[ArmSummary]:
    """Per-arm, per-metric :class:`ArmSummary` computed by the database (SQLAlchemy Core).

    ``exposures_table`` has unit id, variant and timestamp columns (and an experiment
    column when ``experiment`` is given); ``events_table`` has unit id, metric, value,
    event id and timestamp (and denominator for ratio metrics). Column names default to
    :data:`DEFAULT_COLUMNS`; ``columns`` renames any of them. ``since`` is the lookback
    limit and ``until`` the end (compared with the timestamp columns as they are: numbers,
    dates, ...). ``arms`` lists arms to report even when nobody saw them (with ``n=0``).

    ``cuped_lookback`` (in the timestamp's units: a number, or a ``timedelta`` for
    timestamp columns) turns on CUPED covariates: a unit's covariate for a metric is the
    same per-unit value (0/1 or capped total) computed over its events in
    ``[first exposure - cuped_lookback, first exposure)``, giving ``pre_sum``,
    ``pre_sum_sq`` and ``cross_sum``; for a ratio metric these hold the pre-period
    numerator and ``ratio_pre`` the pre-period denominator (capped like the denominator)
    with its cross sums, for ratio CUPED. Any SQLAlchemy dialect
    works; PostgreSQL and SQLite are tested::

        summaries_from_sql("postgresql+psycopg://wh/db", "exposures", "events",
                           experiment="checkout-v2", metrics=["revenue"], since=t0)
    """
    q = _Query.make(
        metrics, experiment, since, until, columns, schema, cuped_lookback,
        exposures_table, events_table,
    )  # fmt: skip
    with _connection(engine_or_url) as engine:
        n_by_arm, sums = q.run(engine)
    return q.summaries(n_by_arm, sums, arms)


@attrs.frozen(slots=True)
class WarehouseSnapshot:
    """Summaries computed from the warehouse up to ``watermark`` (the largest value of the
    watermark column seen), refreshable incrementally with :meth:`refresh`."""

    summaries: tuple[ArmSummary, ...]
    watermark: Any
    _query: Any = attrs.field(repr=False)
    _n: Mapping[str, int] = attrs.field(repr=False)
    _sums: Mapping[tuple[str, str], tuple[float, ...]] = attrs.field(repr=False)
    _arms: tuple[str, ...] | None = attrs.field(repr=False)

    def refresh(self, engine_or_url: Any) -> WarehouseSnapshot:
        """Fold in the rows whose watermark is above :attr:`watermark`.

        Only the units with such rows are recomputed: their contribution over all their
        rows up to the new watermark replaces their contribution up to the old one (per-unit
        values are not additive: a capped total or a 0/1 conversion must be recomputed), so
        the cost follows the new rows, not the table. Rows must arrive with a watermark
        above every earlier one (an ingestion time or a monotonically loaded partition id).
        """
        q: _Query = self._query
        with _connection(engine_or_url) as engine:
            new_wm = q.max_watermark(engine)
            if new_wm is None or (self.watermark is not None and new_wm <= self.watermark):
                return self
            touched = q.touched(self.watermark, new_wm)
            n_new, s_new = q.run(engine, bound=new_wm, touched=touched)
            n_old, s_old = (
                ({}, {})
                if self.watermark is None
                else q.run(engine, bound=self.watermark, touched=touched)
            )
        n = dict(self._n)
        for arm, count in n_new.items():
            n[arm] = n.get(arm, 0) + count
        for arm, count in n_old.items():
            n[arm] = n.get(arm, 0) - count
        sums = {k: list(v) for k, v in self._sums.items()}
        for sign, part in ((1.0, s_new), (-1.0, s_old)):
            for k, row in part.items():
                acc = sums.setdefault(k, [0.0] * len(row))
                for j, val in enumerate(row):
                    acc[j] += sign * float(val or 0.0)
        frozen = {k: tuple(v) for k, v in sums.items()}
        return WarehouseSnapshot(
            tuple(q.summaries(n, frozen, self._arms)), new_wm, q, n, frozen, self._arms
        )


def warehouse_snapshot(
    engine_or_url: Any,
    exposures_table: str,
    events_table: str,
    *,
    metrics: Sequence[Metric | Mapping[str, Any] | str],
    experiment: str | None = None,
    arms: Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
    columns: Mapping[str, str] | None = None,
    schema: str | None = None,
    cuped_lookback: Any = None,
) -> WarehouseSnapshot:
    """:func:`summaries_from_sql` that remembers its watermark, for incremental refresh.

    The watermark column (role ``watermark``, default the ``timestamp`` column) must exist
    in both tables; :meth:`WarehouseSnapshot.refresh` later reads only the units that have
    rows above it::

        snap = warehouse_snapshot(wh, "exposures", "events", metrics=["revenue"],
                                  columns={"watermark": "loaded_at"})
        snap = snap.refresh(wh)          # after the next load
        analyze(snap.summaries)
    """
    q = _Query.make(
        metrics, experiment, since, until, columns, schema, cuped_lookback,
        exposures_table, events_table,
    )  # fmt: skip
    with _connection(engine_or_url) as engine:
        wm = q.max_watermark(engine)
        n, sums = q.run(engine, bound=wm) if wm is not None else ({}, {})
    frozen = {k: tuple(float(x or 0.0) for x in v) for k, v in sums.items()}
    arm_list = None if arms is None else tuple(arms)
    return WarehouseSnapshot(tuple(q.summaries(n, frozen, arm_list)), wm, q, n, frozen, arm_list)


class _connection:
    """An engine for a URL (disposed on exit) or the caller's engine as it is."""

    def __init__(self, engine_or_url: Any) -> None:
        self.arg = engine_or_url
        self.engine: Any = None

    def __enter__(self) -> Any:
        sa = require("sqlalchemy", extra="sql", purpose="warehouse-native experiment statistics")
        if not isinstance(self.arg, str):
            self.engine = self.arg
            return self.engine
        url = self.arg
        for bare in ("postgresql://", "postgres://"):
            if url.startswith(bare):
                url = "postgresql+psycopg://" + url[len(bare) :]
        try:
            self.engine = sa.create_engine(url)
        except (ValueError, ModuleNotFoundError, sa.exc.ArgumentError) as exc:
            raise ConfigurationError(f"cannot open warehouse URL: {exc}") from None
        return self.engine

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.arg, str) and self.engine is not None:
            self.engine.dispose()


class _Query:
    """The statements of one warehouse analysis, optionally restricted to some units and to
    rows at or below a watermark (what incremental refresh needs)."""

    def __init__(
        self,
        *,
        specs: list[Metric],
        experiment: str | None,
        since: Any,
        until: Any,
        cols: dict[str, str],
        x: Any,
        e: Any,
        lookback: Any,
    ) -> None:
        self.specs = specs
        self.experiment = experiment
        self.since = since
        self.until = until
        self.cols = cols
        self.x = x
        self.e = e
        self.lookback = lookback

    @classmethod
    def make(
        cls,
        metrics: Sequence[Any],
        experiment: str | None,
        since: Any,
        until: Any,
        columns: Mapping[str, str] | None,
        schema: str | None,
        cuped_lookback: Any,
        exposures_table: str,
        events_table: str,
    ) -> _Query:
        sa = require("sqlalchemy", extra="sql", purpose="warehouse-native experiment statistics")
        specs = [_metric(m) for m in metrics]
        if not specs:
            raise ConfigurationError("summaries_from_sql needs at least one metric")
        unknown = set(columns or {}) - set(DEFAULT_COLUMNS) - {"watermark"}
        if unknown:
            raise ConfigurationError(
                f"unknown column roles {sorted(unknown)}; roles are "
                f"{sorted([*DEFAULT_COLUMNS, 'watermark'])}"
            )
        cols = {**DEFAULT_COLUMNS, **dict(columns or {})}
        cols.setdefault("watermark", cols["timestamp"])
        exp_cols = {cols["unit_id"], cols["variant"], cols["timestamp"], cols["watermark"]}
        if experiment is not None:
            exp_cols.add(cols["experiment"])
        ev_cols = {
            cols["unit_id"], cols["metric"], cols["value"], cols["event_id"], cols["timestamp"],
            cols["watermark"],
        }  # fmt: skip
        if any(m.kind == "ratio" for m in specs):
            ev_cols.add(cols["denominator"])
        x = sa.table(exposures_table, *(sa.column(c) for c in sorted(exp_cols)), schema=schema)
        e = sa.table(events_table, *(sa.column(c) for c in sorted(ev_cols)), schema=schema)
        return cls(
            specs=specs, experiment=experiment, since=since, until=until, cols=cols, x=x, e=e,
            lookback=cuped_lookback,
        )  # fmt: skip

    def max_watermark(self, engine: Any) -> Any:
        sa = require("sqlalchemy")
        xw, ew = self.x.c[self.cols["watermark"]], self.e.c[self.cols["watermark"]]
        xq = sa.select(sa.func.max(xw))
        if self.experiment is not None:
            xq = xq.where(self.x.c[self.cols["experiment"]] == self.experiment)
        eq = sa.select(sa.func.max(ew))
        try:
            with engine.connect() as conn:
                vals = [conn.execute(xq).scalar(), conn.execute(eq).scalar()]
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"warehouse query failed: {getattr(exc, 'orig', exc)}") from exc
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    def touched(self, old: Any, new: Any) -> Any:
        """Units with rows whose watermark is in (old, new]."""
        sa = require("sqlalchemy")
        c = self.cols
        xw, ew = self.x.c[c["watermark"]], self.e.c[c["watermark"]]
        xs = sa.select(self.x.c[c["unit_id"]].label("u")).where(xw <= new)
        es = sa.select(self.e.c[c["unit_id"]].label("u")).where(ew <= new)
        if old is not None:
            xs, es = xs.where(xw > old), es.where(ew > old)
        if self.experiment is not None:
            xs = xs.where(self.x.c[c["experiment"]] == self.experiment)
        return sa.union(xs, es).subquery("touched")

    def run(
        self, engine: Any, *, bound: Any = None, touched: Any = None
    ) -> tuple[dict[str, int], dict[tuple[str, str], tuple[Any, ...]]]:
        sa = require("sqlalchemy")
        units_q, sums_q = self._statements(sa, bound, touched)
        try:
            with engine.connect() as conn:
                n_by_arm = {str(r[0]): int(r[1]) for r in conn.execute(units_q)}
                sums = {(str(r[0]), str(r[1])): tuple(r[2:]) for r in conn.execute(sums_q)}
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"warehouse query failed: {getattr(exc, 'orig', exc)}") from exc
        return n_by_arm, sums

    def summaries(
        self,
        n_by_arm: Mapping[str, int],
        sums: Mapping[tuple[str, str], Sequence[Any]],
        arms: Sequence[str] | None,
    ) -> list[ArmSummary]:
        names = list(arms) if arms is not None else []
        names += sorted(k for k, v in n_by_arm.items() if k not in names and v)
        out: list[ArmSummary] = []
        for m in self.specs:
            for name in names:
                r = [float(v or 0.0) for v in (sums.get((name, m.name)) or (0.0,) * _N_SUMS)]
                cuped = self.lookback is not None
                ratio_cuped = cuped and m.kind == "ratio"
                out.append(
                    ArmSummary(
                        arm=name,
                        metric=m.name,
                        n=n_by_arm.get(name, 0),
                        kind=m.kind,
                        sum=r[0],
                        sum_sq=r[1],
                        denom_sum=r[2],
                        denom_sum_sq=r[3],
                        num_denom_sum=r[4],
                        pre_sum=r[5] if cuped else 0.0,
                        pre_sum_sq=r[6] if cuped else 0.0,
                        cross_sum=r[7] if cuped else 0.0,
                        ratio_pre=tuple(r[8:14]) if ratio_cuped else (),
                    )
                )
        return out

    def _statements(self, sa: Any, bound: Any, touched: Any) -> tuple[Any, Any]:
        c, x, e, specs = self.cols, self.x, self.e, self.specs
        since, until, lookback = self.since, self.until, self.lookback
        xu, xv, xt = x.c[c["unit_id"]], x.c[c["variant"]], x.c[c["timestamp"]]

        def window(ts: Any, lower: Any = since) -> list[Any]:
            out = []
            if lower is not None:
                out.append(ts >= lower)
            if until is not None:
                out.append(ts < until)
            return out

        x_where = window(xt)
        if self.experiment is not None:
            x_where.append(x.c[c["experiment"]] == self.experiment)
        if bound is not None:
            x_where.append(x.c[c["watermark"]] <= bound)
        if touched is not None:
            x_where.append(xu.in_(sa.select(touched.c.u)))
        first = (
            sa.select(xu.label("unit_id"), sa.func.min(xt).label("first_ts"))
            .where(*x_where)
            .group_by(xu)
            .subquery("first_exposure")
        )
        arm = (
            sa.select(xu.label("unit_id"), sa.func.min(xv).label("variant"), first.c.first_ts)
            .join_from(x, first, sa.and_(xu == first.c.unit_id, xt == first.c.first_ts))
            .where(*x_where)
            .group_by(xu, first.c.first_ts)
            .subquery("arm")
        )
        eu, et, em = e.c[c["unit_id"]], e.c[c["timestamp"]], e.c[c["metric"]]
        ratio = any(m.kind == "ratio" for m in specs)
        value = sa.cast(e.c[c["value"]], sa.Float)
        den = sa.cast(e.c[c["denominator"]], sa.Float) if ratio else sa.literal(0.0)
        # with CUPED the pre-period events (before since) are needed too
        ev_lower = since if lookback is None or since is None else since - lookback
        ev_where = [em.in_([m.name for m in specs]), *window(et, ev_lower)]
        if bound is not None:
            ev_where.append(e.c[c["watermark"]] <= bound)
        if touched is not None:
            ev_where.append(eu.in_(sa.select(touched.c.u)))
        dedup = (
            sa.select(
                eu.label("unit_id"),
                em.label("metric"),
                sa.func.min(value).label("v"),
                sa.func.min(den).label("d"),
                sa.func.min(et).label("ts"),
            )
            .where(*ev_where)
            .group_by(eu, em, e.c[c["event_id"]])
            .subquery("dedup")
        )
        post = dedup.c.ts >= arm.c.first_ts
        zero = sa.literal(0.0)
        if lookback is None:
            join_on = sa.and_(dedup.c.unit_id == arm.c.unit_id, post)
            pre_v = pre_d = zero
        else:
            join_on = sa.and_(
                dedup.c.unit_id == arm.c.unit_id, dedup.c.ts >= arm.c.first_ts - lookback
            )
            pre_v = sa.case((~post, dedup.c.v), else_=zero)
            pre_d = sa.case((~post, dedup.c.d), else_=zero)
        unit_tot = (
            sa.select(
                arm.c.unit_id,
                arm.c.variant,
                dedup.c.metric,
                sa.func.sum(sa.case((post, dedup.c.v), else_=zero)).label("num"),
                sa.func.sum(sa.case((post, dedup.c.d), else_=zero)).label("den"),
                sa.func.sum(pre_v).label("pre"),
                sa.func.sum(pre_d).label("pre_den"),
                sa.func.sum(sa.case((post, 1), else_=0)).label("post_rows"),
            )
            .join_from(arm, dedup, join_on)
            .group_by(arm.c.unit_id, arm.c.variant, dedup.c.metric)
            .subquery("unit_total")
        )
        # y, d and x per unit, by the metric's kind and caps (one CASE arm per metric)
        num, dsum, pre = unit_tot.c.num, unit_tot.c.den, unit_tot.c.pre
        y_cases, d_cases, x_cases, e_cases = [], [], [], []
        for m in specs:
            is_m = unit_tot.c.metric == m.name
            if m.kind == "binomial":
                y_cases.append((is_m, sa.case((num > 0, sa.literal(1.0)), else_=zero)))
                x_cases.append((is_m, sa.case((pre > 0, sa.literal(1.0)), else_=zero)))
            else:
                # a unit with pre-period rows only has no post value: 0, as with no rows
                y_cases.append(
                    (is_m, sa.case((unit_tot.c.post_rows > 0, _clip(sa, num, m.cap_lower,
                                                                    m.cap_upper)), else_=zero))
                )  # fmt: skip
                x_cases.append((is_m, _clip(sa, pre, m.cap_lower, m.cap_upper)))
            if m.kind == "ratio":
                d_cases.append(
                    (is_m, _clip(sa, dsum, m.denominator_cap_lower, m.denominator_cap_upper))
                )
                # ratio CUPED: the pre-period denominator, capped like the denominator
                e_cases.append(
                    (is_m, _clip(sa, unit_tot.c.pre_den, m.denominator_cap_lower,
                                 m.denominator_cap_upper))
                )  # fmt: skip
        y = sa.case(*y_cases, else_=zero)
        d = sa.case(*d_cases, else_=zero) if d_cases else zero
        xv_ = sa.case(*x_cases, else_=zero) if lookback is not None else zero
        ev_ = sa.case(*e_cases, else_=zero) if lookback is not None and e_cases else zero
        per_unit = sa.select(
            unit_tot.c.variant,
            unit_tot.c.metric,
            y.label("y"),
            d.label("d"),
            xv_.label("x"),
            ev_.label("e"),
        ).subquery("per_unit")
        py, pd, px, pe = per_unit.c.y, per_unit.c.d, per_unit.c.x, per_unit.c.e
        # one GROUP BY over (arm, metric) for the sums; units without rows add 0 (caps hold 0)
        sums_q = sa.select(
            per_unit.c.variant,
            per_unit.c.metric,
            sa.func.sum(py),
            sa.func.sum(py * py),
            sa.func.sum(pd),
            sa.func.sum(pd * pd),
            sa.func.sum(py * pd),
            sa.func.sum(px),
            sa.func.sum(px * px),
            sa.func.sum(px * py),
            # ratio CUPED (ArmSummary.ratio_pre): e, e^2, d e, x e, y e, x d
            sa.func.sum(pe),
            sa.func.sum(pe * pe),
            sa.func.sum(pd * pe),
            sa.func.sum(px * pe),
            sa.func.sum(py * pe),
            sa.func.sum(px * pd),
        ).group_by(per_unit.c.variant, per_unit.c.metric)
        units_q = sa.select(arm.c.variant, sa.func.count()).group_by(arm.c.variant)
        return units_q, sums_q
