"""Pricing: customer lifetime value, price elasticity and optimal prices, churn, dynamic pricing.

m = BetaGeoModel().fit(frequency, recency, T)
e = estimate_elasticity(prices, quantities, robust=True)
optimal_price(elasticity=e, unit_cost=4.0, bounds=(5, 20))
"""

from cognitionos.pricing._bandit import ArmState, BanditSimulation, PricingBandit
from cognitionos.pricing._churn import ChurnModel, ChurnReport, RevenueAtRisk, revenue_at_risk
from cognitionos.pricing._clv import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    customer_lifetime_value,
)
from cognitionos.pricing._elasticity import (
    ElasticityEstimate,
    estimate_elasticity,
    segment_elasticities,
)
from cognitionos.pricing._mle import ConvergenceWarning, OneTimeBuyerWarning
from cognitionos.pricing._plots import PlotData, repeat_purchase_histogram, tracking_plot
from cognitionos.pricing._price import (
    ConstantElasticityDemand,
    DemandCurve,
    LinearDemand,
    LogitDemand,
    PriceDecision,
    optimal_price,
)
from cognitionos.pricing._rfm import RFMSummary, rfm_summary
from cognitionos.pricing._rfm_sql import rfm_summary_sql

__all__ = [
    "ArmState",
    "BanditSimulation",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "ChurnModel",
    "ChurnReport",
    "ConstantElasticityDemand",
    "ConvergenceWarning",
    "OneTimeBuyerWarning",
    "DemandCurve",
    "ElasticityEstimate",
    "GammaGammaModel",
    "LinearDemand",
    "LogitDemand",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "PlotData",
    "PriceDecision",
    "PricingBandit",
    "RFMSummary",
    "RevenueAtRisk",
    "customer_lifetime_value",
    "estimate_elasticity",
    "optimal_price",
    "repeat_purchase_histogram",
    "revenue_at_risk",
    "rfm_summary",
    "rfm_summary_sql",
    "segment_elasticities",
    "tracking_plot",
]
