"""``cognitionos pricing ...``: RFM summaries, CLV fits and predictions, elasticity, prices.

Files are CSV with a header row. Fitted CLV models are kept in the store (``--store URL``,
else ``$COGNITIONOS_STORE``, else ``sqlite:///cognitionos.db``) under ``pricing:model:NAME``
as small JSON documents (parameters and metadata, no customer data)::

    cognitionos pricing rfm log.csv --customer id --timestamp date --amount amount > rfm.csv
    cognitionos pricing clv fit rfm.csv --model bg_nbd --name cdnow --json
    cognitionos pricing clv predict rfm.csv --name cdnow --horizon 12 --json
    cognitionos pricing elasticity sales.csv --price price --quantity units --robust
    cognitionos pricing optimal-price --elasticity -2.5 --unit-cost 4 --bounds 5 20
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from typing import Any

import click

from cognitionos._cli_common import (
    FINITE,
    CommandGroup,
    echo_json,
    json_option,
    note,
    pick_store,
    progress,
    store_option,
)
from cognitionos.errors import ConfigurationError

__all__ = ["pricing"]

_KEY = "pricing:model:{}"
_MODELS = ("bg_nbd", "pareto_nbd", "gamma_gamma", "bg_bb", "mbg_nbd")


def _read_csv(path: str, columns: list[str] | None = None) -> dict[str, list[str]]:
    """Columns of a CSV file (a progress line on stderr for big files)."""
    try:
        out = _read_columns(path, columns)
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    except csv.Error as exc:
        raise ConfigurationError(f"{path}: not a readable CSV file ({exc})") from None
    if not next(iter(out.values()), []):
        raise ConfigurationError(f"{path}: no rows")
    return out


def _read_columns(path: str, columns: list[str] | None) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        total = sum(1 for _ in fh) - 1
        fh.seek(0)
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise ConfigurationError(f"{path}: empty file (no header row)")
        wanted = columns or list(reader.fieldnames)
        missing = [c for c in wanted if c not in reader.fieldnames]
        if missing:
            raise ConfigurationError(f"{path}: no column(s) {', '.join(map(repr, missing))}")
        out: dict[str, list[str]] = {c: [] for c in wanted}
        for row in progress(reader, total, f"reading {path}", enabled=None):
            for c in wanted:
                value = row[c]
                if value is None:  # a short row
                    raise ConfigurationError(
                        f"{path}: row {reader.line_num - 1} has no column {c!r}"
                    )
                out[c].append(value)
    return out


def _floats(table: dict[str, list[str]], name: str, path: str) -> list[float]:
    values = []
    for i, v in enumerate(table[name]):
        try:
            values.append(float(v))
        except ValueError:
            raise ConfigurationError(
                f"{path}: column {name!r} row {i + 1}: {v!r} is not a number"
            ) from None
    return values


def _model_class(kind: str) -> Any:
    from cognitionos.pricing import (
        BetaGeoBetaBinomModel,
        BetaGeoModel,
        GammaGammaModel,
        ModifiedBetaGeoModel,
        ParetoNBDModel,
    )

    return {
        "bg_nbd": BetaGeoModel,
        "mbg_nbd": ModifiedBetaGeoModel,
        "pareto_nbd": ParetoNBDModel,
        "gamma_gamma": GammaGammaModel,
        "bg_bb": BetaGeoBetaBinomModel,
    }[kind]


@click.group(name="pricing", cls=CommandGroup)
def pricing() -> None:
    """Pricing: RFM summaries, customer lifetime value, elasticity and optimal prices."""


@pricing.command("rfm")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--customer", default="customer", show_default=True, help="Customer id column.")
@click.option("--timestamp", default="timestamp", show_default=True, help="Date/time column.")
@click.option("--amount", default=None, help="Spend column (adds monetary_value).")
@click.option("--timestamp-format", default=None, help="strptime format, e.g. %Y%m%d.")
@click.option("--observation-end", default=None, help="Last date observed (default: last row).")
@click.option("--calibration-end", default=None, help="Split: calibration up to this date.")
@click.option(
    "--time-unit",
    type=click.Choice(["h", "D", "W"]),
    default="D",
    show_default=True,
    help="Unit of recency and T.",
)
@json_option
def rfm(
    path: str,
    customer: str,
    timestamp: str,
    amount: str | None,
    timestamp_format: str | None,
    observation_end: str | None,
    calibration_end: str | None,
    time_unit: str,
    as_json: bool,
) -> None:
    """Per-customer frequency, recency, T (and spend) from a transaction log CSV."""
    from cognitionos.pricing import rfm_summary

    cols = [customer, timestamp] + ([amount] if amount else [])
    table: dict[str, Any] = dict(_read_csv(path, cols))
    if amount:
        table[amount] = _floats(table, amount, path)
    summary = rfm_summary(
        table,
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        observation_end=observation_end,
        calibration_end=calibration_end,
        time_unit=time_unit,
        timestamp_format=timestamp_format,
    )
    rows = list(summary.rows())
    note(f"{len(rows)} customers ({summary.excluded_new_in_holdout} first seen in the holdout)")
    if as_json:
        echo_json(rows)
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=summary.keys(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(out.getvalue())


@pricing.group("clv", cls=CommandGroup)
def clv() -> None:
    """Fit CLV models on an RFM CSV and predict with them."""


@clv.command("fit")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "kind", type=click.Choice(_MODELS), default="bg_nbd", show_default=True)
@click.option("--name", default=None, help="Keep the fitted model in the store under this name.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the model JSON here.")
@click.option("--penalizer", type=FINITE, default=0.0, show_default=True, help="L2 penalty.")
@store_option
@json_option
def clv_fit(
    path: str,
    kind: str,
    name: str | None,
    output: str | None,
    penalizer: float,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Fit a model. Columns: frequency, recency, T (bg_bb: n_periods, optional weights;
    gamma_gamma: frequency, monetary_value)."""
    needed = {
        "bg_nbd": ["frequency", "recency", "T"],
        "mbg_nbd": ["frequency", "recency", "T"],
        "pareto_nbd": ["frequency", "recency", "T"],
        "gamma_gamma": ["frequency", "monetary_value"],
        "bg_bb": ["frequency", "recency", "n_periods"],
    }[kind]
    raw = _read_csv(path)
    missing = [c for c in needed if c not in raw]
    if missing:
        raise ConfigurationError(f"{path}: a {kind} fit needs column(s) {', '.join(missing)}")
    cols = {c: _floats(raw, c, path) for c in needed}
    weights = _floats(raw, "weights", path) if "weights" in raw else None
    model = _model_class(kind)(penalizer=penalizer)
    note(f"fitting {kind} on {len(cols[needed[0]])} rows")
    model.fit(*(cols[c] for c in needed), weights=weights)
    doc = model.to_dict()
    if name:
        from cognitionos.storage import open_store

        url = pick_store(store_url)
        store = open_store(url)
        try:
            store.set(_KEY.format(name), json.dumps(doc).encode())
        finally:
            store.close()
        note(f"stored as {name!r}")
    if output:
        model.save(output)
    if as_json:
        echo_json(doc)
        return
    for k, v in doc["params"].items():
        se = doc["standard_errors"][k]
        click.echo(f"{k:>8} = {v:.6g}  (se {'NaN' if se is None else f'{se:.3g}'})")
    click.echo(f"log-likelihood {doc['log_likelihood']:.5f}, converged: {doc['converged']}")


def _load_model(name: str | None, model_file: str | None, store_url: str | None) -> Any:
    if (name is None) == (model_file is None):
        raise click.UsageError("give exactly one of --name or --model-file")
    if model_file is not None:
        with open(model_file, encoding="utf-8") as fh:
            try:
                doc = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{model_file}: not JSON ({exc})") from None
    else:
        from cognitionos.storage import open_store

        store = open_store(pick_store(store_url))
        try:
            entry = store.get(_KEY.format(name))
        finally:
            store.close()
        if entry is None:
            raise ConfigurationError(f"no model named {name!r} in the store")
        doc = json.loads(entry.value)
    kind = doc.get("model") if isinstance(doc, dict) else None
    if kind not in _MODELS:
        raise ConfigurationError("not a cognitionos pricing model document")
    return _model_class(kind).from_dict(doc)


@clv.command("predict")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Model name in the store.")
@click.option("--model-file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--horizon", type=FINITE, required=True, help="Future time (model's time unit).")
@store_option
@json_option
def clv_predict(
    path: str,
    name: str | None,
    model_file: str | None,
    horizon: float,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Expected purchases in the next HORIZON and P(alive) per customer of an RFM CSV."""
    model = _load_model(name, model_file, store_url)
    if model.KIND == "gamma_gamma":
        raise ConfigurationError("a gamma_gamma model predicts spend, not purchases")
    third = "n_periods" if model.KIND == "bg_bb" else "T"
    raw = _read_csv(path)
    missing = [c for c in ("frequency", "recency", third) if c not in raw]
    if missing:
        raise ConfigurationError(f"{path}: needs column(s) {', '.join(missing)}")
    x, tx, t = (_floats(raw, c, path) for c in ("frequency", "recency", third))
    expected = model.conditional_expected_purchases(horizon, x, tx, t)
    import warnings

    from cognitionos.pricing._mle import OneTimeBuyerWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OneTimeBuyerWarning)  # the note below says it
        alive = model.probability_alive(x, tx, t)
    if model.KIND == "bg_nbd":
        one_time = sum(1 for v in x if v == 0)
        if one_time:
            note(
                f"warning: under BG/NBD p_alive is 1 for the {one_time} customer(s) with no "
                "repeat purchase (they cannot have dropped out yet); fit --model mbg_nbd to "
                "let them drop out at their first purchase"
            )
    ids = raw.get("customer") or raw.get("ID") or [str(i) for i in range(len(x))]
    rows = [
        {"customer": c, "expected_purchases": float(e), "p_alive": float(a)}
        for c, e, a in zip(ids, expected, alive, strict=True)
    ]
    if as_json:
        echo_json(rows)
        return
    click.echo("customer,expected_purchases,p_alive")
    for r in rows:
        click.echo(f"{r['customer']},{r['expected_purchases']:.6g},{r['p_alive']:.6g}")


@pricing.command("elasticity")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--price", default="price", show_default=True, help="Price column.")
@click.option("--quantity", default="quantity", show_default=True, help="Quantity column.")
@click.option("--control", "controls", multiple=True, help="Numeric control column (repeat).")
@click.option("--fixed-effect", default=None, help="Column of group labels (one dummy each).")
@click.option("--instrument", "instruments", multiple=True, help="Instrument column (2SLS).")
@click.option("--robust", is_flag=True, help="HC1 heteroskedasticity-robust standard errors.")
@click.option("--drop-zero", is_flag=True, help="Drop zero-quantity rows instead of failing.")
@click.option(
    "--varying",
    is_flag=True,
    help="Let the elasticity change with price (quadratic in log price); reported at the mean.",
)
@json_option
def elasticity(
    path: str,
    price: str,
    quantity: str,
    controls: tuple[str, ...],
    fixed_effect: str | None,
    instruments: tuple[str, ...],
    robust: bool,
    drop_zero: bool,
    varying: bool,
    as_json: bool,
) -> None:
    """Price elasticity (log-log OLS, or 2SLS when --instrument is given)."""
    from cognitionos.pricing import estimate_elasticity

    cols = [price, quantity, *controls, *instruments] + ([fixed_effect] if fixed_effect else [])
    raw = _read_csv(path, cols)
    est = estimate_elasticity(
        _floats(raw, price, path),
        _floats(raw, quantity, path),
        controls={c: _floats(raw, c, path) for c in controls} or None,
        fixed_effects=raw[fixed_effect] if fixed_effect else None,
        method="iv" if instruments else "loglog",
        instruments={c: _floats(raw, c, path) for c in instruments} or None,
        robust=robust,
        zero_quantities="drop" if drop_zero else "error",
        varying=varying,
    )
    for text in est.notes:
        note(text)
    if as_json:
        echo_json(est.as_dict())
        return
    click.echo(
        f"elasticity {est.estimate:.4f} (se {est.std_error:.4f}, "
        f"{est.confidence:.0%} CI {est.ci_low:.4f} .. {est.ci_high:.4f}), n={est.n}, {est.method}"
    )
    if est.first_stage_f is not None:
        click.echo(
            f"first-stage F {est.first_stage_f:.2f} (= Cragg-Donald with one endogenous price)"
        )
    if est.curvature is not None and est.center_log_price is not None:
        at = math.exp(est.center_log_price)
        click.echo(
            f"at price {at:.4g} (geometric mean); changes by {est.curvature:.4f} per unit of "
            "log price"
        )


@pricing.command("optimal-price")
@click.option("--elasticity", "elasticity_value", type=FINITE, required=True, help="Constant e.")
@click.option("--unit-cost", type=FINITE, default=0.0, show_default=True)
@click.option("--bounds", type=(float, float), default=None, help="LO HI")
@click.option(
    "--objective", type=click.Choice(["profit", "revenue"]), default="profit", show_default=True
)
@click.option("--ladder", default=None, help="Allowed prices, comma separated.")
@click.option("--charm", default=None, help="Allowed cents endings, comma separated (.99,.49).")
@json_option
def optimal_price_cmd(
    elasticity_value: float,
    unit_cost: float,
    bounds: tuple[float, float] | None,
    objective: str,
    ladder: str | None,
    charm: str | None,
    as_json: bool,
) -> None:
    """Profit- or revenue-optimal price under constant elasticity and constraints."""
    from cognitionos.pricing import optimal_price

    def numbers(text: str | None, what: str) -> list[float] | None:
        if text is None:
            return None
        try:
            return [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigurationError(f"--{what} must be comma-separated numbers") from None

    decision = optimal_price(
        elasticity=elasticity_value,
        unit_cost=unit_cost,
        bounds=bounds,
        objective=objective,
        ladder=numbers(ladder, "ladder"),
        charm_endings=numbers(charm, "charm"),
    )
    for text in decision.notes:
        note(text)
    if as_json:
        echo_json(decision.as_dict())
        return
    click.echo(f"{decision.price:.4f}")


# -- churn ------------------------------------------------------------------------------------
#: rows scored per batch by ``churn score`` (one progress step each)
_SCORE_BATCH = 5000


@pricing.group("churn", cls=CommandGroup)
def churn() -> None:
    """Churn models: train (with cross-validation), score, revenue at risk."""


@churn.command("train")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", required=True, help="Column with the churn label.")
@click.option("--positive", default=None, help="Label meaning churned (default: 0/1 column).")
@click.option(
    "--estimator",
    type=click.Choice(["logistic", "gradient_boosting"]),
    default="logistic",
    show_default=True,
)
@click.option("--exclude", "exclude", multiple=True, help="Column that is not a feature (repeat).")
@click.option(
    "--folds",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Stratified CV folds before the final fit (0: skip).",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    required=True,
    help="Where to save the trained model (a pickle: load only files you trust).",
)
@json_option
def churn_train(
    path: str,
    target: str,
    positive: str | None,
    estimator: str,
    exclude: tuple[str, ...],
    folds: int,
    seed: int,
    output: str,
    as_json: bool,
) -> None:
    """Cross-validate, then fit a calibrated churn model on every row of a CSV and save it."""
    from cognitionos.pricing import ChurnModel

    table = _read_csv(path)
    if target not in table:
        raise ConfigurationError(f"{path}: no target column {target!r}")
    model = ChurnModel(estimator=estimator, exclude=exclude, seed=seed)
    out: dict[str, Any] = {"model": output, "rows": len(table[target]), "estimator": estimator}
    if folds:
        if folds < 2:
            raise ConfigurationError("--folds must be 0 (skip) or at least 2")
        bar = progress(iter(range(folds)), folds, "cross-validating", enabled=True)

        def advance(_: int) -> None:
            next(bar, None)

        report = model.cross_validate(
            table, target, positive=positive, folds=folds, seed=seed, on_fold=advance
        )
        out["cross_validation"] = report.as_dict()
    note(f"fitting {estimator} on {out['rows']} rows")
    model.fit(table, target, positive=positive)
    model.save(output)
    numeric, categorical = model.columns or ([], [])
    out["numeric"], out["categorical"] = numeric, categorical
    if as_json:
        echo_json(out)
        return
    if folds:
        cv = out["cross_validation"]
        click.echo(
            f"{folds}-fold ROC AUC {cv['auc_mean']:.4f}, Brier {cv['brier']:.4f}, "
            f"calibration error {cv['calibration_error']:.4f}"
        )
    click.echo(f"saved {output} ({len(numeric)} numeric, {len(categorical)} categorical columns)")


@churn.command("score")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--model-file", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--customer", default=None, help="Id column to echo (default: row number).")
@json_option
def churn_score(path: str, model_file: str, customer: str | None, as_json: bool) -> None:
    """Calibrated churn probability per row of a CSV (the model's feature columns)."""
    from cognitionos.pricing import ChurnModel

    model = ChurnModel.load(model_file)  # refuses other scikit-learn / newer format versions
    table = _read_csv(path)
    n = len(next(iter(table.values())))
    if customer is not None and customer not in table:
        raise ConfigurationError(f"{path}: no column {customer!r}")
    ids = table[customer] if customer else [str(i + 1) for i in range(n)]
    probs: list[float] = []
    batches = range(0, n, _SCORE_BATCH)
    for start in progress(batches, len(batches), "scoring", enabled=len(batches) > 1):
        part = {k: v[start : start + _SCORE_BATCH] for k, v in table.items()}
        probs.extend(float(p) for p in model.predict_proba(part))
    rows = [{"customer": c, "churn_probability": p} for c, p in zip(ids, probs, strict=True)]
    if as_json:
        echo_json(rows)
        return
    click.echo("customer,churn_probability")
    for r in rows:
        click.echo(f"{r['customer']},{r['churn_probability']:.6g}")


@churn.command("risk")
@click.option(
    "--churn",
    "churn_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="CSV with customer and churn probability columns.",
)
@click.option(
    "--clv",
    "clv_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="CSV with customer and lifetime value columns.",
)
@click.option("--customer", default="customer", show_default=True, help="Join column (both).")
@click.option("--probability", default="churn_probability", show_default=True)
@click.option("--value", default="clv", show_default=True, help="Lifetime value column.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the top N.")
@json_option
def churn_risk(
    churn_path: str,
    clv_path: str,
    customer: str,
    probability: str,
    value: str,
    top: int | None,
    as_json: bool,
) -> None:
    """Revenue at risk: churn probability x lifetime value per customer, largest first."""
    from cognitionos.pricing import revenue_at_risk

    churn_table = _read_csv(churn_path, [customer, probability])
    clv_table = _read_csv(clv_path, [customer, value])
    report = revenue_at_risk(
        churn_table, clv_table, customer=customer, probability=probability, value=value
    )
    doc = report.as_dict(top)
    if as_json:
        echo_json(doc)
        return
    for side, keys in (("churn file", doc["only_in_churn"]), ("clv file", doc["only_in_clv"])):
        if keys:
            note(f"{len(keys)} customer(s) only in the {side}: left out")
    click.echo("customer,churn_probability,clv,at_risk")
    for r in doc["rows"]:
        click.echo(
            f"{r['customer']},{r['churn_probability']:.6g},{r['clv']:.6g},{r['at_risk']:.6g}"
        )
    share = doc["share_at_risk"]
    note(
        f"total at risk {doc['total_at_risk']:.2f} of {doc['total_clv']:.2f}"
        + ("" if share is None else f" ({100 * share:.1f}%)")
    )
