"""LGBMChurnModel and the baselines behave as scikit-learn estimators of one shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_fakes import FEATURES
from sklearn.base import clone

from omvald.errors import ModelError
from omvald.model.baselines import HeuristicBaseline, LogisticBaseline
from omvald.model.estimators import LGBMChurnModel, fit_calibrator

NAMES = [n for n, _, _ in FEATURES]


def _windows(frame: pd.DataFrame):
    dates = sorted(frame["as_of"].unique())
    train, valid, test = (frame[frame["as_of"].isin(d)] for d in (dates[:8], dates[8:10], dates[10:]))
    return train, valid, test


def _fit(model, frame):
    train, valid, _ = _windows(frame)
    return model.fit(train[NAMES], train["churn"], valid[NAMES], valid["churn"], valid_groups=valid["customer_id"])


def test_fit_is_deterministic_and_clone_gives_an_unfitted_twin(feature_frame):
    model = LGBMChurnModel(n_estimators=40, min_child_samples=20, seed=3)
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "booster_")
    _, _, test = _windows(feature_frame)
    first = _fit(model, feature_frame).predict_proba(test[NAMES])
    second = _fit(twin, feature_frame).predict_proba(test[NAMES])
    np.testing.assert_array_equal(first, second)
    assert first.shape == (len(test), 2)
    np.testing.assert_allclose(first.sum(axis=1), 1.0)


def test_fits_on_two_threads_are_reproducible_and_train_threads_reaches_them(feature_frame):
    """``train.threads``: same data, params and thread count, the same trees."""
    import dataclasses

    from omvald.config import Config, TrainConfig
    from omvald.errors import ConfigError
    from omvald.model.candidates import check_settings, lgbm_settings

    cfg = dataclasses.replace(Config(), train=TrainConfig(threads=2))
    settings = {**lgbm_settings(cfg, "churn", ["plan"]), "n_estimators": 40, "min_child_samples": 20}
    assert settings["num_threads"] == 2
    first, second = (_fit(LGBMChurnModel(**settings), feature_frame) for _ in range(2))
    assert first.booster_.model_to_string() == second.booster_.model_to_string()
    with pytest.raises(ConfigError, match="train.threads"):
        check_settings(dataclasses.replace(cfg, train=TrainConfig(threads=0)))


def test_unseen_category_scores_like_a_missing_value(feature_frame):
    model = _fit(LGBMChurnModel(n_estimators=30, min_child_samples=20), feature_frame)
    row = feature_frame[NAMES].head(1).copy()
    unseen, missing = row.copy(), row.copy()
    unseen["plan"] = pd.Series(["platinum-2099"], index=row.index)
    missing["plan"] = pd.Series([None], index=row.index, dtype="string")
    assert model.categories_["plan"] == ["basic", "plus", "pro"]
    assert model.predict_proba(unseen)[0, 1] == model.predict_proba(missing)[0, 1]


def test_categoricals_given_as_plain_strings_score_the_same_as_category_dtype(feature_frame):
    model = _fit(LGBMChurnModel(n_estimators=30, min_child_samples=20), feature_frame)
    X = feature_frame[NAMES].tail(50)
    as_str = X.assign(plan=X["plan"].astype(str))
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(as_str))


def test_contributions_are_exact_log_odds_with_a_bias_column(feature_frame):
    model = _fit(LGBMChurnModel(n_estimators=30, min_child_samples=20), feature_frame)
    X = feature_frame[NAMES].tail(20)
    contrib = model.predict_contributions(X)
    assert list(contrib.columns) == [*NAMES, "bias"]
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), model.predict_raw(X), atol=1e-9)


def test_missing_feature_column_is_a_model_error(feature_frame):
    model = _fit(LGBMChurnModel(n_estimators=10, min_child_samples=20), feature_frame)
    with pytest.raises(ModelError, match="price_shock_pct_3m"):
        model.predict_proba(feature_frame[NAMES].drop(columns="price_shock_pct_3m"))


@pytest.mark.parametrize("baseline", [LogisticBaseline(), HeuristicBaseline()], ids=["logistic", "heuristic"])
def test_baselines_have_the_same_shape_and_handle_unseen_categories(feature_frame, baseline):
    model = _fit(clone(baseline), feature_frame)
    _, _, test = _windows(feature_frame)
    X = test[NAMES].assign(plan="unknown-plan")
    p = model.predict_proba(X)
    assert p.shape == (len(test), 2) and np.all((p > 0) & (p < 1))


def test_heuristic_uses_tenure_price_shock_and_activity_with_risk_directions(feature_frame):
    model = _fit(HeuristicBaseline(), feature_frame)
    assert model.columns_ == [("tenure_months", -1), ("price_shock_pct_3m", 1), ("inbound_events_90d", -1)]
    base = feature_frame[NAMES].head(1)
    shocked = base.assign(price_shock_pct_3m=50.0)
    assert model.predict_proba(shocked)[0, 1] > model.predict_proba(base.assign(price_shock_pct_3m=0.0))[0, 1]


def test_auto_calibration_chooses_on_the_held_out_half_and_reports_both_losses():
    rng = np.random.default_rng(0)
    score = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-2 * score))).astype(int)  # a sigmoid truth
    cal, losses = fit_calibrator(score, y, "auto", groups=[f"c{i}" for i in range(4000)])
    assert set(losses) == {"isotonic", "sigmoid"}
    assert cal.method == min(losses, key=losses.get)
