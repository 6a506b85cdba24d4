"""``dvc exp run -S ...`` puts two experiments side by side, in ``dvc exp show`` and in MLflow (issue #4).

In a temporary git copy of the repository (a small business: 800 customers,
24 months, small models) the module runs ``dvc repro evaluate``, commits the
result as the baseline, then ``dvc exp run -S train.churn.num_leaves=7
evaluate``, the way a user compares a hyperparameter. The tests then read
what a user would look at: ``dvc exp show --json``, the MLflow store
(``MLFLOW_TRACKING_URI`` = the copy's own ``mlflow.db``) and ``dvc status``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dvc")]

REPO = Path(__file__).resolve().parents[2]
BASE_LEAVES, EXP_LEAVES = 15, 7
EXP_NAME = "leaves-7"
SMALL = {
    "generate": {"n_customers": 800, "months": 24},
    "features": {"n_buckets": 2, "horizon_days": 90},  # 24 months: a 92-day embargo leaves no training date
    "train": {"churn": {"n_estimators": 30}, "phase_out": {"n_estimators": 30}},
}
# Outputs of an earlier run in the developer's checkout; the copy must start from none.
NOT_COPIED = ("dvc.lock", "metrics/", "plots/", "reports/")


def run(project: Path, *args: str, timeout: int = 300) -> str:
    """Run a command in ``project`` with the venv first on PATH and the copy's MLflow store; fail loudly."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    out = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout


def git(project: Path, *args: str) -> str:
    return run(project, "git", "-c", "user.email=t@t", "-c", "user.name=t", *args)


def copy_repository(target: Path) -> None:
    """The files git would version (tracked + untracked, not ignored), minus earlier pipeline outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in listed:
        if name.startswith(NOT_COPIED) or not (REPO / name).is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)


def set_small_params(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in SMALL.items():
        for key, value in values.items():
            if isinstance(value, dict):
                params[section][key].update(value)
            else:
                params[section][key] = value
    assert params["train"]["churn"]["num_leaves"] == BASE_LEAVES
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository with a committed baseline run and one experiment (``-S train.churn.num_leaves=7``)."""
    root = tmp_path_factory.mktemp("dvc_exp")
    copy_repository(root)
    set_small_params(root)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "small baseline")
    run(root, "dvc", "repro", "evaluate")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline results")
    run(root, "dvc", "exp", "run", "-n", EXP_NAME, "-S", f"train.churn.num_leaves={EXP_LEAVES}", "evaluate")
    return root


def _params_and_metrics(row: dict) -> tuple[dict, dict]:
    data = row["data"]
    params = data["params"]["params.yaml"]["data"]
    metrics = data["metrics"]["metrics/churn.json"]["data"]
    return params, metrics


def test_exp_show_lists_the_baseline_and_the_experiment_with_their_params_and_churn_metrics(project):
    shown = json.loads(run(project, "dvc", "exp", "show", "--json"))
    baseline = next(r for r in shown if r.get("rev") != "workspace")
    experiments = [e["revs"][0] for e in baseline.get("experiments") or []]
    exp = next(e for e in experiments if e.get("name") == EXP_NAME)

    base_params, base_metrics = _params_and_metrics(baseline)
    exp_params, exp_metrics = _params_and_metrics(exp)

    assert base_params["train"]["churn"]["num_leaves"] == BASE_LEAVES
    assert exp_params["train"]["churn"]["num_leaves"] == EXP_LEAVES
    assert exp_params["train"]["phase_out"]["num_leaves"] == BASE_LEAVES  # only the one key changed
    for metrics in (base_metrics, exp_metrics):
        assert 0.5 < metrics["models"]["lgbm"]["overall"]["roc_auc"] <= 1.0
    # No inequality on the metrics: on 800 customers, min_child_samples=100 keeps every
    # tree at <= 3 leaves, so num_leaves 15 and 7 train the same model (measured).


def test_mlflow_has_both_pipeline_runs_and_tags_the_experiment_with_its_dvc_name(project):
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("omvald")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.mlflow.runName = 'pipeline'")
    leaves = sorted(int(r.data.params["train.churn.num_leaves"]) for r in runs)
    by_leaves = {int(r.data.params["train.churn.num_leaves"]): r for r in runs}

    assert leaves == [EXP_LEAVES, BASE_LEAVES]
    assert by_leaves[EXP_LEAVES].data.tags.get("dvc_exp_name") == EXP_NAME
    assert "dvc_exp_name" not in by_leaves[BASE_LEAVES].data.tags
    for r in runs:  # evaluate logged the headline test metrics to each pipeline run
        assert 0.5 < r.data.metrics["test.churn.roc_auc"] <= 1.0


def test_a_second_repro_is_a_no_op_and_the_pipeline_is_up_to_date(project):
    mtime = (project / "models/churn.joblib").stat().st_mtime_ns

    out = run(project, "dvc", "repro", "evaluate")
    status = run(project, "dvc", "status", "evaluate")

    assert "didn't change" in out or "up to date" in out
    assert "Running stage" not in out
    assert "up to date" in status
    assert (project / "models/churn.joblib").stat().st_mtime_ns == mtime
