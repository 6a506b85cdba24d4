"""Beat, tie or lose on the test window: paired ROC AUC differences with a customer-bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from omvald.model.compare import comparison, paired_auc_differences, weighted_auc


def _rank(scores: np.ndarray) -> tuple[np.ndarray, int]:
    levels, rank = np.unique(scores, return_inverse=True)
    return rank, len(levels)


def test_weighted_auc_equals_scikit_learn_with_ties_and_row_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500).astype(float)
    scores = np.round(rng.normal(y, 1.0), 1)  # rounded: many ties, which count one half
    weights = rng.poisson(1.0, 500).astype(float)
    assert weighted_auc(*_rank(scores), y, np.ones(500)) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    expected = roc_auc_score(y, scores, sample_weight=weights)
    assert weighted_auc(*_rank(scores), y, weights) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(weighted_auc(*_rank(scores), y, (y == 0).astype(float)))  # no positive weight: undefined


def test_the_difference_is_of_the_two_aucs_on_the_same_rows():
    # positives 4, 3 above negatives 2, 1: AUC 1; the other model puts one positive (1) below both negatives: 0.5
    y = np.array([1, 1, 0, 0])
    scores = {"a": np.array([4.0, 3.0, 2.0, 1.0]), "b": np.array([4.0, 1.0, 2.0, 3.0])}
    (diff,) = paired_auc_differences(y, scores, ["A", "B", "C", "D"], [("a", "b")], draws=0, seed=0).values()
    assert diff == {"auc_diff": 0.5, "low": None, "high": None, "verdict": "tie", "outcome": 0}  # no draws: no claim


def test_a_model_that_ranks_well_beats_one_that_guesses_and_the_guess_loses():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    scores = {"good": y + rng.normal(0, 0.5, 400), "guess": rng.random(400)}
    ids = np.arange(400)
    out = paired_auc_differences(y, scores, ids, [("good", "guess"), ("guess", "good")], draws=200, seed=3)
    good = out[("good", "guess")]
    assert good["verdict"] == "beat" and good["outcome"] == 1 and 0 < good["low"] < good["auc_diff"] < good["high"]
    assert out[("guess", "good")]["verdict"] == "lose" and out[("guess", "good")]["high"] < 0


def test_identical_scores_tie_with_a_zero_width_interval():
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.2, 0.4, 0.5, 0.1, 0.8])
    (diff,) = paired_auc_differences(y, {"a": s, "b": s.copy()}, range(6), [("a", "b")], draws=50, seed=0).values()
    assert diff["auc_diff"] == 0 and diff["low"] == 0 and diff["high"] == 0 and diff["verdict"] == "tie"


def test_a_customers_rows_move_together_in_the_bootstrap():
    rng = np.random.default_rng(2)
    n = 300
    y = rng.integers(0, 2, n)
    scores = {"a": y + rng.normal(0, 1.0, n), "b": y + rng.normal(0, 1.2, n)}
    once = paired_auc_differences(y, scores, np.arange(n), [("a", "b")], draws=300, seed=7)[("a", "b")]
    # each customer's row four times (four test dates alike): the same customers, so exactly the same interval
    four = {k: np.tile(v, 4) for k, v in scores.items()}
    same = paired_auc_differences(np.tile(y, 4), four, np.tile(np.arange(n), 4), [("a", "b")], 300, 7)[("a", "b")]
    assert (same["low"], same["high"]) == pytest.approx((once["low"], once["high"]), abs=1e-12)
    # counted as four times as many customers, the copies would fake a twice narrower interval
    rows = paired_auc_differences(np.tile(y, 4), four, np.arange(4 * n), [("a", "b")], 300, 7)[("a", "b")]
    assert rows["high"] - rows["low"] < 0.7 * (once["high"] - once["low"])


def test_the_comparison_judges_lightgbm_and_the_kept_model_against_the_best_baseline():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 600)
    scores = {
        "lgbm": y + rng.normal(0, 0.8, 600),
        "blend": y + rng.normal(0, 0.4, 600),
        "logistic": y + rng.normal(0, 1.5, 600),
        "bgnbd": y + rng.normal(0, 1.0, 600),
    }
    auc = {name: roc_auc_score(y, s) for name, s in scores.items()}
    ids = np.arange(600)
    cmp = comparison(y, scores, ids, auc, "blend", draws=100, seed=0)
    assert cmp["best_baseline"] == "bgnbd" and cmp["best_baseline_roc_auc"] == auc["bgnbd"]
    assert set(cmp["versus"]) == {"lgbm", "blend"} and set(cmp["versus"]["lgbm"]) == {"logistic", "bgnbd"}
    assert cmp["lgbm_vs_best_baseline"] is cmp["versus"]["lgbm"]["bgnbd"]
    assert cmp["lgbm_vs_best_baseline"]["auc_diff"] == pytest.approx(auc["lgbm"] - auc["bgnbd"])
    assert cmp["kept_vs_best_baseline"]["verdict"] == "beat"
    assert cmp == comparison(y, scores, ids, auc, "blend", draws=100, seed=0)  # seeded: the same interval
    # a kept logistic regression stays a baseline: it is not judged against itself
    kept_logistic = comparison(y, scores, ids, {**auc, "logistic": 0.99}, "logistic", draws=20, seed=0)
    assert kept_logistic["best_baseline"] == "logistic" and kept_logistic["kept_vs_best_baseline"] is None
    assert set(kept_logistic["versus"]["logistic"]) == {"bgnbd"}
    no_baseline = comparison(y, {"lgbm": scores["lgbm"]}, ids, {"lgbm": auc["lgbm"]}, "lgbm", draws=20, seed=0)
    assert no_baseline["best_baseline"] is None and no_baseline["lgbm_vs_best_baseline"] is None
