"""The split steps down with the history there is: out of time, then test out of time, then held-out customers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from omvald.buckets import customer_hash
from omvald.errors import ConfigError
from omvald.model.split import (
    CUSTOMER,
    CUSTOMER_DATES,
    TIME,
    TIME_TEST,
    Split,
    held_out_customers,
    make_split,
    time_split,
)

MONTH_ENDS_2024 = [d.date() for d in pd.date_range("2024-01-31", periods=12, freq="ME")]
# nine months of purchases, 2025-01-01 .. 2025-09-30: as-of dates are the month ends Jan .. Sep
NINE_MONTHS = [d.date() for d in pd.date_range("2025-01-31", periods=9, freq="ME")]
NINE_MONTHS_END = dt.date(2025, 9, 30)
D = dt.date


def customers_at(dates: list[dt.date], n: int = 100, churners: int = 20) -> pd.DataFrame:
    """``n`` customers at every date; the first ``churners`` churn at every date (so ever-churned = 20%)."""
    ids = [f"C{i:03d}" for i in range(n)]
    return pd.DataFrame(
        [(c, t, int(i < churners)) for t in dates for i, c in enumerate(ids)], columns=["customer_id", "as_of", "churn"]
    )


def labelled(horizon_days: int) -> list[dt.date]:
    return [t for t in NINE_MONTHS if t + dt.timedelta(days=horizon_days) <= NINE_MONTHS_END]


def split_of(frame: pd.DataFrame, horizon_days: int, valid_dates: int = 2, test_dates: int = 3) -> Split:
    return make_split(frame, horizon_days, valid_dates, test_dates, 0.25, NINE_MONTHS, NINE_MONTHS_END)


# --------------------------------------------------------------------------- step "time": out of time


def test_time_split_embargo_drops_dates_whose_label_window_reaches_the_next_window():
    split = time_split(MONTH_ENDS_2024, horizon_days=60, valid_dates=2, test_dates=2)

    assert split.strategy == TIME and split.step == "time" and split.out_of_time
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


def test_time_split_on_its_own_refuses_too_few_dates_and_names_the_settings():
    with pytest.raises(ConfigError, match="train.test_dates=2"):
        time_split(MONTH_ENDS_2024[:5], horizon_days=60, valid_dates=2, test_dates=2)


def test_where_the_time_split_fits_make_split_uses_it_with_no_customer_lists():
    frame = customers_at(MONTH_ENDS_2024, n=10)
    split = make_split(frame, 60, 2, 2, 0.25)
    assert split == time_split(MONTH_ENDS_2024, 60, 2, 2)
    assert split.customers == {} and split.notes == ()


# --------------------------------------------------------------------------- step "time_test"


def test_nine_months_and_90_days_test_the_latest_dates_out_of_time_and_validate_on_held_out_customers():
    # labelled: t + 90 <= 2025-09-30, i.e. Jan .. Jun. Three test dates (Apr, May, Jun) would leave
    # nothing to train on (2025-01-31 + 90 = 2025-05-01 > 2025-04-30); two (May, Jun) leave Jan and
    # Feb (2025-02-28 + 90 = 2025-05-29 <= 2025-05-31); Mar and Apr are dropped by the embargo.
    frame = customers_at(labelled(90))
    split = split_of(frame, 90)

    assert split.strategy == TIME_TEST and split.step == "time_test" and split.out_of_time
    assert split.dates["test"] == (D(2025, 5, 31), D(2025, 6, 30))
    assert split.dates["train"] == split.dates["valid"] == (D(2025, 1, 31), D(2025, 2, 28))
    assert sorted(split.dropped_dates) == ["2025-03-31", "2025-04-30"]
    valid, train = set(split.customers["valid"]), set(split.customers["train"])
    assert len(valid) == 25 and len(train) == 75 and not valid & train
    assert len(valid & {f"C{i:03d}" for i in range(20)}) == 5  # a quarter of the churners too
    assert "test" not in split.customers  # every customer at the test dates
    assert split.mask(frame, "test").sum() == 200
    assert split.mask(frame, "train").sum() == 150 and split.mask(frame, "valid").sum() == 50
    assert any("2 as-of date(s), not train.test_dates=3" in n for n in split.notes)


def test_validation_moves_to_held_out_customers_before_the_test_window_shrinks():
    # Jan .. Jun 2024, 60 days: no two validation dates fit before a training date, but all
    # train.test_dates=2 test dates (May, Jun) leave Jan .. Mar to train on (Mar 31 + 60 = May 30).
    frame = customers_at(MONTH_ENDS_2024[:6], n=40, churners=8)
    split = make_split(frame, 60, 2, 2, 0.25)
    assert split.step == "time_test"
    assert split.dates["test"] == (D(2024, 5, 31), D(2024, 6, 30))
    assert split.dates["train"] == (D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31))
    assert list(split.dropped_dates) == ["2024-04-30"]
    assert not any("not train.test_dates" in n for n in split.notes)


def test_training_dates_without_a_churner_step_down_to_held_out_customers():
    # Jan and Feb (the training dates of the 90-day step above) have no churner: nothing to learn there,
    # while the customer step still has churners on both sides.
    frame = customers_at(labelled(90))
    frame.loc[frame["as_of"] <= D(2025, 2, 28), "churn"] = 0
    assert split_of(frame, 90).step == "customer"


# --------------------------------------------------------------------------- step "customer"


def test_nine_months_and_180_days_hold_out_customers_across_all_dates_and_say_not_out_of_time():
    # labelled: Jan, Feb, Mar (2025-03-31 + 180 = 2025-09-27); none ends its window before another.
    frame = customers_at(labelled(180))
    split = split_of(frame, 180)

    assert split.strategy == CUSTOMER_DATES == "customer (not out of time)"
    assert split.step == "customer" and not split.out_of_time
    assert split.dates["test"] == split.dates["train"] == (D(2025, 1, 31), D(2025, 2, 28), D(2025, 3, 31))
    test, valid, train = (set(split.customers[w]) for w in ("test", "valid", "train"))
    assert (len(test), len(valid), len(train)) == (25, 19, 56)
    assert not (test & valid or test & train or valid & train)
    for window, ids in (("test", test), ("train", train)):  # a customer is on one side, with all their dates
        rows = frame.loc[split.mask(frame, window)]
        assert set(rows["customer_id"]) == ids and len(rows) == 3 * len(ids)
    assert "NOT out of time" in split.notes[0]
    assert "data until about 2026-10-31" in split.notes[1]
    assert split.to_json(frame)["out_of_time"] is False


def test_single_snapshot_holds_out_a_stratified_share_of_customers():
    ids = [f"C{i:03d}" for i in range(100)]
    frame = pd.DataFrame({"customer_id": ids, "as_of": dt.date(2024, 6, 30), "churn": [1] * 20 + [0] * 80})

    split = make_split(frame, horizon_days=90, valid_dates=2, test_dates=3, holdout_share=0.25)

    assert split.strategy == CUSTOMER == "customer (single snapshot)" and split.step == "customer"
    test, valid, train = (set(split.customers[w]) for w in ("test", "valid", "train"))
    # test: round(0.25 x 20) + round(0.25 x 80) = 5 + 20; validation from the other 75: 4 (3.75) + 15
    assert len(test) == 25 and len(valid) == 19 and len(train) == 56
    assert test.isdisjoint(valid) and test.isdisjoint(train) and valid.isdisjoint(train)
    assert test | valid | train == set(ids)
    assert len(test & set(ids[:20])) == 5
    assert split.mask(frame, "test").sum() == 25


def test_held_out_customers_are_the_lowest_hashes_of_each_class_whatever_the_order():
    ids = pd.Index([f"K{i}" for i in range(40)])
    ever = pd.Series([1] * 8 + [0] * 32, index=ids)
    held = held_out_customers(ever, 0.25)

    hashes = customer_hash(pd.Series(ids, index=ids))
    expected = set(hashes[ids[:8]].nsmallest(2).index) | set(hashes[ids[8:]].nsmallest(8).index)
    assert held == expected
    shuffled = ever.sample(frac=1.0, random_state=3)
    assert held_out_customers(shuffled, 0.25) == held  # the same customers in every run


def test_too_few_customers_is_the_one_error_and_says_what_training_needs():
    frame = customers_at(labelled(180), n=2, churners=1)
    with pytest.raises(ConfigError, match="at least 3 customers"):
        split_of(frame, 180)


def test_no_labelled_date_says_which_horizon_or_export_would_label_one():
    empty = pd.DataFrame({"customer_id": [], "as_of": [], "churn": []})
    # first as-of date 2025-01-31: 242 days to 2025-09-30; a 300-day horizon needs data until 2025-11-27
    with pytest.raises(ConfigError, match="at most 242 days or export data until 2025-11-27"):
        split_of(empty, 300)


def test_the_notes_say_which_data_or_horizon_would_give_a_full_out_of_time_split():
    split = split_of(customers_at(labelled(90)), 90)
    # data until 2026-02-28 labels Jan .. Nov 2025: test Sep-Nov, validation May-Jun, training Jan-Feb;
    # with 31 days, test May-Jul, validation Mar-Apr, training Jan-Feb fit in today's data.
    assert "data until about 2026-02-28 or a horizon of at most 31 days" in split.notes[-1]


def test_holdout_share_must_leave_most_customers_to_train():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "as_of": dt.date(2024, 1, 31), "churn": [0, 1]})
    with pytest.raises(ConfigError, match="customer_holdout_share"):
        make_split(frame, 90, 2, 3, 0.5)


# --------------------------------------------------------------------------- split.json


@pytest.mark.parametrize("horizon_days", [90, 180])
def test_split_json_round_trip_keeps_windows_step_and_notes(horizon_days):
    frame = customers_at(labelled(horizon_days), n=12, churners=4)
    split = split_of(frame, horizon_days)
    obj = split.to_json(frame)
    assert obj["split_step"] == split.step and obj["split_description"]
    assert Split.from_json(obj) == split
    # every labelled row is in exactly one window or on a date the embargo dropped (12 customers a date)
    assert sum(obj["n_rows"].values()) + 12 * len(split.dropped_dates) == len(frame)


def test_split_json_of_the_time_split_counts_rows_per_window():
    split = time_split(MONTH_ENDS_2024, horizon_days=60, valid_dates=2, test_dates=2)
    frame = pd.DataFrame({"customer_id": ["a", "b"] * 12, "as_of": np.repeat(MONTH_ENDS_2024, 2)})
    obj = split.to_json(frame)
    assert obj["n_rows"] == {"train": 12, "valid": 4, "test": 4}
    assert obj["split_step"] == "time" and obj["out_of_time"] is True
    assert Split.from_json(obj) == split


def test_split_json_written_before_split_steps_existed_still_reads():
    old = {"split_strategy": "customer (single snapshot)", "horizon_days": 90,
           "dates": {w: ["2025-06-30"] for w in ("train", "valid", "test")},
           "customers": {"train": ["a"], "valid": ["b"], "test": ["c"]}}  # fmt: skip
    split = Split.from_json(old)
    assert split.step == "customer" and not split.out_of_time
