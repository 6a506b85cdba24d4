"""Rows of the feature file read in parts: the same values, and the same LightGBM model, as from the frame in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_fakes import FEATURES, SMALL_LGBM, make_feature_frame

from omvald.model.estimators import LGBMChurnModel
from omvald.model.feature_rows import FeatureFile, FeatureRows, per_batch

NAMES = [n for n, _, _ in FEATURES]
SETTINGS = SMALL_LGBM


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The frame, and the same frame written in row groups of 300 rows (a window spans several)."""
    frame = make_feature_frame(n_customers=300, n_dates=6, seed=2)
    path = tmp_path_factory.mktemp("features") / "training.parquet"
    frame.to_parquet(path, index=False, row_group_size=300)
    return frame, FeatureFile(path)


def test_chosen_rows_read_back_as_the_frame_holds_them(stored):
    frame, file = stored
    rows = np.flatnonzero(frame["churn"].to_numpy() == 0)[::3]  # spread over every row group
    read = FeatureRows(file, rows, NAMES).to_frame()
    pd.testing.assert_frame_equal(read, frame.loc[rows, NAMES], check_index_type=False)
    assert len(list(FeatureRows(file, rows, NAMES).batches())) == file.parquet.num_row_groups
    fewer = FeatureRows(file, rows, NAMES).loc[np.arange(len(rows)) % 2 == 0]
    np.testing.assert_array_equal(fewer.rows, rows[::2])


def test_rows_must_be_ascending(stored):
    _, file = stored
    with pytest.raises(ValueError, match="ascending"):
        FeatureRows(file, np.array([5, 3]), NAMES)


def test_a_model_fitted_batch_by_batch_is_the_model_fitted_on_the_frame(stored):
    """The train stage fits from the file (LightGBM's Sequence), tests and small runs from frames: one model here.

    Not always: a fit from a frame leaves out features LightGBM cannot split
    (values in too few rows), one from batches keeps them, and the trees can
    then differ (``LGBMChurnModel`` docstring). Every feature here is common.
    """
    frame, file = stored
    dates = sorted(frame["as_of"].unique())
    train_rows = np.flatnonzero(frame["as_of"].isin(dates[:4]).to_numpy())
    valid_rows = np.flatnonzero(frame["as_of"].isin(dates[4:]).to_numpy())
    y, y_valid = frame["churn"].to_numpy()[train_rows], frame["churn"].to_numpy()[valid_rows]
    groups = frame["customer_id"].to_numpy()[valid_rows]
    from_file = LGBMChurnModel(**SETTINGS).fit(
        FeatureRows(file, train_rows, NAMES), y, FeatureRows(file, valid_rows, NAMES), y_valid, groups
    )
    from_frame = LGBMChurnModel(**SETTINGS).fit(
        frame.loc[train_rows, NAMES], y, frame.loc[valid_rows, NAMES], y_valid, groups
    )
    assert from_file.booster_.model_to_string() == from_frame.booster_.model_to_string()
    assert from_file.calibration_method_ == from_frame.calibration_method_
    everything = FeatureRows(file, np.arange(len(frame)), NAMES)
    np.testing.assert_array_equal(from_file.predict_proba(everything), from_frame.predict_proba(frame[NAMES]))
    np.testing.assert_array_equal(per_batch(everything, from_frame.predict_raw), from_frame.predict_raw(frame[NAMES]))
