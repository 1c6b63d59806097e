"""Pricing: customer lifetime value, price elasticity and optimal prices, churn, dynamic pricing."""

from cognitionos.pricing._clv import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    customer_lifetime_value,
)
from cognitionos.pricing._mle import ConvergenceWarning
from cognitionos.pricing._rfm import RFMSummary, rfm_summary

__all__ = [
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "ConvergenceWarning",
    "GammaGammaModel",
    "ParetoNBDModel",
    "RFMSummary",
    "customer_lifetime_value",
    "rfm_summary",
]
