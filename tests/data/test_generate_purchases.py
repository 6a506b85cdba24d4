"""The purchase-only businesses: a short shop export, BTYD at heart, and three mechanisms BTYD cannot see.

One 8,000-customer business per kind (``purchases`` with the mechanisms,
``purchases_btyd`` without) is generated per module. The mechanism tests
measure what an analyst could see in the billing rows and use the ground
truth only to know who was hit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from omvald.cli import app
from omvald.config import Config, GenerateConfig, config_from_dict
from omvald.data.generate import generate_business, run_generate
from omvald.data.validate import run_validate
from omvald.errors import ConfigError
from omvald.io import read_json

N = 8_000
START = pd.Timestamp("2023-01-01")
END = pd.Timestamp("2023-12-31")


def _business(kind: str, **purchases) -> GenerateConfig:
    base = GenerateConfig(n_customers=N, chunk_size=5_000, business=kind)
    return dataclasses.replace(base, purchases=dataclasses.replace(base.purchases, **purchases))


def _load(kind: str) -> dict[str, pd.DataFrame]:
    tables = generate_business(_business(kind), seed=17)
    for name, cols in (("customers", ["signup_date"]), ("billing", ["invoice_date"])):
        for col in cols:
            tables[name][col] = pd.to_datetime(tables[name][col])
    truth = tables["truth"]
    for col in ("price_rise_date", "decline_start", "leave_date"):
        truth[col] = pd.to_datetime(truth[col])
    return tables


@pytest.fixture(scope="module")
def shop() -> dict[str, pd.DataFrame]:
    return _load("purchases")


@pytest.fixture(scope="module")
def pure() -> dict[str, pd.DataFrame]:
    return _load("purchases_btyd")


def _with_truth(biz: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return biz["billing"].merge(biz["truth"], on="customer_id")


# --- the export -------------------------------------------------------------------------------


def test_export_has_the_contract_columns_and_no_churn_date(shop):
    assert list(shop["customers"].columns) == [
        "customer_id",
        "signup_date",
        "acquisition_channel",
        "region",
        "marketing_opt_in",
    ]
    assert list(shop["billing"].columns) == ["customer_id", "invoice_date", "amount"]
    assert list(shop["touchpoints"].columns) == ["customer_id", "timestamp", "channel", "event"]
    assert len(shop["touchpoints"]) == 0
    assert shop["customers"]["customer_id"].is_unique
    assert set(shop["billing"]["customer_id"]) <= set(shop["customers"]["customer_id"])
    assert (shop["billing"]["amount"] > 0).all()


def test_export_covers_twelve_months_and_most_buyers_buy_only_a_few_times(shop, pure):
    for biz in (shop, pure):
        bill = biz["billing"]
        assert bill["invoice_date"].min() >= START and bill["invoice_date"].max() <= END
        assert bill["invoice_date"].dt.month.nunique() == 12
        per_buyer = bill.groupby("customer_id").size()
        assert (per_buyer <= 3).mean() >= 0.65  # measured 0.82 (purchases) and 0.74 (btyd) at seed 20261128
        assert per_buyer.max() >= 15  # heavy buyers exist: gamma rates


def test_customers_are_an_initial_base_plus_first_purchases_spread_over_the_year(shop):
    c = shop["customers"]
    base = c["signup_date"] < START
    assert 0.45 < base.mean() < 0.55  # initial_base_share 0.5
    assert c.loc[base, "signup_date"].min() >= START - pd.Timedelta(days=2 * 366)
    new_by_month = c.loc[~base, "signup_date"].dt.month.value_counts()
    assert len(new_by_month) == 12 and new_by_month.min() > 0.5 * new_by_month.max()
    # a new customer's first purchase is their signup
    first = shop["billing"].groupby("customer_id")["invoice_date"].min()
    new_ids = c.loc[~base, "customer_id"]
    pd.testing.assert_series_equal(
        first.reindex(new_ids).reset_index(drop=True),
        c.set_index("customer_id").loc[new_ids, "signup_date"].reset_index(drop=True),
        check_names=False,
    )
    assert set(c["acquisition_channel"]) == {"web", "app", "store", "marketplace"}
    assert 0.55 < c["marketing_opt_in"].mean() < 0.65


def test_nobody_buys_after_leaving(shop):
    rows = _with_truth(shop)
    gone = rows["leave_date"].notna()
    assert gone.any()
    assert (rows.loc[gone, "invoice_date"] <= rows.loc[gone, "leave_date"]).all()


def test_the_export_passes_validation_as_a_non_contractual_business(tmp_path):
    cfg = Config(seed=3, generate=dataclasses.replace(_business("purchases"), n_customers=600))
    run_generate(cfg, tmp_path / "shop", tmp_path / "truth.parquet")
    run_validate(cfg, tmp_path / "shop", tmp_path / "interim", profile_path=None)
    assert read_json(tmp_path / "interim" / "meta.json")["contractual"] is False
    assert pq.read_table(tmp_path / "interim" / "touchpoints.parquet").num_rows == 0
    assert pq.read_table(tmp_path / "interim" / "billing.parquet").num_rows > 600


# --- the pure variant has none of the mechanisms ----------------------------------------------------


def test_pure_variant_leaves_only_after_purchases_without_decline_or_price_rise(pure):
    truth = pure["truth"]
    assert truth["decline_start"].isna().all() and truth["price_rise_date"].isna().all()
    assert set(truth["leave_driver"].dropna()) == {"baseline"}
    last = pure["billing"].groupby("customer_id")["invoice_date"].max()
    gone = truth.dropna(subset=["leave_date"]).set_index("customer_id")["leave_date"]
    in_export = gone[gone >= START]
    assert (last.reindex(in_export.index) == in_export).all()  # BG/NBD: leaving follows a purchase


def _basket_drift(rows: pd.DataFrame) -> pd.Series:
    """Per customer with 4+ purchases: mean basket of the second half / first half of their purchases."""
    rows = rows.sort_values(["customer_id", "invoice_date"])
    rank = rows.groupby("customer_id").cumcount()
    size = rows.groupby("customer_id")["amount"].transform("size")
    rows = rows[size >= 4]
    late = rank[size >= 4] >= size[size >= 4] / 2
    means = rows.groupby([rows["customer_id"], late])["amount"].mean().unstack()
    return means[True] / means[False]


def test_pure_variant_spend_is_stationary_per_customer(pure, shop):
    drift = _basket_drift(pure["billing"])
    assert len(drift) > 500
    assert drift.median() == pytest.approx(1.0, abs=0.01)
    assert (drift < 0.8).mean() < 0.01  # 0.1 lognormal noise: a 20% fall in a half is rare
    # the mechanisms make it drift: declines and price rises
    shop_drift = _basket_drift(shop["billing"])
    assert (shop_drift < 0.8).mean() > 0.05


def _rate_by_quarter(biz: dict[str, pd.DataFrame]) -> pd.Series:
    """Purchases per expected purchase (latent rate x days as a customer) by calendar quarter of 2023."""
    truth = biz["truth"].set_index("customer_id")
    first = biz["customers"].set_index("customer_id")["signup_date"]
    leave = truth["leave_date"].fillna(END + pd.Timedelta(days=1))
    out = {}
    for q in range(4):
        lo = START + pd.DateOffset(months=3 * q)
        hi = lo + pd.DateOffset(months=3)
        days = (np.minimum(leave, hi) - np.maximum(first, lo)).dt.days.clip(lower=0)
        expected = (truth["purchases_per_month"] / (365.25 / 12) * days).sum()
        dates = biz["billing"]["invoice_date"]
        out[q + 1] = (
            (dates >= lo) & (dates < hi) & (dates > first.reindex(biz["billing"]["customer_id"]).to_numpy())
        ).sum() / expected
    return pd.Series(out)


def test_seasonality_shows_in_purchases_per_customer_only_in_the_mechanism_variant(shop, pure):
    pure_rate, shop_rate = _rate_by_quarter(pure), _rate_by_quarter(shop)
    assert pure_rate.max() / pure_rate.min() < 1.1
    # seasonality 0.3 peaking in December: Q4 ~1.25, Q2 ~0.75 (declines lower every quarter alike)
    assert shop_rate[4] / shop_rate[2] > 1.4


# --- the mechanisms show in the billing rows ----------------------------------------------------------


def test_declining_customers_buy_about_half_the_basket_before_they_leave(shop):
    rows = _with_truth(shop)
    declined = rows[rows["decline_start"].notna()]
    before = declined[declined["invoice_date"] < declined["decline_start"]].groupby("customer_id")["amount"].mean()
    after = declined[declined["invoice_date"] >= declined["decline_start"]].groupby("customer_id")["amount"].mean()
    ratio = (after / before).dropna()
    assert len(ratio) > 200
    assert ratio.median() == pytest.approx(0.55, abs=0.05)  # decline_basket
    # leavers who declined: the last basket is well below their earlier ones; others' is not
    last = rows.sort_values("invoice_date").groupby("customer_id").tail(1).set_index("customer_id")
    mean_before_last = rows.groupby("customer_id")["amount"].apply(lambda a: a.iloc[:-1].mean())
    drop = (last["amount"] / mean_before_last.reindex(last.index)).dropna()
    via_decline = last.loc[drop.index, "leave_driver"] == "decline"
    assert drop[via_decline].median() < 0.7
    assert drop[last.loc[drop.index, "leave_driver"] == "baseline"].median() > 0.9


def test_a_price_rise_raises_amounts_for_the_same_basket_and_makes_customers_leave(shop):
    rows = _with_truth(shop)
    rows = rows[rows["decline_start"].isna()]  # a decline would blur the price
    rows["ratio"] = rows["amount"] / rows["basket_mean"]
    first_rise = pd.Timestamp("2023-04-01")  # price_rise_months [3, 6]
    hit = rows["price_rise_date"] == first_rise
    before = rows["invoice_date"] < first_rise
    between = (rows["invoice_date"] >= first_rise) & (rows["invoice_date"] < pd.Timestamp("2023-07-01"))
    lift_hit = rows.loc[hit & between, "ratio"].mean() / rows.loc[hit & before, "ratio"].mean()
    lift_others = (
        rows.loc[~hit & between & rows["price_rise_date"].isna(), "ratio"].mean()
        / rows.loc[~hit & before & rows["price_rise_date"].isna(), "ratio"].mean()
    )
    assert lift_hit == pytest.approx(1.15, abs=0.03)
    assert lift_others == pytest.approx(1.0, abs=0.02)
    truth = shop["truth"]
    assert (truth["leave_driver"] == "price_rise").sum() > 100
    # leaving right after a purchase at the new price: more often for those who were hit
    hit_ids = set(truth.loc[truth["price_rise_date"].notna(), "customer_id"])
    left = truth.set_index("customer_id")["leave_date"]
    last = shop["billing"].groupby("customer_id")["invoice_date"].max()
    left_after_rise = (left.reindex(last.index) == last) & (last >= first_rise)
    is_hit = last.index.isin(hit_ids)
    assert left_after_rise[is_hit].mean() > 1.5 * left_after_rise[~is_hit].mean()


# --- settings ---------------------------------------------------------------------------------------


def test_params_switch_picks_the_business_and_rejects_unknown_ones():
    cfg = config_from_dict({"generate": {"business": "purchases", "purchases": {"months": 9, "rate_mean": 0.8}}})
    assert cfg.generate.business == "purchases"
    assert cfg.generate.purchases.months == 9 and cfg.generate.purchases.rate_mean == 0.8
    with pytest.raises(ConfigError, match="generate.business"):
        generate_business(dataclasses.replace(GenerateConfig(n_customers=10), business="shop"), seed=1)
    with pytest.raises(ConfigError, match="price_rise_months"):
        generate_business(_business("purchases", months=9, price_rise_months=(3, 9)), seed=1)


def test_nine_month_export_ends_after_nine_months():
    biz = generate_business(dataclasses.replace(_business("purchases", months=9), n_customers=500), seed=2)
    assert pd.to_datetime(biz["billing"]["invoice_date"]).max() <= pd.Timestamp("2023-09-30")


def test_cli_prints_the_purchase_summary(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 3\ngenerate:\n  n_customers: 400\n  business: purchases_btyd\n")
    result = CliRunner().invoke(
        app, ["generate", str(tmp_path / "shop"), "--truth", str(tmp_path / "gt.parquet"), "--params", str(params)]
    )
    assert result.exit_code == 0, result.output
    assert "synthetic purchases_btyd business" in result.output
    assert "buyers with 1-3 purchases" in result.output
    assert pq.read_table(tmp_path / "gt.parquet").column_names[:2] == ["customer_id", "purchases_per_month"]
