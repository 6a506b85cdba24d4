"""``omvald monitor`` measures an old scoring run on a newer export exactly as evaluate measures the test window.

On the small pipeline's business: the export as it was at the latest test
date ``t`` is scored at ``t`` with the evaluated (holdout) fits, the models
evaluate measured, and monitored on the whole export, where the outcomes
of ``t`` are known. The rows then coincide with evaluate's test rows at
``t``, so every metric must be evaluate's. Scores shuffled between
customers are flagged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omvald.config import load_config
from omvald.model.artifacts import labelled_rows, load_evaluation_models, load_features
from omvald.model.evaluate import KEY_COLUMNS, evaluate_scores, score_test_rows
from omvald.model.tracking import flatten_metrics, mlflow_client
from pipeline_run import run_cli, tracking_uri

pytestmark = pytest.mark.xdist_group("pipeline")


@pytest.fixture(scope="module")
def scored_at_t(small_pipeline: Path, tmp_path_factory) -> tuple[Path, str, Path]:
    """(scores at t by the evaluated fits, t, the models folder that made them)."""
    project, params = small_pipeline, small_pipeline / "params.yaml"
    t = json.loads((project / "models" / "split.json").read_text())["dates"]["test"][-1]
    work = tmp_path_factory.mktemp("monitor")
    holdout = work / "holdout_models"
    holdout.mkdir()
    for target in ("churn", "phase_out"):
        shutil.copy(project / "models" / f"{target}.holdout.joblib", holdout / f"{target}.joblib")
    for name in ("targets.json", "reference.json"):
        shutil.copy(project / "models" / name, holdout / name)
    run_cli(project, ["generate", str(work / "export_t"), "--truth", str(work / "truth.parquet"), "--export-date", t],
            params)  # fmt: skip
    scores = work / "scores_t.parquet"
    run_cli(project, ["score", "--input", str(work / "export_t"), "--output", str(scores), "--as-of", t,
                      "--models-dir", str(holdout), "--explain", "none"], params)  # fmt: skip
    return scores, t, holdout


def test_monitor_reproduces_evaluate_metrics_for_the_same_rows(small_pipeline, scored_at_t, tmp_path):
    project, params = small_pipeline, small_pipeline / "params.yaml"
    scores, t, holdout = scored_at_t
    out = tmp_path / "monitor.json"
    run_cli(project, ["monitor", "--scores", str(scores), "--input", "data/synthetic", "--output", str(out),
                      "--models-dir", str(holdout), "--no-mlflow"], params)  # fmt: skip
    monitored = json.loads(out.read_text())

    cfg = load_config(params)
    fs = load_features(project / "data" / "features")
    frame = labelled_rows(fs.frame)
    rows = frame.loc[pd.to_datetime(frame["as_of"]) == pd.Timestamp(t)]  # keys and labels, in file order
    columns = list(dict.fromkeys([*KEY_COLUMNS, *fs.features]))
    scored = score_test_rows(fs.rows(rows, columns), fs.features, load_evaluation_models(project / "models"))
    churn, phase_out, _ = evaluate_scores(scored, "time", cfg.evaluate.calibration_bins, cfg.evaluate.top_fraction)

    assert monitored["n_scored"] == monitored["n_with_outcome"] == len(rows) > 500
    assert monitored["flags"] == [] or all("ROC AUC fell" in f for f in monitored["flags"])
    for got, expected in (
        (monitored["churn"]["metrics"], churn["models"]["lgbm"]),
        (monitored["phase_out"]["metrics"], phase_out["combined"]["models"]["lgbm"]),
        (monitored["phase_out_if_stays"]["metrics"], phase_out["if_stays"]["models"]["lgbm"]),
    ):
        got, expected = flatten_metrics(got), flatten_metrics(expected)
        assert got.keys() == expected.keys()
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    training = json.loads((project / "metrics" / "churn.json").read_text())["models"]["lgbm"]["overall"]
    assert monitored["churn"]["vs_training"]["roc_auc"]["training"] == training["roc_auc"]


def test_monitor_flags_shuffled_scores_and_logs_to_the_model_version(small_pipeline, scored_at_t, tmp_path):
    project, params = small_pipeline, small_pipeline / "params.yaml"
    scores, t, _ = scored_at_t
    frame = pd.read_parquet(scores)
    order = np.random.default_rng(0).permutation(len(frame))
    frame[["p_churn", "p_phase_out"]] = frame[["p_churn", "p_phase_out"]].to_numpy()[order]
    shuffled = tmp_path / "shuffled.parquet"
    frame.to_parquet(shuffled, index=False)
    campaign = tmp_path / "campaign.csv"
    pd.DataFrame({"customer_id": frame["customer_id"].iloc[:100], "group": ["contact", "Control"] * 50}).to_csv(
        campaign, index=False
    )
    out = tmp_path / "monitor.json"
    run_cli(project, ["monitor", "--scores", str(shuffled), "--input", "data/synthetic", "--output", str(out),
                      "--list", str(campaign)], params)  # fmt: skip
    monitored = json.loads(out.read_text())

    assert any(f.startswith("churn: ROC AUC fell") for f in monitored["flags"]), monitored["flags"]
    assert monitored["churn"]["metrics"]["overall"]["roc_auc"] < 0.62
    assert monitored["groups"] == {"contact": 50, "control": 50, "not contacted": monitored["n_with_outcome"] - 100}
    assert monitored["churn"]["n_rows"] == monitored["n_with_outcome"] - 50  # the contacted are measured apart
    assert set(monitored["campaign"]) == {"contact", "control"}
    run = json.loads((project / "models" / "run.json").read_text())["models"]["churn"]
    version = mlflow_client(tracking_uri(project)).get_model_version(run["registered_name"], run["version"])
    assert version.tags[f"monitor.{t}.flagged"] == "true"
