"""The churn / phase-out model: a LightGBM booster plus a probability calibrator.

Follows scikit-learn conventions (``__init__`` stores hyperparameters,
``fit`` returns ``self``, fitted state ends in ``_``) so ``clone()`` works
and evaluation treats it like the baselines in :mod:`omvald.model.baselines`.

Calibration happens on the validation window, never on training rows (the
booster is overconfident there). Choosing between isotonic and Platt on the
same rows that fit them would favour isotonic (it can memorise), so the
validation customers are halved by a stable hash: one half fits both
calibrators, the other half picks the one with the lower log loss; the
winner is then refit on the whole validation window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from omvald.buckets import hash_slot
from omvald.errors import ModelError
from omvald.model.feature_rows import FeatureRows, MatrixSequence, per_batch

PROBA_CLIP = 1e-6


class Calibrator:
    """Maps a raw score (log-odds or any monotone score) to a probability."""

    def __init__(self, method: str) -> None:
        self.method = method

    def fit(self, score: np.ndarray, y: np.ndarray) -> Calibrator:
        score, y = np.asarray(score, dtype=float), np.asarray(y, dtype=int)
        if self.method == "isotonic":
            self.model_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y)
        elif self.method == "sigmoid":
            self.model_ = LogisticRegression(C=1e6, max_iter=1000).fit(score.reshape(-1, 1), y)
        elif self.method != "none":
            raise ModelError(f"unknown calibration {self.method!r}; use auto, isotonic, sigmoid or none")
        return self

    def transform(self, score: np.ndarray) -> np.ndarray:
        score = np.asarray(score, dtype=float)
        if self.method == "isotonic":
            p = self.model_.predict(score)
        elif self.method == "sigmoid":
            p = self.model_.predict_proba(score.reshape(-1, 1))[:, 1]
        else:
            p = 1.0 / (1.0 + np.exp(-score))
        return np.clip(p, PROBA_CLIP, 1 - PROBA_CLIP)


def fit_calibrator(
    score: np.ndarray, y: np.ndarray, method: str, groups: Sequence[Any] | None = None
) -> tuple[Calibrator, dict[str, float]]:
    """Fit the calibrator ``method`` (``auto`` picks isotonic or sigmoid) on validation scores.

    ``groups`` (customer ids) decide the halves for ``auto``: half A fits,
    half B chooses by log loss. Returns the calibrator (refit on all rows)
    and the half-B log loss of each candidate (empty unless ``auto``).
    """
    score, y = np.asarray(score, dtype=float), np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        return Calibrator("none").fit(score, y), {}
    if method != "auto":
        return Calibrator(method).fit(score, y), {}
    if groups is not None:
        half_b = (hash_slot(pd.Series(np.asarray(groups)).astype(str)).to_numpy() % 2).astype(bool)
    else:
        half_b = np.arange(len(y)) % 2 == 1
    losses: dict[str, float] = {}
    if len(np.unique(y[~half_b])) == 2 and len(np.unique(y[half_b])) == 2:
        for candidate in ("isotonic", "sigmoid"):
            cal = Calibrator(candidate).fit(score[~half_b], y[~half_b])
            losses[candidate] = float(log_loss(y[half_b], cal.transform(score[half_b]), labels=[0, 1]))
        chosen = min(losses, key=losses.__getitem__)
    else:
        chosen = "sigmoid"
    return Calibrator(chosen).fit(score, y), losses


class LGBMChurnModel(ClassifierMixin, BaseEstimator):
    """Binary LightGBM model with native categoricals and a validation-window calibrator.

    ``categorical_features``: column names to treat as categorical; ``None``
    means every non-numeric column. At predict time categoricals are cast to
    the levels seen in training (``categories_``), so unseen levels become
    missing instead of silently reusing another level's code.

    Determinism: fixed ``seed``, ``deterministic=True``, ``force_row_wise``
    and a fixed ``num_threads`` (default 1: on small shared machines OpenMP
    threads fighting for cores cost more than they gain).
    """

    def __init__(
        self,
        n_estimators: int = 150,
        num_leaves: int = 15,
        learning_rate: float = 0.05,
        min_child_samples: int = 100,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        bagging_freq: int = 1,
        lambda_l2: float = 1.0,
        early_stopping_rounds: int = 30,
        calibration: str = "auto",
        categorical_features: Sequence[str] | None = None,
        seed: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.bagging_freq = bagging_freq
        self.lambda_l2 = lambda_l2
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.categorical_features = categorical_features
        self.seed = seed
        self.num_threads = num_threads

    def _lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }

    def fit(
        self,
        X: pd.DataFrame | FeatureRows,
        y: Any,
        X_valid: pd.DataFrame | FeatureRows | None = None,
        y_valid: Any = None,
        valid_groups: Sequence[Any] | None = None,
    ) -> LGBMChurnModel:
        """Train on ``X, y``; early-stop and calibrate on ``X_valid, y_valid`` when given.

        ``valid_groups`` (customer ids of the validation rows) make the
        calibration halves customer-disjoint. ``X`` and ``X_valid`` may be
        :class:`~omvald.model.feature_rows.FeatureRows` (rows of the feature
        file, read in batches), never holding the rows. The train stage always
        fits from batches. From a frame the model is the same, except that
        LightGBM then leaves out features it cannot split (a value in too few
        rows), which it keeps from batches, and the trees can differ (seen on
        the small pipeline's phase-out: ``products_change_6m``,
        ``tp_chat_downgrade_request_90d``).
        """
        self.feature_names_ = list(X.columns)
        self.categorical_names_ = categorical_columns(X, self.categorical_features)
        self.categories_ = {c: _levels(X[c]) for c in self.categorical_names_}
        self.classes_ = np.array([0, 1])
        train = self._dataset(X, y)
        callbacks, valid_sets = [], []
        if X_valid is not None and len(X_valid):
            valid_sets = [self._dataset(X_valid, y_valid, reference=train)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)]
        self.booster_ = lgb.train(
            self._lgb_params(), train, num_boost_round=self.n_estimators, valid_sets=valid_sets, callbacks=callbacks
        )
        self.n_trees_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        if X_valid is not None and len(X_valid):
            return self.calibrate(self.predict_raw(X_valid), y_valid, self.calibration, valid_groups)
        return self.calibrate(np.zeros(0), np.zeros(0), "none")

    def _dataset(self, X: pd.DataFrame | FeatureRows, y: Any, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        """LightGBM's dataset of ``X``: from the frame, or built batch by batch from the same float64 matrix."""
        label = np.asarray(y, dtype=float)
        if isinstance(X, pd.DataFrame):
            return lgb.Dataset(
                self._prepare(X),
                label=label,
                categorical_feature=self.categorical_names_ or "auto",
                reference=reference,
            )
        data = lgb.Dataset(
            MatrixSequence(X[self.feature_names_], self._matrix),
            label=label,
            feature_name=self.feature_names_,
            categorical_feature=self.categorical_names_ or "auto",
            reference=reference,
            # A dataset built from batches draws its bin sample with the dataset's own parameters, which
            # leave out `seed`: give it the sample seed LightGBM derives from `seed` for a frame.
            params={"data_random_seed": data_random_seed(self.seed)},
        )
        # what LightGBM records from a frame's categoricals, so the booster is the frame's booster
        data.pandas_categorical = [self.categories_[c] for c in self.feature_names_ if c in self.categories_]
        return data

    def calibrate(
        self, raw_scores: np.ndarray, y: Any, method: str, groups: Sequence[Any] | None = None
    ) -> LGBMChurnModel:
        """(Re)fit the calibrator on raw scores of rows the booster did not train on; returns self.

        ``fit`` passes the validation window's scores; a refit on every row
        passes out-of-fold scores (:mod:`omvald.model.refit`). ``method`` as
        in :func:`fit_calibrator`.
        """
        self.calibrator_, self.calibration_losses_ = fit_calibrator(raw_scores, np.asarray(y), method, groups)
        self.calibration_method_ = self.calibrator_.method
        return self

    def for_refit(self) -> LGBMChurnModel:
        """Unfitted, with this fit's tree count and chosen calibration fixed (:mod:`omvald.model.refit`)."""
        return clone(self).set_params(n_estimators=self.n_trees_, calibration=self.calibration_method_)

    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ModelError(f"input lacks feature column(s) the model was trained on: {', '.join(missing)}")
        out = {}
        for col in self.feature_names_:
            if col in self.categories_:
                levels = self.categories_[col]
                values = X[col].astype("string")
                out[col] = pd.Categorical(values.where(values.isin(levels)), categories=levels)
            else:
                out[col] = pd.to_numeric(X[col], errors="coerce").astype("float64")
        return pd.DataFrame(out, index=X.index)

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float64 matrix LightGBM makes of :meth:`_prepare`'s frame (category codes, -1 read as missing).

        When every non-categorical column is already numeric (the feature
        file's case), they are converted as one block: the same values as
        column by column through :meth:`_prepare`, which took about a sixth
        of a training run at 100k customers.
        """
        numeric = [c for c in self.feature_names_ if c not in self.categories_]
        if set(self.feature_names_) <= set(X.columns) and all(pd.api.types.is_numeric_dtype(X[c]) for c in numeric):
            matrix = np.empty((len(X), len(self.feature_names_)), dtype=np.float64)
            position = {c: j for j, c in enumerate(self.feature_names_)}
            if numeric:
                matrix[:, [position[c] for c in numeric]] = X[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
            for c, levels in self.categories_.items():
                values = X[c].astype("string")
                codes = pd.Categorical(values.where(values.isin(levels)), categories=levels).codes
                matrix[:, position[c]] = np.where(codes == -1, np.nan, codes)
            return matrix
        prepared = self._prepare(X)
        columns = [
            prepared[c].cat.codes.to_numpy(np.float64) if c in self.categories_ else prepared[c].to_numpy(np.float64)
            for c in self.feature_names_
        ]
        matrix = np.column_stack(columns) if columns else np.zeros((len(X), 0))
        for j, c in enumerate(self.feature_names_):
            if c in self.categories_:
                matrix[matrix[:, j] == -1, j] = np.nan
        return matrix

    def predict_raw(self, X: pd.DataFrame | FeatureRows) -> np.ndarray:
        """Uncalibrated log-odds, shape ``(n,)``."""
        return per_batch(
            X, lambda b: self.booster_.predict(self._matrix(b), raw_score=True, num_iteration=self.n_trees_)
        )

    def predict_proba(self, X: pd.DataFrame | FeatureRows) -> np.ndarray:
        """Calibrated probabilities, shape ``(n, 2)`` (column 1 = positive class)."""
        p = self.calibrator_.transform(self.predict_raw(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame | FeatureRows) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def predict_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP values in raw log-odds: one column per feature plus ``bias``; rows sum to ``predict_raw``."""
        contrib = self.booster_.predict(self._matrix(X), pred_contrib=True, num_iteration=self.n_trees_)
        return pd.DataFrame(contrib, columns=[*self.feature_names_, "bias"], index=X.index)


def data_random_seed(seed: int) -> int:
    """The ``data_random_seed`` LightGBM derives from ``seed`` (``Config::Set``: the first draw of its 16-bit LCG)."""
    x = (214013 * (seed & 0xFFFFFFFF) + 2531011) & 0xFFFFFFFF
    return ((x >> 16) & 0x7FFF) % 32767


def categorical_columns(X: pd.DataFrame, declared: Sequence[str] | None) -> list[str]:
    """Columns of ``X`` to treat as categorical: the ``declared`` ones, else every non-numeric or category column."""
    if declared is not None:
        return [c for c in X.columns if c in set(declared)]
    return [
        c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) or isinstance(X[c].dtype, pd.CategoricalDtype)
    ]


def _levels(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna().unique()})
