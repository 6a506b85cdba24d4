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

from omvald.explain.drivers import BIAS, contributions, driver_sums
from omvald.explain.reasons import SpecLike, driver_sentence, fallback_spec, feature_driver, format_value
from omvald.model.matrix import model_matrix

N_DRIVERS = 3
PREFIXES = {"churn": "churn_", "phase_out": "phase_out_"}
# One bucket's scores. The value tier is not here: its cuts depend on every customer, so the finisher adds it.
SCORE_COLUMNS = [
    "customer_id",
    "as_of",
    "p_churn",
    "p_phase_out",
    "risk_tier",
    "segment",
    "monthly_revenue",
    "value",
    "revenue_at_risk",
    "contactable",
    "preferred_channel",
    "explained",
]


def reason_column_names(prefix: str, k: int = N_DRIVERS) -> list[str]:
    """``{prefix}driver_1..k``, their ``_feature``, ``_value`` and ``_contribution``, then ``{prefix}reason_1..k``.

    ``driver_i`` is a business reason (registry ``driver``: ``price_change``,
    ``complaint``, ...); ``driver_i_feature`` its strongest feature for this
    customer, whose value ``driver_i_value`` holds and ``reason_i`` names;
    ``driver_i_contribution`` the SHAP values of the driver's features summed.
    """
    drivers = [f"{prefix}driver_{i}" for i in range(1, k + 1)]
    features = [f"{prefix}driver_{i}_feature" for i in range(1, k + 1)]
    values = [f"{prefix}driver_{i}_value" for i in range(1, k + 1)]
    contribs = [f"{prefix}driver_{i}_contribution" for i in range(1, k + 1)]
    reasons = [f"{prefix}reason_{i}" for i in range(1, k + 1)]
    return drivers + features + values + contribs + reasons


REASON_COLUMNS = reason_column_names(PREFIXES["churn"]) + reason_column_names(PREFIXES["phase_out"])
# What a bucket (and a Spark task) returns per customer, and what the scores file holds.
ROW_COLUMNS = SCORE_COLUMNS + REASON_COLUMNS
OUTPUT_COLUMNS = [*SCORE_COLUMNS[:5], "value_tier", *SCORE_COLUMNS[5:], *REASON_COLUMNS]


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
    facts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Probabilities, tier, revenue at risk for each row of ``features`` (one as-of date per customer).

    ``contactable`` is ``marketing_opt_in`` indexed by ``customer_id``
    (absent customers are not contactable). ``facts``: ``value`` and
    ``preferred_channel`` indexed by ``customer_id``
    (:func:`omvald.scoring.customer_facts.customer_facts`; absent: value 0,
    channel missing). Returns :data:`SCORE_COLUMNS` with ``explained``
    False, index of ``features``.
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
    keys = ids.astype("str").to_numpy()
    value = np.zeros(len(features)) if facts is None else facts["value"].reindex(keys).fillna(0.0).to_numpy(float)
    channel = (
        np.full(len(features), None, dtype=object)
        if facts is None
        else facts["preferred_channel"].reindex(keys).to_numpy(dtype=object)
    )
    return pd.DataFrame(
        {
            "customer_id": ids.astype("str").to_numpy(),
            "as_of": features["as_of"].to_numpy(),
            "p_churn": p_churn,
            "p_phase_out": p_phase_out,
            "risk_tier": risk_tier(p_churn, risk_tiers),
            "segment": features["segment"].astype("str").to_numpy(),
            "monthly_revenue": monthly,
            "value": value,
            "revenue_at_risk": revenue_at_risk(p_churn, p_phase_out, monthly, horizon_days, phase_out_drop),
            "contactable": opt_in,
            "preferred_channel": pd.Series(channel, index=features.index, dtype="str"),
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
    """Top-``k`` risk-raising *drivers* per row and their sentences: :func:`omvald.explain.drivers.top_drivers`
    plus :func:`omvald.explain.reasons.reason_columns`, fast.

    A driver is a business reason (the specs' ``driver``; a feature without
    one is its own): its contribution is the exact sum of its features' SHAP
    values, so one reason spread over several features (a downgrade request
    counted over 90 and over 180 days) appears once. The sentence names the
    value of the driver's strongest feature for the row (its largest
    contribution). Same columns, values and dtypes as the reference (without
    ``_value_raw``), built for 100k+ rows: the top ``k`` come from ``k``
    row-wise ``argmax`` passes (the first maximum: ties by the order of the
    drivers' first features) instead of sorting, and the value text and
    sentence are computed once per distinct (feature, value), not per row.
    """
    features = [c for c in contrib.columns if c != BIAS]
    n = len(contrib)
    sums, strongest, names = driver_sums(contrib[features].to_numpy(dtype=float), features, specs)
    work = np.where(sums > 0, sums, -np.inf)
    kk = min(k, len(names))
    rows = np.arange(n)
    columns: dict[str, Any] = {}
    for i in range(k):
        driver = np.full(n, None, dtype=object)
        feature = np.full(n, None, dtype=object)
        text = np.full(n, None, dtype=object)
        sentences = np.full(n, None, dtype=object)
        contrib_i = np.full(n, np.nan)
        if i < kk and n:
            d_best = np.argmax(work, axis=1)
            best = work[rows, d_best]
            work[rows, d_best] = -np.inf
            ok = np.isfinite(best)
            contrib_i = np.where(ok, best, np.nan)
            j_best = strongest[rows, d_best]
            for d in np.unique(d_best[ok]):
                driver[ok & (d_best == d)] = names[d]
            for j in np.unique(j_best[ok]):
                hit = np.flatnonzero(ok & (j_best == j))
                name = features[j]
                feature[hit] = name
                spec = specs.get(name) or fallback_spec(name)
                text[hit], sentences[hit] = _value_texts(X[name], hit, spec, feature_driver(name, specs))
        columns[f"{prefix}driver_{i + 1}"] = pd.Series(driver, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_feature"] = pd.Series(feature, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_value"] = pd.Series(text, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_contribution"] = pd.Series(contrib_i, index=contrib.index, dtype=float)
        columns[f"{prefix}reason_{i + 1}"] = pd.Series(sentences, index=contrib.index, dtype="str")
    return pd.DataFrame(columns, index=contrib.index)[reason_column_names(prefix, k)]


def _value_texts(
    column: pd.Series, positions: np.ndarray, spec: SpecLike, driver: str
) -> tuple[np.ndarray, np.ndarray]:
    """``format_value`` and ``driver_sentence`` of ``column`` at ``positions``, once per distinct value."""
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
                np.array([driver_sentence(driver, spec, v) for v in raw_rows] + [None], dtype=object)[:-1],
            )
        inverse, uniques = pd.factorize(values, use_na_sentinel=True)
        raw = [*uniques, None]  # code -1 (missing) -> None: every missing kind reads the same
    text = np.array([format_value(v) for v in raw] + [None], dtype=object)[:-1]
    sentence = np.array([driver_sentence(driver, spec, v) for v in raw] + [None], dtype=object)[:-1]
    return text[inverse.reshape(-1)], sentence[inverse.reshape(-1)]


def empty_reason_frame(index: pd.Index, k: int = N_DRIVERS) -> pd.DataFrame:
    """Reason columns with every value missing, for customers who are not explained."""
    cols: dict[str, pd.Series] = {}
    for name in reason_column_names("churn_", k) + reason_column_names("phase_out_", k):
        dtype = float if name.endswith("_contribution") else "str"
        cols[name] = pd.Series(np.nan if dtype is float else None, index=index, dtype=dtype)
    return pd.DataFrame(cols, index=index)
