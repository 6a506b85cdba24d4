"""Run the omvald CLI stages on a small synthetic business in a temporary project folder (for tests)."""

from __future__ import annotations

import shutil
import subprocess
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
    ["plan", "data/scores/scores.parquet", "data/plan/retention_list.csv", "--summary", "reports/plan_summary.json"],
    ["report", "--out", "reports/report.html"],
)
# The loop after the plan (README, "From scores to a campaign and back"): the synthetic business runs the
# campaign and writes a newer export, on which the campaign's effect is measured. Not dvc.yaml stages.
CAMPAIGN = (
    [
        "generate",
        "data/synthetic_next",
        "--campaign",
        "data/plan/retention_list.csv",
        "--truth",
        "data/ground_truth_next.parquet",
    ],
    [
        "effect",
        "--list",
        "data/plan/retention_list.csv",
        "--input",
        "data/synthetic_next",
        "--output",
        "reports/effect.json",
    ],
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


def copy_project(dst: Path) -> Path:
    """The repository's files (not its data, outputs or ``dvc.lock``) in a fresh git repository at ``dst``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    outputs = ("data/", "models/", "metrics/", "plots/", "reports/", "mlruns/")
    for rel in filter(None, listed):
        src = REPO / rel
        if rel == "dvc.lock" or (rel.startswith(outputs) and not rel.endswith(".gitignore")) or not src.is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=dst, check=True, capture_output=True)
    return dst


def _merge(target: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _merge(target.setdefault(key, {}), value)
        else:
            target[key] = value
