"""Pure scoring of one bucket of customers: features in, scores and reason codes out.

No paths and no global state: :mod:`omvald.scoring.stage` loads the models
once, builds features bucket by bucket and calls these functions.

Revenue at risk (money, over the horizon ``H`` days) is the billed revenue
the business expects to lose if it does nothing::

    revenue_at_risk = monthly_revenue * H / 30
                      * (p_churn + p_phase_out * phase_out_drop)

A churner takes their whole bill; a phase-out, by the label's definition,
cuts it by at least ``phase_out_drop`` (``features.phase_out_drop``), so
that share is a conservative estimate of the lost part. ``p_phase_out``
here is already unconditional, ``(1 - p_churn) * p(phase out | stays)``,
so the two terms never count the same customer twice. Negative monthly
revenue (a month of credit notes) counts as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from omvald.errors import ModelError
from omvald.explain.drivers import contributions, top_drivers
from omvald.explain.reasons import SpecLike, reason_columns

N_DRIVERS = 3
PREFIXES = {"churn": "churn_", "phase_out": "phase_out_"}
SCORE_COLUMNS = [
    "customer_id",
    "as_of",
    "p_churn",
    "p_phase_out",
    "risk_tier",
    "segment",
    "monthly_revenue",
    "revenue_at_risk",
    "contactable",
    "explained",
]


def reason_column_names(prefix: str, k: int = N_DRIVERS) -> list[str]:
    """``{prefix}driver_1..k``, their ``_value`` and ``_contribution``, then ``{prefix}reason_1..k``."""
    drivers = [f"{prefix}driver_{i}" for i in range(1, k + 1)]
    values = [f"{prefix}driver_{i}_value" for i in range(1, k + 1)]
    contribs = [f"{prefix}driver_{i}_contribution" for i in range(1, k + 1)]
    reasons = [f"{prefix}reason_{i}" for i in range(1, k + 1)]
    return drivers + values + contribs + reasons


OUTPUT_COLUMNS = SCORE_COLUMNS + reason_column_names(PREFIXES["churn"]) + reason_column_names(PREFIXES["phase_out"])


def model_matrix(features: pd.DataFrame, model: Any, model_name: str) -> pd.DataFrame:
    """The columns ``model`` was trained on, in its order; :class:`ModelError` naming any that are missing."""
    needed = list(model.feature_names_)
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise ModelError(
            f"the {model_name} model needs feature(s) the input cannot provide: {', '.join(missing)}. "
            "The scoring files lack the columns these features are built from (see the registry's "
            "'requires'), or the model was trained on a different feature set; retrain or add the columns."
        )
    return features[needed]


def risk_tier(p_churn: np.ndarray, tiers: Mapping[str, float], lowest: str = "low") -> np.ndarray:
    """Tier name per customer: the highest tier whose p_churn threshold is reached, else ``lowest``."""
    out = np.full(len(p_churn), lowest, dtype=object)
    assigned = np.zeros(len(p_churn), dtype=bool)
    for name, threshold in sorted(tiers.items(), key=lambda kv: -float(kv[1])):
        hit = ~assigned & (p_churn >= float(threshold))
        out[hit] = name
        assigned |= hit
    return out


def revenue_at_risk(
    p_churn: np.ndarray, p_phase_out: np.ndarray, monthly_revenue: np.ndarray, horizon_days: int, phase_out_drop: float
) -> np.ndarray:
    """Expected billed revenue lost over the horizon (money); see the module docstring."""
    revenue = np.clip(np.nan_to_num(np.asarray(monthly_revenue, dtype=float), nan=0.0), 0.0, None)
    return revenue * horizon_days / 30.0 * (p_churn + p_phase_out * phase_out_drop)


def score_features(
    features: pd.DataFrame,
    churn_model: Any,
    phase_out_model: Any,
    contactable: pd.Series,
    *,
    horizon_days: int,
    phase_out_drop: float,
    risk_tiers: Mapping[str, float],
) -> pd.DataFrame:
    """Probabilities, tier, revenue at risk for each row of ``features`` (one as-of date per customer).

    ``contactable`` is ``marketing_opt_in`` indexed by ``customer_id``
    (absent customers are not contactable). Returns :data:`SCORE_COLUMNS`
    with ``explained`` False, index of ``features``.
    """
    p_churn = churn_model.predict_proba(model_matrix(features, churn_model, "churn"))[:, 1]
    p_stays_phase_out = phase_out_model.predict_proba(model_matrix(features, phase_out_model, "phase-out"))[:, 1]
    p_phase_out = (1.0 - p_churn) * p_stays_phase_out
    monthly = features["monthly_revenue"].to_numpy(dtype=float)
    ids = features["customer_id"]
    opt_in = contactable.reindex(ids.to_numpy()).fillna(False).astype(bool).to_numpy()
    return pd.DataFrame(
        {
            "customer_id": ids.astype("str").to_numpy(),
            "as_of": features["as_of"].to_numpy(),
            "p_churn": p_churn,
            "p_phase_out": p_phase_out,
            "risk_tier": risk_tier(p_churn, risk_tiers),
            "segment": features["segment"].astype("str").to_numpy(),
            "monthly_revenue": monthly,
            "revenue_at_risk": revenue_at_risk(p_churn, p_phase_out, monthly, horizon_days, phase_out_drop),
            "contactable": opt_in,
            "explained": np.zeros(len(features), dtype=bool),
        },
        index=features.index,
    ).astype({"risk_tier": "str"})


def reason_codes(
    features: pd.DataFrame,
    churn_model: Any,
    phase_out_model: Any,
    specs: Mapping[str, SpecLike],
    k: int = N_DRIVERS,
) -> pd.DataFrame:
    """Exact top-``k`` risk-increasing drivers and sentences for both models, index of ``features``.

    Columns are :func:`reason_column_names` for ``churn_`` and ``phase_out_``.
    The phase-out drivers explain ``p(phase out | stays)``.
    """
    parts = []
    for model, name, prefix in ((churn_model, "churn", "churn_"), (phase_out_model, "phase-out", "phase_out_")):
        X = model_matrix(features, model, name)
        drivers = top_drivers(contributions(model, X), X, k=k, prefix=prefix)
        reasons = reason_columns(drivers, specs, prefix=prefix, k=k)
        drivers = drivers.drop(columns=[c for c in drivers.columns if c.endswith("_value_raw")])
        parts.append(pd.concat([drivers, pd.DataFrame(reasons, index=drivers.index)], axis=1))
    out = pd.concat(parts, axis=1)
    return out[reason_column_names("churn_", k) + reason_column_names("phase_out_", k)]


def empty_reason_frame(index: pd.Index, k: int = N_DRIVERS) -> pd.DataFrame:
    """Reason columns with every value missing, for customers who are not explained."""
    cols: dict[str, pd.Series] = {}
    for name in reason_column_names("churn_", k) + reason_column_names("phase_out_", k):
        dtype = float if name.endswith("_contribution") else "str"
        cols[name] = pd.Series(np.nan if dtype is float else None, index=index, dtype=dtype)
    return pd.DataFrame(cols, index=index)
