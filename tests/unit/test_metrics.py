"""Metric functions against hand-computed values on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from omvald.model import metrics as m

Y = [1, 0, 1, 0]
P = [0.9, 0.8, 0.3, 0.1]


def test_ece_weights_each_bin_gap_by_its_share_of_rows():
    # bin [0, .5): mean p .2 vs rate .5 -> .3; bin [.5, 1]: .85 vs .5 -> .35; each holds half the rows.
    assert m.expected_calibration_error(Y, P, bins=2) == pytest.approx(0.5 * 0.3 + 0.5 * 0.35)


def test_ece_is_zero_for_a_perfectly_calibrated_score_and_p_equal_one_lands_in_the_last_bin():
    assert m.expected_calibration_error([1, 1], [1.0, 1.0], bins=10) == 0.0
    assert m.expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], bins=10) == 0.0


def test_lift_and_capture_in_the_top_quarter_and_half():
    assert m.lift_and_capture(Y, P, 0.25) == (pytest.approx(2.0), pytest.approx(0.5))  # top 1 row: a hit
    assert m.lift_and_capture(Y, P, 0.5) == (pytest.approx(1.0), pytest.approx(0.5))  # top 2: 1 hit


def test_top_k_rounds_up_and_keeps_at_least_one_row():
    assert m.top_k(10, 0.1) == 1
    assert m.top_k(11, 0.1) == 2
    assert m.top_k(3, 0.01) == 1


def test_summary_leaves_out_auc_when_a_slice_has_one_class():
    out = m.summary([0, 0, 0], [0.1, 0.2, 0.3])
    assert "roc_auc" not in out and out["n_rows"] == 3 and out["positive_rate"] == 0.0
    assert all(np.isfinite(v) for v in out.values())


def test_summary_values_on_the_tiny_example():
    out = m.summary(Y, P, bins=2, top_fraction=0.25)
    assert out["roc_auc"] == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered right
    assert out["brier"] == pytest.approx(((0.1**2) + (0.8**2) + (0.7**2) + (0.1**2)) / 4)
    assert out["lift"] == pytest.approx(2.0)


def test_gains_start_at_zero_and_end_capturing_everything():
    g = m.gains_points(Y, P, n_points=4)
    assert g["share_targeted"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert g["share_captured"].tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


def test_calibration_points_report_each_non_empty_bin():
    c = m.calibration_points(Y, P, bins=2)
    assert c["mean_predicted"].tolist() == pytest.approx([0.2, 0.85])
    assert c["observed_rate"].tolist() == [0.5, 0.5]
    assert c["n"].tolist() == [2, 2]


def test_sliced_summary_has_segments_and_tenure_cohorts():
    out = m.sliced_summary(Y, P, ["active", "passive", "active", "passive"], [3, 13, 30, 40], bins=2)
    assert set(out["segment"]) == {"active", "passive"}
    assert set(out["tenure"]) == {"<12", "12-24", "24+"}
    assert out["segment"]["active"]["n_rows"] == 2
