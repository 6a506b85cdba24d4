"""The out-of-time split: embargo between windows, single-snapshot fallback, clear errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from omvald.errors import ConfigError
from omvald.model.split import CUSTOMER, TIME, Split, customer_split, make_split, time_split

MONTH_ENDS_2024 = [d.date() for d in pd.date_range("2024-01-31", periods=12, freq="ME")]


def test_time_split_embargo_drops_dates_whose_label_window_reaches_the_next_window():
    split = time_split(MONTH_ENDS_2024, horizon_days=60, valid_dates=2, test_dates=2)

    assert split.strategy == TIME
    assert split.dates["test"] == (dt.date(2024, 11, 30), dt.date(2024, 12, 31))
    # 2024-10-31 + 60d = 2024-12-30 > 2024-11-30: its label sees the test window.
    assert split.dates["valid"] == (dt.date(2024, 8, 31), dt.date(2024, 9, 30))
    # 2024-07-31 + 60d = 2024-09-29 > 2024-08-31.
    assert split.dates["train"] == tuple(MONTH_ENDS_2024[:6])
    assert sorted(split.dropped_dates) == ["2024-07-31", "2024-10-31"]
    assert "embargo" in split.dropped_dates["2024-10-31"]


def test_time_split_every_training_label_window_ends_before_validation_and_validation_before_test():
    split = time_split(MONTH_ENDS_2024, horizon_days=90, valid_dates=1, test_dates=3)
    h = dt.timedelta(days=90)
    assert max(split.dates["train"]) + h <= min(split.dates["valid"])
    assert max(split.dates["valid"]) + h <= min(split.dates["test"])


def test_time_split_with_too_few_dates_names_the_settings_to_change():
    with pytest.raises(ConfigError, match="train.test_dates"):
        time_split(MONTH_ENDS_2024[:5], horizon_days=60, valid_dates=2, test_dates=2)


def test_single_snapshot_falls_back_to_a_stratified_customer_split():
    ids = [f"C{i:03d}" for i in range(100)]
    frame = pd.DataFrame({"customer_id": ids, "as_of": dt.date(2024, 6, 30), "churn": [1] * 20 + [0] * 80})

    split = make_split(frame, horizon_days=90, valid_dates=2, test_dates=3, test_share=0.25, seed=1)

    assert split.strategy == CUSTOMER == "customer (single snapshot)"
    test, valid, train = (set(split.customers[w]) for w in ("test", "valid", "train"))
    assert len(test) == 25 and len(valid) == 19 and len(train) == 56
    assert test.isdisjoint(valid) and test.isdisjoint(train) and valid.isdisjoint(train)
    assert test | valid | train == set(ids)
    churned = set(ids[:20])
    assert len(test & churned) == 5  # stratified: 20% positives in the test share too
    assert split.mask(frame, "test").sum() == 25


def test_split_json_round_trip_keeps_windows():
    split = time_split(MONTH_ENDS_2024, horizon_days=60, valid_dates=2, test_dates=2)
    frame = pd.DataFrame({"customer_id": ["a", "b"] * 12, "as_of": np.repeat(MONTH_ENDS_2024, 2)})
    obj = split.to_json(frame)
    assert obj["n_rows"] == {"train": 12, "valid": 4, "test": 4}
    assert Split.from_json(obj) == split


def test_customer_split_rejects_a_test_share_of_half_or_more():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "as_of": dt.date(2024, 1, 31), "churn": [0, 1]})
    with pytest.raises(ConfigError, match="snapshot_test_share"):
        customer_split(frame, "churn", 90, 0.5, seed=0)
