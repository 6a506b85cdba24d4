"""Leakage guard: the pipeline learns real signal and nothing from shuffled labels."""

from __future__ import annotations

from model_fakes import make_feature_frame, small_config, write_features

from omvald.model.evaluate import run_evaluate
from omvald.model.train import run_train


def _test_auc(tmp_path, shuffle: bool) -> float:
    frame = make_feature_frame(n_customers=2500, n_dates=10, seed=11, shuffle_labels=shuffle)
    features = write_features(tmp_path / "features", frame)
    cfg = small_config()
    run_train(cfg, features, tmp_path / "models")
    result = run_evaluate(cfg, features, tmp_path / "models", tmp_path / "metrics", tmp_path / "plots")
    return result["churn"]["models"]["lgbm"]["overall"]["roc_auc"]


def test_true_labels_give_a_high_out_of_time_auc(tmp_path):
    assert _test_auc(tmp_path, shuffle=False) > 0.75


def test_shuffled_labels_collapse_out_of_time_auc_to_chance(tmp_path):
    assert abs(_test_auc(tmp_path, shuffle=True) - 0.5) < 0.05
