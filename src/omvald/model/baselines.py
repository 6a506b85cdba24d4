"""Baselines of the same shape as :class:`~omvald.model.estimators.LGBMChurnModel`.

The LightGBM model has to earn its complexity: it is reported next to a
regularised logistic regression on the same features and next to the
rule a retention team would write by hand (short tenure, a recent price
rise, little recent activity). A business without contracts also gets the
answers its analysts already know (issue #16): the BG/NBD model's
probability of no purchase in the horizon, as is (``bgnbd``), and a
logistic regression on recency, frequency and monetary value
(``rfm_logistic``). All take ``fit(X, y, X_valid, y_valid)`` and return
calibrated ``predict_proba``, so evaluation and logging treat them alike;
:func:`baseline_models` says which apply, and why the others do not.

The logistic regression can also be the kept model (:mod:`omvald.model.kept`):
it then offers what scoring and explain call, ``predict_contributions``
(exact linear terms) and ``for_refit``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from omvald.errors import ModelError
from omvald.model.estimators import Calibrator, categorical_columns

MISSING_LEVEL = "__missing__"


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """L2 logistic regression: numeric median-imputed and standardised, categoricals one-hot (unseen ignored)."""

    def __init__(self, C: float = 1.0, max_iter: int = 2000, categorical_features: Sequence[str] | None = None) -> None:
        self.C = C
        self.max_iter = max_iter
        self.categorical_features = categorical_features

    def fit(
        self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame | None = None, y_valid: Any = None, **_: Any
    ) -> LogisticBaseline:
        """Fit on ``X, y``; the validation window is unused (logistic regression is calibrated by construction)."""
        self.feature_names_ = list(X.columns)
        self.categorical_names_ = categorical_columns(X, self.categorical_features)
        numeric = [c for c in self.feature_names_ if c not in self.categorical_names_]
        pre = ColumnTransformer(
            [
                (
                    "num",
                    make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
                    numeric,
                ),
                ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), self.categorical_names_),
            ]
        )
        self.pipeline_: Pipeline = make_pipeline(pre, LogisticRegression(C=self.C, max_iter=self.max_iter))
        prepared = self._prepare(X)
        self.pipeline_.fit(prepared, np.asarray(y, dtype=int))
        self.classes_ = np.array([0, 1])
        # what scoring and explain read from any kept model: no trees, no calibration beyond the fit itself
        self.n_trees_, self.calibration_method_, self.calibration_losses_ = 0, "none", {}
        self.column_means_ = self._design(prepared).mean(axis=0)
        return self

    def for_refit(self) -> LogisticBaseline:
        """An unfitted copy with the same settings (:mod:`omvald.model.refit` fits it on every labelled row)."""
        return clone(self)

    def _design(self, prepared: pd.DataFrame) -> np.ndarray:
        """The model's input matrix: standardised numeric columns, then the one-hot columns."""
        z = self.pipeline_[0].transform(prepared)
        return np.asarray(z.toarray() if sparse.issparse(z) else z, dtype=float)

    def _column_owners(self) -> list[str]:
        """The original feature behind each column of :meth:`_design` (one-hot levels map to their feature)."""
        pre = self.pipeline_[0]
        numeric = [c for c in self.feature_names_ if c not in self.categorical_names_]
        owners = list(numeric)
        if self.categorical_names_:
            encoder = pre.named_transformers_["cat"]
            infrequent = getattr(encoder, "infrequent_categories_", [None] * len(self.categorical_names_))
            for name, levels, rare in zip(self.categorical_names_, encoder.categories_, infrequent, strict=True):
                # infrequent levels share one output column
                owners += [name] * (len(levels) - (len(rare) - 1 if rare is not None else 0))
        return owners

    def predict_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact log-odds terms per feature, ``coef x (column - training mean)``, plus ``bias``; rows sum to ``predict_raw``.

        A categorical feature's term is the sum over its one-hot columns.
        ``bias`` is the score of a row at the training means.
        """
        z = self._design(self._prepare(X))
        lr = self.pipeline_[-1]
        coef = lr.coef_.ravel()
        terms = (z - self.column_means_) * coef
        owners = self._column_owners()
        if len(owners) != z.shape[1]:  # a scikit-learn change in the one-hot layout must fail loudly, not mislabel
            raise ModelError(f"logistic contributions: {len(owners)} column owners for {z.shape[1]} columns")
        out = pd.DataFrame(0.0, index=X.index, columns=[*self.feature_names_, "bias"])
        for j, owner in enumerate(owners):
            out[owner] = out[owner].to_numpy() + terms[:, j]
        out["bias"] = float(lr.intercept_[0] + self.column_means_ @ coef)
        return out

    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X[self.feature_names_].copy()
        for col in self.feature_names_:
            if col in self.categorical_names_:
                out[col] = X[col].astype(object).where(X[col].notna(), MISSING_LEVEL).astype(str)
            else:
                # Rounded to float32 (7 digits): a feature summed in another order in another bucket can differ
                # in its last float64 bit, which a tree never sees but a linear score would pass on; the kept
                # regression must give a customer the same score in whichever bucket they land.
                values = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype="float64")
                out[col] = values.astype("float32").astype("float64")
        return out

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds, shape ``(n,)``, summed column by column: a row's score never depends on the other rows.

        (A BLAS matrix product may round a row differently with other rows
        beside it; a kept logistic regression must score a customer to the
        bit whatever bucket they land in.)
        """
        z = self._design(self._prepare(X))
        lr = self.pipeline_[-1]
        raw = np.full(len(z), float(lr.intercept_[0]))
        for j, c in enumerate(lr.coef_.ravel()):
            raw += z[:, j] * c
        return raw

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.predict_raw(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


# (pattern, direction): the first available column matching each pattern
# enters the rule score; +1 = higher value, higher risk.
DEFAULT_RULES: tuple[tuple[str, int], ...] = (
    (r"^tenure_months$", -1),  # new customers leave more often
    (r"price_shock|price_change|price_increase", +1),  # a recent price rise
    (r"inbound|login|active_events|events_90d|touchpoints_90d", -1),  # little recent activity
)


class HeuristicBaseline(ClassifierMixin, BaseEstimator):
    """A hand-written rule: mean of percentile ranks of short tenure, price shock and low activity.

    Nothing is learned except the training distribution of each rule column
    (to turn values into ranks) and a Platt scale that maps the rule score
    to a probability (on the validation window when given, else training).
    """

    def __init__(self, rules: Sequence[tuple[str, int]] = DEFAULT_RULES) -> None:
        self.rules = rules

    def fit(
        self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame | None = None, y_valid: Any = None, **_: Any
    ) -> HeuristicBaseline:
        numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        self.columns_: list[tuple[str, int]] = []
        for pattern, sign in self.rules:
            match = next((c for c in numeric if re.search(pattern, c) and c not in dict(self.columns_)), None)
            if match is not None:
                self.columns_.append((match, int(sign)))
        self.feature_names_ = [c for c, _ in self.columns_]
        self.reference_ = {
            c: np.sort(pd.to_numeric(X[c], errors="coerce").dropna().to_numpy(dtype=float)) for c in self.feature_names_
        }
        X_cal, y_cal = (X_valid, y_valid) if X_valid is not None and len(X_valid) else (X, y)
        self.calibrator_ = Calibrator("sigmoid" if len(np.unique(y_cal)) == 2 else "none").fit(
            self.predict_raw(X_cal), np.asarray(y_cal)
        )
        self.classes_ = np.array([0, 1])
        return self

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Rule score in [0, 1]: mean over rule columns of the risk-side percentile rank (missing = 0.5)."""
        if not self.columns_:
            return np.full(len(X), 0.5)
        parts = []
        for col, sign in self.columns_:
            ref = self.reference_[col]
            values = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=float)
            rank = np.searchsorted(ref, values, side="right") / max(len(ref), 1)
            rank = np.where(np.isnan(values), 0.5, rank)
            parts.append(rank if sign > 0 else 1 - rank)
        return np.mean(parts, axis=0)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.calibrator_.transform(self.predict_raw(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
