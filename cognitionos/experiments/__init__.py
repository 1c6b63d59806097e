"""A/B testing: assignment, event ingestion and analysis over per-arm sufficient statistics."""

from cognitionos.experiments._summary import ArmSummary

__all__ = ["ArmSummary"]
