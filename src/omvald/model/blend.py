"""The blend of LightGBM and the logistic regression: a weighted sum of their log-odds, then calibrated.

Blending raw log-odds (not probabilities) keeps the explanations additive:
a row's contributions are ``w x`` LightGBM's exact TreeSHAP values plus
``(1 - w) x`` the logistic regression's exact linear terms, feature by
feature, and they sum to the blend's raw score as each part's do to its
own. The weight is chosen on the validation window
(:mod:`omvald.model.kept`); the calibrator is fitted there too, like the
LightGBM model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from omvald.model.baselines import LogisticBaseline
from omvald.model.estimators import LGBMChurnModel, fit_calibrator
from omvald.model.feature_rows import per_batch


class BlendModel(ClassifierMixin, BaseEstimator):
    """``weight x`` LightGBM log-odds ``+ (1 - weight) x`` logistic log-odds, calibrated on the validation window.

    ``lgbm`` and ``logistic`` are the (unfitted) parts; ``fit`` trains copies
    of both on the same rows. :meth:`of_fitted` wraps parts already fitted
    (the train stage has them). Offers what scoring and explain call:
    ``feature_names_``, ``predict_raw``, ``predict_proba``,
    ``predict_contributions``, ``n_trees_`` and ``calibration_method_``.
    """

    def __init__(
        self,
        lgbm: LGBMChurnModel | None = None,
        logistic: LogisticBaseline | None = None,
        weight: float = 0.5,
        calibration: str = "auto",
    ) -> None:
        self.lgbm = lgbm
        self.logistic = logistic
        self.weight = weight
        self.calibration = calibration

    @classmethod
    def of_fitted(
        cls,
        lgbm: LGBMChurnModel,
        logistic: LogisticBaseline,
        weight: float,
        calibration: str,
        X_valid: pd.DataFrame,
        y_valid: Any,
        valid_groups: Sequence[Any] | None = None,
    ) -> BlendModel:
        """A blend of two fitted parts, calibrated on ``X_valid, y_valid`` (``calibration`` as in the LightGBM model)."""
        model = cls(lgbm=clone(lgbm), logistic=clone(logistic), weight=weight, calibration=calibration)
        model._take_parts(lgbm, logistic)
        if not len(X_valid):
            return model.calibrate(np.zeros(0), np.zeros(0), "none")
        return model.calibrate(model.predict_raw(X_valid), y_valid, calibration, valid_groups)

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        X_valid: pd.DataFrame | None = None,
        y_valid: Any = None,
        valid_groups: Sequence[Any] | None = None,
    ) -> BlendModel:
        """Fit both parts on ``X, y`` (LightGBM early-stops on the validation rows when given) and calibrate there."""
        lgbm = clone(self.lgbm).fit(X, y, X_valid, y_valid, valid_groups)
        logistic = clone(self.logistic).fit(X, y)
        self._take_parts(lgbm, logistic)
        if X_valid is not None and len(X_valid):
            return self.calibrate(self.predict_raw(X_valid), y_valid, self.calibration, valid_groups)
        return self.calibrate(np.zeros(0), np.zeros(0), "none")

    def _take_parts(self, lgbm: LGBMChurnModel, logistic: LogisticBaseline) -> None:
        if list(lgbm.feature_names_) != list(logistic.feature_names_):
            raise ValueError("the blended models must be trained on the same feature columns")
        self.lgbm_, self.logistic_ = lgbm, logistic
        self.feature_names_ = list(lgbm.feature_names_)
        self.n_trees_ = lgbm.n_trees_
        self.classes_ = np.array([0, 1])

    def calibrate(self, raw_scores: np.ndarray, y: Any, method: str, groups: Sequence[Any] | None = None) -> BlendModel:
        """(Re)fit the calibrator on raw blend scores of rows neither part trained on; returns self."""
        self.calibrator_, self.calibration_losses_ = fit_calibrator(raw_scores, np.asarray(y), method, groups)
        self.calibration_method_ = self.calibrator_.method
        return self

    def for_refit(self) -> BlendModel:
        """Unfitted, with the LightGBM part's tree count and the calibration method fixed (:mod:`omvald.model.refit`)."""
        return BlendModel(
            lgbm=self.lgbm_.for_refit(),
            logistic=self.logistic_.for_refit(),
            weight=self.weight,
            calibration=self.calibration_method_,
        )

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Blended log-odds, shape ``(n,)``."""
        return per_batch(
            X, lambda b: self.weight * self.lgbm_.predict_raw(b) + (1 - self.weight) * self.logistic_.predict_raw(b)
        )

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.calibrator_.transform(self.predict_raw(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def predict_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per feature ``w x`` TreeSHAP + ``(1 - w) x`` the linear term, and ``bias``; rows sum to ``predict_raw``."""
        trees = self.lgbm_.predict_contributions(X)
        linear = self.logistic_.predict_contributions(X)[trees.columns]
        return self.weight * trees + (1 - self.weight) * linear
