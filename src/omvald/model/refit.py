"""Refit: the model that scores is trained again on every labelled row, with the evaluated fit's settings.

Why: the split holds the latest labelled dates out for testing, and in a
short export those are the dates that matter most. So after the evaluated
("holdout") fit, the train stage fits the scoring model again on every
labelled row, test window included, with the holdout fit's number of trees
(no early stopping: there is nothing left to stop on) and its chosen
calibration method. Metrics stay with the holdout fit, which never saw the
test window; the refit is what ``omvald score`` loads and MLflow registers.

Calibration needs scores of rows the booster did not learn from. The refit
gets them out of fold, as scikit-learn's ``CalibratedClassifierCV(ensemble=
False)`` does: the customers are cut into ``folds`` groups by the stable
hash of ``customer_id`` (a customer's dates stay together), a booster with
the same settings is fitted without each group and scores it, and the
calibrator is fitted on those scores and put on the booster fitted on
everything. Cost: ``folds`` extra fits on ``(folds - 1) / folds`` of the
rows, none when the holdout fit chose no calibration (the logistic regression).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from omvald.buckets import customer_hash
from omvald.errors import ConfigError

log = logging.getLogger(__name__)


def customer_folds(customer_ids: Sequence[Any], folds: int) -> np.ndarray:
    """Fold number in ``[0, folds)`` per row: the stable hash of the row's customer, so a customer is in one fold."""
    return (customer_hash(pd.Series(np.asarray(customer_ids)).astype(str)).to_numpy() % np.uint64(folds)).astype(int)


def refit(holdout: Any, X: pd.DataFrame, y: Any, customer_ids: Sequence[Any], folds: int) -> Any:
    """A new model fitted on all of ``X, y`` with ``holdout.for_refit()``, calibrated on out-of-fold scores.

    ``customer_ids`` (one per row) group the folds. Raises
    :class:`ConfigError` for ``folds < 2``.
    """
    if folds < 2:
        raise ConfigError(f"train.refit_calibration_folds is {folds}; it must be at least 2.")
    template = holdout.for_refit()
    method = holdout.calibration_method_
    y = np.asarray(y, dtype=int)
    model = clone(template).fit(X, y)
    if method == "none":
        return model
    fold = customer_folds(customer_ids, folds)
    out_of_fold = np.zeros(len(X))
    for k in range(folds):
        held = fold == k
        if held.any():
            part = clone(template).fit(X.loc[~held], y[~held])
            out_of_fold[held] = part.predict_raw(X.loc[held])
    log.info("refit: %s, %d trees on %d rows, %s calibration on %d-fold scores", type(model).__name__,
             model.n_trees_, len(X), method, folds)  # fmt: skip
    return model.calibrate(out_of_fold, y, method)
