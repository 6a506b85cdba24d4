"""A/B/C value tiers (the classic ABC analysis) and the value tier x risk tier matrix.

Existing customers come first, and A, B and C customers are worth different
efforts. With the default shares ``{A: 0.8, B: 0.15}``
(``score.value_tiers``):

- **A**: the customers with the highest value who together make the top 80%
  of the revenue (the one whose revenue crosses 80% included);
- **B**: the next ones, up to 95% of the revenue;
- **C**: the long tail, and every customer with no revenue in the lookback.

The cut points are a run-level fact: the whole distribution of value decides
them. They are computed once, in the finisher, from the merged scores (one
float per customer, which the finisher holds anyway to write the scores
file; sorting it costs a copy of that column), and expressed as two value
thresholds, so a customer's tier is a function of their own value and the
run's cuts: ``A`` if ``value >= cut_A``, ``B`` if ``value >= cut_B``, else
``C`` (customers with value 0 are always ``C``). Customers tied at a cut share
its tier, so A may hold slightly more than 80% of the revenue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from omvald.errors import ConfigError

TIERS = ("A", "B", "C")
MATRIX_MEASURES = ("customers", "revenue", "revenue_at_risk", "contactable")


@dataclass(frozen=True)
class ValueCuts:
    """The run's thresholds: value >= ``a`` is tier A, >= ``b`` tier B (money; None: nobody in that tier)."""

    a: float | None
    b: float | None
    total: float

    def as_json(self) -> dict[str, float | None]:
        return {"A": _round(self.a), "B": _round(self.b)}


def check_shares(shares: Mapping[str, float]) -> tuple[float, float]:
    """``(share_A, share_B)`` from ``score.value_tiers``; a :class:`ConfigError` unless 0 < A, 0 <= B, A + B <= 1."""
    unknown = sorted(set(shares) - {"A", "B"})
    if unknown or "A" not in shares:
        raise ConfigError(
            f"score.value_tiers {dict(shares)}: give the revenue shares of tiers A and B, e.g. {{A: 0.8, B: 0.15}} "
            "(C is the rest)"
        )
    a, b = float(shares["A"]), float(shares.get("B", 0.0))
    if not (0.0 < a <= 1.0 and b >= 0.0 and a + b <= 1.0):
        raise ConfigError(f"score.value_tiers: need 0 < A <= 1, B >= 0 and A + B <= 1; got A={a}, B={b}")
    return a, b


def value_cuts(values: np.ndarray, shares: Mapping[str, float]) -> ValueCuts:
    """The A and B thresholds of ``values`` (money per customer) for ``shares`` (module docstring)."""
    share_a, share_b = check_shares(shares)
    v = np.sort(np.asarray(values, dtype=float)[np.asarray(values, dtype=float) > 0])[::-1]
    total = float(v.sum())
    if total <= 0:
        return ValueCuts(None, None, 0.0)
    before = np.cumsum(v) - v  # revenue of the customers ranked above each one
    # tolerance: a share of exactly 1.0 must take every customer despite rounding in the cumulative sum
    in_a = before < share_a * total * (1 - 1e-12)
    in_b = before < (share_a + share_b) * total * (1 - 1e-12)
    cut_a = float(v[in_a].min()) if in_a.any() else None
    cut_b = float(v[in_b & ~in_a].min()) if (in_b & ~in_a).any() else None
    return ValueCuts(cut_a, cut_b, total)


def value_tier(values: np.ndarray, cuts: ValueCuts) -> np.ndarray:
    """``A``/``B``/``C`` per customer from their value and the run's cuts."""
    v = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
    out = np.full(len(v), "C", dtype=object)
    if cuts.b is not None:
        out[(v > 0) & (v >= cuts.b)] = "B"
    if cuts.a is not None:
        out[(v > 0) & (v >= cuts.a)] = "A"
    return out


def tier_risk_matrix(scores: pd.DataFrame, risk_order: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{value tier: {risk tier: {customers, revenue, revenue_at_risk, contactable}}}``, every cell present.

    ``scores`` needs ``value_tier``, ``risk_tier``, ``value`` (the revenue),
    ``revenue_at_risk`` and ``contactable``. Money is rounded to cents; the
    cells add up to the scored totals (up to that rounding).
    """
    grouped = scores.groupby(["value_tier", "risk_tier"], observed=True).agg(
        customers=("value", "size"),
        revenue=("value", "sum"),
        revenue_at_risk=("revenue_at_risk", "sum"),
        contactable=("contactable", "sum"),
    )
    risks = list(risk_order) + sorted(set(scores["risk_tier"].astype(str)) - set(risk_order))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for tier in TIERS:
        out[tier] = {}
        for risk in risks:
            row = grouped.loc[(tier, risk)] if (tier, risk) in grouped.index else None
            out[tier][risk] = {
                "customers": int(row["customers"]) if row is not None else 0,
                "revenue": round(float(row["revenue"]), 2) if row is not None else 0.0,
                "revenue_at_risk": round(float(row["revenue_at_risk"]), 2) if row is not None else 0.0,
                "contactable": int(row["contactable"]) if row is not None else 0,
            }
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 2)
