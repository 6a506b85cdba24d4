"""The run report page: every section present, nothing from the network, only aggregates."""

import io
import re

import pandas as pd
import pytest
from matplotlib.figure import Figure

from omvald.errors import ConfigError
from omvald.reports.gather import (
    ReportInputs,
    ReportPaths,
    TargetResults,
    metrics_table,
    read_target,
    segment_summary,
)
from omvald.reports.html import SECTIONS, render_report


def _summary(auc, n=1000, rate=0.1):
    return {
        "n_rows": n,
        "positive_rate": rate,
        "roc_auc": auc,
        "pr_auc": auc / 3,
        "brier": 0.08,
        "ece": 0.01,
        "lift": 3.2,
        "capture": 0.32,
    }


def _sliced(auc):
    return {
        "overall": _summary(auc),
        "segment": {"active": _summary(auc - 0.02, 400, 0.05), "passive": _summary(auc + 0.01, 600, 0.13)},
        "tenure": {"<12": _summary(auc, 300, 0.2)},
    }


# The evaluate stage's layout: metrics/churn.json has one block of models, phase_out.json two.
MODELS = {"models": {"lgbm": _sliced(0.81), "logistic": _sliced(0.74), "heuristic": _sliced(0.62)}}
METRICS = {"split_strategy": "time", "n_rows": 1000, **MODELS}
PHASE_OUT = {"split_strategy": "time", "if_stays": {"models": {"lgbm": _sliced(0.7)}}, "combined": MODELS}


def _png() -> bytes:
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _curves():
    shares = [0.0, 0.1, 0.5, 1.0]
    return {
        "gains": pd.DataFrame({"model": ["lgbm"] * 4, "share_targeted": shares, "share_captured": [0, 0.32, 0.8, 1]}),
        "calibration": pd.DataFrame(
            {"bin": [0, 1], "mean_predicted": [0.05, 0.15], "observed_rate": [0.04, 0.17], "n": [9, 1]}
        ),
    }


def _inputs(**overrides) -> ReportInputs:
    targets = {
        t: TargetResults(t, metrics_table(raw), _curves(), raw)
        for t, raw in (("churn", METRICS), ("phase_out", PHASE_OUT))
    }
    base = dict(
        generated_at="2026-11-28 10:00",
        targets=targets,
        explain_images={
            "shap_churn_beeswarm.png": _png(),
            "shap_phase_out_beeswarm.png": _png(),
            "shap_churn_dependence_tenure_months.png": _png(),
        },
        shap_importance=pd.DataFrame(
            {
                "model": ["churn", "churn", "phase_out"],
                "feature": ["price_shock_pct_3m", "tenure_months", "usage_trend_3m"],
                "description": ["invoice change vs 3 months earlier", "months as a customer", "usage trend"],
                "mean_abs_shap": [0.41, 0.22, 0.3],
                "rank": [1, 2, 1],
            }
        ),
        shap_driver_importance=pd.DataFrame(
            {
                "model": ["churn", "churn"],
                "driver": ["price_change", "tenure_months"],
                "features": ["price_shock_pct_3m;price_increases_12m", "tenure_months"],
                "mean_abs_shap": [0.47, 0.22],
                "rank": [1, 2],
            }
        ),
        segments=pd.DataFrame({"segment": ["active", "passive"], "customers": [700, 800], "churn_rate": [0.05, 0.13]}),
        nps_monthly=pd.DataFrame(
            {
                "month": ["2025-01", "2025-01"],
                "segment": ["all", "active"],
                "n": [40, 25],
                "nps": [12.5, 20.0],
                "low": [-10.0, -8.0],
                "high": [33.0, 45.0],
            }
        ),
        nps_overall={"nps": 12.5, "low": -10.0, "high": 33.0, "n": 40},
        nps_png=_png(),
        score_summary={
            "n_scored": 1500,
            "n_explained": 320,
            "n_contactable": 900,
            "revenue_at_risk": 123456.7,
            "by_tier_segment": {"high": {"active": {"customers": 40, "contactable": 30, "revenue_at_risk": 5000.0}}},
            "examples": ["C000123 Anna Svensson"],
        },
        profile={
            "rows": {"customers": 1500, "billing": 40000},
            "columns": {"customers": ["customer_id", "signup_date"]},
        },
        features_meta={
            "families_used": ["billing", "touchpoints"],
            "families_missing": {"usage": "no 'usage' column"},
            "as_of_dates": ["2024-01-31", "2025-06-30"],
            "horizon_days": 90,
        },
        split={
            "strategy": "time",
            "horizon_days": 90,
            "windows": [
                {"window": "test", "as_of_dates": 3, "first": "2025-04-30", "last": "2025-06-30", "rows": 4000}
            ],
        },
    )
    base.update(overrides)
    return ReportInputs(**base)


def test_report_has_every_section_and_embeds_images_as_data_uris():
    page = render_report(_inputs())
    for key, title in SECTIONS.items():
        assert f"<section id='{key}'>" in page
        assert title in page
    srcs = re.findall(r"src='([^']*)'", page)
    assert len(srcs) == 2 * 2 + 2 + 1  # gains+calibration per target, two beeswarms, the NPS chart
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "dependence" not in " ".join(re.findall(r"alt='([^']*)'", page))


def test_report_references_nothing_on_the_network():
    page = render_report(_inputs())
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "@import" not in page and "url(" not in page


def test_headline_shows_model_and_baselines_with_their_numbers():
    page = render_report(_inputs())
    assert "the kept model, LightGBM, ranks with ROC AUC 0.810 (best baseline, logistic: 0.740)" in page
    headline = page[page.index("id='headline'") : page.index("id='charts'")]
    assert headline.count("<td>lgbm</td>") == 6  # overall, active, passive x churn, phase-out (combined score)
    assert headline.count("<td>heuristic</td>") == 6
    assert "<td>passive</td>" in headline and "32.0%" in headline
    assert "did not churn: ROC AUC 0.700" in headline


def _diff(auc_diff: float, low: float | None, high: float | None, verdict: str) -> dict:
    return {"auc_diff": auc_diff, "low": low, "high": high, "verdict": verdict}


def _comparison(kept: str, best: str, auc: dict, versus: dict) -> dict:
    """A metrics file's ``comparison`` block (omvald.model.compare.comparison), written out."""
    return {
        "kept_model": kept,
        "kept_roc_auc": auc[kept],
        "lgbm_roc_auc": auc["lgbm"],
        "best_baseline": best,
        "best_baseline_roc_auc": auc[best],
        "lgbm_vs_best_baseline": versus["lgbm"][best],
        "kept_vs_best_baseline": versus.get(kept, {}).get(best),
        "versus": versus,
        "interval": {"level": 0.95, "draws": 200},
    }


def test_headline_names_the_kept_model_and_says_beat_tie_or_lose_with_the_interval():
    auc = {"lgbm": 0.70, "blend": 0.72, "logistic": 0.69, "bgnbd": 0.71}
    versus = {
        "lgbm": {"logistic": _diff(0.01, -0.004, 0.024, "tie"), "bgnbd": _diff(-0.01, -0.025, 0.005, "tie")},
        "blend": {"logistic": _diff(0.03, 0.012, 0.048, "beat"), "bgnbd": _diff(0.01, 0.002, 0.018, "beat")},
    }
    models = {name: _sliced(a) for name, a in auc.items()}
    churn = {"split_strategy": "time", "n_rows": 1000, "models": models, "kept_model": "blend",
             "comparison": _comparison("blend", "bgnbd", auc, versus),
             "baselines_unavailable": {"rfm_logistic": "no feature(s) purchases_365d"}}  # fmt: skip
    beaten = {"lgbm": 0.90, "logistic": 0.88}
    lost = {"lgbm": {"logistic": _diff(-0.02, -0.03, -0.01, "lose")}}
    phase_out = {"split_strategy": "time", "kept_model": "lgbm", "comparison": _comparison("lgbm", "logistic", beaten, lost),
                 "combined": {"models": {n: _sliced(a) for n, a in beaten.items()}},
                 "if_stays": {"models": {"lgbm": _sliced(0.85)}}}  # fmt: skip
    targets = {
        t: TargetResults(t, metrics_table(raw), _curves(), raw)
        for t, raw in (("churn", churn), ("phase_out", phase_out))
    }
    kept = {"churn": {"kept": "blend", "valid_auc": {"lgbm": 0.69, "logistic": 0.68, "blend": 0.7}}}
    page = render_report(_inputs(targets=targets, split={"strategy": "time", "windows": [], "kept": kept}))
    headline = page.split("id='headline'")[1].split("</section>")[0]
    assert (
        "<b>Churn</b>: the kept model, the blend of LightGBM and the logistic regression, ranks with ROC AUC 0.720 "
        "(best baseline, BG/NBD probability of no purchase: 0.710)" in headline
    )
    assert (
        "<b>LightGBM ties with the best baseline</b>, BG/NBD probability of no purchase, on the test window: ROC AUC "
        "difference -0.010 (95% interval -0.025 to +0.005) on the same test rows." in headline
    )
    assert "<b>The kept model (blend) beats the best baseline</b>, BG/NBD probability of no purchase" in headline
    assert "difference +0.010 (95% interval +0.002 to +0.018)" in headline
    assert "<b>LightGBM loses to the best baseline</b>, the logistic regression" in headline  # phase-out
    assert "<tr class='main'><td>blend</td><td>overall</td>" in headline  # the kept model leads the table
    assert (
        "lgbm against each baseline (ROC AUC difference on the same test rows): logistic +0.010 (95% interval "
        "-0.004 to +0.024): tie; bgnbd -0.010 (95% interval -0.025 to +0.005): tie." in headline
    )
    assert (
        "Kept model: <b>blend</b>, chosen on the validation window (ROC AUC lgbm 0.690, logistic 0.680, blend 0.700)"
        in headline
    )
    assert "No RFM logistic regression baseline (rfm_logistic): no feature(s) purchases_365d." in headline


def test_a_kept_logistic_regression_that_is_the_best_baseline_is_said_to_be_it():
    auc = {"lgbm": 0.70, "logistic": 0.74}
    versus = {"lgbm": {"logistic": _diff(-0.04, -0.06, -0.02, "lose")}, "logistic": {}}
    churn = {"split_strategy": "time", "models": {n: _sliced(a) for n, a in auc.items()}, "kept_model": "logistic",
             "comparison": _comparison("logistic", "logistic", auc, versus)}  # fmt: skip
    targets = {**_inputs().targets, "churn": TargetResults("churn", metrics_table(churn), _curves(), churn)}
    headline = render_report(_inputs(targets=targets)).split("id='headline'")[1].split("</section>")[0]
    assert "the kept model, the logistic regression, ranks with ROC AUC 0.740" in headline
    assert "<b>LightGBM loses to the best baseline</b>, the logistic regression, on the test window" in headline
    assert "The kept model is that baseline itself: it did best on the validation window." in headline


def test_without_bootstrap_draws_the_difference_is_given_without_an_interval():
    auc = {"lgbm": 0.80, "logistic": 0.74}
    versus = {"lgbm": {"logistic": _diff(0.06, None, None, "tie")}}
    churn = {"split_strategy": "time", "models": {n: _sliced(a) for n, a in auc.items()}, "kept_model": "lgbm",
             "comparison": _comparison("lgbm", "logistic", auc, versus)}  # fmt: skip
    targets = {**_inputs().targets, "churn": TargetResults("churn", metrics_table(churn), _curves(), churn)}
    headline = render_report(_inputs(targets=targets)).split("id='headline'")[1].split("</section>")[0]
    assert "difference +0.060 (no interval: evaluate.comparison_draws is 0)" in headline


def test_personal_values_in_free_form_inputs_never_reach_the_page():
    page = render_report(_inputs())
    assert "Anna" not in page and "C000123" not in page


def test_time_split_and_single_snapshot_are_said_plainly():
    timed = render_report(_inputs())
    assert "Out-of-time test" in timed and "later ones they never saw" in timed
    assert "Measured on the test window (as-of dates later than any used in training)" in timed
    window = {"window": "test", "as_of_dates": 1, "first": "2025-06-30", "last": "2025-06-30", "rows": 160}
    snapshot = render_report(_inputs(split={"strategy": "customer (single snapshot)", "windows": [window]}))
    split = snapshot.split("id='split'")[1]
    assert "single snapshot" in split and "not a later period" in split
    assert "only one labelled as-of date (2025-06-30)" in split and "held out of training" in split
    headline = snapshot.split("id='headline'")[1].split("</section>")[0]
    assert "Measured on held-out test customers at the single labelled as-of date only" in headline
    for time_words in ("later ones they never saw", "Out-of-time", "later than any used in training", "embargo"):
        assert time_words not in snapshot


SHORT_FITS = {
    "churn": {
        "holdout": {"n_trees": 41, "calibration": "sigmoid", "n_rows": 900, "as_of_dates": 2, "first": "2025-01-31",
                    "last": "2025-02-28"},
        "scoring": {"n_trees": 41, "calibration": "sigmoid", "n_rows": 2600, "as_of_dates": 6, "first": "2025-01-31",
                    "last": "2025-06-30", "refit": True, "calibration_folds": 3},
    }
}  # fmt: skip


def test_a_customer_split_across_dates_is_flagged_not_out_of_time_at_the_top_and_explained():
    split = {
        "strategy": "customer (not out of time)",
        "step": "customer",
        "out_of_time": False,
        "horizon_days": 180,
        "notes": ["no labelled as-of date ends its 180-day label window before a later labelled date"],
        "windows": [{"window": "test", "as_of_dates": 3, "first": "2025-01-31", "last": "2025-03-31", "rows": 150}],
        "fits": SHORT_FITS,
    }
    page = render_report(_inputs(split=split))
    headline = page.split("id='headline'")[1].split("</section>")[0]
    assert "Not an out-of-time test." in headline
    assert "held-out test customers at the same as-of dates the models learned from (not out of time)" in headline
    section = page.split("id='split'")[1]
    assert "Customer split, not out of time." in section and "180-day label window before" in section
    assert "refit on every labelled snapshot" in section
    assert "<td>scoring</td><td>41</td><td>sigmoid</td><td>2,600</td>" in section


def test_a_test_window_with_customer_validation_is_out_of_time_and_says_how_it_validated():
    split = {"strategy": "time test, customer validation", "step": "time_test", "out_of_time": True,
             "horizon_days": 90, "windows": [], "fits": SHORT_FITS}  # fmt: skip
    page = render_report(_inputs(split=split))
    assert "Not an out-of-time test" not in page
    section = page.split("id='split'")[1]
    assert "Out-of-time test, validation on held-out customers." in section
    assert "Measured on the test window (as-of dates later than any used in training)" in page


def test_missing_optional_inputs_render_as_not_available():
    page = render_report(
        _inputs(
            explain_images={},
            shap_importance=None,
            segments=None,
            nps_monthly=None,
            nps_overall=None,
            nps_png=None,
            score_summary=None,
            profile=None,
            features_meta=None,
            split=None,
            missing={"score_summary": "reports/score_summary.json not found (run `omvald score`)."},
        )
    )
    for key in SECTIONS:
        assert f"<section id='{key}'>" in page
    assert page.count("Not available") >= 7
    assert "run `omvald score`" in page


def test_metrics_table_flattens_nested_models_and_slices():
    table = metrics_table(METRICS)
    assert table["model"].unique().tolist() == ["lgbm", "logistic", "heuristic"]
    row = table[(table["model"] == "lgbm") & (table["slice"] == "segment:passive")].iloc[0]
    assert row["roc_auc"] == pytest.approx(0.82) and row["n_rows"] == 600
    assert len(table) == 3 * 4  # overall, active, passive, tenure <12


def test_phase_out_metrics_put_the_combined_score_first():
    table = metrics_table(PHASE_OUT)
    assert table["scope"].iloc[0] == "combined" and table["scope"].iloc[-1] == "if_stays"


def test_missing_metrics_file_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"churn\.json: metrics file not found"):
        read_target("churn", tmp_path, tmp_path)
    assert ReportPaths().metrics.name == "metrics"


def test_segment_summary_counts_customers_and_label_rates():
    training = pd.DataFrame(
        {
            "segment": ["active", "active", "passive", "passive", "passive"],
            "churn": [0, 1, 0, 0, None],
            "phase_out": [0.0, None, 1.0, 0.0, None],
        }
    )
    scoring = pd.DataFrame({"segment": ["active", "passive", "passive"], "monthly_revenue": [10.0, 20.0, 30.0]})
    out = segment_summary(training, scoring).set_index("segment")
    assert out.loc["passive", "customers"] == 2 and out.loc["passive", "monthly_revenue"] == 50.0
    assert out.loc["active", "churn_rate"] == 0.5 and out.loc["passive", "labelled_rows"] == 2
    assert out.loc["passive", "phase_out_rate"] == 0.5


def test_the_lgbm_model_comes_first_even_in_a_sorted_keys_file():
    sorted_keys = {
        "models": {name: _sliced(auc) for name, auc in (("heuristic", 0.6), ("lgbm", 0.8), ("logistic", 0.7))}
    }
    assert metrics_table(sorted_keys)["model"].unique().tolist() == ["lgbm", "logistic", "heuristic"]


def test_scoring_section_shows_the_summary_numbers_by_tier_and_segment():
    scoring = render_report(_inputs()).split("id='scoring'")[1].split("</section>")[0]
    assert "<b>1,500</b>customers scored" in scoring and "<b>123,457</b>revenue at risk" in scoring
    assert "<td>high</td><td>active</td><td>40</td><td>30</td><td>5,000</td>" in scoring


def test_drivers_table_lists_each_driver_with_its_features():
    page = render_report(_inputs())
    section = page[page.index("Top drivers") : page.index("Top features")]
    assert "price_change" in section and "price_shock_pct_3m, price_increases_12m" in section
    assert "0.470" in section
