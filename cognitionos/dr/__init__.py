"""Disaster recovery: retention (restic and borg semantics) and RPO/RTO planning.

from cognitionos.dr import RetentionPolicy, apply_retention
result = apply_retention(snapshots, RetentionPolicy(keep_last=3, keep_daily=7), mode="restic")
"""

from __future__ import annotations

from cognitionos.dr.plan import RecoveryPlan, TierAssessment, plan_recovery
from cognitionos.dr.retention import (
    KeepReason,
    RetentionPolicy,
    RetentionResult,
    Snapshot,
    apply_retention,
)

__all__ = [
    "KeepReason",
    "RecoveryPlan",
    "RetentionPolicy",
    "RetentionResult",
    "Snapshot",
    "TierAssessment",
    "apply_retention",
    "plan_recovery",
]
