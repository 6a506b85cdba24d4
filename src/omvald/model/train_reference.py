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

    Features and scores of the **test window**: the latest labelled as-of
    dates (or, without an out-of-time split, the held-out customers), scored
    by the scoring model. That is the period whose accuracy ``evaluate``
    measured, and the latest the refit learned from; drift against it asks
    "are this run's customers like those we know the model's accuracy on?".
    A reference pooled over every training date drifts with every trend of
    the business, and the holdout fit's calibrated scores are distributed
    differently from the scoring model's even on the same rows
    (docs/monitoring.md has the measurements).
    """
    keys = frame.loc[split.mask(frame, "test")]
    # ``frame`` holds keys and labels only: the test window's features are read here, and only they
    # (a few dates of the table, float32) are in memory at once
    test = fs.frame_of(keys)
    about = {
        "rows_from": "the test window: the latest labelled as-of dates (the period evaluate measured)",
        "as_of_dates": _date_range(keys["as_of"]),
        "scores_from": "the scoring model (omvald score's) on the same rows",
        "split_step": split.step,
    }
    drivers = {f["name"]: f.get("driver") or f["name"] for f in fs.registry}
    scoring = {t: pair[SCORING] for t, pair in models.items()}
    return training_reference(test, test, fs.features, fs.categorical, drivers, scoring, about)


def _date_range(as_of: pd.Series) -> dict[str, Any]:
    dates = sorted({pd.Timestamp(d).date().isoformat() for d in as_of.unique()})
    return {"first": dates[0], "last": dates[-1], "count": len(dates)} if dates else {"count": 0}
