"""Drift numbers on hand-made tables: reference bins, PSI (empty bins included), the tests, drift by driver."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from omvald.model.reference import Binning, Reference, bin_counts, build_reference, numeric_edges, top_categories
from omvald.scoring.drift import by_driver, chi2_homogeneity, drift_report, ks_binned, level, psi


def test_psi_matches_the_hand_computed_table_with_empty_bins():
    # bin        reference  scoring   e       a       (a - e) ln(a / e)
    # 1          50         25        0.5     0.25    -0.25 x ln(0.5)         = 0.1732868
    # 2          30         25        0.3     0.25    -0.05 x ln(0.25 / 0.3)  = 0.0091161
    # 3          20         40        0.2     0.4      0.2  x ln(2)           = 0.1386294
    # 4           0         10        1e-4    0.1      0.0999 x ln(1000)      = 0.6900848  (empty in the reference)
    # 5           0          0        1e-4    1e-4     0                                  (empty in both)
    #                                                                   PSI  = 1.0111171
    assert psi(np.array([50, 30, 20, 0, 0]), np.array([25, 25, 40, 10, 0])) == pytest.approx(1.0111171, abs=1e-7)


def test_psi_of_a_bin_emptied_at_scoring_uses_the_same_floor():
    # reference 90 / 10, scoring 100 / 0: (1 - 0.9) ln(1 / 0.9) + (1e-4 - 0.1) ln(1e-4 / 0.1)
    expected = 0.1 * math.log(1 / 0.9) + (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert expected == pytest.approx(0.7006, abs=1e-4)
    assert psi(np.array([90, 10]), np.array([100, 0])) == pytest.approx(expected, abs=1e-12)


def test_psi_is_zero_for_equal_shares_and_none_without_rows():
    assert psi(np.array([10, 20, 0]), np.array([100, 200, 0])) == 0.0
    assert psi(np.array([10, 20]), np.array([0, 0])) is None


def test_levels_are_strictly_above_the_thresholds():
    assert [level(v, 0.1, 0.25) for v in (0.05, 0.1, 0.1001, 0.25, 0.26, None)] == [
        "ok", "ok", "warn", "warn", "alert", "ok",
    ]  # fmt: skip


def test_binned_ks_is_the_largest_gap_between_cumulative_shares():
    # cumulative shares 0.5, 0.8, 1.0 vs 0.25, 0.5, 1.0: gaps 0.25, 0.3, 0
    d, p = ks_binned(np.array([50, 30, 20]), np.array([25, 25, 50]))
    assert d == pytest.approx(0.3)
    # n_e = 100 x 100 / 200 = 50; P(K > sqrt(50) x 0.3 = 2.1213) = 2 sum (-1)^(k-1) exp(-2 k^2 x^2)
    x = math.sqrt(50) * 0.3
    assert p == pytest.approx(2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 50)), rel=1e-9)


def test_chi2_drops_bins_empty_on_both_sides():
    # 2 x 2 table [[30, 70], [50, 50]]: expected 40 / 60 per row; chi2 = sum (o - e)^2 / e
    stat, p = chi2_homogeneity(np.array([30, 70, 0]), np.array([50, 50, 0]))
    assert stat == pytest.approx(100 / 40 * 2 + 100 / 60 * 2)
    assert p == pytest.approx(math.erfc(math.sqrt(stat / 2)))  # chi-square with 1 degree of freedom
    assert chi2_homogeneity(np.array([5, 0]), np.array([7, 0])) == (0.0, 1.0)


def test_numeric_edges_give_zero_heavy_values_one_bin_for_the_zeros():
    values = [0, 0, 0, 0, 0, 0, 1, 2, 3, 4, np.nan]
    assert numeric_edges(values) == pytest.approx((0.0, 1.0, 2.0, 3.0), abs=1e-8)  # each a hair above the value
    binning = Binning("x", "numeric", numeric_edges(values))
    # up to 0, (0, 1], (1, 2], (2, 3], above 3, missing
    assert bin_counts(values, binning).tolist() == [6, 1, 1, 1, 1, 1]
    assert binning.labels == ["up to 0", "0 to 1", "1 to 2", "2 to 3", "above 3", "missing"]


def test_a_flag_gets_two_bins_and_values_beyond_training_land_in_the_empty_top_bin():
    edges = numeric_edges([0] * 7 + [1] * 3)
    assert edges == pytest.approx((0.0, 1.0), abs=1e-8)
    assert bin_counts([0, 1, 1, 5, None], Binning("flag", "numeric", edges)).tolist() == [1, 2, 1, 1]


def test_one_value_computed_two_ways_stays_in_one_bin():
    # 1 / 1.01 - 1 in % from two prices: equal but for the last bits (the default business's loyalty gap)
    a, b = -0.9900990099010021, -0.990099009900991
    training = [a] * 30 + [b] * 30 + [0.0] * 20 + [5.0] * 20
    binning = Binning("gap", "numeric", numeric_edges(training))
    assert len(binning.edges) == 3  # the cluster, 0 and 5
    assert bin_counts(training, binning).tolist() == [60, 20, 20, 0, 0]
    assert bin_counts([a, b, -0.99009900990099], binning).tolist() == [3, 0, 0, 0, 0]  # noise on either side


def test_categories_keep_the_most_frequent_levels_and_pool_rare_and_unseen_ones():
    train = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] + [None])
    cats = top_categories(train, max_categories=2)
    assert cats == ("a", "b")  # b and c tie on 3: alphabetical
    binning = Binning("plan", "categorical", categories=cats)
    assert bin_counts(train, binning).tolist() == [5, 3, 4, 1]  # a, b, other (c x3, d), missing
    assert bin_counts(pd.Series(["a", "new", None, "b"], dtype="str"), binning).tolist() == [1, 1, 1, 1]


def _reference() -> Reference:
    frame = pd.DataFrame(
        {
            "price_shock_pct_3m": [0.0] * 8 + [5.0, 10.0],
            "price_shock_money_3m": [0.0] * 8 + [2.0, 4.0],
            "tenure_months": np.arange(10, dtype=float),
            "plan": ["basic"] * 6 + ["premium"] * 4,
        }
    )
    kinds = {"price_shock_pct_3m": "numeric", "price_shock_money_3m": "numeric", "tenure_months": "numeric", "plan": "categorical"}  # fmt: skip
    drivers = {"price_shock_pct_3m": "price_change", "price_shock_money_3m": "price_change"}
    data = build_reference(frame, kinds, drivers, {"p_churn": np.linspace(0.01, 0.5, 10)}, {"n_rows": 10}, bins=5)
    return Reference.from_json(data)


def test_drift_by_driver_is_its_most_drifted_feature():
    ref = _reference()
    scoring = pd.DataFrame(
        {
            "price_shock_pct_3m": [0.0] * 2 + [5.0] * 8,  # a price rise for most customers
            "price_shock_money_3m": [0.0] * 8 + [2.0, 4.0],  # unchanged
            "tenure_months": np.arange(10, dtype=float),
            "plan": ["basic"] * 6 + ["premium"] * 4,
        }
    )
    report = drift_report(
        ref, ref.count_features(scoring), {"p_churn": np.linspace(0.01, 0.5, 10)},
        as_of=dt.date(2026, 1, 31), warn=0.1, alert=0.25,
    )  # fmt: skip
    psis = {f["name"]: f["psi"] for f in report["features"]}
    assert psis["price_shock_money_3m"] == psis["tenure_months"] == psis["plan"] == 0.0
    assert psis["price_shock_pct_3m"] > 0.25
    top = report["drivers"][0]
    assert (top["driver"], top["feature"], top["psi"], top["level"], top["n_above_warn"]) == (
        "price_change", "price_shock_pct_3m", psis["price_shock_pct_3m"], "alert", 1,
    )  # fmt: skip
    assert top["features"] == ["price_shock_pct_3m", "price_shock_money_3m"]
    assert top["psi_sum"] == pytest.approx(psis["price_shock_pct_3m"] + psis["price_shock_money_3m"])
    assert report["above_warn"] == {"features": ["price_shock_pct_3m"], "drivers": ["price_change"], "scores": []}
    assert report["n_scored"] == 10
    assert {d["driver"] for d in report["drivers"]} == {"price_change", "tenure_months", "plan"}


def test_counts_of_buckets_add_up_to_the_counts_of_the_whole():
    ref = _reference()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "price_shock_pct_3m": rng.choice([0.0, 5.0, 12.0, np.nan], 200),
            "price_shock_money_3m": rng.normal(1, 2, 200),
            "tenure_months": rng.integers(0, 20, 200).astype(float),
            "plan": rng.choice(["basic", "premium", "lite"], 200),
        }
    )
    parts = [ref.count_features(frame.iloc[i : i + 37]) for i in range(0, 200, 37)]
    assert np.array_equal(np.sum(parts, axis=0), ref.count_features(frame))


def test_a_feature_the_scoring_frame_lacks_counts_as_missing():
    ref = _reference()
    counts = ref.count_features(pd.DataFrame({"tenure_months": [1.0, 2.0, 3.0]}))
    plan = ref.feature_slices["plan"]
    assert counts[plan].tolist() == [0, 0, 0, 3]


def test_drivers_without_a_psi_rank_last():
    records = [
        {"name": "a", "driver": "x", "psi": None, "level": "ok"},
        {"name": "b", "driver": "y", "psi": 0.02, "level": "ok"},
    ]
    assert [d["driver"] for d in by_driver(records, 0.1)] == ["y", "x"]
