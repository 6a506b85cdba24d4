"""What ``notebooks/02-compare-experiments.ipynb`` shows: pipeline runs from MLflow, side by side.

The train stage creates one ``pipeline`` parent run per execution with a
child run per model (``churn``, ``phase_out``); evaluate adds test metrics
(``test.models.<model>.overall.<metric>`` on the children, the LightGBM
headline ``test.<target>.<metric>`` on the parent) and curve CSVs under
``evaluation/``. The same numbers live in ``metrics/*.json`` for
``dvc exp show``: :func:`dvc_exp_show` gives that view.

These are read-only queries, through the client of ``omvald.model.tracking``
(the only module that imports MLflow).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

HEADLINE = ("roc_auc", "pr_auc", "brier", "ece", "lift", "capture")
CURVE_AXES = {
    "roc": ("fpr", "tpr"),
    "pr": ("recall", "precision"),
    "gains": ("share_targeted", "share_captured"),
    "calibration": ("mean_predicted", "observed_rate"),
}


def _client(tracking_uri: str) -> Any:
    from omvald.model.tracking import mlflow_client  # imports MLflow: only when a notebook asks

    return mlflow_client(tracking_uri)


def pipeline_runs(tracking_uri: str, experiment: str = "omvald", evaluated_only: bool = True) -> pd.DataFrame:
    """One row per ``pipeline`` parent run, newest first: ``run_id``, ``start``, ``test.<target>.<metric>`` and ``params.<key>``.

    ``evaluated_only`` drops runs the evaluate stage never reached (no test metrics).
    """
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise LookupError(f"no MLflow experiment '{experiment}' at {tracking_uri}; run `omvald train` first.")
    runs = client.search_runs(
        [exp.experiment_id], filter_string="attributes.run_name = 'pipeline'", order_by=["attributes.start_time DESC"]
    )
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run_id": run.info.run_id, "start": pd.to_datetime(run.info.start_time, unit="ms")}
        row.update({k: v for k, v in run.data.metrics.items() if k.startswith("test.")})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if evaluated_only and not frame.empty:
        frame = frame[frame.filter(like="test.").notna().any(axis=1)]
    return frame.reset_index(drop=True)


def metrics_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Headline test metrics per run: rows = run (short id), columns = ``<target> <metric>``."""
    cols = [c for t in ("churn", "phase_out") for m in HEADLINE if (c := f"test.{t}.{m}") in runs]
    out = runs.set_index(runs["run_id"].str[:8])[cols]
    out.columns = [c.removeprefix("test.").replace(".", " ") for c in cols]
    out.index.name = "run"
    return out


def param_differences(runs: pd.DataFrame) -> pd.DataFrame:
    """Parameters whose value differs between the runs (rows = parameter, columns = short run id)."""
    params = runs.set_index(runs["run_id"].str[:8]).filter(like="params.")
    differing = [c for c in params.columns if params[c].astype("str").nunique(dropna=False) > 1]
    out = params[differing].T
    out.index = [i.removeprefix("params.") for i in out.index]
    out.index.name = "parameter"
    return out


def model_curve(tracking_uri: str, parent_run_id: str, target: str, curve: str) -> pd.DataFrame:
    """Curve data (``roc``/``pr``/``gains``/``calibration``) the evaluate stage logged to a run's ``target`` child."""
    client = _client(tracking_uri)
    # Children are found by their parent tag in every experiment: a nested run started without an
    # experiment id can land in MLflow's "Default" experiment rather than the parent's.
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    children = client.search_runs(
        experiment_ids, filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' and tags.target = '{target}'"
    )
    if not children:
        raise LookupError(f"run {parent_run_id} has no '{target}' child run")
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(children[0].info.run_id, f"evaluation/{curve}_{target}.csv", tmp)
        return pd.read_csv(path)


def compare_curves(curves: dict[str, pd.DataFrame], curve: str, title: str, model: str = "lgbm") -> Figure:
    """One line per run (the ``model`` rows of each curve frame); a diagonal for ROC, gains and calibration."""
    x, y = CURVE_AXES[curve]
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    for label, df in curves.items():
        part = df[df["model"] == model] if "model" in df else df
        ax.plot(part[x], part[y], label=label, marker="o" if curve == "calibration" else None, ms=3)
    if curve != "pr":
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(title=title, xlabel=x.replace("_", " "), ylabel=y.replace("_", " "), xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


DVC_EXPLAIN = (
    "`dvc exp show` shows the same comparison from the Git/DVC side: one row per experiment "
    "(`dvc exp run -S train.churn.num_leaves=31`) with the params of params.yaml and the metrics of "
    "metrics/churn.json and metrics/phase_out.json. Run it in the repository: `dvc exp show --md` "
    "(or `--json` for machines)."
)


def dvc_exp_show(project_dir: str | Path) -> pd.DataFrame | str:
    """``dvc exp show --json`` as a table (rev/experiment, metrics, changed params), or why it is not available."""
    root = Path(project_dir)
    if not (root / ".dvc").is_dir():
        return f"{root.resolve()} is not a DVC repository. {DVC_EXPLAIN}"
    dvc = shutil.which("dvc")
    if dvc is None:
        return f"the `dvc` command is not installed here. {DVC_EXPLAIN}"
    done = subprocess.run([dvc, "exp", "show", "--json"], cwd=root, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return f"`dvc exp show --json` failed: {done.stderr.strip()[-500:]}. {DVC_EXPLAIN}"
    return exp_show_table(json.loads(done.stdout or "[]"))


def exp_show_table(payload: list[dict[str, Any]]) -> pd.DataFrame:
    """Flatten ``dvc exp show --json`` (DVC 3: commits with nested ``experiments``) to one row per revision."""
    rows: list[dict[str, Any]] = []

    def add(entry: dict[str, Any], name: str | None = None) -> None:
        data = entry.get("data") or {}
        row: dict[str, Any] = {
            "rev": (data.get("rev") or entry.get("rev") or "")[:8],
            "experiment": name or entry.get("name") or "",
        }
        for kind in ("metrics", "params"):
            for file, content in (data.get(kind) or {}).items():
                for key, value in _flat(content.get("data") or {}).items():
                    row[f"{Path(file).stem}:{key}" if kind == "metrics" else key] = value
        rows.append(row)

    for commit in payload:
        add(commit)
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                add(rev, exp.get("name"))
    return pd.DataFrame(rows)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out
