"""``/v1/pricing``: price elasticity, the optimal price and customer lifetime value, computed on
the data in the request (nothing is stored, so nothing is audited).

Inputs are bounded (:data:`MAX_ROWS` observations or customers, a bootstrap of at most
:data:`MAX_BOOTSTRAP` resamples) and every fit runs off the event loop under the compute
limiter, so a large request delays only other computations, never the API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cognitionos.server._compute import offload, plain
from cognitionos.server._http import Principal, require, state_of
from cognitionos.server._problems import ApiError

__all__ = ["MAX_BOOTSTRAP", "MAX_ROWS", "router"]

router = APIRouter(prefix="/v1/pricing", tags=["pricing"])

#: most observations (elasticity) or customers (CLV) one request may carry
MAX_ROWS = 20_000
MAX_BOOTSTRAP = 200

Finite = Annotated[float, Field(allow_inf_nan=False)]
Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Column = Annotated[list[Finite], Field(min_length=3, max_length=MAX_ROWS)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Observations(Strict):
    prices: Column
    quantities: Column
    robust: bool = False
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    zero_quantities: Literal["error", "drop"] = "error"
    bootstrap: Annotated[int, Field(ge=0, le=MAX_BOOTSTRAP)] = 0

    @model_validator(mode="after")
    def _same_length(self) -> Observations:
        if len(self.prices) != len(self.quantities):
            raise ValueError(
                f"prices ({len(self.prices)}) and quantities ({len(self.quantities)}) "
                "must have the same length"
            )
        return self


class OptimalPrice(Strict):
    elasticity: Finite | None = Field(
        None, description="a constant price elasticity; or give observations"
    )
    observations: Observations | None = Field(
        None, description="(price, quantity) data to estimate the elasticity from first"
    )
    unit_cost: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    bounds: tuple[Price, Price] | None = None
    objective: Literal["profit", "revenue"] = "profit"
    ladder: Annotated[list[Price], Field(min_length=1, max_length=1000)] | None = None
    charm_endings: (
        Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=1, max_length=10)]
        | None
    ) = None

    @model_validator(mode="after")
    def _one_source(self) -> OptimalPrice:
        if (self.elasticity is None) == (self.observations is None):
            raise ValueError("give exactly one of elasticity or observations")
        return self


class RFMRow(Strict):
    frequency: Annotated[int, Field(ge=0, le=1_000_000)]
    recency: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    T: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    monetary_value: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


Rows = Annotated[list[RFMRow], Field(min_length=1, max_length=MAX_ROWS)]


class CLVFit(Strict):
    model: Literal["bg_nbd", "pareto_nbd"] = "bg_nbd"
    rows: Annotated[list[RFMRow], Field(min_length=3, max_length=MAX_ROWS)]
    penalizer: Annotated[float, Field(ge=0, le=100)] = 0.0


class CLVPredict(Strict):
    transaction_model: dict[str, Any] = Field(description="`transaction_model` of a fit")
    spend_model: dict[str, Any] | None = Field(
        None, description="`spend_model` of a fit; needed for lifetime values"
    )
    rows: Rows
    horizon: Annotated[float, Field(gt=0, le=10_000)] = Field(
        52.0, description="expected purchases over this many time units"
    )
    periods: Annotated[int, Field(ge=1, le=240)] = 12
    period_length: Annotated[float, Field(gt=0, le=1000)] = 52 / 12
    discount_rate: Annotated[float, Field(ge=0, le=1)] = 0.01


def _count(request: Request, name: str) -> None:
    """One more computation of ``name`` on the server's ``/metrics``."""
    state_of(request).engine_counters["pricing"].inc(name)


def _estimate(obs: Observations) -> Any:
    from cognitionos.pricing import estimate_elasticity

    return estimate_elasticity(
        obs.prices,
        obs.quantities,
        robust=obs.robust,
        confidence=obs.confidence,
        zero_quantities=obs.zero_quantities,
        bootstrap=obs.bootstrap,
    )


@router.post("/elasticity", summary="Price elasticity from (price, quantity) observations")
async def elasticity(
    request: Request,
    body: Observations,
    _p: Annotated[Principal, Depends(require("pricing:compute"))],
) -> dict[str, Any]:
    """Log-log regression of quantity on price (HC3 standard errors with ``robust``)."""
    result = await offload(request, _estimate, body)
    doc: dict[str, Any] = plain(result.as_dict())
    _count(request, "elasticity_fits")
    return doc


@router.post("/optimal-price", summary="The profit- or revenue-maximising price")
async def optimal(
    request: Request,
    body: OptimalPrice,
    _p: Annotated[Principal, Depends(require("pricing:compute"))],
) -> dict[str, Any]:
    """Under constant-elasticity demand, given as a number or estimated from observations."""
    from cognitionos.pricing import optimal_price

    def run() -> dict[str, Any]:
        estimate = _estimate(body.observations) if body.observations is not None else None
        decision = optimal_price(
            estimate if estimate is not None else body.elasticity,
            unit_cost=body.unit_cost,
            bounds=body.bounds,
            objective=body.objective,
            ladder=body.ladder,
            charm_endings=body.charm_endings,
        )
        doc: dict[str, Any] = {"decision": plain(decision.as_dict())}
        doc["elasticity"] = plain(estimate.as_dict()) if estimate is not None else None
        return doc

    result: dict[str, Any] = await offload(request, run)
    if body.observations is not None:
        _count(request, "elasticity_fits")
    _count(request, "price_decisions")
    return result


def _columns(rows: list[RFMRow]) -> dict[str, list[float]]:
    return {
        "frequency": [float(r.frequency) for r in rows],
        "recency": [r.recency for r in rows],
        "T": [r.T for r in rows],
    }


@router.post("/clv/fit", summary="Fit BG/NBD or Pareto/NBD (and Gamma-Gamma) to RFM rows")
async def clv_fit(
    request: Request, body: CLVFit, _p: Annotated[Principal, Depends(require("pricing:compute"))]
) -> dict[str, Any]:
    """The fitted models as documents that ``/v1/pricing/clv/predict`` reads back.

    A Gamma-Gamma spend model is fitted as well when every row has ``monetary_value``.
    """
    from cognitionos.pricing import BetaGeoModel, GammaGammaModel, ParetoNBDModel

    def run() -> dict[str, Any]:
        cols = _columns(body.rows)
        cls = BetaGeoModel if body.model == "bg_nbd" else ParetoNBDModel
        model = cls(penalizer=body.penalizer).fit(cols["frequency"], cols["recency"], cols["T"])
        spend = None
        if all(r.monetary_value is not None for r in body.rows):
            spend = GammaGammaModel(penalizer=body.penalizer).fit(
                cols["frequency"], [float(r.monetary_value or 0.0) for r in body.rows]
            )
        return {
            "transaction_model": plain(model.to_dict()),
            "spend_model": plain(spend.to_dict()) if spend is not None else None,
        }

    result: dict[str, Any] = await offload(request, run)
    _count(request, "clv_fits")
    return result


@router.post("/clv/predict", summary="Expected purchases, P(alive) and lifetime value per row")
async def clv_predict(
    request: Request,
    body: CLVPredict,
    _p: Annotated[Principal, Depends(require("pricing:compute"))],
) -> dict[str, Any]:
    from cognitionos.pricing import (
        BetaGeoModel,
        GammaGammaModel,
        ParetoNBDModel,
        customer_lifetime_value,
    )

    kinds: dict[str, type[BetaGeoModel] | type[ParetoNBDModel]] = {
        "bg_nbd": BetaGeoModel,
        "pareto_nbd": ParetoNBDModel,
    }
    cls = kinds.get(str(body.transaction_model.get("model")))
    if cls is None:
        raise ApiError(422, f"transaction_model must be one of {sorted(kinds)} (a fit's document)")

    def run() -> dict[str, Any]:
        model = cls.from_dict(body.transaction_model)
        cols = _columns(body.rows)
        f, r, t = cols["frequency"], cols["recency"], cols["T"]
        import warnings

        from cognitionos.pricing import OneTimeBuyerWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OneTimeBuyerWarning)  # said in "notes" instead
            alive = model.probability_alive(f, r, t)
        one_time = sum(1 for v in f if v == 0)
        out: dict[str, Any] = {
            "expected_purchases": plain(
                model.conditional_expected_purchases(body.horizon, f, r, t)
            ),
            "probability_alive": plain(alive),
            "lifetime_value": None,
        }
        if one_time and model.KIND == "bg_nbd":
            out["notes"] = [
                f"{one_time} row(s) with frequency 0 get probability_alive = 1 under BG/NBD; "
                "fit mbg_nbd to let them drop out"
            ]
        if body.spend_model is not None:
            spend = GammaGammaModel.from_dict(body.spend_model)
            money = [row.monetary_value for row in body.rows]
            if any(m is None for m in money):
                raise ApiError(422, "lifetime values need monetary_value on every row")
            out["lifetime_value"] = plain(
                customer_lifetime_value(
                    model,
                    spend,
                    f,
                    r,
                    t,
                    [float(m or 0.0) for m in money],
                    periods=body.periods,
                    period_length=body.period_length,
                    discount_rate=body.discount_rate,
                )
            )
        return out

    result: dict[str, Any] = await offload(request, run)
    _count(request, "clv_predictions")
    return result
