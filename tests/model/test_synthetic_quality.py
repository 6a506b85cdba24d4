"""On the default synthetic business the LightGBM model beats both baselines and is calibrated.

Needs the real pipeline outputs (`dvc repro` up to evaluate): reads
``metrics/churn.json`` and ``metrics/phase_out.json``; skipped otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METRICS = ROOT / "metrics"
NEEDED = [
    ROOT / "data" / "features" / "training.parquet",
    ROOT / "models" / "churn.joblib",
    METRICS / "churn.json",
    METRICS / "phase_out.json",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(p.exists() for p in NEEDED),
        reason="needs pipeline outputs (data/features, models/, metrics/): run `dvc repro evaluate` first",
    ),
]


def _load(name: str) -> dict:
    return json.loads((METRICS / f"{name}.json").read_text())


def test_churn_model_beats_both_baselines_out_of_time_and_is_calibrated():
    models = _load("churn")["models"]
    lgbm = models["lgbm"]["overall"]
    for baseline in ("logistic", "heuristic"):
        assert lgbm["roc_auc"] > models[baseline]["overall"]["roc_auc"], baseline
        assert lgbm["pr_auc"] > models[baseline]["overall"]["pr_auc"], baseline
    assert lgbm["ece"] < 0.02


def test_phase_out_score_beats_both_baselines_and_is_calibrated():
    models = _load("phase_out")["combined"]["models"]
    lgbm = models["lgbm"]["overall"]
    for baseline in ("logistic", "heuristic"):
        assert lgbm["roc_auc"] > models[baseline]["overall"]["roc_auc"], baseline
    assert lgbm["ece"] < 0.02


def test_churn_model_is_useful_in_every_segment_and_tenure_cohort():
    lgbm = _load("churn")["models"]["lgbm"]
    for group in ("segment", "tenure"):
        for name, block in lgbm[group].items():
            if "roc_auc" in block and block["n_rows"] >= 500:
                assert block["roc_auc"] > 0.6, f"{group}={name}"
