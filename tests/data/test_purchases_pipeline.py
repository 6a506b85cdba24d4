"""A purchase-only business goes through ``omvald validate`` and ``omvald features``, and its true
probabilities cover exactly the labelled rows the features stage writes."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from omvald.data.generate_oracle import oracle_auc
from omvald.io import read_json
from pipeline_run import run_cli, small_params

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("business", ["purchases", "purchases_btyd"])
def test_purchase_business_runs_through_validate_and_features_and_matches_its_truth(tmp_path, business):
    params = small_params(
        tmp_path,
        generate={"business": business, "n_customers": 2_500},
        # 12 months: a full 365-day lookback before the first as-of date would leave no labelled date
        features={"as_of_first": "2023-03-31", "n_buckets": 2, "workers": 1},
    )
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    for args in (
        ["generate", "data/shop", "--truth", "data/truth.parquet", "--truth-probabilities", "data/truth_asof.parquet"],
        ["validate", "data/shop", "data/interim", "--profile", "reports/profile.json"],
        ["features", "data/interim", "data/features"],
    ):
        run_cli(tmp_path, args, params_file)

    meta = read_json(tmp_path / "data/features/meta.json")
    assert meta["contractual"] is False
    assert meta["labelled_dates"] == [f"2023-0{m}-{d}" for m, d in ((3, 31), (4, 30), (5, 31), (6, 30))] + [
        "2023-07-31",
        "2023-08-31",
        "2023-09-30",
    ]
    training = pd.read_parquet(tmp_path / "data/features/training.parquet")
    truth = pd.read_parquet(tmp_path / "data/truth_asof.parquet")
    result = oracle_auc(truth, training[["customer_id", "as_of", "churn", "phase_out"]])  # raises if a row lacks truth
    assert result["n_rows"] == len(training) > 5_000
    assert 0.4 < result["churn_rate"] < 0.8  # most of a shop's buyers do not buy again within 92 days
    assert result["churn"]["roc_auc"] > 0.85 and result["phase_out"]["roc_auc"] > 0.85
