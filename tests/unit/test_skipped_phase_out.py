"""A phase-out model the train stage skipped: the report says why instead of failing or showing empty charts."""

from __future__ import annotations

import json
import re

import pandas as pd
from test_report_html import METRICS, _curves, _inputs, _png

from omvald.reports.gather import ReportPaths, TargetResults, gather, metrics_table, read_target, segment_summary
from omvald.reports.html import render_report

REASON = (
    "no phase-out labels: billing is observed until 2025-07-31 (latest invoice 2025-06-30 + one 31-day billing "
    "period), but the 90-day horizon of every labelled as-of date ends later, so a fall in billing cannot be seen."
)
SNAPSHOT = "customer (single snapshot)"
# metrics/phase_out.json as the evaluate stage writes it for a skipped model
SKIPPED = {"split_strategy": SNAPSHOT, "skipped": True, "reason": REASON, "test_dates": ["2025-06-30"]}
CURVE_HEADERS = {
    "gains": "model,share_targeted,share_captured",
    "calibration": "model,bin,mean_predicted,observed_rate,n",
    "roc": "model,fpr,tpr",
    "pr": "model,recall,precision",
}


def _skipped_inputs(**overrides):
    churn = {**METRICS, "split_strategy": SNAPSHOT}
    targets = {
        "churn": TargetResults("churn", metrics_table(churn), _curves(), churn),
        "phase_out": TargetResults("phase_out", metrics_table({}), {}, SKIPPED, skipped=REASON),
    }
    base = dict(
        targets=targets,
        explain_images={"shap_churn_beeswarm.png": _png(), "shap_churn_segments.png": _png()},
        shap_importance=pd.DataFrame(
            {"model": ["churn"], "feature": ["tenure_months"], "mean_abs_shap": [0.2], "rank": [1]}
        ),
        split={
            "strategy": SNAPSHOT,
            "horizon_days": 90,
            "windows": [{"window": "test", "as_of_dates": 1, "first": "2025-06-30", "last": "2025-06-30"}],
        },
    )
    base.update(overrides)
    return _inputs(**base)


def _section(page: str, key: str) -> str:
    return page.split(f"<section id='{key}'>")[1].split("</section>")[0]


def test_read_target_returns_the_skip_reason_instead_of_raising(tmp_path):
    (tmp_path / "phase_out.json").write_text(json.dumps(SKIPPED))
    for kind, header in CURVE_HEADERS.items():  # header-only curve files, as evaluate writes them
        (tmp_path / f"{kind}_phase_out.csv").write_text(header + "\n")
    res = read_target("phase_out", tmp_path, tmp_path)
    assert res.skipped == REASON
    assert res.metrics.empty and list(res.metrics.columns)[:3] == ["scope", "model", "slice"]
    assert res.curves == {}
    assert res.raw["split_strategy"] == SNAPSHOT


def test_a_trained_model_has_no_skip_reason(tmp_path):
    (tmp_path / "churn.json").write_text(json.dumps({**METRICS, "skipped": False}))
    res = read_target("churn", tmp_path, tmp_path)
    assert res.skipped is None and not res.metrics.empty


def test_skipped_phase_out_renders_the_reason_where_its_results_would_be():
    page = render_report(_skipped_inputs())
    note = f"Phase-out model skipped: {REASON}"
    for key in ("headline", "charts", "drivers", "segments"):
        assert note in _section(page, key), key
    assert "Phase-out</b>: no model in this run" in _section(page, "headline")
    headline = _section(page, "headline")
    assert headline.count("<td>lgbm</td>") == 3  # churn only: overall, active, passive
    assert "did not churn" not in headline


def test_skipped_phase_out_shows_no_phase_out_images():
    page = render_report(_skipped_inputs())
    alts = re.findall(r"alt='([^']*)'", page)
    assert not [a for a in alts if "hase-out" in a or "phase_out" in a], alts
    charts = _section(page, "charts")
    assert len(re.findall(r"<img ", charts)) == 2  # churn gains + calibration
    assert len(re.findall(r"<img ", _section(page, "drivers"))) == 2  # churn beeswarm + segments


def test_report_from_files_with_a_skipped_phase_out(tmp_path):
    metrics, plots = tmp_path / "metrics", tmp_path / "plots"
    metrics.mkdir()
    plots.mkdir()
    (metrics / "churn.json").write_text(json.dumps({**METRICS, "split_strategy": SNAPSHOT, "skipped": False}))
    (metrics / "phase_out.json").write_text(json.dumps(SKIPPED))
    _curves()["gains"].to_csv(plots / "gains_churn.csv", index=False)
    for kind, header in CURVE_HEADERS.items():
        (plots / f"{kind}_phase_out.csv").write_text(header + "\n")
    paths = ReportPaths(
        interim=tmp_path / "interim",
        features=tmp_path / "features",
        metrics=metrics,
        plots=plots,
        explain=tmp_path / "explain",
        profile=tmp_path / "profile.json",
        score_summary=tmp_path / "score_summary.json",
        models=tmp_path / "models",
    )
    inputs = gather(paths)
    assert inputs.targets["phase_out"].skipped == REASON
    page = render_report(inputs)
    assert f"Phase-out model skipped: {REASON}" in page
    assert "Phase-out cumulative gains" not in page and "Churn cumulative gains" in page
    assert "Measured on held-out test customers at the single labelled as-of date only" in page


def test_segment_summary_leaves_out_a_phase_out_rate_that_was_never_observed():
    training = pd.DataFrame({"segment": ["active", "passive", "passive"], "churn": [0, 1, 0], "phase_out": None})
    out = segment_summary(training, None)
    assert "phase_out_rate" not in out and list(out["churn_rate"]) == [0.0, 0.5]
