"""Reason codes are exact TreeSHAP, and only risk-raising features count as drivers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from omvald.explain.drivers import contributions, driver_importance, shap_importance, top_drivers
from omvald.model.estimators import LGBMChurnModel


@pytest.fixture(scope="module")
def tiny_model_and_data() -> tuple[LGBMChurnModel, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n = 2000
    X = pd.DataFrame(
        {
            "price_shock_pct_3m": rng.normal(0, 10, n),
            "days_late_max_180d": rng.integers(0, 60, n).astype(float),
            "tenure_months": rng.integers(1, 72, n).astype(float),
            "contract_type": pd.Categorical(rng.choice(["monthly", "12m", "24m"], n)),
        }
    )
    logit = 0.12 * X["price_shock_pct_3m"] + 0.04 * X["days_late_max_180d"] - 0.02 * X["tenure_months"]
    logit += np.where(X["contract_type"] == "monthly", 1.0, 0.0) - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = LGBMChurnModel(n_estimators=40, num_leaves=7, min_child_samples=20, calibration="none", seed=1)
    return model.fit(X, y), X


def test_native_contributions_equal_treeshap_on_raw_log_odds(tiny_model_and_data):
    model, X = tiny_model_and_data
    ours = contributions(model, X.head(300))
    prepared = model._prepare(X.head(300))
    explainer = shap.TreeExplainer(model.booster_)
    theirs = explainer.shap_values(prepared)
    np.testing.assert_allclose(ours[model.feature_names_].to_numpy(), np.asarray(theirs), atol=1e-6)
    np.testing.assert_allclose(ours["bias"].to_numpy(), explainer.expected_value, atol=1e-6)


def test_contributions_sum_to_the_raw_score(tiny_model_and_data):
    model, X = tiny_model_and_data
    contrib = contributions(model, X.head(100))
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), model.predict_raw(X.head(100)), atol=1e-9)


def test_top_drivers_keep_only_positive_contributions_in_descending_order():
    contrib = pd.DataFrame(
        {"a": [0.5, -0.1], "b": [0.2, -0.3], "c": [0.9, 0.0], "d": [-0.4, 0.05], "bias": [-2.0, -2.0]},
        index=[10, 11],
    )
    X = pd.DataFrame({"a": [18.0, 1.0], "b": [3.0, 2.0], "c": ["monthly", "24m"], "d": [1.0, 0.25]}, index=[10, 11])
    drivers = top_drivers(contrib, X, k=3, prefix="churn_")
    first = drivers.loc[10]
    assert [first["churn_driver_1"], first["churn_driver_2"], first["churn_driver_3"]] == ["c", "a", "b"]
    assert [first["churn_driver_1_value"], first["churn_driver_2_value"]] == ["monthly", "18"]
    assert first["churn_driver_1_contribution"] == pytest.approx(0.9)
    second = drivers.loc[11]
    assert second["churn_driver_1"] == "d"
    assert second["churn_driver_1_value"] == "0.25"
    assert second["churn_driver_1_contribution"] == pytest.approx(0.05)
    assert pd.isna(second["churn_driver_2"]) and pd.isna(second["churn_driver_2_value"])
    assert np.isnan(second["churn_driver_2_contribution"])


def test_equal_contributions_are_ordered_by_feature_order():
    contrib = pd.DataFrame({"x": [0.3], "y": [0.3], "z": [0.3], "bias": [0.0]})
    X = pd.DataFrame({"x": [1.0], "y": [2.0], "z": [3.0]})
    drivers = top_drivers(contrib, X, k=2)
    assert list(drivers.loc[0, ["driver_1", "driver_2"]]) == ["x", "y"]


def test_importance_ranks_features_overall_and_per_segment():
    contrib = pd.DataFrame({"a": [1.0, -1.0, 0.1, 0.1], "b": [0.2, 0.2, -2.0, 2.0], "bias": 0.0})
    imp = shap_importance(contrib, pd.Series(["active", "active", "passive", "passive"]))
    assert list(imp["feature"]) == ["b", "a"]
    assert imp.set_index("feature").loc["a", "mean_abs_shap_active"] == pytest.approx(1.0)
    assert imp.set_index("feature").loc["b", "mean_abs_shap_passive"] == pytest.approx(2.0)
    assert imp.set_index("feature").loc["a", "rank_active"] == 1


def test_explain_stage_writes_plots_and_an_importance_table_for_both_models(features_dir, tmp_path):
    from model_fakes import small_config

    from omvald.explain.stage import run_explain
    from omvald.model.train import run_train

    cfg = small_config(n_estimators=30, explain={"sample_size": 300, "dependence_plots": 2})
    models_dir, reports_dir = tmp_path / "models", tmp_path / "reports"
    run_train(cfg, features_dir, models_dir)
    result = run_explain(cfg, features_dir, models_dir, reports_dir)

    assert result["n"]["churn"] == 300
    assert 0 < result["n"]["phase_out"] < 300  # churned rows are left out for the phase-out model
    for target in ("churn", "phase_out"):
        for kind in ("bar", "beeswarm", "segments"):
            assert (reports_dir / f"shap_{target}_{kind}.png").stat().st_size > 1000
        assert len(list(reports_dir.glob(f"shap_{target}_dependence_*.png"))) == 2
    assert result["skipped"] == {}
    table = pd.read_csv(reports_dir / "shap_importance.csv")
    assert set(table["model"]) == {"churn", "phase_out"}
    churn = table[table["model"] == "churn"].set_index("feature")
    assert churn.loc["price_shock_pct_3m", "rank"] <= 3  # the fixture's strongest driver
    assert {"mean_abs_shap_active", "mean_abs_shap_passive", "description"} <= set(table.columns)
    # The fake registry names no drivers: each feature is its own, with the same importance.
    by_driver = pd.read_csv(reports_dir / "shap_driver_importance.csv")
    assert set(by_driver["model"]) == {"churn", "phase_out"}
    churn_drivers = by_driver[by_driver["model"] == "churn"].set_index("driver")
    assert (churn_drivers.index == churn_drivers["features"]).all()
    pd.testing.assert_series_equal(
        churn_drivers["mean_abs_shap"], churn["mean_abs_shap"].rename_axis("driver"), check_exact=False
    )
    assert result["top_drivers"]["churn"] == list(churn.index[:5])
    assert not list(reports_dir.glob(".*"))  # no temporary files left behind


def test_explain_stage_explains_only_the_trained_models_when_phase_out_was_skipped(feature_frame, tmp_path, caplog):
    import logging
    import warnings

    from model_fakes import small_config, write_features

    from omvald.explain.stage import run_explain
    from omvald.model.artifacts import skipped_targets, trained_targets
    from omvald.model.train import run_train

    frame = feature_frame.assign(phase_out=np.nan, days_late_max_180d=np.nan)  # a snapshot: no phase-out labels
    features_dir = write_features(tmp_path / "features", frame)
    # dependence_plots 6: every feature, the all-missing one too
    cfg = small_config(n_estimators=30, explain={"sample_size": 300, "dependence_plots": 6})
    models_dir, reports_dir = tmp_path / "models", tmp_path / "reports"
    run_train(cfg, features_dir, models_dir)
    assert trained_targets(models_dir) == ["churn"] and "phase_out" in skipped_targets(models_dir)

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, "omvald.explain.stage"):
        warnings.simplefilter("always")
        result = run_explain(cfg, features_dir, models_dir, reports_dir)

    assert result["n"] == {"churn": 300} and set(result["top"]) == {"churn"}
    assert result["skipped"] == skipped_targets(models_dir)
    assert "phase_out model skipped" in caplog.text and result["skipped"]["phase_out"] in caplog.text
    assert not list(reports_dir.glob("shap_phase_out_*"))
    for kind in ("bar", "beeswarm", "segments"):
        assert (reports_dir / f"shap_churn_{kind}.png").stat().st_size > 1000
    # no dependence plot of a feature without a single value in the sample (it would be empty)
    assert "days_late_max_180d" not in result["top"]["churn"]
    dependence = {p.name for p in reports_dir.glob("shap_churn_dependence_*.png")}
    assert dependence == {f"shap_churn_dependence_{f}.png" for f in result["top"]["churn"]} and len(dependence) == 5
    assert not [w for w in caught if "All-NaN" in str(w.message)]
    table = pd.read_csv(reports_dir / "shap_importance.csv")
    assert set(table["model"]) == {"churn"}
    assert "days_late_max_180d" in set(table["feature"])  # still ranked, with no importance


def test_driver_importance_sums_a_drivers_contributions_per_customer_before_the_mean():
    # price_change = pct + amount: |0.3 + 0.2| = 0.5, |-0.1 + 0.1| = 0 (they cancel), 0.4, 0.3 -> mean 0.3
    contrib = pd.DataFrame(
        {
            "price_shock_pct_3m": [0.3, -0.1, 0.3, 0.1],
            "tenure_months": [0.1, -0.5, 0.2, -0.2],
            "price_shock_amount_3m": [0.2, 0.1, 0.1, 0.2],
            "bias": -3.0,
        }
    )
    drivers = {"price_shock_pct_3m": "price_change", "price_shock_amount_3m": "price_change"}
    imp = driver_importance(contrib, drivers, pd.Series(["active", "active", "passive", "passive"])).set_index("driver")
    assert list(imp.index) == ["price_change", "tenure_months"]  # a feature not in the map is its own driver
    assert imp.loc["price_change", "features"] == "price_shock_pct_3m;price_shock_amount_3m"
    assert imp.loc["price_change", "mean_abs_shap"] == pytest.approx(0.3)
    assert imp.loc["tenure_months", "mean_abs_shap"] == pytest.approx(0.25)
    assert imp.loc["price_change", "mean_abs_shap_active"] == pytest.approx(0.25)
    assert imp.loc["price_change", "mean_abs_shap_passive"] == pytest.approx(0.35)
    assert list(imp["rank"]) == [1, 2]
