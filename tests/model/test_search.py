"""The budgeted LightGBM search: 0 trials = the fixed settings, trial 0 = the fixed settings, same seed = same trials."""

from __future__ import annotations

import numpy as np
import pytest
from model_fakes import FEATURES, SMALL_LGBM, make_feature_frame

from omvald.config import SearchConfig
from omvald.model.estimators import LGBMChurnModel
from omvald.model.search import SPACE, search_lgbm, search_sample

NAMES = [n for n, _, _ in FEATURES]
FIXED = SMALL_LGBM
TINY = SearchConfig(n_trials=3, timeout_seconds=600, max_trees=40)  # a tiny budget: the suite stays short


@pytest.fixture(scope="module")
def windows():
    frame = make_feature_frame(n_customers=250, n_dates=8)
    dates = sorted(frame["as_of"].unique())
    train, valid, test = (frame[frame["as_of"].isin(d)] for d in (dates[:5], dates[5:7], dates[7:]))
    args = (train[NAMES], train["churn"], valid[NAMES], valid["churn"], valid["customer_id"].to_numpy())
    return args, test[NAMES], train["customer_id"].to_numpy()


def test_zero_trials_fit_the_fixed_settings_and_record_no_search(windows):
    args, test, _ = windows
    result = search_lgbm(FIXED, SearchConfig(n_trials=0), *args)
    fixed = LGBMChurnModel(**FIXED).fit(*args[:4], valid_groups=args[4])
    np.testing.assert_array_equal(result.model.predict_proba(test), fixed.predict_proba(test))
    assert result.trials == [] and result.stopped_by == "no search" and result.record()["best_trial"] is None


def test_the_first_trial_is_the_fixed_settings(windows):
    args, test, _ = windows
    result = search_lgbm(FIXED, SearchConfig(n_trials=1, max_trees=40), *args)
    (trial,) = result.trials
    assert trial.fixed and trial.params == {**{k: FIXED[k] for k in SPACE}, "n_estimators": 30}
    fixed = LGBMChurnModel(**FIXED).fit(*args[:4], valid_groups=args[4])
    np.testing.assert_array_equal(result.model.predict_proba(test), fixed.predict_proba(test))
    assert result.stopped_by == "n_trials"


def test_the_same_seed_gives_the_same_trials_and_the_best_one_is_kept(windows):
    args, test, _ = windows
    first, second = search_lgbm(FIXED, TINY, *args), search_lgbm(FIXED, TINY, *args)
    assert [(t.params, t.valid_auc, t.n_trees) for t in first.trials] == [
        (t.params, t.valid_auc, t.n_trees) for t in second.trials
    ]
    assert len(first.trials) == 3 and not any(t.fixed for t in first.trials[1:])
    for trial in first.trials[1:]:  # searched trials stay inside the space and get the search's tree cap
        assert trial.params["n_estimators"] == 40
        assert SPACE["num_leaves"][0] <= trial.params["num_leaves"] <= SPACE["num_leaves"][1]
    aucs = [t.valid_auc for t in first.trials]
    assert first.best == int(np.argmax(aucs)) and first.record()["best_valid_auc"] == round(max(aucs), 6)
    np.testing.assert_array_equal(first.model.predict_proba(test), second.model.predict_proba(test))
    other_seed = search_lgbm({**FIXED, "seed": 6}, TINY, *args)
    assert [t.params for t in other_seed.trials[1:]] != [t.params for t in first.trials[1:]]


def test_the_search_sample_is_whole_customers_by_stable_hash_and_none_when_small():
    ids = np.repeat([f"C{i:03d}" for i in range(100)], 3)  # 100 customers x 3 rows
    mask = search_sample(ids, len(ids), 60)
    assert mask.sum() == 60  # 20 whole customers
    assert all(len(set(mask[ids == c])) == 1 for c in ids[::3])
    np.testing.assert_array_equal(mask, search_sample(ids[::-1], len(ids), 60)[::-1])  # row order does not matter
    assert search_sample(ids, len(ids), 300) is None and search_sample(ids, len(ids), 0) is None


def test_trials_on_a_sample_and_the_chosen_settings_fitted_on_every_row(windows):
    args, test, train_ids = windows
    budget = SearchConfig(n_trials=1, max_rows=300)  # trial 0 (the fixed settings) on ~300 of the rows
    result = search_lgbm(FIXED, budget, *args, train_groups=train_ids)
    assert result.search_rows < len(args[0]) / 3 and result.record()["search_rows"] == result.search_rows
    fixed = LGBMChurnModel(**FIXED).fit(*args[:4], valid_groups=args[4])  # the same settings on every row
    np.testing.assert_array_equal(result.model.predict_proba(test), fixed.predict_proba(test))


def test_trials_are_judged_on_a_sample_of_whole_validation_customers(windows):
    from sklearn.metrics import roc_auc_score

    args, _, train_ids = windows
    X, y, X_valid, y_valid, valid_ids = args
    result = search_lgbm(FIXED, SearchConfig(n_trials=1, max_rows=300), *args, train_groups=train_ids)
    train_rows, judged = search_sample(train_ids, len(X), 300), search_sample(valid_ids, len(y_valid), 300)
    assert judged.sum() == 300 and len(y_valid) == 500  # 150 whole customers of 250, 2 dates each
    # trial 0 = the fixed settings, fitted on the training sample and early-stopped and scored on the judged rows
    alone = LGBMChurnModel(**FIXED).fit(
        X[train_rows],
        y.to_numpy()[train_rows],
        X_valid[judged],
        y_valid.to_numpy()[judged],
        valid_groups=valid_ids[judged],
    )
    expected = roc_auc_score(y_valid.to_numpy()[judged], alone.predict_raw(X_valid[judged]))
    assert result.trials[0].valid_auc == pytest.approx(expected, abs=1e-12)
