"""The data's dates come from its bulk: stray rows far before or after it never move the start, the end
or the as-of dates (issue #20)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from omvald.config import DataConfig, FeatureConfig, GenerateConfig
from omvald.data.dates import bulk_first_day, bulk_last_day
from omvald.data.generate import generate_business
from omvald.data.validate import validate_tables
from omvald.errors import ConfigError, DataContractError
from omvald.features.stage import check_settings


def days_and_counts(spec: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    days = np.array(sorted(spec), dtype=np.int64)
    return days, np.array([spec[d] for d in days], dtype=np.int64)


BULK = {d: 10 for d in range(100)}  # days 0..99, 10 values a day: 1,000 values


@pytest.mark.parametrize(
    ("extra", "first", "last"),
    [
        ({}, 0, 99),
        ({47_000: 1}, 0, 99),  # one row 128 years later
        ({-25_000: 2}, 0, 99),  # two rows 68 years earlier
        ({300: 10}, 0, 99),  # 1% after a 200-day silence: still a stray
        ({300: 11}, 0, 300),  # 1.1% of the values: part of the data
        ({191: 1}, 0, 191),  # 92 days to the next dated day: a quiet quarter, not a cut
        ({192: 1}, 0, 99),
        ({193: 1, 40_000: 3}, 0, 99),  # strays of strays: cut at the first silence
    ],
)
def test_the_bulk_ends_before_a_long_silence_followed_by_a_few_values(extra, first, last):
    days, counts = days_and_counts(BULK | extra)
    assert (bulk_first_day(days, counts), bulk_last_day(days, counts)) == (first, last)


@pytest.fixture(scope="module")
def business() -> dict[str, pd.DataFrame]:
    raw = generate_business(GenerateConfig(n_customers=300, months=24), seed=3)
    return {t: raw[t] for t in ("customers", "billing", "touchpoints")}


def with_strays(business: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """One touchpoint in 2099, one invoice on the placeholder 9999-12-31, one invoice in 1850."""
    billing, touchpoints = business["billing"].copy(), business["touchpoints"].copy()
    billing["invoice_date"] = billing["invoice_date"].astype(object)
    billing.loc[5, "invoice_date"] = "9999-12-31"
    billing.loc[6, "invoice_date"] = "1850-03-01"
    touchpoints["timestamp"] = touchpoints["timestamp"].astype(object)
    touchpoints.loc[7, "timestamp"] = "2099-01-01T10:00:00"
    return {**business, "billing": billing, "touchpoints": touchpoints}


def dates_of(raw: dict[str, pd.DataFrame], cfg: DataConfig | None = None):
    tables, meta, warnings = validate_tables(raw, cfg or DataConfig())
    start, end = (dt.date.fromisoformat(meta[k]) for k in ("data_start", "data_end"))
    as_of, labelled = check_settings(FeatureConfig(), start, end)
    return meta, as_of, labelled, tables, warnings


def test_a_future_and_an_ancient_row_change_neither_the_dates_nor_the_as_of_dates(business):
    clean_meta, clean_as_of, clean_labelled, clean, _ = dates_of(business)
    meta, as_of, labelled, tables, warnings = dates_of(with_strays(business))
    assert (meta["data_start"], meta["data_end"]) == (clean_meta["data_start"], clean_meta["data_end"])
    assert (as_of, labelled) == (clean_as_of, clean_labelled)
    assert as_of[-1] == dt.date.fromisoformat(clean_meta["data_end"])  # the scoring date
    assert meta["dates_excluded"] == {"billing": {"rows": 2}, "touchpoints": {"rows": 1}}
    assert len(tables["billing"]) == len(clean["billing"]) - 2
    assert any(w.startswith("touchpoints: 1 row(s) dated outside the bulk") and "2099-01-01" in w for w in warnings)


def test_placeholder_dates_for_payment_and_churn_read_as_empty(business):
    customers, billing = business["customers"].copy(), business["billing"].copy()
    alive = customers.index[customers["churn_date"].isna()][:3]
    customers["churn_date"] = customers["churn_date"].astype(object)
    customers.loc[alive, "churn_date"] = "9999-12-31"
    billing["paid_date"] = billing["paid_date"].astype(object)
    billing.loc[:1, "paid_date"] = "9999-12-31"
    clean_meta, *_ = dates_of(business)
    meta, *_, tables, _ = dates_of({**business, "customers": customers, "billing": billing})
    assert meta["data_end"] == clean_meta["data_end"]
    assert meta["dates_excluded"] == {"billing": {"paid_date": 2}, "customers": {"churn_date": 3}}
    assert tables["customers"]["churn_date"].isna().sum() == business["customers"]["churn_date"].isna().sum()


def test_an_end_of_data_the_user_sets_wins_and_keeps_later_rows(business):
    raw = with_strays(business)
    cfg = DataConfig(data_end=dt.date(2024, 6, 30))
    meta, as_of, *_, tables, _ = dates_of(raw, cfg)
    assert meta["data_end"] == "2024-06-30" and as_of[-1] == dt.date(2024, 6, 30)
    assert meta["dates_excluded"] == {"billing": {"rows": 1}}  # only the 1850 invoice
    assert (tables["touchpoints"]["date"] == pd.Timestamp("2099-01-01")).sum() == 1


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("signup_date", "1850-01-01", "signup_date before 1900-01-01 (1 row(s)); a placeholder"),
        ("signup_date", "2099-01-01", "signup_date after the end of the data"),
    ],
)
def test_customers_dated_outside_the_data_are_errors_with_examples(business, column, value, needle):
    customers = business["customers"].copy()
    customers[column] = customers[column].astype(object)
    customers.loc[0, column] = value
    with pytest.raises(DataContractError, match=re.escape(needle)) as err:
        validate_tables({**business, "customers": customers}, DataConfig())
    assert f"customer_id='{customers.loc[0, 'customer_id']}', {column}={value}" in str(err.value)


def test_features_refuse_decades_of_default_as_of_dates_and_say_what_to_set():
    with pytest.raises(ConfigError, match=r"features\.as_of_first \(e\.g\. 2019-12-31\)"):
        check_settings(FeatureConfig(), dt.date(1990, 1, 1), dt.date(2024, 12, 31))
    explicit = dataclasses.replace(FeatureConfig(), as_of_first=dt.date(1991, 1, 31))
    dates, _ = check_settings(explicit, dt.date(1990, 1, 1), dt.date(2024, 12, 31))
    assert len(dates) == 408


def test_bounds_and_exclusions_found_bucket_by_bucket_equal_the_whole_tables(business):
    """An engine that sees one bucket of customers at a time adds up histograms and exclusion facts."""
    from omvald.buckets import bucket_of_slot
    from omvald.data.dates import (
        add_exclusion_facts,
        add_histograms,
        bounds_of,
        data_bounds,
        date_histograms,
        exclude_outside_bulk,
        excluded_rows,
        exclusion_warnings,
    )
    from omvald.data.validate import validate_rows

    tables, *_ = validate_rows(with_strays(business), DataConfig())
    whole, excluded, warnings = exclude_outside_bulk(tables, cut_end=True)
    buckets = [
        {t: df.loc[bucket_of_slot(df["hash_slot"], 3) == b].reset_index(drop=True) for t, df in tables.items()}
        for b in range(3)
    ]
    bounds = bounds_of(add_histograms([date_histograms(part) for part in buckets]), cut_end=True)
    assert bounds == data_bounds(tables, cut_end=True)
    parts = [excluded_rows(part, *bounds) for part in buckets]
    assert exclusion_warnings(add_exclusion_facts([facts for _, facts in parts]), *bounds) == (excluded, warnings)
    assert sum(len(part["billing"]) for part, _ in parts) == len(whole["billing"]) == len(tables["billing"]) - 2
