"""What every feature family shares: the feature description and a bucket's tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class FeatureSpec:
    """One feature as users see it in explanations and the registry.

    ``description`` is a short plain-words phrase ("invoice change vs 3 months
    earlier"); ``unit`` is what the value is measured in ("%", "money", "days",
    "count", "share", "flag", "months", "category"). ``requires`` lists the
    (table, column) pairs that must be present in the input for the feature
    to exist; a family whose columns are absent is left out, not filled.
    ``driver`` is the business reason the feature speaks for (``price_change``,
    ``complaint``, ``binding``...): one reason is often spread over several
    correlated features (a price rise in %, in money, vs 3 and 12 months), and
    the driver-level SHAP importance sums their contributions. Empty: the
    feature is a driver of its own.
    """

    name: str
    family: str
    description: str
    unit: str
    kind: str = "numeric"  # numeric | categorical
    requires: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    driver: str = ""


@dataclass(frozen=True)
class BucketTables:
    """The validated interim tables restricted to one bucket of customers."""

    customers: pd.DataFrame
    billing: pd.DataFrame
    touchpoints: pd.DataFrame
