"""The train stage's hook for drift: which rows the training reference (``models/reference.json``) describes.

The binning itself is :mod:`omvald.model.reference`; this module picks the
rows, as the train stage knows them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from omvald.config import Config
from omvald.model.artifacts import SCORING, FeatureSet
from omvald.model.reference import training_reference
from omvald.model.split import Split


def reference_of(
    cfg: Config, fs: FeatureSet, frame: pd.DataFrame, split: Split, models: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``reference.json`` (:mod:`omvald.model.reference`): what drift at scoring time compares with.

    Features: every row the scoring model learned from (all labelled rows
    after the refit; the training window with ``train.refit: false``).
    Scores: the scoring model on the test window, the latest labelled
    dates: the model a scoring run uses, on its most recent population
    (docs/monitoring.md says why).
    """
    learned = frame if cfg.train.refit else frame.loc[split.mask(frame, "train")]
    test = frame.loc[split.mask(frame, "test")]
    about = {
        "features_from": "every labelled row the scoring model learned from",
        "feature_dates": _date_range(learned["as_of"]),
        "scores_from": "the scoring model on the test window",
        "score_dates": _date_range(test["as_of"]),
    }
    drivers = {f["name"]: f.get("driver") or f["name"] for f in fs.registry}
    scoring = {t: pair[SCORING] for t, pair in models.items()}
    return training_reference(learned, test, fs.features, fs.categorical, drivers, scoring, about)


def _date_range(as_of: pd.Series) -> dict[str, Any]:
    dates = sorted({pd.Timestamp(d).date().isoformat() for d in as_of.unique()})
    return {"first": dates[0], "last": dates[-1], "count": len(dates)} if dates else {"count": 0}
