"""The classical answers a shop's analysts already know, as baselines beside the model (issue #16).

For a business without contracts, users compare us with lifetimes,
pymc-marketing or btyd and with a logistic regression on recency,
frequency and monetary value. Both are reported next to LightGBM:

- ``bgnbd``: the BG/NBD model's probability of no purchase in the horizon
  (the ``btyd_p_no_purchase`` feature, fitted point in time by
  :mod:`omvald.features.btyd_fit`), used **as is**, the number a lifetimes
  user gets. It answers churn only: BG/NBD says whether a customer buys
  again, not how much, so phase-out has no BG/NBD baseline.
- ``rfm_logistic``: a logistic regression on ``log(1 + x)`` of recency
  (days since the last purchase), frequency (purchases in the last 365
  days) and monetary value (spend per month over the last 12 months), the
  textbook RFM model (the logs tame the long right tails of counts and
  money).

:func:`baseline_models` builds every baseline that applies to a target and
says why each other one does not (never a fake column).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from omvald.model.baselines import HeuristicBaseline, LogisticBaseline
from omvald.model.estimators import PROBA_CLIP

BGNBD_COLUMN = "btyd_p_no_purchase"
RFM_COLUMNS = ("days_since_last_purchase", "purchases_365d", "amount_mean_12m")  # recency, frequency, monetary
NO_PHASE_OUT_ANALOGUE = (
    "BG/NBD predicts whether a customer buys again, not how much they spend: it has no phase-out answer"
)


class ProbabilityColumnBaseline(ClassifierMixin, BaseEstimator):
    """A probability that is already a feature column, used as it is (no fit, no calibration).

    A missing value (a customer the column has no answer for) scores the
    training rows' mean.
    """

    def __init__(self, column: str = BGNBD_COLUMN) -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: Any = None, X_valid: pd.DataFrame | None = None, y_valid: Any = None, **_: Any):
        values = pd.to_numeric(X[self.column], errors="coerce")
        self.feature_names_ = [self.column]
        self.fill_ = float(values.mean()) if values.notna().any() else 0.5
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = pd.to_numeric(X[self.column], errors="coerce").fillna(self.fill_).to_numpy(dtype=float)
        p = np.clip(p, PROBA_CLIP, 1 - PROBA_CLIP)
        return np.column_stack([1 - p, p])

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        p = self.predict_proba(X)[:, 1]
        return np.log(p / (1 - p))


class RFMLogisticBaseline(LogisticBaseline):
    """The classical RFM logistic regression: ``log(1 + x)`` of recency, frequency and monetary value, standardised."""

    def __init__(self, columns: Sequence[str] = RFM_COLUMNS, C: float = 1.0, max_iter: int = 2000) -> None:
        super().__init__(C=C, max_iter=max_iter, categorical_features=())
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame | None = None, y_valid: Any = None, **_: Any):
        return super().fit(X[list(self.columns)], y)

    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {c: np.log1p(pd.to_numeric(X[c], errors="coerce").clip(lower=0)) for c in self.columns}, index=X.index
        )


def baseline_models(
    target: str, features: Sequence[str], categorical: Sequence[str], families_missing: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The unfitted baselines that apply to ``target`` on these ``features``, and ``{name: why not}`` for the rest.

    ``logistic`` and ``heuristic`` always apply. ``bgnbd`` needs the
    ``btyd`` family (churn only); ``rfm_logistic`` needs :data:`RFM_COLUMNS`.
    ``families_missing`` is the feature meta's, whose reasons are reused.
    """
    have = set(features)
    models: dict[str, Any] = {
        "logistic": LogisticBaseline(categorical_features=list(categorical)),
        "heuristic": HeuristicBaseline(),
    }
    missing: dict[str, str] = {}
    if target != "churn":
        missing["bgnbd"] = NO_PHASE_OUT_ANALOGUE
    elif BGNBD_COLUMN in have:
        models["bgnbd"] = ProbabilityColumnBaseline(BGNBD_COLUMN)
    else:
        missing["bgnbd"] = families_missing.get("btyd") or f"no feature {BGNBD_COLUMN} (the btyd family)"
    lacking = [c for c in RFM_COLUMNS if c not in have]
    if not lacking:
        models["rfm_logistic"] = RFMLogisticBaseline()
    else:
        missing["rfm_logistic"] = families_missing.get("purchases") or f"no feature(s) {', '.join(lacking)}"
    return models, missing
