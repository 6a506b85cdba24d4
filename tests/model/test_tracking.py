"""MLflow: one parent run per pipeline, a child run per model, registered pyfunc models, promotion."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pytest
from model_fakes import FEATURES, make_feature_frame, small_config, write_features

from omvald.model import tracking
from omvald.model.evaluate import run_evaluate
from omvald.model.promote import decide, run_promote
from omvald.model.train import run_train

NAMES = [n for n, _, _ in FEATURES]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    frame = make_feature_frame(n_customers=600, seed=5)
    features = write_features(root / "features", frame)
    ctx = tracking.TrackingContext(
        tracking_uri=f"sqlite:///{root}/mlflow.db",
        experiment="omvald-test",
        artifact_location=str(root / "artifacts"),
        tags={"git_commit": "0123abc", "dvc_exp_name": "exp-test"},
    )
    # a tiny search (its trials are child runs); LightGBM kept, so promotion compares LightGBM fits (the fake
    # business is linear in its features: left free, the train stage keeps the logistic regression)
    cfg = small_config(search={"n_trials": 2, "max_trees": 40}, keep="lgbm")
    trained = run_train(cfg, features, root / "models", tracking=ctx)
    run_evaluate(cfg, features, root / "models", root / "metrics", root / "plots")
    return {"root": root, "frame": frame, "features": features, "ctx": ctx, "cfg": cfg, "run": trained["run"]}


def _client(pipeline) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(pipeline["ctx"].tracking_uri)


def test_child_run_holds_params_tags_dataset_and_evaluation_metrics(pipeline):
    client = _client(pipeline)
    info = pipeline["run"]
    run = client.get_run(info["runs"]["churn"])
    assert run.data.tags["mlflow.parentRunId"] == info["parent_run_id"]
    assert run.data.params["train.churn.n_estimators"] == "60"
    assert run.data.params["seed"] == "7"
    assert run.data.params["model.calibration_method"] in {"isotonic", "sigmoid"}
    assert run.data.tags["split_strategy"] == "time" and run.data.tags["split_step"] == "time"
    assert run.data.params["fit.scoring.refit"] == "True" and run.data.params["fit.holdout.as_of_dates"] == "6"
    assert run.data.tags["git_commit"] == "0123abc" and run.data.tags["dvc_exp_name"] == "exp-test"
    assert run.data.tags["feature_families"] == "billing,profile,touchpoints"
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == tracking.file_digest(pipeline["features"] / "training.parquet")
    auc = run.data.metrics["test.models.lgbm.overall.roc_auc"]
    assert 0.5 < auc <= 1.0
    assert "test.models.heuristic.tenure.lt12.n_rows" in run.data.metrics


def test_the_verdict_against_the_baselines_is_in_the_run_as_numbers_and_tags(pipeline):
    metrics = json.loads((pipeline["root"] / "metrics" / "churn.json").read_text())["comparison"]
    run = _client(pipeline).get_run(pipeline["run"]["runs"]["churn"])
    diff = metrics["versus"]["lgbm"]["logistic"]
    assert run.data.metrics["test.comparison.versus.lgbm.logistic.auc_diff"] == pytest.approx(diff["auc_diff"])
    assert run.data.metrics["test.comparison.versus.lgbm.logistic.low"] == pytest.approx(diff["low"])
    outcome = run.data.metrics["test.comparison.versus.lgbm.logistic.outcome"]
    assert outcome == {"beat": 1, "tie": 0, "lose": -1}[diff["verdict"]]
    assert run.data.tags["best_baseline"] == metrics["best_baseline"]
    assert run.data.tags["lgbm_vs_best_baseline"] == metrics["lgbm_vs_best_baseline"]["verdict"]


def test_each_search_trial_is_a_child_run_of_its_models_run_and_the_kept_model_is_tagged(pipeline):
    client = _client(pipeline)
    info = pipeline["run"]
    for target in ("churn", "phase_out"):
        parent = info["runs"][target]
        trials = client.search_runs(
            [client.get_run(parent).info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
        )
        by_number = {int(r.data.tags["search_trial"]): r for r in trials}
        assert sorted(by_number) == [0, 1]
        fixed = by_number[0]
        assert fixed.data.tags["fixed_settings"] == "true" and fixed.data.params["n_estimators"] == "60"
        assert by_number[1].data.params["n_estimators"] == "40"  # a searched trial: the search's tree cap
        assert all(0.5 < r.data.metrics["valid_roc_auc"] <= 1 and r.info.status == "FINISHED" for r in trials)
        run = client.get_run(parent)
        assert run.data.tags["kept_model"] == "lgbm" and "train.keep = lgbm" in run.data.params["kept.reason"]
        assert run.data.params["kept_model"] == run.data.tags["kept_model"] and run.data.params["search.trials"] == "2"
        assert {"valid.lgbm.roc_auc", "valid.logistic.roc_auc", "valid.blend.roc_auc"} <= set(run.data.metrics)


def test_evaluation_files_are_logged_as_artifacts_of_each_child_run(pipeline):
    client = _client(pipeline)
    for target in ("churn", "phase_out"):
        paths = {a.path for a in client.list_artifacts(pipeline["run"]["runs"][target], "evaluation")}
        assert f"evaluation/{target}.json" in paths
        assert {f"evaluation/{c}_{target}.csv" for c in ("roc", "pr", "calibration", "gains")} <= paths
        assert f"evaluation/roc_{target}.png" in paths
    parent_inputs = {a.path for a in client.list_artifacts(pipeline["run"]["parent_run_id"], "inputs")}
    assert {"inputs/meta.json", "inputs/registry.json", "inputs/split.json"} <= parent_inputs


def test_logged_pyfunc_model_predicts_the_training_codes_probabilities(pipeline):
    X = pipeline["frame"][NAMES].tail(300)
    for target in ("churn", "phase_out"):
        local = joblib.load(pipeline["root"] / "models" / f"{target}.joblib").predict_proba(X)[:, 1]
        model = tracking.load_pyfunc(pipeline["run"]["models"][target]["model_uri"], pipeline["ctx"].tracking_uri)
        logged = model.predict(tracking.pyfunc_input(X)).iloc[:, 0].to_numpy()
        np.testing.assert_allclose(logged, local, rtol=0, atol=1e-9)


def test_each_model_is_registered_with_alias_candidate(pipeline):
    uri = pipeline["ctx"].tracking_uri
    assert tracking.alias_version(uri, "omvald-churn", "candidate") == pipeline["run"]["models"]["churn"]["version"]
    assert tracking.alias_version(uri, "omvald-phase-out", "candidate") is not None
    assert tracking.alias_version(uri, "omvald-churn", "champion") is None


def test_the_registered_version_is_the_scoring_fit_and_carries_the_holdout_fit_that_promote_scores(pipeline):
    X = pipeline["frame"][NAMES].tail(300)
    uri, models = pipeline["ctx"].tracking_uri, pipeline["root"] / "models"
    for fit, path in (("holdout", "churn.holdout.joblib"), ("scoring", "churn.joblib")):
        p, scored = tracking.predict_registered(uri, "omvald-churn", "candidate", X, holdout=fit == "holdout")
        assert scored == fit
        np.testing.assert_allclose(p, joblib.load(models / path).predict_proba(X)[:, 1], rtol=0, atol=1e-9)


def test_promotion_first_wins_worse_is_refused_force_overrides_better_wins(pipeline):
    root, ctx, uri = pipeline["root"], pipeline["ctx"], pipeline["ctx"].tracking_uri
    models = root / "models"
    (first,) = run_promote(pipeline["features"], models, uri, targets=("churn",))
    assert first.promoted and "no champion yet" in first.reason
    good = first.candidate_version

    weak = small_config(churn={"n_estimators": 1, "num_leaves": 2, "min_child_samples": 20}, keep="lgbm")
    run_train(weak, pipeline["features"], root / "models_weak", tracking=ctx)
    (refused,) = run_promote(pipeline["features"], models, uri, targets=("churn",))
    assert not refused.promoted and "does not beat champion" in refused.reason
    assert f"v{good}: holdout fit" in refused.reason  # like with like: both evaluated fits
    assert refused.candidate_score < refused.champion_score
    assert tracking.alias_version(uri, "omvald-churn", "champion") == good

    (forced,) = run_promote(pipeline["features"], models, uri, force=True, targets=("churn",))
    assert forced.promoted and "--force" in forced.reason
    weak_version = forced.candidate_version
    assert tracking.alias_version(uri, "omvald-churn", "champion") == weak_version

    tracking.set_alias(uri, "omvald-churn", "candidate", good)
    (better,) = run_promote(pipeline["features"], models, uri, targets=("churn",))
    assert better.promoted and "beats champion" in better.reason
    assert tracking.alias_version(uri, "omvald-churn", "champion") == good


@pytest.mark.parametrize(
    ("metric", "cand", "champ", "promoted"),
    [
        ("roc_auc", 0.81, 0.80, True),
        ("roc_auc", 0.80, 0.80, False),
        ("ece", 0.01, 0.02, True),
        ("log_loss", 0.3, 0.2, False),
    ],
)
def test_decide_compares_in_the_metrics_direction(metric, cand, champ, promoted):
    assert decide("churn", metric, "2", "1", cand, champ).promoted is promoted


def test_decide_refuses_when_the_champion_cannot_be_scored_unless_forced():
    assert not decide("churn", "roc_auc", "2", "1", 0.8, None).promoted
    assert decide("churn", "roc_auc", "2", "1", 0.8, None, force=True).promoted


def test_flatten_metrics_makes_keys_mlflow_safe_and_drops_non_numbers():
    flat = tracking.flatten_metrics({"a": {"<12": {"auc": 0.7}, "24+": 1, "name": "x", "nan": float("nan")}})
    assert flat == {"a.lt12.auc": 0.7, "a.24plus": 1.0}


def test_context_from_env_prefers_the_environment(tmp_path: Path):
    from omvald.config import MlflowConfig

    ctx = tracking.context_from_env(
        MlflowConfig(), {"MLFLOW_TRACKING_URI": "sqlite:///x.db", "DVC_EXP_NAME": "e1"}, tmp_path
    )
    assert ctx.tracking_uri == "sqlite:///x.db" and ctx.tags["dvc_exp_name"] == "e1"
    assert tracking.context_from_env(MlflowConfig(), {}, tmp_path).tracking_uri == "sqlite:///mlflow.db"
