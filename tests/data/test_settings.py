"""Settings are checked against the data before the features stage writes anything (issue #9).

A 40-customer contractual business, billed at each month end of 2023-2024,
where every fourth customer churns in 2024. Each bad setting must stop
``run_features`` with a message that names the setting to change, and leave
no output (not even a temporary folder) behind.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from omvald.config import config_from_dict
from omvald.data.validate import run_validate
from omvald.errors import ConfigError
from omvald.features.asof import month_ends_between
from omvald.features.stage import run_features

START, END = dt.date(2023, 1, 1), dt.date(2024, 12, 31)


def write_business(folder: Path, churn_dates: dict[int, str]) -> Path:
    """40 customers signed up on 2023-01-01, billed 30.0 at each month end until they churn."""
    ids = [f"C{i:02d}" for i in range(40)]
    churn = [churn_dates.get(i, "") for i in range(40)]
    rows = [
        (cid, day.isoformat(), 30.0)
        for cid, gone in zip(ids, churn, strict=True)
        for day in month_ends_between(START, END)
        if not gone or day < dt.date.fromisoformat(gone)
    ]
    folder.mkdir(parents=True)
    pd.DataFrame({"customer_id": ids, "signup_date": START.isoformat(), "churn_date": churn}).to_csv(
        folder / "customers.csv", index=False
    )
    pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"]).to_csv(folder / "billing.csv", index=False)
    pd.DataFrame(columns=["customer_id", "timestamp", "channel", "event"]).to_csv(
        folder / "touchpoints.csv", index=False
    )
    return folder


def params(data: dict | None = None, **features) -> dict:
    return {"data": data or {}, "features": {"n_buckets": 1, **features}}


def interim(tmp_path: Path, raw_params: dict, churn_dates: dict[int, str] | None = None) -> Path:
    """The validated business in ``tmp_path / "interim"``; churn dates default to one per quarter of 2024."""
    if churn_dates is None:
        churn_dates = {i: f"2024-{1 + (i // 4) % 12:02d}-15" for i in range(0, 40, 4)}
    raw = write_business(tmp_path / "raw", churn_dates)
    run_validate(config_from_dict(raw_params), raw, tmp_path / "interim", profile_path=None)
    return tmp_path / "interim"


def assert_refused(tmp_path: Path, raw_params: dict, *phrases: str, churn_dates: dict[int, str] | None = None) -> None:
    folder = interim(tmp_path, raw_params, churn_dates)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigError) as caught:
        run_features(config_from_dict(raw_params), folder, tmp_path / "features")
    for phrase in phrases:
        assert phrase in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temporary folder


def test_horizon_that_leaves_no_labelled_date_is_refused(tmp_path):
    assert_refused(
        tmp_path, params(horizon_days=400), "no as-of date has a fully observed horizon", "features.horizon_days"
    )


def test_as_of_range_that_leaves_no_labelled_date_is_refused(tmp_path):
    # 2024-12-31 + 90 days is after the end of data: no label can be observed
    assert_refused(
        tmp_path,
        params(as_of_first="2024-11-30", as_of_last="2024-12-31"),
        "must be on or before 2024-10-02",
        "features.as_of_first",
    )


def test_end_of_data_before_the_last_as_of_date_is_refused(tmp_path):
    assert_refused(
        tmp_path,
        params({"data_end": "2024-06-30"}, as_of_last="2024-09-30"),
        "features.as_of_last is 2024-09-30 but the data ends on 2024-06-30",
        "data.data_end",
    )


@pytest.mark.parametrize("drop", [0.0, 1.0, 1.5, -0.2])
def test_phase_out_drop_outside_zero_one_is_refused(tmp_path, drop):
    assert_refused(tmp_path, params(phase_out_drop=drop), f"features.phase_out_drop is {drop}", "between 0 and 1")


def test_population_without_churners_is_refused(tmp_path):
    assert_refused(tmp_path, params(), "no customer churns", "features.horizon_days", churn_dates={})


def test_population_where_everyone_churns_is_refused(tmp_path):
    everyone = {i: "2024-05-15" for i in range(40)}  # all leave within 90 days of 2024-03-31
    assert_refused(
        tmp_path,
        params({"data_end": "2024-12-31"}, as_of_first="2024-03-31", as_of_last="2024-03-31"),
        "every customer churns",
        "features.as_of_first / as_of_last",
        churn_dates=everyone,
    )


def test_explicit_end_of_data_and_as_of_dates_are_used(tmp_path):
    raw_params = params({"data_end": "2024-11-30"}, as_of_first="2024-03-31", as_of_last="2024-09-30")
    meta = run_features(config_from_dict(raw_params), interim(tmp_path, raw_params), tmp_path / "features")
    assert meta["data_end"] == "2024-11-30"
    assert meta["as_of_dates"] == [d.isoformat() for d in month_ends_between(dt.date(2024, 3, 1), dt.date(2024, 9, 30))]
    # labels need t + 90 days <= 2024-11-30
    assert meta["labelled_dates"] == [
        d.isoformat() for d in month_ends_between(dt.date(2024, 3, 1), dt.date(2024, 8, 31))
    ]
