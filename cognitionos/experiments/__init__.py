"""A/B testing: assignment, event ingestion and analysis over per-arm sufficient statistics.

Assignment shares the flags engine's bucketing (:mod:`cognitionos.bucketing`); exposures and
metric events become incremental per-arm sums in the store, so analysis reads
O(arms x metrics) numbers::

    from cognitionos.experiments import ExperimentEngine, analyze
    engine = ExperimentEngine(store="sqlite:///app.db")
    engine.assign("checkout-v2", "u1", {"country": "NL"}).variant
    engine.track("checkout-v2", "u1", "revenue", 12.5, event_id="order-17")
    result = analyze(engine.summary("checkout-v2"))

Analysis (:func:`analyze`, :func:`sample_size`, ...) imports numpy and scipy on first use,
so ``import cognitionos.experiments`` stays light.
"""

from cognitionos.experiments._analysis import (
    AnalysisResult,
    ArmResult,
    Decision,
    DecisionRules,
    GaussianPrior,
    MetricResult,
    PhaseSRM,
    PhaseUnits,
    analyze,
    srm_check,
    srm_sequential,
)
from cognitionos.experiments._bandit import (
    BanditPeriod,
    BanditReport,
    bandit_periods,
    bandit_report,
    thompson_weights,
)
from cognitionos.experiments._corrections import CORRECTIONS, adjust_pvalues, adjusted_alpha
from cognitionos.experiments._group_sequential import (
    GroupSequentialDesign,
    group_sequential_bounds,
)
from cognitionos.experiments._plots import plot_effect_over_time, plot_posteriors
from cognitionos.experiments._power import (
    SampleSize,
    anova_power,
    chisquare_power,
    f2_power,
    mde,
    normal_power,
    power,
    sample_size,
    ttest_power,
)
from cognitionos.experiments._quantile import QuantileResult, quantile_test
from cognitionos.experiments._segments import (
    InteractionResult,
    SeriesPoint,
    analyze_breakdown,
    effect_series,
    interaction_check,
    winsorized_summaries,
)
from cognitionos.experiments._summary import ArmSummary
from cognitionos.experiments._warehouse import (
    WarehouseSnapshot,
    summaries_from_sql,
    warehouse_snapshot,
)
from cognitionos.experiments.engine import ExperimentEngine
from cognitionos.experiments.models import (
    Arm,
    Assignment,
    AssignmentReason,
    Experiment,
    ExperimentStatus,
    Holdout,
    Metric,
    NamespaceSlice,
    Phase,
)

__all__ = [
    "CORRECTIONS",
    "AnalysisResult",
    "Arm",
    "ArmResult",
    "ArmSummary",
    "Assignment",
    "AssignmentReason",
    "BanditPeriod",
    "BanditReport",
    "Decision",
    "DecisionRules",
    "Experiment",
    "ExperimentEngine",
    "ExperimentStatus",
    "GaussianPrior",
    "GroupSequentialDesign",
    "Holdout",
    "Phase",
    "PhaseSRM",
    "PhaseUnits",
    "InteractionResult",
    "Metric",
    "MetricResult",
    "NamespaceSlice",
    "QuantileResult",
    "SampleSize",
    "SeriesPoint",
    "WarehouseSnapshot",
    "adjust_pvalues",
    "adjusted_alpha",
    "analyze",
    "analyze_breakdown",
    "anova_power",
    "bandit_periods",
    "bandit_report",
    "chisquare_power",
    "effect_series",
    "f2_power",
    "group_sequential_bounds",
    "interaction_check",
    "mde",
    "normal_power",
    "plot_effect_over_time",
    "plot_posteriors",
    "power",
    "quantile_test",
    "sample_size",
    "srm_check",
    "srm_sequential",
    "summaries_from_sql",
    "thompson_weights",
    "ttest_power",
    "warehouse_snapshot",
    "winsorized_summaries",
]
