"""``omvald score`` end to end: a folder of contract files in, one row per customer out.

A tiny synthetic business (``omvald.data.generate``) is validated, turned
into features at six month ends and used to fit small churn and phase-out
models once per module; every test then scores a folder through the CLI.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from omvald.cli import app
from omvald.config import config_from_dict
from omvald.data.generate import generate_business
from omvald.features.asof import month_end
from omvald.features.build import build_features
from omvald.features.spec import BucketTables
from omvald.model.estimators import LGBMChurnModel
from omvald.scoring.score import OUTPUT_COLUMNS
from omvald.scoring.stage import read_and_validate

PARAMS = {
    "seed": 3,
    "generate": {"n_customers": 700, "months": 20, "start_date": "2023-01-01"},
    "features": {"n_buckets": 3},
    "score": {"explain": "risk:0.3", "risk_tiers": {"high": 0.3, "medium": 0.1}},
}
TREE = {"n_estimators": 25, "num_leaves": 7, "min_child_samples": 20, "calibration": "none", "seed": 3}
runner = CliRunner()


def write_folder(tables: dict[str, pd.DataFrame], folder: Path, fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("customers", "billing", "touchpoints"):
        if fmt == "csv":
            tables[name].to_csv(folder / f"{name}.csv", index=False)
        else:
            tables[name].to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def business(tmp_path_factory) -> dict[str, pd.DataFrame]:
    cfg = config_from_dict(PARAMS)
    tables = generate_business(cfg.generate, cfg.seed)
    return {k: v for k, v in tables.items() if k != "truth"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, business) -> Path:
    """A project folder: params.yaml, the business as Parquet and CSV, trained models."""
    root = tmp_path_factory.mktemp("score")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    cfg = config_from_dict(PARAMS)
    write_folder(business, root / "parquet", "parquet")
    write_folder(business, root / "csv", "csv")
    tables, meta, _ = read_and_validate(cfg, root / "parquet", None)
    end = dt.date.fromisoformat(str(meta["data_end"])[:10])
    last = month_end(end - dt.timedelta(days=cfg.features.horizon_days + 31))
    dates = [month_end(dt.date(last.year, last.month, 1) - dt.timedelta(days=31 * k)) for k in range(6)]
    frame = build_features(BucketTables(**tables), dates, cfg.features, meta, with_labels=True)
    frame = frame[frame["churn"].notna()]
    drop = {"customer_id", "as_of", "segment", "churn", "phase_out", "next_revenue"}
    features = [c for c in frame.columns if c not in drop]
    stays = frame[frame["churn"] == 0]
    (root / "models").mkdir()
    churn = LGBMChurnModel(**TREE).fit(frame[features], frame["churn"].astype(int))
    phase = LGBMChurnModel(**TREE).fit(stays[features], stays["phase_out"].astype(int))
    joblib.dump(churn, root / "models" / "churn.joblib")
    joblib.dump(phase, root / "models" / "phase_out.joblib")
    return root


def score(project: Path, folder: Path, output: Path, *extra: str):
    args = ["score", "--input", str(folder), "--output", str(output), "--models-dir", str(project / "models")]
    return runner.invoke(app, [*args, "--params", str(project / "params.yaml"), *extra])


@pytest.fixture(scope="module")
def parquet_scores(project) -> pd.DataFrame:
    out = project / "out" / "from_parquet.parquet"
    result = score(
        project, project / "parquet", out, "--explain", "top:40", "--summary", str(project / "out" / "summary.json")
    )
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out)


def test_csv_and_parquet_inputs_give_identical_scores(project, parquet_scores):
    out = project / "out" / "from_csv.parquet"
    result = score(project, project / "csv", out, "--explain", "top:40")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), parquet_scores)


def test_output_has_the_documented_columns_one_row_per_customer(parquet_scores, business):
    assert list(parquet_scores.columns) == OUTPUT_COLUMNS
    assert parquet_scores["customer_id"].is_unique
    assert parquet_scores["customer_id"].is_monotonic_increasing
    assert 0 < len(parquet_scores) <= len(business["customers"])
    assert parquet_scores["p_churn"].between(0, 1).all() and parquet_scores["p_phase_out"].between(0, 1).all()
    assert (parquet_scores["p_phase_out"] <= 1 - parquet_scores["p_churn"] + 1e-12).all()
    assert set(parquet_scores["risk_tier"]) <= {"high", "medium", "low"}
    assert set(parquet_scores["segment"]) <= {"active", "passive"}
    assert set(parquet_scores["value_tier"]) == {"A", "B", "C"}
    assert (parquet_scores["value"] >= 0).all()
    channels = set(business["touchpoints"]["channel"])
    assert set(parquet_scores["preferred_channel"].dropna()) <= channels


def test_value_tiers_cut_the_revenue_and_the_matrix_adds_up(project, parquet_scores):
    import json

    summary = json.loads((project / "out" / "summary.json").read_text())
    by_tier = parquet_scores.groupby("value_tier")["value"]
    # A holds the top 80% of the revenue (the customer crossing 80% included), B up to 95%
    total = parquet_scores["value"].sum()
    assert by_tier.sum()["A"] >= 0.8 * total and by_tier.sum()["A"] - by_tier.min()["A"] < 0.8 * total
    assert by_tier.min()["A"] >= by_tier.max()["B"] >= by_tier.max()["C"]
    assert summary["value_tiers"]["cuts"]["A"] == pytest.approx(by_tier.min()["A"], abs=0.01)
    cells = [c for tier in summary["by_value_tier_risk"].values() for c in tier.values()]
    assert sum(c["customers"] for c in cells) == len(parquet_scores) == summary["n_scored"]
    assert sum(c["revenue_at_risk"] for c in cells) == pytest.approx(parquet_scores["revenue_at_risk"].sum(), abs=0.1)
    assert sum(c["contactable"] for c in cells) == parquet_scores["contactable"].sum()


def test_personal_columns_never_reach_the_output(parquet_scores, business):
    assert not {"name", "email"} & set(parquet_scores.columns)
    cells = parquet_scores.select_dtypes(exclude="number").to_numpy(dtype=object).ravel()
    text = [c for c in cells if isinstance(c, str)]
    emails = set(business["customers"]["email"].dropna())
    names = set(business["customers"]["name"].dropna())
    assert not (emails | names) & set(text)
    assert not any("@" in t for t in text)


def test_top_n_explains_exactly_the_highest_revenue_at_risk(parquet_scores):
    explained = parquet_scores[parquet_scores["explained"]]
    expected = parquet_scores.sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True]).head(40)
    assert sorted(explained["customer_id"]) == sorted(expected["customer_id"])
    quiet = parquet_scores[~parquet_scores["explained"]]
    assert quiet["churn_driver_1"].isna().all() and quiet["churn_reason_1"].isna().all()
    assert quiet["phase_out_driver_1_contribution"].isna().all()


def test_drivers_are_risk_raising_and_have_sentences(parquet_scores):
    explained = parquet_scores[parquet_scores["explained"]]
    for prefix in ("churn_", "phase_out_"):
        for i in (1, 2, 3):
            has = explained[f"{prefix}driver_{i}"].notna()
            assert (explained.loc[has, f"{prefix}driver_{i}_contribution"] > 0).all()
            assert explained.loc[has, f"{prefix}reason_{i}"].notna().all()
        c1, c2 = explained[f"{prefix}driver_1_contribution"], explained[f"{prefix}driver_2_contribution"]
        both = c1.notna() & c2.notna()
        assert (c1[both] >= c2[both]).all()
    assert explained["churn_driver_1"].notna().mean() > 0.9
    for prefix in ("churn_", "phase_out_"):  # a driver (business reason) is named at most once per customer
        drivers = explained[[f"{prefix}driver_{i}" for i in (1, 2, 3)]].to_numpy(dtype=object)
        assert all(len(named) == len(set(named)) for named in ([d for d in r if isinstance(d, str)] for r in drivers))
        has = explained[f"{prefix}driver_1"].notna()
        assert explained.loc[has, f"{prefix}driver_1_feature"].notna().all()


def test_revenue_at_risk_follows_the_documented_formula(parquet_scores):
    s = parquet_scores
    expected = s["monthly_revenue"].clip(lower=0).fillna(0) * 90 / 30 * (s["p_churn"] + s["p_phase_out"] * 0.3)
    np.testing.assert_allclose(s["revenue_at_risk"], expected, rtol=1e-12)


def test_contactable_comes_from_marketing_opt_in(parquet_scores, business):
    opt_in = business["customers"].set_index("customer_id")["marketing_opt_in"].astype(bool)
    assert (parquet_scores["contactable"].to_numpy() == opt_in.reindex(parquet_scores["customer_id"]).to_numpy()).all()


def test_summary_json_counts_match_the_output(project, parquet_scores):
    import json

    summary = json.loads((project / "out" / "summary.json").read_text())
    assert summary["n_scored"] == len(parquet_scores)
    assert summary["n_explained"] == 40
    assert summary["n_contactable"] == int(parquet_scores["contactable"].sum())
    assert summary["revenue_at_risk"] == pytest.approx(parquet_scores["revenue_at_risk"].sum(), abs=0.01)
    cells = [c["customers"] for seg in summary["by_tier_segment"].values() for c in seg.values()]
    assert sum(cells) == len(parquet_scores)


def test_explain_none_and_risk_policies(project, parquet_scores):
    out = project / "out" / "none.parquet"
    assert score(project, project / "parquet", out, "--explain", "none").exit_code == 0
    none = pd.read_parquet(out)
    assert not none["explained"].any()
    pd.testing.assert_frame_equal(
        none[["customer_id", "p_churn", "revenue_at_risk"]],
        parquet_scores[["customer_id", "p_churn", "revenue_at_risk"]],
    )
    out = project / "out" / "risk.parquet"
    assert score(project, project / "parquet", out, "--explain", "risk:0.2").exit_code == 0
    risk = pd.read_parquet(out)
    assert (risk["explained"] == ((risk["p_churn"] >= 0.2) | (risk["p_phase_out"] >= 0.2))).all()


def test_missing_required_column_is_an_error_naming_file_and_column(project, business, tmp_path):
    broken = dict(business, billing=business["billing"].drop(columns=["amount"]))
    folder = write_folder(broken, tmp_path / "in", "csv")
    out = tmp_path / "scores.parquet"
    result = score(project, folder, out)
    assert result.exit_code != 0
    assert "billing" in result.output and "amount" in result.output
    assert not out.exists()


def test_future_dated_rows_are_an_error(project, tmp_path):
    out = tmp_path / "scores.parquet"
    result = score(project, project / "parquet", out, "--as-of", "2024-03-31")
    assert result.exit_code != 0
    assert "2024-03-31" in result.output or "future" in result.output.lower() or "after" in result.output.lower()
    assert not out.exists()


def test_missing_feature_columns_name_the_features_the_model_needs(project, business, tmp_path):
    # without `usage` the usage family cannot be built, but the models were trained with it
    folder = write_folder(
        dict(business, billing=business["billing"].drop(columns=["usage"])), tmp_path / "in", "parquet"
    )
    out = tmp_path / "scores.parquet"
    result = score(project, folder, out)
    assert result.exit_code == 4
    message = " ".join(result.output.split())
    assert "does not fit the models" in message and "no column billing.usage: usage_" in message
    assert "usage_mean_3m" in message
    assert not out.exists()


def test_unseen_category_and_empty_touchpoints_still_score(project, business, tmp_path):
    customers = business["customers"].copy()
    customers.loc[customers.index[:50], "plan_tier"] = "platinum"  # never seen in training
    touchpoints = business["touchpoints"].iloc[0:0]
    folder = write_folder(dict(business, customers=customers, touchpoints=touchpoints), tmp_path / "in", "csv")
    out = tmp_path / "scores.csv"
    # touchpoint features were in training: an empty table builds them as "no touchpoints", not absent
    result = score(project, folder, out, "--explain", "all")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert len(scores) > 0 and scores["p_churn"].notna().all()


def test_as_of_with_nobody_in_the_population_is_an_error(project, business, tmp_path):
    # everyone has left by the last day of the export, and the run scores a month after it
    last = max(
        pd.to_datetime(business[t][c]).max() for t, c in [("billing", "invoice_date"), ("touchpoints", "timestamp")]
    )
    customers = business["customers"].assign(churn_date=last.strftime("%Y-%m-%d"))
    folder = write_folder(dict(business, customers=customers), tmp_path / "in", "parquet")
    out = tmp_path / "scores.parquet"
    result = score(project, folder, out, "--as-of", (last + pd.Timedelta(days=31)).strftime("%Y-%m-%d"))
    assert result.exit_code != 0
    assert "no customer is in the population" in result.output
    assert not out.exists()


def test_scores_do_not_depend_on_the_bucket_count(project, parquet_scores, tmp_path):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["score"]["chunk_buckets"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "one_bucket.parquet"
    args = ["score", "--input", str(project / "parquet"), "--output", str(out), "--models-dir", str(project / "models")]
    result = runner.invoke(app, [*args, "--params", str(tmp_path / "params.yaml"), "--explain", "top:40"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), parquet_scores)
