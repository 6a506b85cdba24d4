"""The report's drift and monitoring sections show what drifted and what was flagged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from omvald.model.reference import Reference, build_reference
from omvald.reports.drift_section import drift_section, monitor_section
from omvald.scoring.drift import drift_report, skipped_report


def _drift() -> dict:
    frame = pd.DataFrame({"price_shock_pct_3m": [0.0] * 8 + [5.0, 10.0], "plan": ["basic"] * 6 + ["premium"] * 4})
    kinds = {"price_shock_pct_3m": "numeric", "plan": "categorical"}
    ref = Reference.from_json(
        build_reference(
            frame,
            kinds,
            {"price_shock_pct_3m": "price_change"},
            {"p_churn": np.linspace(0, 0.5, 10)},
            {
                "rows_from": "the test window",
                "as_of_dates": {"first": "2025-05-31", "last": "2025-07-31"},
                "n_rows": 10,
            },
        )  # fmt: skip
    )
    scoring = pd.DataFrame({"price_shock_pct_3m": [0.0] * 2 + [5.0] * 8, "plan": ["basic"] * 6 + ["premium"] * 4})
    return drift_report(ref, ref.count_features(scoring), {"p_churn": np.linspace(0, 0.5, 10)},
                        as_of=dt.date(2025, 9, 30), warn=0.1, alert=0.25)  # fmt: skip


def test_drift_section_names_the_drifted_driver_and_draws_both_distributions():
    html = drift_section(_drift(), None)
    assert "<b>1 of 2 features</b>" in html
    assert "price_change" in html and "price_shock_pct_3m" in html
    assert html.count("data:image/png;base64,") == 1  # one drifted feature, its training vs run bars
    assert "alert" in html and "2025-05-31" in html


def test_drift_section_says_why_drift_was_not_measured():
    html = drift_section(skipped_report("models/reference.json not found", dt.date(2025, 9, 30)), None)
    assert "Not available: Drift was not measured: models/reference.json not found" in html


def test_monitor_section_shows_the_flag_and_the_change_and_explains_how_to_get_one():
    cell = {"training": 0.78, "realized": 0.55, "change": -0.23}
    monitor = {
        "as_of": "2025-09-30", "outcomes_known_from": "2025-12-31", "input": "later", "n_with_outcome": 900,
        "n_scored": 910, "headline_rows": "every scored customer", "max_auc_drop": 0.05,
        "training_metrics_from": "metrics/*.json", "flags": ["churn: ROC AUC fell by 0.230"],
        "churn": {"vs_training": dict.fromkeys(("roc_auc", "pr_auc", "log_loss", "ece", "lift"), cell)},
    }  # fmt: skip
    html = monitor_section(monitor)
    assert "Flagged:</b> churn: ROC AUC fell by 0.230" in html
    assert "<td>0.780</td><td>0.550</td><td>-0.230</td>" in html
    assert "omvald monitor --scores" in monitor_section(None) and "class='na'" not in monitor_section(None)
