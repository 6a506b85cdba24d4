"""Issue #15, short histories: what a real export has, not the three years the synthetic business has.

- A shop's purchases over nine months, no touchpoints, no churn dates: ``dvc
  repro`` trains, evaluates and scores every customer at the end of the
  data with a 90-day horizon (test out of time, validation on held-out
  customers) and with a 180-day one (held-out customers, not out of time).
- A horizon shorter than one whole month has no phase-out label: the
  phase-out model is skipped, and metrics, report and scores say why.
- Dates in ``params.yaml`` work quoted or not, in ``dvc repro`` and ``dvc exp run -S``.

The project-copy helpers come from ``test_own_data`` (issue #9).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_own_data import (
    _run,
    _set_params,
    assert_the_classical_baselines_match_the_feature_families,
    assert_the_kept_model_is_no_worse_than_the_logistic_regression,
)

from fixtures.businesses import write_non_contractual, write_snapshot
from omvald.model.evaluate import finite
from pipeline_run import copy_project, run_cli

START, END = dt.date(2025, 1, 1), dt.date(2025, 9, 30)  # nine months of purchases
SNAPSHOT = dt.date(2025, 6, 30)
EXPECTED_STEP = {
    # labelled Jan .. Jun; test May + Jun out of time, training Jan + Feb (tests/unit/test_split.py)
    90: ("time_test", "time test, customer validation", True),
    # labelled Jan .. Mar; no date ends its label window before another
    180: ("customer", "customer (not out of time)", False),
}


def _nine_months(folder: Path) -> Path:
    return write_non_contractual(folder, n_customers=600, start=START, end=END)


# --------------------------------------------------------------------------- nine months through dvc repro


@pytest.mark.slow
@pytest.mark.parametrize("horizon_days", [90, 180])
def test_nine_months_of_purchases_train_evaluate_and_score_everyone(horizon_days: int, tmp_path: Path):
    export = _nine_months(tmp_path / "export")
    project = copy_project(tmp_path / "project")
    _set_params(project, export, {"features": {"horizon_days": horizon_days}})

    _run(["dvc", "repro", "report"], project)

    step, strategy, out_of_time = EXPECTED_STEP[horizon_days]
    split = json.loads((project / "models" / "split.json").read_text())
    assert split["split_step"] == step and split["out_of_time"] is out_of_time
    for target in ("churn", "phase_out"):
        metrics = json.loads((project / "metrics" / f"{target}.json").read_text())
        assert finite(metrics)
        assert (metrics["split_step"], metrics["split_strategy"], metrics["out_of_time"]) == EXPECTED_STEP[horizon_days]
    churn = json.loads((project / "metrics" / "churn.json").read_text())
    assert np.isfinite(churn["models"]["lgbm"]["overall"]["roc_auc"])
    if horizon_days == 90:
        assert churn["test_dates"] == ["2025-05-31", "2025-06-30"]

    # the scoring model learned from every labelled date; the evaluated one did not see the test dates
    fits = json.loads((project / "models" / "targets.json").read_text())["fits"]["churn"]
    labelled = json.loads((project / "data" / "features" / "meta.json").read_text())["labelled_dates"]
    assert fits["scoring"]["as_of_dates"] == labelled and fits["scoring"]["refit"] is True
    assert fits["scoring"]["n_rows"] > fits["holdout"]["n_rows"]
    if out_of_time:
        assert not set(churn["test_dates"]) & set(fits["holdout"]["as_of_dates"])

    # every customer in the population at the end of the data (a purchase in the last 365 days) is scored
    scores = pd.read_parquet(project / "data" / "scores" / "scores.parquet")
    buyers = set(pd.read_csv(export / "billing.csv", usecols=["customer_id"])["customer_id"])
    assert set(scores["customer_id"]) == buyers
    assert scores["p_churn"].between(0, 1).all()

    page = (project / "reports" / "report.html").read_text()
    assert ("Not an out-of-time test" in page) is (not out_of_time)
    assert_the_kept_model_is_no_worse_than_the_logistic_regression(project)
    meta = json.loads((project / "data" / "features" / "meta.json").read_text())
    assert_the_classical_baselines_match_the_feature_families(project, meta)


# --------------------------------------------------------------------------- horizons shorter than a month


@pytest.mark.parametrize("horizon_days", [15, 30])
def test_a_horizon_shorter_than_a_whole_month_skips_phase_out_and_says_why(horizon_days: int, tmp_path: Path):
    # the README's one-snapshot recipe with a short horizon: billing is observed a month past the
    # snapshot, so raw 15/30-day windows would have called nearly every customer who stays a phase-out
    export = write_snapshot(tmp_path / "export", n_customers=800, snapshot=SNAPSHOT)
    project = tmp_path / "project"
    project.mkdir()
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["data"].update(source=str(export), data_end=SNAPSHOT + dt.timedelta(days=horizon_days))
    params["features"].update(horizon_days=horizon_days, as_of_first=SNAPSHOT, as_of_last=SNAPSHOT, n_buckets=2)
    for target in ("churn", "phase_out"):
        params["train"][target].update(n_estimators=30, min_child_samples=20)
    params_file = project / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))  # dates unquoted, as a user writes them
    for args in (
        ["validate", str(export), "data/interim", "--profile", "reports/profile.json"],
        ["features", "data/interim", "data/features"],
        ["train", "data/features", "models", "--no-mlflow"],
        ["evaluate", "data/features", "models", "metrics", "plots"],
        ["score", "--input", str(export), "--output", "scores.parquet", "--explain", "none"],
        ["report", "--out", "reports/report.html"],
    ):
        run_cli(project, args, params_file)

    meta = json.loads((project / "data" / "features" / "meta.json").read_text())
    assert meta["phase_out_months"] == 0 and meta["phase_out_labelled_dates"] == []
    assert (
        pd.read_parquet(project / "data" / "features" / "training.parquet", columns=["phase_out"])["phase_out"]
        .isna()
        .all()
    )
    reason = json.loads((project / "models" / "targets.json").read_text())["skipped"]["phase_out"]
    assert f"the {horizon_days}-day horizon is shorter than one whole month" in reason
    assert "features.horizon_days to 31 or more" in reason
    assert not (project / "models" / "phase_out.joblib").exists()
    phase_out = json.loads((project / "metrics" / "phase_out.json").read_text())
    assert phase_out["skipped"] is True and phase_out["reason"] == reason
    scores = pd.read_parquet(project / "scores.parquet")
    assert scores["p_phase_out"].isna().all() and scores["p_churn"].notna().all()
    assert (
        f"Phase-out model skipped: no phase-out labels: the {horizon_days}-day horizon"
        in (project / "reports" / "report.html").read_text()
    )


# --------------------------------------------------------------------------- dates in params.yaml


@pytest.mark.slow
def test_unquoted_dates_in_params_pass_dvc_repro_dry_and_exp_run_set_param(tmp_path: Path):
    export = _nine_months(tmp_path / "export")
    project = copy_project(tmp_path / "project")
    # the README's example, written the way a user writes it: bare YAML dates
    _set_params(project, export, {"data": {"data_end": END}, "features": {"as_of_first": dt.date(2025, 1, 31)}})
    assert "data_end: 2025-09-30\n" in (project / "params.yaml").read_text()
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "dates"], project)

    # every dvc command reads params.yaml into dvc.yaml's context; a dry run of a never-run pipeline
    # can only reach its first stage (the others' inputs do not exist yet), status reads all of them
    dry = _run(["dvc", "repro", "--dry", "validate"], project)
    assert "Running stage 'validate'" in dry.stdout
    assert "changed deps" in _run(["dvc", "status", "report"], project).stdout

    _run(["dvc", "exp", "run", "-n", "as-of-august", "-S", "features.as_of_last=2025-08-31", "features"], project)
    meta = json.loads((project / "data" / "features" / "meta.json").read_text())
    assert meta["scoring_date"] == "2025-08-31" and meta["data_end"] == "2025-09-30"
    assert "data.data_end: '2025-09-30'" in (project / "dvc.lock").read_text()

    shown = json.loads(_run(["dvc", "exp", "show", "--json"], project).stdout)
    assert all(row.get("error") is None for row in shown)
    experiment = next(e["revs"][0] for row in shown for e in row.get("experiments") or [] if e.get("name"))
    values = experiment["data"]["params"]["params.yaml"]["data"]
    assert values["features"]["as_of_last"] == "2025-08-31" and values["data"]["data_end"] == "2025-09-30"
    diff = _run(["dvc", "params", "diff", "--json"], project).stdout
    assert "2025-08-31" in diff
