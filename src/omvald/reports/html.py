"""The run report: :class:`~omvald.reports.gather.ReportInputs` in, one self-contained HTML page out.

Pure: no file is read or written here. Charts are drawn with matplotlib
into memory and embedded as ``data:image/png;base64`` URIs, CSS is inline
and nothing points to the network (no CDN, no web font), so the page
renders offline and can be mailed as a single file. Every section is
present even when its input is missing: it then says "not available" and why.
A model the train stage skipped (``TargetResults.skipped``) gets the note
"Phase-out model skipped: <reason>" where its tables, curves and SHAP plots would be.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from omvald.model.split import CUSTOMER, STEP_CUSTOMER, STEP_TIME, STEP_TIME_TEST
from omvald.reports.actions_html import effect_section, plan_section, value_risk_section
from omvald.reports.drift_section import drift_section, monitor_section
from omvald.reports.gather import TARGET_LABELS, ReportInputs, TargetResults

SECTIONS = {
    "headline": "Headline: model vs baselines",
    "charts": "Lift and calibration",
    "drivers": "What drives the risk (SHAP)",
    "segments": "Active vs passive customers",
    "nps": "NPS trend",
    "scoring": "Latest scoring run",
    "value": "Value tiers x risk",
    "plan": "Retention list",
    "effect": "Measured effect of the last campaign",
    "drift": "Drift since training",
    "monitor": "Model monitoring: realized vs training",
    "data": "Data and features",
    "split": "How the model was tested",
}
SCOPE_NOTES = {"if_stays": "Phase-out model alone, on test customers who did not churn"}
MODEL_LABELS = {
    "lgbm": "LightGBM",
    "logistic": "the logistic regression",
    "blend": "the blend of LightGBM and the logistic regression",
    "bgnbd": "BG/NBD probability of no purchase",
    "rfm_logistic": "the RFM logistic regression",
    "heuristic": "the hand-written rule",
}
BASELINE_NOUNS = {"bgnbd": "BG/NBD", "rfm_logistic": "RFM logistic regression"}
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "brier": "Brier",
    "ece": "ECE",
    "lift": "Top-decile lift",
    "capture": "Top-decile capture",
}
# Keys that could carry row-level or personal values in a free-form JSON; never rendered.
PERSONAL_KEY = re.compile(
    r"example|customer_id|customer_ids|email|e_mail|phone|address|first_name|last_name|^name$|sample_rows", re.I
)
CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f5f6f8;color:#1d2733}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 12px;border-bottom:2px solid #d7dde5;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}section{background:#fff;border-radius:8px;padding:18px 22px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.08)}.sub{color:#5b6b7c;font-size:13px}.lead{font-size:15px;line-height:1.5}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}th,td{padding:4px 10px;border-bottom:1px solid #e4e8ee;
text-align:right}th{background:#eef1f5}td:first-child,th:first-child,td.l{text-align:left}td.t,th.t{text-align:left}
tr.main td{font-weight:600}.na{color:#8a6d3b;background:#fcf8e3;padding:6px 10px;border-radius:4px;font-size:13px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:14px;align-items:start}figure{margin:0}img{max-width:100%;height:auto}
figcaption{font-size:12px;color:#5b6b7c}.kpi{display:inline-block;margin:0 24px 8px 0}.kpi b{display:block;font-size:22px}
table.heat td.cell{text-align:left;vertical-align:top;min-width:120px;font-size:12px;line-height:1.45}
"""


def render_report(inputs: ReportInputs, title: str = "omvald run report") -> str:
    """The whole page as one HTML string (UTF-8, no external references)."""
    body = [
        f"<h1>{_e(title)}</h1><p class='sub'>Generated {_e(inputs.generated_at)}. "
        "Aggregates only: no customer-level data appears in this report.</p>",
        _section("headline", _headline(inputs)),
        _section("charts", _charts(inputs)),
        _section("drivers", _drivers(inputs)),
        _section("segments", _segments(inputs)),
        _section("nps", _nps(inputs)),
        _section("scoring", _scoring(inputs)),
        _section("value", value_risk_section(inputs.score_summary, inputs.missing.get("score_summary", "no scores"))),
        _section("plan", plan_section(inputs.plan_summary, inputs.missing.get("plan_summary", "no retention list"))),
        _section("effect", effect_section(inputs.effect, inputs.missing.get("effect", "no campaign measured"))),
        _section("drift", drift_section(inputs.drift, inputs.missing.get("drift"))),
        _section("monitor", monitor_section(inputs.monitor)),
        _section("data", _data(inputs)),
        _section("split", _split(inputs)),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>"
    )


# --------------------------------------------------------------------------- sections


def _headline(inputs: ReportInputs) -> str:
    parts = [_not_out_of_time(inputs), _summary_sentence(inputs)]
    for target, res in inputs.targets.items():
        parts.append(f"<h3>{_e(TARGET_LABELS.get(target, target))}</h3>")
        if res.skipped is not None:
            parts.append(_skipped(res))
            continue
        parts.append(_metrics_table(_primary(res), slices=("overall", "segment:active", "segment:passive")))
        parts.append(_kept_note(inputs, target, res))
        for scope, rows in res.metrics[res.metrics["scope"] != _primary(res)["scope"].iloc[0]].groupby(
            "scope", sort=False
        ):
            o = rows[rows["slice"] == "overall"]
            if not o.empty:
                parts.append(
                    f"<p class='sub'>{_e(SCOPE_NOTES.get(scope, scope))}: ROC AUC {_fmt(o.iloc[0]['roc_auc'])}, "
                    f"PR AUC {_fmt(o.iloc[0]['pr_auc'])} ({_e(o.iloc[0]['model'])}, {_int(o.iloc[0]['n_rows'])} rows).</p>"
                )
    parts.append(
        f"<p class='sub'>Measured on {_test_set(inputs)} only; the first, bold row is the kept model (the one that "
        "scores): LightGBM (lgbm), the logistic regression or their blend, whichever did best on the validation "
        "window. The others are the other candidates and the baselines the model must beat: the logistic "
        "regression on every feature, a hand-written rule and, for a business without contracts, the BG/NBD "
        "probability of no purchase as is (bgnbd) and a logistic regression on recency, frequency and money "
        "(rfm_logistic). ROC/PR AUC: ranking quality (higher is better); "
        "Brier and ECE: error of the probabilities (lower is better); lift and capture: the 10% of customers with "
        "the highest scores churn at <i>lift</i> times the average rate and hold <i>capture</i> of all cases.</p>"
    )
    return "".join(parts)


def _primary(res: TargetResults) -> pd.DataFrame:
    """Rows of the first scope (churn: the only one; phase-out: ``combined``, the score users see)."""
    m = res.metrics
    return m[m["scope"] == m["scope"].iloc[0]] if not m.empty else m


def _summary_sentence(inputs: ReportInputs) -> str:
    sentences = []
    for target, res in inputs.targets.items():
        if res.skipped is not None:
            sentences.append(
                f"<li><b>{TARGET_LABELS.get(target, target)}</b>: no model in this run (skipped, see below).</li>"
            )
            continue
        overall = _primary(res)
        overall = overall[overall["slice"] == "overall"]
        if overall.empty:
            continue
        main = overall.iloc[0]
        others = overall.iloc[1:]
        kept = _label(main["model"])
        text = f"<b>{TARGET_LABELS.get(target, target)}</b>: the kept model, {kept}, ranks with ROC AUC {_fmt(main['roc_auc'])}"
        cmp = res.raw.get("comparison") or {}
        if cmp.get("best_baseline"):
            text += f" (best baseline, {_label(cmp['best_baseline'])}: {_fmt(cmp['best_baseline_roc_auc'])})"
        elif not others.empty and others["roc_auc"].notna().any():  # metrics written before the comparison existed
            best = others.loc[others["roc_auc"].idxmax()]
            text += f" (best baseline, {_e(best['model'])}: {_fmt(best['roc_auc'])})"
        text += (
            f"; the 10% highest-risk customers hold {_pct(main['capture'])} of all cases, "
            f"{_fmt(main['lift'], 1)}x the average rate."
        )
        text += _beats_sentence(cmp)
        sentences.append(f"<li>{text}</li>")
    return f"<ul class='lead'>{''.join(sentences)}</ul>" if sentences else ""


def _label(model: Any) -> str:
    return _e(MODEL_LABELS.get(str(model), str(model)))


VERBS = {"beat": "beats", "tie": "ties with", "lose": "loses to"}


def _signed(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v):+.3f}"


def _difference(diff: Mapping[str, Any]) -> str:
    """``+0.012 (95% interval +0.004 to +0.020)``: an AUC difference on the same test rows and its interval."""
    if diff.get("low") is None:
        return f"{_signed(diff.get('auc_diff'))} (no interval: evaluate.comparison_draws is 0)"
    return f"{_signed(diff.get('auc_diff'))} (95% interval {_signed(diff['low'])} to {_signed(diff['high'])})"


def _beats_sentence(cmp: Mapping[str, Any]) -> str:
    """Beat, tie or lose: LightGBM (and a kept model that is not LightGBM) against the best baseline, in plain words."""
    best = cmp.get("best_baseline")
    if not best:
        return ""
    out = ""
    for who, name in (("lgbm", "LightGBM"), ("kept", f"The kept model ({_e(cmp.get('kept_model'))})")):
        diff = cmp.get(f"{who}_vs_best_baseline")
        if not diff or (who == "kept" and cmp.get("kept_model") == "lgbm"):
            continue
        out += (
            f" <b>{name} {VERBS[diff['verdict']]} the best baseline</b>, {_label(best)}, on the test window: ROC AUC "
            f"difference {_difference(diff)} on the same test rows."
        )
    if cmp.get("kept_model") not in (None, "lgbm") and cmp.get("kept_model") == best:
        out += " The kept model is that baseline itself: it did best on the validation window."
    return out


def _versus(cmp: Mapping[str, Any]) -> str:
    """One line per tested model: its ROC AUC difference and verdict against every baseline."""
    lines = []
    for model, against in (cmp.get("versus") or {}).items():
        if against:
            cells = "; ".join(
                f"{_e(base)} {_difference(diff)}: {_e(diff['verdict'])}" for base, diff in against.items()
            )
            lines.append(f"{_e(model)} against each baseline (ROC AUC difference on the same test rows): {cells}.")
    return "".join(f"<p class='sub'>{line}</p>" for line in lines)


def _kept_note(inputs: ReportInputs, target: str, res: TargetResults) -> str:
    """Each tested model against each baseline, which model was kept and why (validation ROC AUC), absent baselines and why."""
    parts = []
    kept = ((inputs.split or {}).get("kept") or {}).get(target) or {}
    if kept.get("valid_auc"):
        aucs = ", ".join(f"{_e(name)} {_fmt(auc)}" for name, auc in kept["valid_auc"].items())
        parts.append(
            f"Kept model: <b>{_e(kept.get('kept'))}</b>, chosen on the validation window (ROC AUC {aucs}); "
            "it is the model that scores (refit on every labelled snapshot when train.refit is on)."
        )
    versus = _versus(res.raw.get("comparison") or {})
    for name, why in (res.raw.get("baselines_unavailable") or {}).items():
        parts.append(f"No {_e(BASELINE_NOUNS.get(name, name))} baseline ({_e(name)}): {_e(why)}.")
    return versus + "".join(f"<p class='sub'>{p}</p>" for p in parts)


def _charts(inputs: ReportInputs) -> str:
    figures, skipped = [], [_skipped(res) for res in inputs.targets.values() if res.skipped is not None]
    for target, res in inputs.targets.items():
        label = TARGET_LABELS.get(target, target)
        if res.skipped is not None:
            continue
        if "gains" in res.curves:
            png = _line_chart(
                res.curves["gains"],
                "share_targeted",
                "share_captured",
                f"{label}: cumulative gains",
                "share of customers contacted (highest risk first)",
                "share of cases reached",
            )
            figures.append(_figure(png, f"{label} cumulative gains (lift) chart"))
        if "calibration" in res.curves:
            png = _line_chart(
                res.curves["calibration"],
                "mean_predicted",
                "observed_rate",
                f"{label}: calibration",
                "predicted probability",
                "observed rate",
                markers=True,
            )
            figures.append(_figure(png, f"{label} calibration chart"))
    if not figures:
        return _na("No curve data in plots/ (run `omvald evaluate`).") + "".join(skipped)
    note = "<p class='sub'>Dashed line: a random list (gains) or perfect calibration. Closer to the top-left is better for gains; closer to the diagonal is better for calibration.</p>"
    return f"<div class='grid'>{''.join(figures)}</div>{note}{''.join(skipped)}"


def _drivers(inputs: ReportInputs) -> str:
    parts = []
    if inputs.explain_images:
        shown = _pick_shap_images(inputs.explain_images)
        figs = [_figure(inputs.explain_images[name], _image_caption(name)) for name in shown]
        parts.append(f"<div class='grid'>{''.join(figs)}</div>")
        rest = len(inputs.explain_images) - len(shown)
        if rest:
            parts.append(
                f"<p class='sub'>{rest} more SHAP plots (dependence plots per top feature) are in reports/explain/.</p>"
            )
    else:
        parts.append(_na(inputs.missing.get("explain", "No SHAP plots in reports/explain.")))
    by_driver = inputs.shap_driver_importance
    if by_driver is not None and not by_driver.empty:
        parts.append(
            "<h3>Top drivers (mean |SHAP| of the features of one reason, summed per customer)</h3>"
            + _top_drivers_table(
                by_driver.assign(features=by_driver["features"].str.replace(";", ", ")),
                key="driver",
                extra=["features"],
            )
        )
    imp = inputs.shap_importance
    if imp is not None and not imp.empty:
        parts.append("<h3>Top features (mean |SHAP|)</h3>" + _top_drivers_table(imp))
    else:
        parts.append(_na(inputs.missing.get("shap_importance", "No shap_importance.csv.")))
    parts += [_skipped(res) for res in inputs.targets.values() if res.skipped is not None]
    return "".join(parts)


def _segments(inputs: ReportInputs) -> str:
    parts = [
        "<p class='sub'>Active customers seek contact themselves (inbound contacts, opens, clicks, logins, survey "
        "answers); passive ones only receive. Sizes at the latest scoring date; rates over all labelled history.</p>"
    ]
    seg = inputs.segments
    if seg is not None and not seg.empty:
        parts.append(
            _table(
                seg,
                {
                    "customers": "int",
                    "monthly_revenue": "money",
                    "labelled_rows": "int",
                    "churn_rate": "pct",
                    "phase_out_rate": "pct",
                },
            )
        )
    else:
        parts.append(_na(inputs.missing.get("features_training", "No segment sizes available.")))
    for target, res in inputs.targets.items():
        parts.append(f"<h3>{_e(TARGET_LABELS.get(target, target))} model by segment and tenure</h3>")
        if res.skipped is not None:
            parts.append(_skipped(res))
            continue
        primary = _primary(res)
        sliced = primary[(primary["model"] == primary["model"].iloc[0]) & (primary["slice"] != "overall")]
        parts.append(
            _metrics_table(sliced, slices=None, row_label="slice")
            if not sliced.empty
            else _na("No per-segment metrics.")
        )
    return "".join(parts)


def _nps(inputs: ReportInputs) -> str:
    parts = [
        "<p class='sub'>NPS = % promoters (9-10) - % detractors (0-6), from survey answers. The band is the "
        "uncertainty interval: months with few answers have wide bands.</p>"
    ]
    o = inputs.nps_overall
    if o:
        parts.append(
            f"<div class='kpi'><b>{_fmt(o.get('nps'), 1)}</b>NPS, all answers</div>"
            f"<div class='kpi'><b>{_fmt(o.get('low'), 1)} to {_fmt(o.get('high'), 1)}</b>interval</div>"
            f"<div class='kpi'><b>{_int(o.get('n'))}</b>answers</div>"
        )
    if inputs.nps_png:
        parts.append(_figure(inputs.nps_png, "Monthly NPS with interval, overall and by segment"))
    df = inputs.nps_monthly
    if df is not None and not df.empty:
        recent = df.sort_values(["month", "segment"], kind="stable").groupby("segment", sort=True).tail(6)
        parts.append(
            "<h3>Last six months</h3>"
            + _table(
                recent[[c for c in ("month", "segment", "n", "nps", "low", "high") if c in recent]],
                {"n": "int", "nps": "1", "low": "1", "high": "1"},
            )
        )
    if not o and inputs.nps_png is None and (df is None or df.empty):
        parts.append(_na(inputs.missing.get("nps", "No NPS answers in the touchpoints.")))
    return "".join(parts)


SCORE_KPIS = {
    "n_scored": ("customers scored", "int"),
    "n_explained": ("given reason codes", "int"),
    "n_contactable": ("contactable (opted in)", "int"),
    "revenue_at_risk": ("revenue at risk over the horizon", "money"),
    "revenue_at_risk_contactable": ("of which contactable", "money"),
    "monthly_revenue": ("monthly revenue scored", "money"),
}
TIER_ORDER = ("high", "medium", "low")


def _scoring(inputs: ReportInputs) -> str:
    s = inputs.score_summary
    if not s:
        return _na(inputs.missing.get("score_summary", "No scoring summary."))
    kpis = [
        (label, {"int": _int, "money": _money}[kind](s[key])) for key, (label, kind) in SCORE_KPIS.items() if key in s
    ]
    parts = ["".join(f"<div class='kpi'><b>{v}</b>{_e(label)}</div>" for label, v in kpis)]
    facts = {
        k.replace("_", " "): s[k] for k in ("as_of", "explain_policy", "mean_p_churn", "mean_p_phase_out") if k in s
    }
    parts.append(_any_table(facts))
    tiers = s.get("by_tier_segment")
    if isinstance(tiers, Mapping) and tiers:
        rows = [
            {"risk tier": tier, "segment": seg, **{k: v for k, v in vals.items() if not PERSONAL_KEY.search(k)}}
            for tier in sorted(tiers, key=lambda t: TIER_ORDER.index(t) if t in TIER_ORDER else len(TIER_ORDER))
            for seg, vals in (tiers[tier] or {}).items()
            if isinstance(vals, Mapping)
        ]
        parts.append(
            "<h3>By risk tier and segment</h3>"
            + _table(pd.DataFrame(rows), {"customers": "int", "contactable": "int", "revenue_at_risk": "money"})
        )
    if s.get("warnings"):
        parts.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{_e(w)}</li>" for w in s["warnings"]) + "</ul>")
    return "".join(parts)


def _profile(p: Mapping[str, Any]) -> str:
    scalars = {
        k.replace("_", " "): v for k, v in p.items() if not isinstance(v, Mapping | list) and not PERSONAL_KEY.search(k)
    }
    parts = [_any_table(scalars)]
    tables = p.get("tables")
    if isinstance(tables, Mapping):
        rows = []
        for name, t in tables.items():
            if isinstance(t, Mapping):
                rows.append(
                    {
                        "table": name,
                        "rows": t.get("rows"),
                        "first date": t.get("first_date"),
                        "last date": t.get("last_date"),
                        "duplicates dropped": t.get("duplicates_dropped"),
                        "optional columns present": ", ".join(map(str, t.get("optional_columns_present") or []))
                        or "none",
                        "optional columns absent": ", ".join(map(str, t.get("optional_columns_absent") or []))
                        or "none",
                    }
                )
        if rows:
            parts.append(_table(pd.DataFrame(rows), {"rows": "int", "duplicates dropped": "int"}))
    rates = p.get("label_rates")
    if isinstance(rates, list) and rates and isinstance(rates[-1], Mapping):
        parts.append(
            f"<p class='sub'>Observed label rates at the last six of {len(rates)} month-end dates:</p>"
            + _table(pd.DataFrame(rates[-6:]), {"churn_rate": "pct", "population": "int", "churners": "int"})
        )
    if p.get("warnings"):
        parts.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in p["warnings"]) + "</ul>")
    return "".join(parts)


def _data(inputs: ReportInputs) -> str:
    parts = ["<h3>Definitions used in this run</h3>" + _any_table(inputs.params)] if inputs.params else []
    p = inputs.profile
    parts.append(
        "<h3>Input data profile</h3>" + (_profile(p) if p else _na(inputs.missing.get("profile", "No profile.")))
    )
    m = inputs.features_meta
    if m:
        used = m.get("families_used") or []
        missing = m.get("families_missing") or {}
        parts.append("<h3>Feature families</h3><p>Used: " + (", ".join(_e(f) for f in used) or "none") + "</p>")
        if missing:
            parts.append(
                "<p>Not available (and why):</p>"
                + _table(pd.DataFrame({"family": list(missing), "reason": [str(v) for v in missing.values()]}), {})
            )
        facts = {k: m.get(k) for k in ("contractual", "horizon_days", "phase_out_drop", "n_rows") if k in m}
        dates = m.get("as_of_dates") or []
        if dates:
            facts["as-of dates"] = f"{len(dates)} ({dates[0]} to {dates[-1]})"
        parts.append(_any_table(facts))
    else:
        parts.append(_na(inputs.missing.get("features_meta", "No features meta.json.")))
    return "".join(parts)


def _split(inputs: ReportInputs) -> str:
    s = inputs.split
    if not s:
        return _na("models/split.json not found (run `omvald train`).")
    horizon = s.get("horizon_days")
    step = _step(s)
    if step == STEP_TIME:
        text = (
            "<p class='lead'><b>Out-of-time test.</b> The models learned from earlier monthly snapshots and are "
            "measured here on later ones they never saw, the way they will be used. Snapshots whose "
            f"{_e(horizon)}-day outcome window overlaps the next period are left out (embargo).</p>"
        )
    elif step == STEP_TIME_TEST:
        text = (
            "<p class='lead'><b>Out-of-time test, validation on held-out customers.</b> The history is too short "
            "for a validation period between training and test. The test is still the latest snapshots, which "
            "the models never saw; early stopping and calibration used customers held out of training at the "
            f"training snapshots. Snapshots whose {_e(horizon)}-day outcome window reaches the test are left "
            "out (embargo).</p>"
        )
    elif s.get("strategy") == CUSTOMER:
        test = next((w for w in s.get("windows") or [] if w.get("window") == "test"), {})
        date = f" ({_e(test['first'])})" if test.get("first") else ""
        text = (
            "<p class='lead'><b>Customer split on a single snapshot.</b> The data has only one labelled as-of "
            f"date{date}, so the models could not be tested on later dates. The test set is a share of customers "
            "held out of training, measured at that same single as-of date, not a later period. A model that "
            "scores well here may still do worse on future dates (the world changes between snapshots).</p>"
        )
    elif step == STEP_CUSTOMER:
        text = (
            "<p class='lead'><b>Customer split, not out of time.</b> No labelled snapshot lies a whole "
            f"{_e(horizon)}-day horizon before another, so none could be held out as a later test period. The "
            "test set is a share of customers held out of training (with all their snapshots), measured at the "
            "same dates the models learned from. A model that scores well here may still do worse on future "
            "dates (the world changes between snapshots).</p>"
        )
    else:
        text = f"<p class='lead'>Split strategy: {_e(s.get('strategy'))}.</p>"
    notes = "".join(f"<li>{_e(n)}</li>" for n in s.get("notes") or [])
    notes = f"<ul class='sub'>{notes}</ul>" if notes else ""
    windows = pd.DataFrame(s.get("windows") or [])
    table = _table(windows, {"rows": "int", "customers": "int", "as_of_dates": "int"}) if not windows.empty else ""
    dropped = s.get("dropped_dates") or {}
    note = f"<p class='sub'>{len(dropped)} as-of date(s) dropped by the embargo.</p>" if dropped else ""
    return text + notes + table + note + _fits(s.get("fits") or {})


def _fits(fits: Mapping[str, Any]) -> str:
    """The evaluated fit vs the model that scores: which rows and dates each learned from."""
    rows = [
        {**record, "target": TARGET_LABELS.get(t, t), "fit": fit}
        for t, pair in fits.items()
        for fit, record in pair.items()
    ]
    if not rows:
        return ""
    refit = any(pair.get("scoring", {}).get("refit") for pair in fits.values())
    text = (
        "<p class='sub'><b>The model that scores was refit on every labelled snapshot</b>, test included, with "
        "the evaluated fit's settings (model, number of trees, blend weight) and calibration method (its calibration fitted on out-of-fold "
        "scores). The metrics above are the evaluated (holdout) fit's, which did not see the test.</p>"
        if refit
        else "<p class='sub'>The model that scores is the evaluated fit (train.refit is off).</p>"
    )
    table = pd.DataFrame(rows)
    cols = [c for c in ("target", "model", "fit", "n_trees", "calibration", "n_rows", "n_customers", "as_of_dates", "first",
                        "last") if c in table]  # fmt: skip
    return text + _table(table[cols], {"n_trees": "int", "n_rows": "int", "n_customers": "int", "as_of_dates": "int"})


def _step(split: Mapping[str, Any]) -> str | None:
    """The split step; a split.json written before steps existed had "time" or a customer split."""
    strategy = str(split.get("strategy") or "")
    return split.get("step") or (STEP_TIME if strategy == "time" else STEP_CUSTOMER if strategy else None)


def _not_out_of_time(inputs: ReportInputs) -> str:
    """A plain warning at the top when the test set is customers at the same dates, not later dates."""
    if _step(inputs.split or {}) != STEP_CUSTOMER:
        return ""
    return (
        "<p class='na'><b>Not an out-of-time test.</b> The history is too short to test on later dates, so "
        "these numbers are for customers held out of training at the same dates. Expect the model to do "
        'somewhat worse on future dates; see "How the model was tested".</p>'
    )


# --------------------------------------------------------------------------- building blocks


def _metrics_table(df: pd.DataFrame, slices: Iterable[str] | None, row_label: str = "model") -> str:
    if slices is not None:
        order = list(slices)
        df = df[df["slice"].isin(order)].copy()
        df["_o"] = df["slice"].map({s: i for i, s in enumerate(order)})
        df = df.sort_values(["_o"], kind="stable").drop(columns="_o")
    main = df["model"].iloc[0] if not df.empty else None
    head = (
        "<tr><th>model</th><th>slice</th><th>rows</th><th>rate</th>"
        + "".join(f"<th>{v}</th>" for v in METRIC_LABELS.values())
        + "</tr>"
    )
    rows = []
    for _, r in df.iterrows():
        cls = " class='main'" if r["model"] == main and row_label == "model" else ""
        cells = [
            _e(r["model"]),
            _e(str(r["slice"]).replace("segment:", "").replace("tenure:", "tenure ")),
            _int(r["n_rows"]),
            _pct(r["positive_rate"]),
        ]
        cells += [_pct(r[k]) if k == "capture" else _fmt(r[k], 2 if k == "lift" else 3) for k in METRIC_LABELS]
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _top_drivers_table(imp: pd.DataFrame, k: int = 10, key: str = "feature", extra: list[str] | None = None) -> str:
    value_col = next((c for c in imp.columns if "shap" in c.lower() or "importance" in c.lower()), imp.columns[-1])
    target_col = next((c for c in ("target", "model") if c in imp.columns), None)
    feature_col = key if key in imp.columns else imp.columns[0]
    extra = [c for c in (extra or ["description", "family"]) if c in imp.columns]
    if target_col is None:
        top = imp.sort_values(value_col, ascending=False).head(k)
        return _table(top[[feature_col, *extra, value_col]], {value_col: "3"})
    tables = []
    for target, group in imp.groupby(target_col, sort=False):
        top = group.sort_values(value_col, ascending=False).head(k)
        label = TARGET_LABELS.get(str(target), str(target))
        tables.append(
            f"<figure><figcaption>{_e(label)}</figcaption>{_table(top[[feature_col, *extra, value_col]], {value_col: '3'})}</figure>"
        )
    return f"<div class='grid'>{''.join(tables)}</div>"


def _line_chart(df: pd.DataFrame, x: str, y: str, title: str, xlabel: str, ylabel: str, markers: bool = False) -> bytes:
    fig = Figure(figsize=(5.4, 3.8), dpi=100)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=1)
    groups = df.groupby("model", sort=False) if "model" in df.columns else [("model", df)]
    for name, g in groups:
        if x in g and y in g:
            ax.plot(g[x], g[y], marker="o" if markers else None, ms=4, lw=1.8, label=str(name))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1))
    ax.grid(alpha=0.3)
    if "model" in df.columns:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _any_table(value: Any) -> str:
    """A nested JSON value as a two-column table of flattened scalars (personal-looking keys dropped)."""
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        frame = pd.DataFrame(value)
        return _table(frame[[c for c in frame.columns if not PERSONAL_KEY.search(str(c))]].head(30), {})
    flat = _flatten(value)
    if not flat:
        return "<p class='sub'>(empty)</p>"
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_scalar(v)}</td></tr>" for k, v in list(flat.items())[:60])
    more = f"<p class='sub'>... and {len(flat) - 60} more values.</p>" if len(flat) > 60 else ""
    return f"<table>{rows}</table>{more}"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not PERSONAL_KEY.search(str(k)):
                out.update(_flatten(v, f"{prefix}{k} / "))
        return out
    if isinstance(value, list):
        if len(value) <= 12 and all(not isinstance(v, Mapping | list) for v in value):
            return {prefix.rstrip(" /"): ", ".join(str(v) for v in value)}
        return {prefix.rstrip(" /"): f"{len(value)} entries"}
    return {prefix.rstrip(" /"): value}


def _table(df: pd.DataFrame, formats: Mapping[str, str]) -> str:
    head = "".join(f"<th>{_e(str(c).replace('_', ' '))}</th>" for c in df.columns)
    body = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            kind = formats.get(c)
            v = r[c]
            text = {"int": _int, "pct": _pct, "money": _money}.get(kind)
            cells.append(text(v) if text else (_fmt(v, int(kind)) if kind else _scalar(v)))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _pick_shap_images(images: Mapping[str, bytes]) -> list[str]:
    """Per model the beeswarm (or, without one, the bar chart) and the active-vs-passive plot; dependence plots stay out."""
    names = sorted(images, key=lambda n: (not n.startswith("shap_churn"), n))
    shown = [n for n in names if "beeswarm" in n or "segments" in n]
    for n in names:
        if "_bar" in n and n.replace("_bar", "_beeswarm") not in images:
            shown.append(n)
    return sorted(shown, key=names.index) if shown else [n for n in names if "dependence" not in n] or names


def _test_set(inputs: ReportInputs) -> str:
    """What the metrics were measured on, in words that fit the split strategy."""
    strategy = (inputs.split or {}).get("strategy") or next(
        (r.raw.get("split_strategy") for r in inputs.targets.values() if r.raw.get("split_strategy")), None
    )
    step = _step({"strategy": strategy, **(inputs.split or {})})
    if strategy == CUSTOMER:
        return "held-out test customers at the single labelled as-of date"
    if step == STEP_CUSTOMER:
        return "held-out test customers at the same as-of dates the models learned from (not out of time)"
    if step in (STEP_TIME, STEP_TIME_TEST):
        return "the test window (as-of dates later than any used in training)"
    return "the test set"


def _skipped(res: TargetResults) -> str:
    label = TARGET_LABELS.get(res.target, res.target)
    return f"<p class='na'>{_e(label)} model skipped: {_e(res.skipped)}</p>"


def _section(key: str, content: str) -> str:
    return f"<section id='{key}'><h2>{_e(SECTIONS[key])}</h2>{content}</section>"


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<figure><img src='data:image/png;base64,{data}' alt='{_e(caption)}'><figcaption>{_e(caption)}</figcaption></figure>"


def _image_caption(name: str) -> str:
    stem = name.rsplit(".", 1)[0].replace("shap_", "SHAP ").replace("_", " ")
    return stem.replace("phase out", "phase-out")


def _na(reason: str) -> str:
    return f"<p class='na'>Not available: {_e(reason)}</p>"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _fmt(v: Any, digits: int = 3) -> str:
    if _missing(v):
        return "–"
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return _e(v)


def _pct(v: Any) -> str:
    return "–" if _missing(v) else f"{100 * float(v):.1f}%"


def _int(v: Any) -> str:
    return "–" if _missing(v) else f"{int(round(float(v))):,}"


def _money(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v):,.0f}"


def _scalar(v: Any) -> str:
    if isinstance(v, bool) or _missing(v):
        return "–" if _missing(v) else ("yes" if v else "no")
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 1 else f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return _e(v)


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)
