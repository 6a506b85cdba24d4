"""``omvald monitor``'s rules on small inputs: campaign groups, the AUC flag, and an export that ends too early."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from omvald.config import GenerateConfig, config_from_dict
from omvald.data.generate import generate_business
from omvald.errors import ConfigError, DataContractError
from omvald.scoring.monitor import read_campaign, realized_labels
from omvald.scoring.monitor_metrics import auc_flag, campaign_groups, compare


def test_campaign_groups_put_listed_customers_in_their_group_and_the_rest_apart(tmp_path: Path):
    path = tmp_path / "list.csv"
    pd.DataFrame({"customer_id": ["a", "b", "c"], "group": ["Contact", " control", "contact"]}).to_csv(
        path, index=False
    )
    campaign = read_campaign(path)
    ids = pd.Series(["a", "b", "c", "d"])
    assert campaign_groups(ids, campaign).tolist() == ["contact", "control", "contact", "not contacted"]
    assert campaign_groups(ids, None).tolist() == ["not contacted"] * 4


def test_a_campaign_list_with_other_groups_is_refused_with_examples(tmp_path: Path):
    path = tmp_path / "list.csv"
    pd.DataFrame({"customer_id": ["a", "b"], "group": ["contact", "treatment"]}).to_csv(path, index=False)
    with pytest.raises(DataContractError, match="contact or control") as err:
        read_campaign(path)
    assert err.value.examples == [{"customer_id": "b", "group": "treatment"}]


def test_the_auc_flag_fires_only_beyond_the_allowed_drop():
    training = {"roc_auc": 0.80}
    fell = compare({"metrics": {"overall": {"roc_auc": 0.74}}}, training)
    held = compare({"metrics": {"overall": {"roc_auc": 0.76}}}, training)
    assert fell["roc_auc"] == {"training": 0.80, "realized": 0.74, "change": -0.06}
    assert auc_flag("churn", fell, 0.05) == (
        "churn: ROC AUC fell by 0.060 (0.800 at training, 0.740 realized), more than monitor.max_auc_drop = 0.05"
    )
    assert auc_flag("churn", held, 0.05) is None
    assert (
        auc_flag("churn", compare({"metrics": {"overall": {"roc_auc": 0.5}}}, None), 0.05) is None
    )  # nothing to compare


def test_an_export_that_ends_before_the_outcomes_is_refused(tmp_path: Path):
    raw = generate_business(GenerateConfig(n_customers=200, months=12, start_date=dt.date(2024, 1, 1)), seed=1)
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("customers", "billing", "touchpoints"):
        raw[name].to_parquet(folder / f"{name}.parquet", index=False)
    cfg = config_from_dict({"features": {"horizon_days": 92}})
    with pytest.raises(ConfigError, match=r"known only from 2025-01-31 .* reaches 2025-01-31 or later"):
        realized_labels(cfg, folder, dt.date(2024, 10, 31))
