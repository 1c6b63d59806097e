"""Disaster recovery: retention (restic, borg), RPO/RTO planning, verified backups and drills.

from cognitionos.dr import RetentionPolicy, apply_retention
result = apply_retention(snapshots, RetentionPolicy(keep_last=3, keep_daily=7), mode="restic")
"""

from __future__ import annotations

from cognitionos.dr.backup import BackupManager, BackupRecord, DrillReport, VerifyResult
from cognitionos.dr.plan import RecoveryPlan, TierAssessment, plan_recovery
from cognitionos.dr.retention import (
    KeepReason,
    RetentionPolicy,
    RetentionResult,
    Snapshot,
    apply_retention,
)

__all__ = [
    "BackupManager",
    "BackupRecord",
    "DrillReport",
    "KeepReason",
    "RecoveryPlan",
    "RetentionPolicy",
    "RetentionResult",
    "Snapshot",
    "TierAssessment",
    "VerifyResult",
    "apply_retention",
    "plan_recovery",
]
