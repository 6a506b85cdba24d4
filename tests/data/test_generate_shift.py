"""The drifting synthetic business (``generate.shift``) and exports at an earlier date (``--export-date``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from omvald.config import GenerateConfig, ShiftConfig
from omvald.data.generate import generate_business
from omvald.data.generate_export import export_as_of
from omvald.errors import ConfigError

BASE = GenerateConfig(n_customers=1500, months=18, start_date=dt.date(2024, 1, 1), chunk_size=1500)
SHIFT = ShiftConfig(month=12, competitor_churn=0.3, billing_change=0.1, new_channel_share=0.5)


@pytest.fixture(scope="module")
def plain() -> dict[str, pd.DataFrame]:
    return generate_business(BASE, seed=4)


@pytest.fixture(scope="module")
def shifted() -> dict[str, pd.DataFrame]:
    return generate_business(dataclasses.replace(BASE, shift=SHIFT), seed=4)


def test_without_a_month_the_shift_knobs_change_nothing(plain):
    off = generate_business(dataclasses.replace(BASE, shift=dataclasses.replace(SHIFT, month=None)), seed=4)
    for name in ("customers", "billing", "touchpoints", "truth"):
        pd.testing.assert_frame_equal(off[name], plain[name])


def test_the_business_before_the_shift_month_is_unchanged(plain, shifted):
    cut = pd.Timestamp("2025-01-01")  # month 12 after the 2024-01 start
    for table, column in (("billing", "invoice_date"), ("touchpoints", "timestamp"), ("customers", "churn_date")):
        before = [f[table].loc[pd.to_datetime(f[table][column]) < cut].reset_index(drop=True) for f in (plain, shifted)]
        pd.testing.assert_frame_equal(before[1].drop(columns=["name", "email"], errors="ignore"),
                                      before[0].drop(columns=["name", "email"], errors="ignore"))  # fmt: skip


def test_list_prices_rise_by_the_billing_change_at_the_shift(plain, shifted):
    def list_prices(frames: dict[str, pd.DataFrame], month: str) -> pd.Series:
        b = frames["billing"]
        b = b[(pd.to_datetime(b["invoice_date"]).dt.strftime("%Y-%m") == month) & b["list_price"].notna()]
        return b.set_index(["customer_id", "plan", "products"])["list_price"]

    # a January list-price growth of 1% happened in both; the shift adds 10% on top from 2025-01
    ratio = list_prices(shifted, "2025-01") / list_prices(plain, "2025-01")
    assert ratio.dropna().round(3).unique().tolist() == [1.1]


def test_the_social_channel_appears_only_after_the_shift(plain, shifted):
    tp = shifted["touchpoints"]
    social = tp[tp["channel"] == "social"]
    assert (plain["touchpoints"]["channel"] != "social").all()
    assert len(social) > 100 and social["timestamp"].min() >= pd.Timestamp("2025-01-01")
    assert set(social["event"]) == {"contact", "complaint"}


def test_the_competitor_takes_passive_customers_and_the_truth_says_so(shifted):
    truth = shifted["truth"]
    lost = truth[truth["churn_driver"] == "competitor"]
    assert len(lost) > 30
    assert (lost["latent_type"] == "passive").all()
    assert (pd.to_datetime(lost["churn_date"]) >= pd.Timestamp("2025-01-01")).all()


def test_a_shift_outside_the_months_is_refused():
    with pytest.raises(ConfigError, match=r"shift.month"):
        generate_business(dataclasses.replace(BASE, shift=dataclasses.replace(SHIFT, month=18)), seed=4)


def test_an_export_holds_what_was_known_at_the_end_of_its_day(plain):
    day = dt.date(2024, 9, 30)
    tables = {name: pa.Table.from_pandas(plain[name], preserve_index=False) for name in ("customers", "billing", "touchpoints")}  # fmt: skip
    exported = {name: t.to_pandas() for name, t in export_as_of(tables, day).items()}
    end = pd.Timestamp(day)
    customers, billing, touchpoints = exported["customers"], exported["billing"], exported["touchpoints"]
    assert (pd.to_datetime(customers["signup_date"]) <= end).all()
    assert len(customers) == int((pd.to_datetime(plain["customers"]["signup_date"]) <= end).sum())
    both = customers.merge(plain["customers"][["customer_id", "churn_date"]], on="customer_id", suffixes=("", "_true"))
    true_churn = pd.to_datetime(both["churn_date_true"])
    assert (true_churn > end).sum() > 20  # churned after the export: not known in it
    pd.testing.assert_series_equal(
        pd.to_datetime(both["churn_date"]), true_churn.where(true_churn <= end), check_names=False
    )
    assert (pd.to_datetime(billing["invoice_date"]) <= end).all()
    assert (pd.to_datetime(billing["paid_date"]).dropna() <= end).all()
    assert touchpoints["timestamp"].max() < end + pd.Timedelta(days=1)
    # an invoice paid after the day keeps its amount; only the payment is not known yet
    full = plain["billing"]
    paid_later = full[(pd.to_datetime(full["invoice_date"]) <= end) & (pd.to_datetime(full["paid_date"]) > end)]
    assert len(paid_later) > 0
    kept = billing.merge(paid_later[["customer_id", "invoice_date", "amount"]], on=["customer_id", "invoice_date"])
    assert kept["paid_date"].isna().all() and (kept["amount_x"] == kept["amount_y"]).all()
