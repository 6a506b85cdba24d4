"""The model that scores saw every labelled date; the metrics come from the fit that did not see the test window."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from model_fakes import FEATURES, make_feature_frame, small_config, write_features

from omvald.model import metrics as m
from omvald.model.evaluate import run_evaluate
from omvald.model.refit import customer_folds, refit
from omvald.model.split import Split
from omvald.model.train import run_train
from omvald.scoring.plan import load_scoring_models

NAMES = [n for n, _, _ in FEATURES]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("refit")
    frame = make_feature_frame(n_customers=500, n_dates=12, seed=3)
    features = write_features(root / "features", frame)
    cfg = small_config(keep="lgbm")  # the LightGBM refit; a kept regression or blend: test_kept_model.py
    run_train(cfg, features, root / "models")
    result = run_evaluate(cfg, features, root / "models", root / "metrics", root / "plots")
    split = Split.from_json(json.loads((root / "models" / "split.json").read_text()))
    targets = json.loads((root / "models" / "targets.json").read_text())
    return {"root": root, "frame": frame, "cfg": cfg, "split": split, "targets": targets, "metrics": result}


def _booster(model) -> str:
    return model.booster_.model_to_string()


def test_the_scoring_model_was_trained_on_every_labelled_date_test_window_included(trained):
    frame, split = trained["frame"], trained["split"]
    churn_model = load_scoring_models(trained["root"] / "models", None, None).churn  # what `omvald score` loads
    holdout = joblib.load(trained["root"] / "models" / "churn.holdout.joblib")
    test_dates = {d.isoformat() for d in split.dates["test"]}

    fits = trained["targets"]["fits"]["churn"]
    all_dates = sorted({d.isoformat() for d in frame["as_of"]})
    assert fits["scoring"]["as_of_dates"] == all_dates and fits["scoring"]["n_rows"] == len(frame)
    assert test_dates <= set(fits["scoring"]["as_of_dates"])
    assert not test_dates & set(fits["holdout"]["as_of_dates"])
    assert fits["holdout"]["n_rows"] == int(split.mask(frame, "train").sum())

    # The record is the truth: refitting on every labelled row reproduces the loaded booster exactly,
    # and the same refit without the test window's rows does not.
    cfg = trained["cfg"]
    everything = refit(holdout, frame[NAMES], frame["churn"], frame["customer_id"], cfg.train.refit_calibration_folds)
    assert _booster(everything) == _booster(churn_model)
    before_test = frame.loc[~split.mask(frame, "test")]
    without = refit(holdout, before_test[NAMES], before_test["churn"], before_test["customer_id"], 3)
    assert _booster(without) != _booster(churn_model)


def test_the_refit_keeps_the_evaluated_fits_trees_and_calibration(trained):
    scoring = load_scoring_models(trained["root"] / "models", None, None)
    churn_model, phase_out_model = scoring.churn, scoring.phase_out
    for target, model in (("churn", churn_model), ("phase_out", phase_out_model)):
        holdout = joblib.load(trained["root"] / "models" / f"{target}.holdout.joblib")
        assert model.n_trees_ == holdout.n_trees_ < 60  # early stopping chose fewer than n_estimators=60
        assert model.calibration_method_ == holdout.calibration_method_ in {"isotonic", "sigmoid"}
        fits = trained["targets"]["fits"][target]
        assert fits["scoring"]["n_trees"] == fits["holdout"]["n_trees"] == holdout.n_trees_
        assert fits["scoring"]["refit"] is True and fits["scoring"]["calibration_folds"] == 3


def test_metrics_come_from_the_holdout_fit_not_from_the_model_that_saw_the_test_window(trained):
    frame, split = trained["frame"], trained["split"]
    test = frame.loc[split.mask(frame, "test")]
    y = test["churn"].astype(int).to_numpy()
    holdout = joblib.load(trained["root"] / "models" / "churn.holdout.joblib")
    scoring = joblib.load(trained["root"] / "models" / "churn.joblib")

    reported = trained["metrics"]["churn"]["models"]["lgbm"]["overall"]["roc_auc"]
    holdout_auc = m.summary(y, holdout.predict_proba(test[NAMES])[:, 1])["roc_auc"]
    scoring_auc = m.summary(y, scoring.predict_proba(test[NAMES])[:, 1])["roc_auc"]
    assert reported == pytest.approx(holdout_auc, abs=1e-12)
    assert scoring_auc > holdout_auc  # it learned from these very rows: not a number to report
    assert trained["metrics"]["churn"]["fit"] == "holdout"


def test_refit_calibration_groups_a_customers_dates_in_one_fold():
    ids = np.repeat([f"C{i}" for i in range(300)], 4)
    folds = customer_folds(ids, 3)
    per_customer = {cid: set(folds[ids == cid]) for cid in ids[::4]}
    assert all(len(f) == 1 for f in per_customer.values())
    counts = np.bincount(folds, minlength=3) / 4
    assert counts.min() > 70  # 300 customers over 3 folds: ~100 each
    assert np.array_equal(customer_folds(ids, 3), folds)  # stable hash: the same in every run


def test_with_refit_off_the_scoring_model_is_the_evaluated_fit(tmp_path: Path):
    frame = make_feature_frame(n_customers=300, n_dates=8, seed=4)
    features = write_features(tmp_path / "features", frame)
    cfg = small_config(refit=False, keep="lgbm")
    run_train(cfg, features, tmp_path / "models")
    scoring = joblib.load(tmp_path / "models" / "churn.joblib")
    holdout = joblib.load(tmp_path / "models" / "churn.holdout.joblib")
    assert _booster(scoring) == _booster(holdout)
    fits = json.loads((tmp_path / "models" / "targets.json").read_text())["fits"]["churn"]
    assert fits["scoring"]["refit"] is False and fits["scoring"]["as_of_dates"] == fits["holdout"]["as_of_dates"]
