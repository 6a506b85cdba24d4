"""Scoring from the MLflow registry gives the same numbers as scoring from ``models/``.

Uses the models ``small_pipeline`` trained and registered (alias
``candidate``) in its own SQLite MLflow store. The promotion test moves
alias ``champion`` in that store, once; the other small-pipeline tests do
not look at aliases.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from omvald.cli import app
from omvald.model import tracking
from omvald.model.matrix import model_matrix
from pipeline_run import tracking_uri

pytestmark = pytest.mark.xdist_group("pipeline")

CHURN, PHASE_OUT = tracking.REGISTERED_NAMES["churn"], tracking.REGISTERED_NAMES["phase_out"]


def omvald(project: Path, *args: str):
    """``omvald <args>`` from ``project`` with its own MLflow store; returns the Click result (exit code, output)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri(project))
        return CliRunner().invoke(app, [*args, "--params", str(project / "params.yaml")])


def score_args(output: Path, *extra: str) -> list[str]:
    return ["score", "--input", "data/synthetic", "--output", str(output), "--explain", "none", *extra]


@pytest.fixture(scope="module")
def champion(small_pipeline: Path) -> str:
    """Promote the small pipeline's candidates (the first promotion); returns the churn champion's version."""
    uri = tracking_uri(small_pipeline)
    assert tracking.alias_version(uri, CHURN, tracking.CHAMPION) is None, "someone promoted before this module"
    result = omvald(small_pipeline, "promote")
    assert result.exit_code == 0, result.output
    assert "no champion yet" in result.output
    return tracking.alias_version(uri, CHURN, tracking.CHAMPION)


def test_first_promotion_makes_each_candidate_the_champion(small_pipeline, champion):
    uri = tracking_uri(small_pipeline)
    for name in (CHURN, PHASE_OUT):
        candidate = tracking.alias_version(uri, name, tracking.CANDIDATE)
        assert candidate is not None
        assert tracking.alias_version(uri, name, tracking.CHAMPION) == candidate
    assert champion == tracking.alias_version(uri, CHURN, tracking.CANDIDATE)


def test_scoring_the_registered_champion_equals_scoring_the_models_folder(small_pipeline, champion, tmp_path):
    from_folder, from_registry = tmp_path / "folder.parquet", tmp_path / "registry.parquet"

    drift = {"folder": tmp_path / "folder.drift.json", "registry": tmp_path / "registry.drift.json"}
    local = omvald(small_pipeline, *score_args(from_folder, "--models-dir", "models", "--drift", str(drift["folder"])))
    registered = omvald(
        small_pipeline,
        *score_args(from_registry, "--model-uri", f"models:/{CHURN}@champion", "--drift", str(drift["registry"])),
    )

    assert local.exit_code == 0, local.output
    assert registered.exit_code == 0, registered.output
    a, b = pd.read_parquet(from_folder), pd.read_parquet(from_registry)
    assert list(a["customer_id"]) == list(b["customer_id"])
    assert len(a) > 1000
    np.testing.assert_allclose(b["p_churn"], a["p_churn"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(b["p_phase_out"], a["p_phase_out"], rtol=0, atol=1e-9)
    assert (a["risk_tier"] == b["risk_tier"]).all()
    # the training reference travels with the registered version: the same drift, read from its artifact
    folder_drift, registry_drift = (json.loads(p.read_text()) for p in (drift["folder"], drift["registry"]))
    assert not registry_drift["skipped"] and len(registry_drift["features"]) > 100
    assert registry_drift == folder_drift


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (f"models:/{CHURN}@no-such-alias", "has no version with the alias 'no-such-alias'"),
        ("runs:/0123/churn", "expected models:/omvald-churn@<alias>"),
        (f"models:/{PHASE_OUT}@champion", "expected models:/omvald-churn@<alias>"),
    ],
)
def test_a_bad_model_uri_is_a_clear_error_and_writes_nothing(small_pipeline, champion, tmp_path, uri, message):
    output, summary = tmp_path / "scores.parquet", tmp_path / "summary.json"

    result = omvald(small_pipeline, *score_args(output, "--model-uri", uri, "--summary", str(summary)))

    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "error:" in result.output and message in " ".join(result.output.split())
    assert not output.exists() and not summary.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_registered_pyfunc_predicts_the_calibrated_probabilities_of_the_joblib_model(small_pipeline):
    scoring = pd.read_parquet(small_pipeline / "data/features/scoring.parquet")
    previous = mlflow.get_tracking_uri()
    for target, name in (("churn", CHURN), ("phase_out", PHASE_OUT)):
        model = joblib.load(small_pipeline / "models" / f"{target}.joblib")
        X = model_matrix(scoring, model, target)
        try:
            mlflow.set_tracking_uri(tracking_uri(small_pipeline))
            mlflow.set_registry_uri(tracking_uri(small_pipeline))
            pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@candidate")
            predicted = pyfunc.predict(tracking.pyfunc_input(X))
        finally:
            mlflow.set_tracking_uri(previous)
        assert list(predicted.columns) == [tracking.OUTPUT_COLUMNS[target]]
        np.testing.assert_allclose(predicted.iloc[:, 0].to_numpy(), model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
