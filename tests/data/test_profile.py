"""The profile's churn label rates match a hand count on tiny tables."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from omvald.config import DataConfig
from omvald.data.profile import build_profile, monthly_as_of_dates
from omvald.data.validate import validate_tables

NO_TOUCHPOINTS = pd.DataFrame(columns=["customer_id", "timestamp", "channel", "event"], dtype="str")


def profile_of(customers, billing, data_end, horizon_days, lookback_days=365):
    raw = {"customers": pd.DataFrame(customers), "billing": pd.DataFrame(billing), "touchpoints": NO_TOUCHPOINTS}
    tables, meta, warnings = validate_tables(raw, DataConfig(data_end=data_end))
    return build_profile(tables, meta, warnings, horizon_days, lookback_days)


def rates(profile):
    return {r["as_of"]: (r["population"], r["churners"]) for r in profile["label_rates"]}


def test_contractual_label_rates_match_a_hand_count():
    customers = {
        "customer_id": ["A", "B", "C", "D", "E"],
        "signup_date": ["2023-01-01", "2023-01-01", "2023-02-15", "2023-04-10", "2023-01-01"],
        "churn_date": [None, "2023-03-15", "2023-06-01", None, "2023-01-20"],
    }
    billing = {"customer_id": ["A"], "invoice_date": ["2023-01-31"], "amount": ["10"]}
    profile = profile_of(customers, billing, dt.date(2023, 7, 31), horizon_days=90)
    # t + 90 <= 2023-07-31 leaves four month ends. Jan: A,B in (E left 01-20), B leaves by 05-01.
    # Feb: A,B,C; B leaves. Mar: A,C (B gone); C leaves 06-01. Apr: A,C,D; C leaves.
    assert rates(profile) == {
        "2023-01-31": (2, 1),
        "2023-02-28": (3, 1),
        "2023-03-31": (2, 1),
        "2023-04-30": (3, 1),
    }
    assert profile["label_rates"][1]["churn_rate"] == round(1 / 3, 6)
    assert profile["contractual"] is True and profile["customers"] == 5


def test_non_contractual_label_rates_match_a_hand_count():
    customers = {"customer_id": ["X", "Y", "Z"], "signup_date": ["2023-01-01"] * 3}
    billing = {
        "customer_id": ["X", "X", "X", "Y", "Z", "Z"],
        "invoice_date": ["2023-01-10", "2023-02-10", "2023-03-10", "2023-01-20", "2023-03-05", "2023-05-20"],
        "amount": ["10"] * 6,
    }
    profile = profile_of(customers, billing, dt.date(2023, 5, 31), horizon_days=60, lookback_days=60)
    # Jan 31: X, Y billed in (Dec 2, Jan 31]; Y has nothing in (Jan 31, Apr 1] -> churned.
    # Feb 28: X, Y (Jan 20 > Dec 30); Y churned. Mar 31: X, Z; X has nothing in (Mar 31, May 30].
    assert rates(profile) == {"2023-01-31": (2, 1), "2023-02-28": (2, 1), "2023-03-31": (2, 1)}
    assert profile["contractual"] is False


def test_profile_counts_rows_per_month_and_optional_columns():
    customers = {"customer_id": ["A", "B"], "signup_date": ["2023-01-01", "2023-02-01"]}
    billing = {
        "customer_id": ["A", "A", "B"],
        "invoice_date": ["2023-01-31", "2023-02-28", "2023-02-28"],
        "amount": ["1", "2", "3"],
        "plan": ["basic", "basic", "pro"],
    }
    profile = profile_of(customers, billing, None, horizon_days=30)
    assert profile["tables"]["billing"]["rows_per_month"] == {"2023-01": 1, "2023-02": 2}
    assert profile["tables"]["billing"]["optional_columns_present"] == ["plan"]
    assert profile["tables"]["touchpoints"]["rows"] == 0
    assert any("touchpoints: empty" in w for w in profile["warnings"])


def test_as_of_dates_need_an_observed_horizon():
    dates = monthly_as_of_dates(dt.date(2023, 1, 1), dt.date(2023, 4, 30), horizon_days=60)
    assert dates == [dt.date(2023, 1, 31), dt.date(2023, 2, 28)]
