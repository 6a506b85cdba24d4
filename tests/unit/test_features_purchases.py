"""Purchase-history and BG/NBD features on hand-made invoice tables, with the expected numbers written out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from fixtures.businesses import bgnbd_purchases, write_non_contractual
from omvald.config import Config, FeatureConfig
from omvald.data.validate import run_validate
from omvald.features import btyd_fit
from omvald.features.btyd import beta_geo_fitter_class, bgnbd_predictions, btyd_features
from omvald.features.build import build_features, feature_meta
from omvald.features.labels import labels
from omvald.features.purchases import purchase_features
from omvald.features.registry import registry_entries
from omvald.features.spec import BucketTables
from omvald.features.stage import run_features

D = dt.date
T = D(2024, 3, 31)
CFG = FeatureConfig(horizon_days=92)  # phase-out compares 3 whole months
PARAMS = {"r": 0.8, "alpha": 40.0, "a": 1.2, "b": 8.0}

INVOICES = [
    # a: two lines on one day are one purchase of 15; a credit note is no purchase; April is after t
    ("a", D(2024, 1, 10), 10.0), ("a", D(2024, 1, 10), 5.0), ("a", D(2024, 2, 20), 20.0),
    ("a", D(2024, 3, 5), -3.0), ("a", D(2024, 3, 20), 30.0), ("a", D(2024, 4, 2), 99.0),
    # b: purchases on the edges of the windows (t - 30 = Mar 1, t - 365 = 2023-04-01 are outside)
    ("b", D(2023, 4, 1), 40.0), ("b", D(2023, 10, 1), 50.0), ("b", D(2024, 1, 15), -10.0),
    ("b", D(2024, 3, 1), 60.0), ("b", D(2024, 3, 31), 0.0),
    # c: only a credit note up to t (in the population, never bought); buys after t
    ("c", D(2024, 2, 1), -5.0), ("c", D(2024, 4, 15), 70.0),
    # d: first purchase on t itself: known at t
    ("d", D(2024, 3, 31), 25.0),
]  # fmt: skip


def tables(invoices=INVOICES, contractual: bool = False) -> BucketTables:
    bill = pd.DataFrame(invoices, columns=["customer_id", "invoice_date", "amount"])
    bill["invoice_date"] = bill["invoice_date"].astype(object)
    ids = sorted(set(bill["customer_id"]))
    customers = pd.DataFrame({"customer_id": ids, "signup_date": [D(2023, 1, 1)] * len(ids)})
    if contractual:
        customers["churn_date"] = pd.Series([None] * len(ids), dtype=object)
    touch = pd.DataFrame({c: pd.Series(dtype="str") for c in ("customer_id", "channel", "event")})
    touch["date"] = pd.Series(dtype=object)
    return BucketTables(customers, bill, touch)


def spine(ids, day: dt.date = T) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(ids), "as_of": pd.Series([day] * len(ids), dtype=object)})


def purchases_at(day: dt.date = T) -> pd.DataFrame:
    return purchase_features(tables(), spine("abcd", day), CFG).set_index("customer_id")


def test_purchase_features_of_a_regular_buyer_with_a_credit_note_and_a_later_purchase():
    a = purchases_at().loc["a"]
    assert [a[f"purchases_{w}d"] for w in (30, 90, 180, 365)] == [1, 3, 3, 3]
    assert a["purchases_total"] == 3
    assert a["days_since_first_purchase"] == 81  # Jan 10 -> Mar 31
    assert a["days_since_last_purchase"] == 11
    assert a["purchase_gap_mean_days"] == 35  # gaps 41 and 29 days
    assert a["purchase_gap_std_days"] == pytest.approx(math.sqrt(72))  # sample spread of (41, 29)
    assert a["purchase_overdue_ratio"] == pytest.approx(11 / 35)
    assert a["spend_reference_months"] == 62  # (Dec 31, Mar 31]: 15 + 20 - 3 + 30, the credit note included
    assert (a["first_purchase_amount"], a["last_purchase_amount"]) == (15, 30)
    assert a["purchase_month_share"] == 1  # Jan, Feb, Mar of Jan..Mar


def test_windows_are_open_at_t_minus_w_and_whole_history_features_reach_back_past_the_lookback():
    b = purchases_at().loc["b"]
    assert [b[f"purchases_{w}d"] for w in (30, 90, 180, 365)] == [0, 1, 1, 2]  # Mar 1 = t - 30, Apr 1 = t - 365
    assert b["purchases_total"] == 3
    assert b["days_since_first_purchase"] == 365
    assert b["days_since_last_purchase"] == 30
    assert b["purchase_gap_mean_days"] == 167.5  # gaps 183 and 152
    assert b["purchase_gap_std_days"] == pytest.approx(15.5 * math.sqrt(2))
    assert b["purchase_overdue_ratio"] == pytest.approx(30 / 167.5)
    assert b["spend_reference_months"] == 50  # -10 + 60 + a zero line
    assert (b["first_purchase_amount"], b["last_purchase_amount"]) == (40, 60)
    assert b["purchase_month_share"] == 0.25  # Apr, Oct, Mar of the 12 months Apr 2023..Mar 2024


def test_a_customer_who_never_bought_has_zero_counts_and_no_purchase_days_or_amounts():
    c = purchases_at().loc["c"]
    assert c["purchases_total"] == c["purchases_365d"] == 0
    assert c["spend_reference_months"] == -5
    undefined = [
        "days_since_first_purchase",
        "days_since_last_purchase",
        "purchase_gap_mean_days",
        "purchase_gap_std_days",
        "purchase_overdue_ratio",
        "first_purchase_amount",
        "last_purchase_amount",
        "purchase_month_share",
    ]
    assert c[undefined].isna().all()


def test_a_purchase_dated_t_is_known_at_t_and_one_purchase_has_no_gap():
    d = purchases_at().loc["d"]
    assert (d["purchases_30d"], d["purchases_total"]) == (1, 1)
    assert (d["days_since_first_purchase"], d["days_since_last_purchase"]) == (0, 0)
    assert d[["purchase_gap_mean_days", "purchase_gap_std_days", "purchase_overdue_ratio"]].isna().all()
    assert d["purchase_month_share"] == 1
    before = purchases_at(D(2024, 3, 30)).loc["d"]
    assert before["purchases_total"] == 0


def test_spend_over_the_reference_months_is_the_amount_the_phase_out_label_compares_with():
    # reference (Dec 31, Mar 31]: 40 + 70 - 10 = 100 (Dec 31 itself is outside); next 3 months: 60
    invoices = [
        ("f", D(2023, 12, 31), 1000.0), ("f", D(2024, 1, 1), 40.0), ("f", D(2024, 2, 15), 70.0),
        ("f", D(2024, 3, 31), -10.0), ("f", D(2024, 5, 1), 60.0),
    ]  # fmt: skip
    t = tables(invoices)
    assert purchase_features(t, spine("f"), CFG)["spend_reference_months"].iloc[0] == 100
    # phase-out iff 60 <= (1 - drop) x reference: the label flips exactly where the reference is 100
    for drop, phase_out in ((0.39, 1.0), (0.41, 0.0)):
        cfg = dataclasses.replace(CFG, phase_out_drop=drop)
        lab = labels(t, spine("f"), cfg, D(2024, 12, 31), contractual=False, billing_empty=False)
        assert lab["phase_out"].iloc[0] == phase_out


def test_month_end_rule_of_the_reference_window_matches_the_label():
    # t = Feb 29 (a month end): 3 months back is Nov 30, not Nov 29
    invoices = [("e", D(2023, 11, 30), 7.0), ("e", D(2023, 12, 1), 11.0), ("e", D(2024, 2, 29), 13.0)]
    feats = purchase_features(tables(invoices), spine("e", D(2024, 2, 29)), CFG)
    assert feats["spend_reference_months"].iloc[0] == 24


def test_btyd_features_are_the_librarys_own_predictions_for_the_given_parameters():
    fit = {"params": {T.isoformat(): PARAMS}}
    feats = btyd_features(tables(), spine("abcd"), CFG, fit).set_index("customer_id")
    model = beta_geo_fitter_class()()
    model.params_ = pd.Series(PARAMS)
    # (x, t_x, T) in days by hand: a 2 repeat purchases, Jan 10 -> Mar 20 -> Mar 31; b Apr 1 -> Mar 1 -> Mar 31; d today
    x, t_x, age = np.array([2.0, 2.0, 0.0]), np.array([70.0, 335.0, 0.0]), np.array([81.0, 365.0, 0.0])
    rows = feats.loc[["a", "b", "d"]]
    np.testing.assert_allclose(rows["btyd_p_alive"], model.conditional_probability_alive(x, t_x, age), rtol=1e-12)
    np.testing.assert_allclose(
        rows["btyd_expected_purchases"],
        model.conditional_expected_number_of_purchases_up_to_time(92, x, t_x, age),
        rtol=1e-12,
    )
    np.testing.assert_allclose(rows["btyd_p_no_purchase"], hardie_p_no_purchase(PARAMS, x, t_x, age, 92), rtol=1e-10)
    assert feats.loc["c"].drop("as_of").isna().all()  # never bought: the model has nothing to say
    assert rows.loc["d", "btyd_p_alive"] == 1.0  # BG/NBD: no repeat purchase, no chance to have dropped out


def hardie_p_no_purchase(p, x, t_x, age, horizon):
    """P(no purchase in (T, T+t]) by Hardie's note 039 eq. (34) for y = 0, the x > 0 term switched off at x = 0."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    log_alive_term = betaln(a, b + x)
    with np.errstate(all="ignore"):
        log_dead_term = np.where(x > 0, betaln(a + 1, b + x - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    numerator = np.logaddexp(log_alive_term - (r + x) * np.log(alpha + age + horizon), log_dead_term)
    denominator = np.logaddexp(log_alive_term - (r + x) * np.log(alpha + age), log_dead_term)
    return np.exp(numerator - denominator)


def test_p_no_purchase_of_a_first_time_buyer_is_the_gamma_poisson_silence():
    p_alive, p_none, expected = bgnbd_predictions(PARAMS, np.array([0.0]), np.array([0.0]), np.array([50.0]), 92)
    assert p_alive[0] == 1.0
    assert p_none[0] == pytest.approx((90 / 182) ** 0.8)
    assert expected[0] > 0


def test_population_fit_recovers_the_parameters_the_purchases_were_drawn_from():
    truth = {"r": 0.8, "alpha": 40.0, "a": 1.0, "b": 8.0}
    billing = bgnbd_purchases(3000, truth)
    record = btyd_fit.fit_frame(billing, [D(2024, 12, 31)], CFG)
    fitted = record["params"]["2024-12-31"]
    assert record["unavailable"] is None and record["time_unit"] == "days"
    # measured: each within 4% of the truth at this size and seed
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.1), name
    assert record["fitted_on"]["2024-12-31"]["customers"] == 3000
    again = btyd_fit.fit_frame(billing.sample(frac=1.0, random_state=1), [D(2024, 12, 31)], CFG)
    assert again["params"] == record["params"]  # row order does not matter: same numbers


def test_population_fit_at_large_sizes_uses_a_stable_hash_sample_of_the_buyers_up_to_t():
    billing = bgnbd_purchases(2000, {"r": 0.8, "alpha": 40.0, "a": 1.0, "b": 8.0})
    cfg = dataclasses.replace(CFG, btyd_sample_customers=500)
    record = btyd_fit.fit_frame(billing, [D(2024, 12, 31)], cfg)
    n = record["fitted_on"]["2024-12-31"]["customers"]
    assert btyd_fit.sample_slots(2000, 500) == 256  # a quarter of the 1024 slots
    assert 400 <= n <= 600
    assert btyd_fit.fit_frame(billing, [D(2024, 12, 31)], cfg) == record
    assert btyd_fit.sample_slots(300, 500) == 1024  # fewer buyers than the sample: everyone


def test_the_sampled_customers_alone_with_the_whole_inputs_buyer_count_give_the_whole_inputs_fit():
    """What an engine that collects only the sampled customers' invoices (Spark) relies on."""
    from omvald.buckets import hash_slot

    billing = bgnbd_purchases(2000, {"r": 0.8, "alpha": 40.0, "a": 1.0, "b": 8.0})
    billing = billing.assign(hash_slot=hash_slot(billing["customer_id"]).astype("int16"))
    cfg = dataclasses.replace(CFG, btyd_sample_customers=500)
    day = D(2024, 12, 31)
    counts = btyd_fit.first_purchase_counts(billing)
    buyers = btyd_fit.buyers_up_to(counts, day)
    halves = [btyd_fit.first_purchase_counts(part) for part in (billing.iloc[:5000], billing.iloc[5000:])]
    assert sum(btyd_fit.buyers_up_to(c, day) for c in halves) >= buyers  # a customer may span both halves
    assert buyers == billing.loc[billing["amount"] > 0, "customer_id"].nunique() == 2000
    assert btyd_fit.buyers_up_to(counts, D(1999, 1, 1)) == 0
    limit = btyd_fit.sample_slots(buyers, 500)
    sampled = billing.loc[billing["hash_slot"] < limit]
    assert sampled["customer_id"].nunique() < 700
    whole = btyd_fit.fit_frame(billing, [day], cfg)
    assert btyd_fit.fit_frame(sampled, [day], cfg, buyers={day: buyers}) == whole
    upper_half = billing.loc[billing["hash_slot"] >= 512]  # a bucket fitting its own population: other numbers
    assert btyd_fit.fit_frame(upper_half, [day], cfg)["params"] != whole["params"]


def test_too_few_repeat_buyers_leave_the_btyd_family_out_with_the_reason():
    record = btyd_fit.fit_frame(tables().billing, [T], CFG)
    assert record["params"] == {}
    assert "could not be fitted at 2024-03-31" in record["unavailable"]
    assert "at least 100" in record["unavailable"]
    meta = {"contractual": False, "columns": {"billing": ["customer_id", "invoice_date", "amount"]}, "btyd": record}
    entries = {e.spec.name: e for e in registry_entries(CFG, meta)}
    assert not entries["btyd_p_alive"].available
    assert entries["btyd_p_alive"].missing_reason == record["unavailable"]
    assert entries["purchases_total"].available


def test_purchase_and_btyd_families_are_for_businesses_without_contracts():
    columns = {"customers": ["customer_id", "signup_date"], "billing": ["customer_id", "invoice_date", "amount"]}
    fit = {"params": {T.isoformat(): PARAMS}, "unavailable": None}
    open_shop = {e.spec.name: e for e in registry_entries(CFG, {"contractual": False, "columns": columns, "btyd": fit})}
    assert open_shop["purchases_365d"].available and open_shop["btyd_p_no_purchase"].available
    contracts = {"customers": [*columns["customers"], "churn_date"], "billing": columns["billing"]}
    subscription = {e.spec.name: e for e in registry_entries(CFG, {"contractual": True, "columns": contracts})}
    for name in ("purchases_365d", "spend_reference_months", "btyd_p_alive"):
        assert not subscription[name].available
        assert subscription[name].missing_reason.startswith("contractual business")
    no_fit = {e.spec.name: e for e in registry_entries(CFG, {"contractual": False, "columns": columns})}
    assert "not fitted" in no_fit["btyd_p_alive"].missing_reason
    assert open_shop["btyd_p_no_purchase"].record()["driver"] == "btyd"
    assert open_shop["days_since_last_purchase"].record()["driver"] == "recency"


def test_contractual_business_gets_no_purchase_columns_and_no_fit():
    t = tables(contractual=True)
    meta = {"data_end": "2024-12-31", "contractual": True, "rows": {"billing": 1, "touchpoints": 0}}
    out = build_features(t, [T], CFG, meta, with_labels=False)
    assert not {"purchases_total", "btyd_p_alive"} & set(out.columns)
    assert "btyd" not in feature_meta(meta, t, [T], CFG)


def test_scoring_meta_fits_the_population_at_the_end_of_data_on_the_whole_tables():
    billing = bgnbd_purchases(400, {"r": 0.8, "alpha": 40.0, "a": 1.0, "b": 8.0})
    ids = sorted(set(billing["customer_id"]))
    t = BucketTables(
        pd.DataFrame({"customer_id": ids, "signup_date": [D(2023, 1, 1)] * len(ids)}), billing, tables().touchpoints
    )
    meta = feature_meta({"data_end": "2024-12-31", "contractual": False}, t)
    assert (
        meta["btyd"]["params"]["2024-12-31"]
        == btyd_fit.fit_frame(billing, [D(2024, 12, 31)], FeatureConfig())["params"]["2024-12-31"]
    )


@pytest.mark.pipeline  # the features stage twice, with worker processes: seconds
def test_one_bucket_and_eight_buckets_in_two_workers_give_identical_purchase_and_btyd_features(tmp_path):
    raw = write_non_contractual(tmp_path / "raw", n_customers=400)
    six_dates = {"horizon_days": 92, "as_of_first": D(2025, 1, 31), "n_buckets": 1}
    cfg = Config(features=dataclasses.replace(FeatureConfig(), **six_dates))
    run_validate(cfg, raw, tmp_path / "interim", profile_path=None)
    one = run_features(cfg, tmp_path / "interim", tmp_path / "one")
    many_cfg = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, n_buckets=8, workers=2))
    many = run_features(many_cfg, tmp_path / "interim", tmp_path / "many")
    assert {"purchases", "btyd"} <= set(one["families_used"])
    assert one["btyd"] == many["btyd"] and one["btyd"]["unavailable"] is None
    for name in ("training.parquet", "scoring.parquet"):
        a, b = pd.read_parquet(tmp_path / "one" / name), pd.read_parquet(tmp_path / "many" / name)
        pd.testing.assert_frame_equal(a, b)
    training = pd.read_parquet(tmp_path / "one" / "training.parquet")
    assert training["btyd_p_no_purchase"].between(0, 1).all() and training["purchases_total"].ge(1).all()
    # one fit per as-of date before the buckets; workers, Spark tasks and the written meta share its numbers
    written = json.loads((tmp_path / "one" / "meta.json").read_text())
    assert written["btyd"] == one["btyd"] and set(written["btyd"]["params"]) == set(written["as_of_dates"])
