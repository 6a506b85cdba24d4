"""The generator runs a campaign: the past stays the original export, the planted effect acts on contacted customers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from omvald.config import CampaignConfig, FeatureConfig, GenerateConfig, config_from_dict
from omvald.data.generate import generate_chunk, subscription_tables
from omvald.data.generate_campaign import campaign_base, run_campaign, write_campaign_export
from omvald.errors import ConfigError, DataContractError

CFG = GenerateConfig(n_customers=3000, months=24, chunk_size=3000)
SEED = 11
AS_OF = dt.date(2024, 12, 31)  # the original export's last day
END = pd.Timestamp("2025-01-01")  # its end of data (exclusive)
CUT = {"plan_review": {"passive": 0.9, "active": 0.9}, "newsletter": {"passive": 0.0, "active": 0.0}}
HORIZON = FeatureConfig(horizon_days=92)


@pytest.fixture(scope="module")
def original():
    return generate_chunk(CFG, SEED, 0)


@pytest.fixture(scope="module")
def listed(original) -> pd.DataFrame:
    customers = original.customers.to_pandas()
    alive = customers.loc[customers["churn_date"].isna(), "customer_id"].to_numpy()
    n = len(alive)
    return pd.DataFrame(
        {
            "customer_id": alive,
            "group": np.where(np.arange(n) % 4 == 0, "control", "contact"),
            "action": np.where(np.arange(n) % 2 == 0, "plan_review", "newsletter"),
            "segment": "passive",
        }
    )


@pytest.fixture(scope="module")
def campaign(listed):
    settings = CampaignConfig(months=6, seed=3, churn_hazard_cut=CUT)
    base = campaign_base(CFG, settings, SEED, 0, AS_OF)
    result, customers, truth = run_campaign(base, listed, AS_OF, settings, HORIZON)
    billing, touchpoints, _ = subscription_tables(CFG, base.cust, result, base.ids)
    return {
        "customers": customers.to_pandas(),
        "billing": billing.to_pandas(),
        "touchpoints": touchpoints.to_pandas(),
        "truth": truth.to_pandas().assign(customer_id=base.ids.to_pylist()),
    }


def test_the_newer_export_cut_at_the_original_end_is_the_original_export(original, campaign):
    billing = campaign["billing"]
    billing = billing[pd.to_datetime(billing["invoice_date"]) < END].reset_index(drop=True).copy()
    late_payment = pd.to_datetime(billing["paid_date"]) >= END
    assert late_payment.any()  # paid after the original end: empty there, filled in here
    billing.loc[late_payment, "paid_date"] = None
    pd.testing.assert_frame_equal(billing, original.billing.to_pandas())
    touchpoints = campaign["touchpoints"]
    touchpoints = touchpoints[touchpoints["timestamp"] < END].reset_index(drop=True)
    pd.testing.assert_frame_equal(touchpoints, original.touchpoints.to_pandas())
    customers = campaign["customers"].copy()
    customers.loc[pd.to_datetime(customers["churn_date"]) >= END, "churn_date"] = None
    pd.testing.assert_frame_equal(customers, original.customers.to_pandas())  # names, e-mails and all


def test_the_business_goes_on_for_the_campaign_months(campaign):
    assert pd.to_datetime(campaign["billing"]["invoice_date"]).max() >= pd.Timestamp("2025-06-01")
    assert pd.to_datetime(campaign["billing"]["invoice_date"]).max() < pd.Timestamp("2025-07-01")


def test_contacted_customers_churn_less_and_the_truth_says_by_how_much(listed, campaign):
    churn = pd.to_datetime(campaign["customers"].set_index("customer_id")["churn_date"]).reindex(listed["customer_id"])
    left = ((churn > pd.Timestamp(AS_OF)) & (churn <= pd.Timestamp(AS_OF) + pd.Timedelta(days=92))).to_numpy()
    truth = campaign["truth"].set_index("customer_id").loc[listed["customer_id"]]
    cut = listed["group"].eq("contact") & listed["action"].eq("plan_review")
    assert (truth.loc[cut.to_numpy(), "churn_hazard_cut"] == 0.9).all()
    assert (truth.loc[~cut.to_numpy(), "churn_hazard_cut"] == 0.0).all()  # control, and the newsletter does nothing
    untreated, treated = truth["p_churn_untreated_true"].to_numpy(), truth["p_churn_treated_true"].to_numpy()
    assert np.allclose(treated[~cut.to_numpy()], untreated[~cut.to_numpy()])
    assert (treated[cut.to_numpy()] < untreated[cut.to_numpy()]).all()
    # the realised rates follow the true probabilities: far fewer contacted plan-review customers leave
    control = listed["group"].eq("control").to_numpy()
    assert left[cut.to_numpy()].mean() < 0.5 * left[control].mean()
    assert left[cut.to_numpy()].mean() == pytest.approx(treated[cut.to_numpy()].mean(), abs=0.01)
    assert left[control].mean() == pytest.approx(untreated[control].mean(), abs=0.02)
    assert truth["campaign_group"].tolist() == listed["group"].tolist()


def test_a_list_of_another_business_or_date_is_refused(tmp_path, listed):
    cfg = config_from_dict({"generate": {"n_customers": 3000, "months": 24, "chunk_size": 3000}, "seed": SEED})
    bad = listed.assign(as_of="2024-12-31").head(3).copy()
    bad.loc[0, "customer_id"] = "C9999999"
    path = tmp_path / "list.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(DataContractError, match="C9999999"):
        write_campaign_export(cfg, path, tmp_path / "out", tmp_path / "truth.parquet")
    listed.assign(as_of="2026-03-31").to_csv(path, index=False)
    with pytest.raises(ConfigError, match="outside the synthetic business"):
        write_campaign_export(cfg, path, tmp_path / "out", tmp_path / "truth.parquet")
    shop = config_from_dict({"generate": {"business": "purchases"}})
    with pytest.raises(ConfigError, match="only the subscription business"):
        campaign_base(shop.generate, CampaignConfig(), 1, 0, AS_OF)
    assert not (tmp_path / "out").exists() and not (tmp_path / "truth.parquet").exists()
