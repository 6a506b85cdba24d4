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


def top_drivers(
    contrib: pd.DataFrame, X: pd.DataFrame, k: int = 3, prefix: str = "", drivers: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The ``k`` drivers with the largest positive summed contributions per row.

    ``drivers`` maps feature -> driver (business reason; a feature not in it,
    or every feature when None, is its own driver). A driver's contribution is
    the sum of its features' contributions (:func:`driver_sums`), so a driver
    appears at most once per row. Returns, for ``i`` in 1..k:
    ``{prefix}driver_i`` (the driver), ``{prefix}driver_i_feature`` (its
    feature with the largest contribution for this row),
    ``{prefix}driver_i_value`` (that feature's value as text),
    ``{prefix}driver_i_contribution`` (the driver's sum, log-odds, > 0) and
    ``{prefix}driver_i_value_raw`` (the value itself, for
    :func:`omvald.explain.reasons.reason_columns`; callers drop it). Equal
    contributions are ordered by the order of the drivers' first features.
    """
    features = [c for c in contrib.columns if c != BIAS]
    n = len(contrib)
    specs = {f: _Driver((drivers or {}).get(f) or f) for f in features}
    sums, strongest, names = driver_sums(contrib[features].to_numpy(dtype=float), features, specs)
    positive = np.where(sums > 0, sums, -np.inf)
    kk = min(k, len(names))
    order = np.argsort(-positive, axis=1, kind="stable")[:, :kk]
    top = np.take_along_axis(positive, order, axis=1)
    valid = np.isfinite(top)
    columns: dict[str, Any] = {}
    for i in range(k):
        driver_i = np.full(n, None, dtype=object)
        feature_i = np.full(n, None, dtype=object)
        value_raw = np.full(n, None, dtype=object)
        contrib_i = np.full(n, np.nan)
        if i < kk:
            for row in np.flatnonzero(valid[:, i]):
                d = order[row, i]
                j = strongest[row, d]
                driver_i[row], feature_i[row] = names[d], features[j]
                value_raw[row] = X[features[j]].to_numpy(dtype=object)[row]
                contrib_i[row] = top[row, i]
        columns[f"{prefix}driver_{i + 1}"] = pd.Series(driver_i, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_feature"] = pd.Series(feature_i, index=contrib.index, dtype="str")
        columns[f"{prefix}driver_{i + 1}_value"] = pd.Series(
            [format_value(v) for v in value_raw], index=contrib.index, dtype="str"
        )
        columns[f"{prefix}driver_{i + 1}_contribution"] = pd.Series(contrib_i, index=contrib.index, dtype=float)
        columns[f"{prefix}driver_{i + 1}_value_raw"] = pd.Series(value_raw, index=contrib.index, dtype=object)
    return pd.DataFrame(columns, index=contrib.index)


def driver_sums(
    values: np.ndarray, features: list[str], specs: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per row, each driver's summed contribution and its strongest feature.

    ``values`` (rows x ``features``) are the SHAP values without ``bias``;
    a feature's driver is its spec's ``driver`` (none, or no spec: the feature
    itself). Returns ``(sums, strongest, drivers)``: ``sums`` (rows x
    drivers), ``strongest`` (rows x drivers, the column index in ``features``
    of the driver's largest contribution in that row; ties: the first) and the
    driver names in order of their first feature. Members are added left to
    right, so the sums are the same on every call.
    """
    of = [getattr(specs.get(f), "driver", "") or f for f in features]
    names = list(dict.fromkeys(of))
    members: dict[str, list[int]] = {d: [] for d in names}
    for j, d in enumerate(of):
        members[d].append(j)
    n = values.shape[0]
    sums = np.zeros((n, len(names)))
    strongest = np.zeros((n, len(names)), dtype=np.int64)
    for d, name in enumerate(names):
        cols = members[name]
        acc = values[:, cols[0]].copy()
        for j in cols[1:]:
            acc += values[:, j]
        sums[:, d] = acc
        strongest[:, d] = np.asarray(cols)[np.argmax(values[:, cols], axis=1)] if n else cols[0]
    return sums, strongest, names


class _Driver:
    """A spec stand-in that only names the driver (for :func:`driver_sums` from a plain mapping)."""

    def __init__(self, driver: str) -> None:
        self.driver = driver


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
