"""The mechanisms planted in the synthetic business show up in the point-in-time features (issue #3)."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.xdist_group("pipeline")


@pytest.fixture(scope="module")
def training(small_pipeline) -> pd.DataFrame:
    return pd.read_parquet(small_pipeline / "data" / "features" / "training.parquet")


@pytest.fixture(scope="module")
def truth(small_pipeline) -> pd.DataFrame:
    return pd.read_parquet(small_pipeline / "data" / "ground_truth.parquet")


def test_active_passive_flag_agrees_with_the_latent_type_for_most_customers(training, truth):
    latest = training.sort_values("as_of").groupby("customer_id").tail(1)
    joined = latest.merge(truth[["customer_id", "latent_type"]], on="customer_id")
    agreement = (joined["segment"] == joined["latent_type"]).mean()
    assert agreement >= 0.85, f"segment agrees with the latent type for {agreement:.1%} of customers"
    # both segments are substantial, as in a real base (about half passive)
    assert 0.3 < (joined["segment"] == "passive").mean() < 0.7


def test_churn_is_clearly_more_frequent_after_a_large_price_shock(training):
    shocked = training["price_shock_pct_3m"] >= 8
    calm = training["price_shock_pct_3m"].abs() < 1
    assert shocked.sum() > 200 and calm.sum() > 200
    rate_shocked = training.loc[shocked, "churn"].mean()
    rate_calm = training.loc[calm, "churn"].mean()
    assert rate_shocked > 1.5 * rate_calm, (rate_shocked, rate_calm)


def test_passive_customers_have_far_fewer_inbound_contacts(training):
    by_segment = training.groupby("segment")["tp_inbound_90d"].mean()
    assert by_segment["passive"] < 0.2 * by_segment["active"]
