"""Billing and static features on tiny hand-made tables, with the expected numbers written out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from omvald.config import FeatureConfig
from omvald.features.billing import billing_feature_specs, billing_features
from omvald.features.build import build_features
from omvald.features.spec import BucketTables
from omvald.features.static import binding_months, detect_binding_column, static_features

D = dt.date
CFG = FeatureConfig()


def tables(billing: dict, customers: dict | None = None) -> BucketTables:
    ids = sorted(set(billing["customer_id"])) if billing else ["a"]
    customers = customers or {"customer_id": ids, "signup_date": [D(2023, 1, 1)] * len(ids)}
    touchpoints = pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="str"),
            "timestamp": pd.Series([], dtype="datetime64[us]"),
            "date": pd.Series([], dtype=object),
            "channel": pd.Series([], dtype="str"),
            "event": pd.Series([], dtype="str"),
        }
    )
    return BucketTables(pd.DataFrame(customers), pd.DataFrame(billing), touchpoints)


def at(t: BucketTables, *dates: dt.date) -> pd.DataFrame:
    spine = pd.DataFrame(
        {
            "customer_id": [c for _ in dates for c in t.customers["customer_id"]],
            "as_of": [d for d in dates for _ in t.customers["customer_id"]],
        }
    )
    spine["as_of"] = spine["as_of"].astype(object)
    out = billing_features(t, spine, CFG)
    return out.assign(as_of=pd.to_datetime(out["as_of"]).dt.date).set_index(["customer_id", "as_of"]).sort_index()


MONTHLY = {
    "customer_id": ["a"] * 3,
    "invoice_date": [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1)],
    "amount": [100.0, 100.0, 118.0],
}


def test_price_shock_compares_last_invoice_with_invoice_three_months_earlier():
    row = at(tables(MONTHLY), D(2024, 3, 31)).loc[("a", D(2024, 3, 31))]
    assert row["price_shock_pct_3m"] == pytest.approx(18.0)
    assert row["price_shock_amount_3m"] == pytest.approx(18.0)
    assert row["price_increases_12m"] == 1
    assert row["price_increase_max_pct_12m"] == pytest.approx(18.0)
    assert row["monthly_revenue"] == 118.0
    assert row["amount_mean_3m"] == pytest.approx(318.0 / 3)
    assert row["days_since_last_invoice"] == 30


def test_feature_at_t_ignores_invoices_after_t_and_knows_the_invoice_dated_t():
    before = at(tables(MONTHLY), D(2024, 2, 29)).loc[("a", D(2024, 2, 29))]
    assert before["price_shock_pct_3m"] == 0.0
    assert before["price_increases_12m"] == 0
    on_the_day = at(tables(MONTHLY), D(2024, 3, 1)).loc[("a", D(2024, 3, 1))]
    assert on_the_day["price_shock_pct_3m"] == pytest.approx(18.0)
    assert on_the_day["days_since_last_invoice"] == 0


def test_price_change_with_a_plan_change_is_not_a_price_increase_but_a_plan_change():
    bill = {**MONTHLY, "plan": ["basic", "basic", "plus"], "list_price": [100.0, 100.0, 130.0]}
    row = at(tables(bill), D(2024, 3, 31)).loc[("a", D(2024, 3, 31))]
    assert row["price_increases_12m"] == 0
    assert row["plan_changes_12m"] == 1
    assert row["downgrades_12m"] == 0
    assert row["plan_last"] == "plus"


def test_downgrade_is_a_change_to_a_cheaper_plan():
    bill = {**MONTHLY, "amount": [100.0, 100.0, 60.0], "plan": ["plus", "plus", "basic"]}
    row = at(tables(bill), D(2024, 3, 31)).loc[("a", D(2024, 3, 31))]
    assert (row["plan_changes_12m"], row["downgrades_12m"]) == (1, 1)
    assert row["price_shock_pct_3m"] == pytest.approx(-40.0)


def test_loyalty_gap_is_last_invoice_above_list_price_in_percent():
    bill = {
        "customer_id": ["a"] * 2,
        "invoice_date": [D(2023, 3, 1), D(2024, 3, 1)],
        "amount": [100.0, 125.0],
        "list_price": [100.0, 100.0],
    }
    row = at(tables(bill), D(2024, 3, 31)).loc[("a", D(2024, 3, 31))]
    assert row["loyalty_gap_pct"] == pytest.approx(25.0)
    assert row["loyalty_gap_growth_12m"] == pytest.approx(25.0)
    assert row["price_shock_pct_12m"] == pytest.approx(25.0)
    assert np.isnan(row["price_shock_pct_3m"])  # no invoice within 3 months before the last one


def test_days_late_and_unpaid_count_a_payment_made_after_t_as_unpaid_at_t():
    bill = {
        "customer_id": ["a"] * 3,
        "invoice_date": [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1)],
        "amount": [100.0, 100.0, 100.0],
        "due_date": [D(2024, 1, 15), D(2024, 2, 15), D(2024, 3, 15)],
        "paid_date": [D(2024, 1, 20), D(2024, 2, 10), D(2024, 4, 10)],
    }
    row = at(tables(bill), D(2024, 3, 31)).loc[("a", D(2024, 3, 31))]
    # Jan 5 days late, Feb on time, Mar still open at t: 16 days late so far
    assert row["days_late_max_180d"] == 16
    assert row["days_late_mean_180d"] == pytest.approx(7.0)
    assert row["unpaid_invoices_180d"] == 1
    later = at(tables(bill), D(2024, 4, 30)).loc[("a", D(2024, 4, 30))]
    assert later["unpaid_invoices_180d"] == 0
    assert later["days_late_max_180d"] == 26


def test_credit_notes_count_and_reduce_spend_but_not_price_shock():
    bill = {
        "customer_id": ["a"] * 4,
        "invoice_date": [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1), D(2024, 3, 1)],
        "amount": [100.0, 100.0, 100.0, -30.0],
    }
    row = at(tables(bill), D(2024, 3, 31)).loc[("a", D(2024, 3, 31))]
    assert row["credit_notes_12m"] == 1
    assert row["monthly_revenue"] == 70.0
    assert row["price_shock_pct_3m"] == 0.0


def test_products_and_usage_trends():
    bill = {
        "customer_id": ["a"] * 6,
        "invoice_date": [D(2023, 10, 1), D(2023, 11, 1), D(2023, 12, 1), D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1)],
        "amount": [100.0] * 6,
        "products": [3.0, 3.0, 3.0, 2.0, 2.0, 2.0],
        "usage": [10.0, 10.0, 10.0, 5.0, 5.0, 5.0],
    }
    row = at(tables(bill), D(2024, 3, 31)).loc[("a", D(2024, 3, 31))]
    assert row["products_last"] == 2
    assert row["products_change_6m"] == -1
    assert row["usage_mean_3m"] == pytest.approx(5.0)
    assert row["usage_trend_6m"] == pytest.approx(-50.0)
    assert row["amount_trend_6m"] == pytest.approx(0.0)


def test_customer_without_invoices_has_zero_spend_and_missing_comparisons():
    t = tables(MONTHLY, {"customer_id": ["a", "b"], "signup_date": [D(2023, 1, 1)] * 2})
    row = at(t, D(2024, 3, 31)).loc[("b", D(2024, 3, 31))]
    assert row["monthly_revenue"] == 0.0 and row["invoices_12m"] == 0
    assert np.isnan(row["price_shock_pct_3m"]) and np.isnan(row["days_since_last_invoice"])


def test_billing_with_only_required_columns_gives_only_the_core_family():
    out = at(tables(MONTHLY), D(2024, 3, 31))
    core = {s.name for s in billing_feature_specs(CFG, {}) if s.family == "billing_core"}
    assert set(out.columns) == core


def test_binding_term_values_are_read_and_the_column_detected():
    assert [binding_months(v) for v in ["12m", "24 months", "monthly", "gold", None]] == [12, 24, 0, None, None]
    assert detect_binding_column({"region": ["north", "south"], "contract": ["12m", "24m", "monthly"]}) == "contract"
    assert detect_binding_column({"region": ["north", "south"]}) is None


def test_static_features_tenure_binding_and_attributes():
    t = tables(
        MONTHLY,
        {
            "customer_id": ["a"],
            "signup_date": [D(2023, 3, 31)],
            "contract": ["24m"],
            "region": ["north"],
            "age": [41],
            "marketing_opt_in": [True],
        },
    )
    spine = pd.DataFrame({"customer_id": ["a"], "as_of": pd.Series([D(2024, 3, 31)], dtype=object)})
    row = static_features(t, spine, CFG, binding_column="contract").iloc[0]
    assert row["tenure_months"] == pytest.approx(366 / 30.4375)
    assert row["binding_months_left"] == pytest.approx(365 / 30.4375)  # ends 2025-03-31
    assert row["months_since_binding_end"] == 0
    assert row["attr_region"] == "north" and row["attr_contract"] == "24m" and row["attr_age"] == 41.0
    assert "attr_marketing_opt_in" not in row.index


def test_build_features_does_not_modify_its_inputs():
    t = tables({**MONTHLY, "plan": ["a", "a", "b"]})
    copies = [t.customers.copy(), t.billing.copy(), t.touchpoints.copy()]
    meta = {"data_end": "2024-06-30", "contractual": False, "rows": {"billing": 3}}
    build_features(t, [D(2024, 3, 31)], CFG, meta, with_labels=True)
    for before, after in zip(copies, [t.customers, t.billing, t.touchpoints], strict=True):
        pd.testing.assert_frame_equal(before, after)
