"""Exact per-customer contributions and the top drivers behind each score.

Contributions are LightGBM's native ``pred_contrib`` values (TreeSHAP, exact
for trees) on the raw log-odds scale, one column per feature plus ``bias``;
they sum to the model's raw score. Calibration is monotone, so the ranking
of drivers is the same on the probability scale.

A *driver* is a feature that pushes this customer's risk **up**: only
positive contributions count. A customer whose every contribution is <= 0
has no drivers (their risk is below the average customer's for every
reason), and the driver columns stay empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from omvald.explain.reasons import format_value

BIAS = "bias"


class ContributingModel(Protocol):
    feature_names_: list[str]

    def predict_contributions(self, X: pd.DataFrame) -> pd.DataFrame: ...


def contributions(model: ContributingModel, X: pd.DataFrame) -> pd.DataFrame:
    """Raw log-odds SHAP values of ``model`` on ``X`` (one column per feature + ``bias``), index of ``X``."""
    contrib = model.predict_contributions(X)
    contrib.index = X.index
    return contrib


def top_drivers(contrib: pd.DataFrame, X: pd.DataFrame, k: int = 3, prefix: str = "") -> pd.DataFrame:
    """The ``k`` largest positive contributions per row.

    Returns, for ``i`` in 1..k: ``{prefix}driver_i`` (feature name),
    ``{prefix}driver_i_value`` (the feature value as text),
    ``{prefix}driver_i_contribution`` (log-odds, > 0) and
    ``{prefix}driver_i_value_raw`` (the value itself, for
    :func:`omvald.explain.reasons.reason_columns`; callers drop it). Equal
    contributions are ordered by the model's feature order.
    """
    features = [c for c in contrib.columns if c != BIAS]
    n = len(contrib)
    values = contrib[features].to_numpy(dtype=float)
    positive = np.where(values > 0, values, -np.inf)
    kk = min(k, len(features))
    order = np.argsort(-positive, axis=1, kind="stable")[:, :kk]
    top = np.take_along_axis(positive, order, axis=1)
    valid = np.isfinite(top)
    names = np.asarray(features, dtype=object)
    columns: dict[str, Any] = {}
    cache: dict[int, np.ndarray] = {}
    for i in range(k):
        if i >= kk:
            name_i, value_raw, contrib_i = np.full(n, None, dtype=object), np.full(n, None, dtype=object), np.nan
        else:
            ok = valid[:, i]
            name_i = np.where(ok, names[order[:, i]], None)
            value_raw = np.full(n, None, dtype=object)
            for j in np.unique(order[ok, i]):
                if j not in cache:
                    cache[j] = X[features[j]].to_numpy(dtype=object)
                rows = ok & (order[:, i] == j)
                value_raw[rows] = cache[j][rows]
            contrib_i = np.where(ok, top[:, i], np.nan)
        columns[f"{prefix}driver_{i + 1}"] = pd.Series(name_i, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_value"] = pd.Series(
            [format_value(v) for v in value_raw], index=contrib.index, dtype="str"
        )
        columns[f"{prefix}driver_{i + 1}_contribution"] = pd.Series(contrib_i, index=contrib.index, dtype=float)
        columns[f"{prefix}driver_{i + 1}_value_raw"] = pd.Series(value_raw, index=contrib.index, dtype=object)
    return pd.DataFrame(columns, index=contrib.index)


def shap_importance(contrib: pd.DataFrame, segment: pd.Series | None = None) -> pd.DataFrame:
    """Mean |SHAP| per feature, overall and per segment, ranked (1 = most important).

    Columns: ``feature``, ``mean_abs_shap``, ``rank`` and
    ``mean_abs_shap_<segment>`` / ``rank_<segment>`` for each segment value.
    """
    features = [c for c in contrib.columns if c != BIAS]
    absval = contrib[features].abs()
    out = pd.DataFrame({"feature": features, "mean_abs_shap": absval.mean().to_numpy()})
    out["rank"] = out["mean_abs_shap"].rank(ascending=False, method="first").astype(int)
    if segment is not None:
        seg = pd.Series(np.asarray(segment, dtype=object), index=contrib.index)
        for name in sorted(seg.dropna().unique()):
            col = f"mean_abs_shap_{name}"
            out[col] = absval[(seg == name).to_numpy()].mean().to_numpy()
            out[f"rank_{name}"] = out[col].rank(ascending=False, method="first").astype("Int64")
    return out.sort_values("rank", kind="stable").reset_index(drop=True)


def driver_importance(
    contrib: pd.DataFrame, drivers: Mapping[str, str], segment: pd.Series | None = None
) -> pd.DataFrame:
    """Mean |SHAP| per *driver* (business reason), overall and per segment, ranked (1 = most important).

    ``drivers`` maps feature -> driver (registry.json's ``driver``; a feature
    not in it is its own driver). SHAP values are additive, so a driver's
    contribution for a customer is the exact sum of its features'
    contributions; a reason spread over correlated features (a price rise in
    % and in money, vs 3 and 12 months) is then ranked as one. The mean of
    |sum| is at most the sum of the members' mean |SHAP|: members pulling in
    opposite directions cancel.

    Columns: ``driver``, ``features`` (members, ``;``-separated, in model
    order), then those of :func:`shap_importance`.
    """
    features = [c for c in contrib.columns if c != BIAS]
    of = pd.Series({f: drivers.get(f) or f for f in features})
    out = shap_importance(driver_contributions(contrib, drivers), segment).rename(columns={"feature": "driver"})
    members = of.groupby(of.to_numpy(), sort=False).apply(lambda s: ";".join(s.index))
    out.insert(1, "features", out["driver"].map(members))
    return out


def driver_contributions(contrib: pd.DataFrame, drivers: Mapping[str, str]) -> pd.DataFrame:
    """Per-customer contributions summed per driver (columns in order of first member; ``bias`` dropped).

    ``drivers`` maps feature -> driver; a feature not in it is its own
    driver. Rows still sum to the raw score minus ``bias``.
    """
    features = [c for c in contrib.columns if c != BIAS]
    of = [drivers.get(f) or f for f in features]
    return contrib[features].T.groupby(of, sort=False).sum().T
