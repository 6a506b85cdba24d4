"""Run the omvald CLI stages on a small synthetic business in a temporary project folder (for tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SMALL_CUSTOMERS = 1500

# The dvc.yaml stages, in order, with the paths of dvc.yaml (relative to the project folder).
PIPELINE = (
    [
        "generate",
        "data/synthetic",
        "--truth",
        "data/ground_truth.parquet",
        "--truth-probabilities",
        "data/ground_truth_asof.parquet",
    ],
    ["validate", "data/synthetic", "data/interim", "--profile", "reports/profile.json"],
    ["features", "data/interim", "data/features"],
    ["train", "data/features", "models"],
    ["evaluate", "data/features", "models", "metrics", "plots"],
    ["explain", "data/features", "models", "reports/explain"],
    [
        "score",
        "--input",
        "data/synthetic",
        "--output",
        "data/scores/scores.parquet",
        "--summary",
        "reports/score_summary.json",
    ],
    ["report", "--out", "reports/report.html"],
)


def tracking_uri(project: Path) -> str:
    """The small pipeline's own MLflow store (never the developer's mlflow.db)."""
    return f"sqlite:///{project / 'mlflow.db'}"


def small_params(project: Path, **overrides: dict) -> dict:
    """The repository's params.yaml for a small business, tracked in the project's own MLflow store."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"]["n_customers"] = SMALL_CUSTOMERS
    params["mlflow"]["tracking_uri"] = tracking_uri(project)
    for section, values in overrides.items():
        _merge(params.setdefault(section, {}), values)
    return params


def run_cli(project: Path, args: list[str], params_file: Path) -> None:
    """``omvald <args> --params <params_file>`` from ``project`` with its MLflow store; fails loudly."""
    from omvald.cli import app

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri(project))
        result = CliRunner().invoke(app, [*args, "--params", str(params_file)])
    assert result.exit_code == 0, (
        f"omvald {' '.join(args)} failed ({result.exit_code}):\n{result.output}\n{result.exception!r}"
    )


def _merge(target: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _merge(target.setdefault(key, {}), value)
        else:
            target[key] = value
