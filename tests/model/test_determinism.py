"""Determinism: the same features and params give the same models and metrics (seeds live in params.yaml)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline_run import run_cli, tracking_uri

pytestmark = pytest.mark.xdist_group("pipeline")


def test_training_twice_gives_identical_predictions_and_metrics(small_pipeline: Path, tmp_path: Path):
    import joblib
    import pandas as pd

    project = tmp_path / "again"
    shutil.copytree(small_pipeline / "data" / "features", project / "data" / "features")
    params = yaml.safe_load((small_pipeline / "params.yaml").read_text())
    params["mlflow"]["tracking_uri"] = tracking_uri(project)
    params["mlflow"]["register_models"] = False
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    run_cli(project, ["train", "data/features", "models"], project / "params.yaml")
    run_cli(project, ["evaluate", "data/features", "models", "metrics", "plots"], project / "params.yaml")

    for name in ("churn", "phase_out"):
        first = json.loads((small_pipeline / "metrics" / f"{name}.json").read_text())
        again = json.loads((project / "metrics" / f"{name}.json").read_text())
        assert again == first, name
    scoring = pd.read_parquet(small_pipeline / "data" / "features" / "scoring.parquet")
    a = joblib.load(small_pipeline / "models" / "churn.joblib")
    b = joblib.load(project / "models" / "churn.joblib")
    assert (a.predict_proba(scoring)[:, 1] == b.predict_proba(scoring)[:, 1]).all()
