"""A/B testing: assignment, event ingestion and analysis over per-arm sufficient statistics.

Assignment shares the flags engine's bucketing (:mod:`cognitionos.bucketing`); exposures and
metric events become incremental per-arm sums in the store, so analysis reads
O(arms x metrics) numbers::

    from cognitionos.experiments import ExperimentEngine
    engine = ExperimentEngine(store="sqlite:///app.db")
    engine.assign("checkout-v2", "u1", {"country": "NL"}).variant
    engine.track("checkout-v2", "u1", "revenue", 12.5, event_id="order-17")
    engine.summary("checkout-v2")
"""

from cognitionos.experiments._summary import ArmSummary
from cognitionos.experiments._warehouse import summaries_from_sql
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
)

__all__ = [
    "Arm",
    "ArmSummary",
    "Assignment",
    "AssignmentReason",
    "Experiment",
    "ExperimentEngine",
    "ExperimentStatus",
    "Holdout",
    "Metric",
    "NamespaceSlice",
    "summaries_from_sql",
]
