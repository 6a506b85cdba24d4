"""Pure scoring of one bucket of customers: features in, scores and reason codes out.

No paths and no global state: :func:`omvald.scoring.bucket.score_bucket`
calls these functions on one bucket's features, on either engine.

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

from omvald.explain.drivers import BIAS, contributions
from omvald.explain.reasons import SpecLike, fallback_spec, format_value, reason_sentence
from omvald.model.matrix import model_matrix

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
    # without a phase-out model (p_phase_out NaN) only churn puts revenue at risk
    return revenue * horizon_days / 30.0 * (p_churn + np.nan_to_num(p_phase_out, nan=0.0) * phase_out_drop)


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
    if phase_out_model is None:  # skipped in training (no phase-out labels): unknown, not zero
        p_phase_out = np.full(len(features), np.nan)
    else:
        p_stays = phase_out_model.predict_proba(model_matrix(features, phase_out_model, "phase-out"))[:, 1]
        p_phase_out = (1.0 - p_churn) * p_stays
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
        if model is None:  # a skipped model keeps its (empty) columns so the output layout never changes
            parts.append(pd.DataFrame(index=features.index, columns=reason_column_names(prefix, k), dtype=object))
            continue
        X = model_matrix(features, model, name)
        parts.append(drivers_and_reasons(contributions(model, X), X, specs, k=k, prefix=prefix))
    out = pd.concat(parts, axis=1)
    return out[reason_column_names("churn_", k) + reason_column_names("phase_out_", k)]


def drivers_and_reasons(
    contrib: pd.DataFrame, X: pd.DataFrame, specs: Mapping[str, SpecLike], k: int = N_DRIVERS, prefix: str = ""
) -> pd.DataFrame:
    """:func:`omvald.explain.drivers.top_drivers` plus :func:`omvald.explain.reasons.reason_columns`, fast.

    Same columns, values and dtypes (without ``_value_raw``), built for
    100k+ rows: the top ``k`` come from ``k`` row-wise ``argmax`` passes
    (the first maximum = the stable order of ``top_drivers``, ties by model
    feature order) instead of sorting all features, and the value text and
    sentence are computed once per distinct (feature, value), not per row.
    """
    features = [c for c in contrib.columns if c != BIAS]
    n = len(contrib)
    work = contrib[features].to_numpy(dtype=float)
    work = np.where(work > 0, work, -np.inf)
    kk = min(k, len(features))
    rows = np.arange(n)
    columns: dict[str, Any] = {}
    for i in range(k):
        names = np.full(n, None, dtype=object)
        text = np.full(n, None, dtype=object)
        sentences = np.full(n, None, dtype=object)
        contrib_i = np.full(n, np.nan)
        if i < kk and n:
            j_best = np.argmax(work, axis=1)
            best = work[rows, j_best]
            work[rows, j_best] = -np.inf
            ok = np.isfinite(best)
            contrib_i = np.where(ok, best, np.nan)
            for j in np.unique(j_best[ok]):
                hit = np.flatnonzero(ok & (j_best == j))
                feature = features[j]
                names[hit] = feature
                spec = specs.get(feature) or fallback_spec(feature)
                text[hit], sentences[hit] = _value_texts(X[feature], hit, spec)
        columns[f"{prefix}driver_{i + 1}"] = pd.Series(names, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_value"] = pd.Series(text, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_contribution"] = pd.Series(contrib_i, index=contrib.index, dtype=float)
        columns[f"{prefix}reason_{i + 1}"] = pd.Series(sentences, index=contrib.index, dtype="str")
    return pd.DataFrame(columns, index=contrib.index)


def _value_texts(column: pd.Series, positions: np.ndarray, spec: SpecLike) -> tuple[np.ndarray, np.ndarray]:
    """``format_value`` and ``reason_sentence`` of ``column`` at ``positions``, once per distinct value."""
    if column.dtype == np.float64:
        values = column.to_numpy()[positions]
        # distinct by bit pattern, so -0.0 and 0.0 (which format differently) stay apart
        uniques, inverse = np.unique(values.view(np.int64), return_inverse=True)
        raw = [float(v) for v in uniques.view(np.float64)]
    else:
        values = column.to_numpy(dtype=object)[positions]
        if not all(isinstance(v, str) or v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
            raw_rows = list(values)  # mixed types: no deduplication (1 == 1.0 == True would merge)
            return (
                np.array([format_value(v) for v in raw_rows] + [None], dtype=object)[:-1],
                np.array([reason_sentence(spec, v) for v in raw_rows] + [None], dtype=object)[:-1],
            )
        inverse, uniques = pd.factorize(values, use_na_sentinel=True)
        raw = [*uniques, None]  # code -1 (missing) -> None: every missing kind reads the same
    text = np.array([format_value(v) for v in raw] + [None], dtype=object)[:-1]
    sentence = np.array([reason_sentence(spec, v) for v in raw] + [None], dtype=object)[:-1]
    return text[inverse.reshape(-1)], sentence[inverse.reshape(-1)]


def empty_reason_frame(index: pd.Index, k: int = N_DRIVERS) -> pd.DataFrame:
    """Reason columns with every value missing, for customers who are not explained."""
    cols: dict[str, pd.Series] = {}
    for name in reason_column_names("churn_", k) + reason_column_names("phase_out_", k):
        dtype = float if name.endswith("_contribution") else "str"
        cols[name] = pd.Series(np.nan if dtype is float else None, index=index, dtype=dtype)
    return pd.DataFrame(cols, index=index)
