"""Measuring a campaign (omvald.actions.effect*): the interval, the pooling of small groups, the labels used."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omvald.actions.effect import measure, proportion_difference, relative_reduction
from omvald.actions.effect_stage import run_effect
from omvald.config import config_from_dict
from omvald.errors import NotObservableError

Z = 1.959963984540054  # the 97.5% normal quantile


def wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def test_difference_interval_is_newcombes_hybrid_score_method():
    # control: 30 of 100 churned; contacted: 15 of 100. Newcombe (1998) method 10 combines the two Wilson
    # intervals (l1, u1) and (l2, u2): diff - sqrt((p1 - l1)^2 + (u2 - p2)^2), diff + sqrt((u1 - p1)^2 + (p2 - l2)^2)
    (l1, u1), (l2, u2) = wilson(30, 100), wilson(15, 100)
    low = 0.15 - math.sqrt((0.30 - l1) ** 2 + (u2 - 0.15) ** 2)
    high = 0.15 + math.sqrt((u1 - 0.30) ** 2 + (0.15 - l2) ** 2)
    diff, got_low, got_high = proportion_difference(30, 100, 15, 100, alpha=0.05)
    assert diff == pytest.approx(0.15)
    assert (got_low, got_high) == pytest.approx((low, high), abs=1e-12)
    assert 0.03 < got_low < 0.04 and 0.26 < got_high < 0.27  # 0.0345 .. 0.2627


def test_relative_reduction_is_one_minus_the_risk_ratio_and_needs_control_churns():
    rel, low, high = relative_reduction(30, 100, 15, 100, alpha=0.05)
    assert rel == pytest.approx(0.5)  # half the churn rate
    assert low < 0.5 < high <= 1.0
    assert relative_reduction(0, 100, 3, 100, alpha=0.05) == (None, None, None)


def outcomes(cells: dict[tuple[str, str, str], tuple[int, int, int, int]]) -> pd.DataFrame:
    """Rows from (contacted, their churns, control, their churns) per (action, segment, value tier)."""
    rows = []
    for (action, segment, tier), (n_t, x_t, n_c, x_c) in cells.items():
        for group, n, x in (("contact", n_t, x_t), ("control", n_c, x_c)):
            for i in range(n):
                rows.append((group, action, segment, tier, float(i < x), 0.0, 100.0, 2.0, 5.0))
    cols = ["group", "action", "segment", "value_tier", "churn", "phase_out", "value", "cost", "expected_saved_revenue"]
    return pd.DataFrame(rows, columns=cols)


def test_small_groups_are_pooled_upward_and_never_get_an_estimate_of_their_own():
    data = outcomes(
        {
            ("plan_review", "passive", "A"): (300, 30, 40, 8),  # enough on both sides (min 30)
            ("plan_review", "passive", "B"): (50, 5, 6, 1),  # too few controls: pooled into action x segment
            ("plan_review", "active", "A"): (20, 2, 3, 0),  # its action x segment is small too: into the action
            ("newsletter", "active", "C"): (25, 2, 3, 0),  # nothing above it is big enough: into everyone
        }
    )
    groups = {g["label"]: g for g in measure(data, min_group=30)}
    assert list(groups)[0] == "all"
    cell = groups["action=plan_review, segment=passive, value_tier=A"]
    assert cell["precise"] and cell["churn_rate_contact"] == pytest.approx(0.1) and cell["pooled_into"] is None
    assert cell["churn_reduction"] == pytest.approx(0.2 - 0.1)
    assert cell["saved_revenue"] == pytest.approx(0.1 * 300 * 100.0)  # reduction x the contacted customers' value
    small = groups["action=plan_review, segment=passive, value_tier=B"]
    assert small["pooled_into"] == "action=plan_review, segment=passive" and "churn_reduction" not in small
    assert groups["action=plan_review, segment=active, value_tier=A"]["pooled_into"] == "action=plan_review"
    assert groups["action=newsletter, segment=active, value_tier=C"]["pooled_into"] == "all"
    assert groups["action=plan_review, segment=passive"]["n_control"] == 46
    assert groups["all"]["n_contact"] == 395 and groups["all"]["precise"]


def test_everyone_is_estimated_even_when_few_and_says_it_is_not_precise():
    groups = measure(outcomes({("newsletter", "active", "C"): (10, 1, 5, 1)}), min_group=30)
    assert groups[0]["label"] == "all" and not groups[0]["precise"]
    assert groups[0]["churn_reduction"] == pytest.approx(0.2 - 0.1)


# --------------------------------------------------------------------------- the stage on a tiny export


def write_export(folder: Path, ends: str) -> Path:
    """Six customers billed 100 a month from 2025-01 to ``ends``; C2 and C5 churn on 2026-02-15, C6 on 2025-11-30."""
    folder.mkdir(parents=True)
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(1, 7)],
            "signup_date": "2025-01-01",
            "churn_date": [None, "2026-02-15", None, None, "2026-02-15", "2025-11-30"],
        }
    )
    customers.to_csv(folder / "customers.csv", index=False)
    months = pd.date_range("2025-01-31", ends, freq="ME")
    rows = [
        (c, d.date().isoformat(), 100.0)
        for c, churn in zip(customers["customer_id"], customers["churn_date"], strict=True)
        for d in months
        if not isinstance(churn, str) or d.date() < dt.date.fromisoformat(churn)
    ]
    pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"]).to_csv(folder / "billing.csv", index=False)
    (folder / "touchpoints.csv").write_text("customer_id,timestamp,channel,event\n")
    return folder


def write_list(path: Path) -> Path:
    pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6", "C9"],
            "as_of": "2025-12-31",
            "group": ["contact", "contact", "contact", "control", "control", "control", "contact"],
            "action": "plan_review",
            "segment": "passive",
            "value_tier": "A",
            "value": 1200.0,
            "cost": 2.0,
            "expected_saved_revenue": 10.0,
        }
    ).to_csv(path, index=False)
    return path


CFG = config_from_dict({"features": {"horizon_days": 92}, "effect": {"min_group_customers": 1}})


def test_outcomes_use_the_training_labels_and_leave_out_who_was_not_a_customer(tmp_path):
    export = write_export(tmp_path / "newer", ends="2026-04-30")
    result = run_effect(CFG, write_list(tmp_path / "list.csv"), export, tmp_path / "effect.json", run_json=None)
    written = json.loads((tmp_path / "effect.json").read_text())
    assert written["counts"] == {"listed": 7, "measured": 5, "missing_from_export": 1, "not_a_customer_at_as_of": 1}
    overall = result.overall
    # churn in (2025-12-31, 2026-04-02]: contact C1, C2, C3 -> 1 of 3; control C4, C5 -> 1 of 2
    assert (overall["churn_rate_contact"], overall["churn_rate_control"]) == pytest.approx((1 / 3, 1 / 2))
    assert overall["churn_reduction"] == pytest.approx(1 / 2 - 1 / 3)
    assert written["observed_until"] == "2026-04-02"


def test_before_the_horizon_has_passed_it_is_not_yet_observable_and_nothing_is_written(tmp_path):
    export = write_export(tmp_path / "newer", ends="2026-02-28")
    with pytest.raises(NotObservableError, match="not yet observable.*2026-04-02"):
        run_effect(CFG, write_list(tmp_path / "list.csv"), export, tmp_path / "effect.json", run_json=None)
    assert not (tmp_path / "effect.json").exists()


def test_null_effect_intervals_cover_zero_at_about_the_nominal_rate():
    # 400 random campaigns with no effect (churn 10% on both sides, 300 contacted, 40 control): the interval
    # must cover 0 in about 95% of them; the binomial spread of 400 coin flips at 95% is +-2.2 points.
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(400):
        x_t, x_c = rng.binomial(300, 0.1), rng.binomial(40, 0.1)
        _, low, high = proportion_difference(int(x_c), 40, int(x_t), 300, alpha=0.05)
        covered += low <= 0 <= high
    assert covered / 400 >= 0.92
