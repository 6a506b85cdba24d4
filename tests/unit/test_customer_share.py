"""train.customer_share: a stable sample of whole customers, read without the others' rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from omvald.buckets import N_SLOTS, hash_slot
from omvald.errors import ConfigError
from omvald.model.artifacts import read_customer_share


@pytest.fixture
def table(tmp_path):
    ids = [f"C{i:05d}" for i in range(2000)]
    dates = [dt.date(2024, m, 28) for m in (1, 2, 3)]
    frame = pd.DataFrame(
        {"customer_id": [c for _ in dates for c in ids], "as_of": [d for d in dates for _ in ids], "x": 1.0}
    )
    path = tmp_path / "training.parquet"
    frame.to_parquet(path, row_group_size=500)
    return path, frame


def test_a_share_keeps_whole_customers_chosen_by_their_hash_slot(table):
    path, frame = table
    half = read_customer_share(path, 0.5)
    kept = set(half["customer_id"])
    # every as-of date of a kept customer, none of the others
    assert (half.groupby("customer_id").size() == 3).all()
    slots = hash_slot(frame["customer_id"].drop_duplicates())
    expected = set(frame["customer_id"].drop_duplicates()[(slots < N_SLOTS // 2).to_numpy()])
    assert kept == expected
    assert 0.45 < len(kept) / 2000 < 0.55
    # the same customers every time, and a larger share keeps a superset
    assert set(read_customer_share(path, 0.5)["customer_id"]) == kept
    assert kept < set(read_customer_share(path, 0.8)["customer_id"])


def test_share_one_reads_everything_and_bad_shares_are_config_errors(table):
    path, frame = table
    pd.testing.assert_frame_equal(read_customer_share(path, 1.0), pd.read_parquet(path))
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="customer_share"):
            read_customer_share(path, bad)
    with pytest.raises(ConfigError, match="keeps none"):
        read_customer_share(path, 0.0001)
