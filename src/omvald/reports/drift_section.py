"""The run report's drift and monitoring sections: ``drift.json`` and ``monitor.json`` in, HTML out. Pure.

Drift: which scores, drivers and features of the latest scoring run moved
away from the training data (PSI), with the training and scoring
distributions of the most drifted features side by side. Monitoring: the
realized metrics of an old scoring run beside the training-time ones, and
any flag. Only aggregates: shares per bin, metrics.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

TOP_FEATURES = 6
TOP_DRIVERS = 10
MONITOR_METRICS = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "log_loss": "log loss", "ece": "ECE", "lift": "lift"}
FLAG_STYLE = "color:#b00020;background:#fdecea;padding:6px 10px;border-radius:4px;font-size:13px"
LEVEL_STYLE = {"alert": "color:#b00020;font-weight:600", "warn": "color:#8a6d3b;font-weight:600", "ok": ""}


def drift_section(drift: Mapping[str, Any] | None, missing: str | None) -> str:
    """The drift section's HTML (a note when there is no drift file, or the run could not measure drift)."""
    if not drift:
        return _na(missing or "No drift file (run `omvald score`, which writes drift.json beside its summary).")
    if drift.get("skipped"):
        return _na(f"Drift was not measured: {drift.get('reason')}")
    warn, alert = drift["thresholds"]["warn"], drift["thresholds"]["alert"]
    features = drift["features"]
    above = [f for f in features if f["level"] != "ok"]
    ref = drift.get("reference") or {}
    dates = ref.get("as_of_dates") or {}
    parts = [
        f"<p class='lead'>Scoring at {_e(drift['as_of'])}: <b>{len(above)} of {len(features)} features</b> have a "
        f"population stability index (PSI) above {warn:g} against the training data, "
        f"{sum(f['level'] == 'alert' for f in features)} above {alert:g}.</p>",
        f"<p class='sub'>Training data: {_e(ref.get('rows_from', 'the rows the model learned from'))} "
        f"({_int(ref.get('n_rows'))} rows, as-of dates {_e(dates.get('first'))} to {_e(dates.get('last'))}); "
        f"scores: {_e(ref.get('scores_from', ''))}. PSI below {warn:g} is stable, {warn:g}-{alert:g} a shift "
        f"worth a look, above {alert:g} a large one. A driver drifts as much as its most drifted feature.</p>",
    ]
    if drift.get("scores"):
        parts.append("<h3>Scores</h3>" + _records_table(drift["scores"], "name", "score"))
    parts.append("<h3>Drivers (features of one reason)</h3>")
    parts.append(_drivers_table(drift["drivers"][:TOP_DRIVERS]))
    shown = (above or features)[:TOP_FEATURES]
    if shown:
        parts.append(
            "<h3>Most drifted features: training vs this run</h3><div class='grid'>"
            + "".join(_feature_figure(f) for f in shown)
            + "</div>"
        )
    return "".join(parts)


def monitor_section(monitor: Mapping[str, Any] | None) -> str:
    """The monitoring section's HTML: flags, realized vs training metrics, campaign groups apart."""
    if not monitor:  # optional: outcomes come months after a run, so this is a how-to, not a missing input
        return (
            "<p class='sub'>No monitoring results in this report. Once the horizon after a scoring run has passed: "
            "<code>omvald monitor --scores OLD_SCORES --input NEWER_EXPORT --output reports/monitor.json</code>, "
            "then <code>omvald report --monitor reports/monitor.json</code> (docs/monitoring.md).</p>"
        )
    parts = [
        f"<p class='lead'>Scores at {_e(monitor['as_of'])}, outcomes known from "
        f"{_e(monitor['outcomes_known_from'])} ({_e(monitor.get('input'))}): {_int(monitor['n_with_outcome'])} of "
        f"{_int(monitor['n_scored'])} scored customers; metrics on {_e(monitor['headline_rows'])}.</p>"
    ]
    for flag in monitor.get("flags") or []:
        parts.append(f"<p style='{FLAG_STYLE}'><b>Flagged:</b> {_e(flag)}</p>")
    rows = []
    for target in ("churn", "phase_out"):
        if target not in monitor:
            continue
        for key, label in MONITOR_METRICS.items():
            cell = monitor[target]["vs_training"][key]
            rows.append(
                f"<tr><td>{_e(target.replace('_', '-'))}</td><td>{label}</td><td>{_num(cell['training'])}</td>"
                f"<td>{_num(cell['realized'])}</td><td>{_num(cell['change'], '+')}</td></tr>"
            )
    parts.append(
        "<table><tr><th>target</th><th>metric</th><th>at training</th><th>realized</th><th>change</th></tr>"
        + "".join(rows)
        + "</table>"
        + f"<p class='sub'>Training-time metrics: {_e(monitor.get('training_metrics_from'))}. A ROC AUC more than "
        f"{monitor['max_auc_drop']:g} below it is flagged (monitor.max_auc_drop).</p>"
    )
    campaign = monitor.get("campaign") or {}
    if campaign:
        cells = []
        for group, blocks in campaign.items():
            o = blocks["churn"]["metrics"]["overall"]
            cells.append(
                f"<tr><td>{_e(group)}</td><td>{_int(blocks['churn']['n_rows'])}</td>"
                f"<td>{_pct(blocks['churn']['positive_rate'])}</td><td>{_num(o.get('mean_predicted'))}</td>"
                f"<td>{_num(o.get('roc_auc'))}</td></tr>"
            )
        parts.append(
            "<h3>Campaign groups, measured apart (contact changes the outcome)</h3><table><tr><th>group</th>"
            "<th>customers</th><th>churned</th><th>mean p_churn</th><th>ROC AUC</th></tr>" + "".join(cells) + "</table>"
        )
    return "".join(parts)


def _drivers_table(drivers: list[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td class='l'>{_e(d['driver'])}</td><td>{_num(d['psi'])}</td>{_level(d['level'])}"
        f"<td class='l'>{_e(d['feature'])}</td><td>{len(d['features'])}</td><td>{d['n_above_warn']}</td></tr>"
        for d in drivers
    )
    head = "<tr><th>driver</th><th>PSI</th><th>level</th><th>most drifted feature</th><th>features</th><th>above warn</th></tr>"
    return f"<table>{head}{rows}</table>"


def _records_table(records: list[Mapping[str, Any]], key: str, label: str) -> str:
    rows = "".join(
        f"<tr><td class='l'>{_e(r[key])}</td><td>{_num(r['psi'])}</td>{_level(r['level'])}"
        f"<td>{_e(r['test'])}</td><td>{_num(r['statistic'])}</td><td>{_pct(r['missing_share']['reference'])}</td>"
        f"<td>{_pct(r['missing_share']['scoring'])}</td></tr>"
        for r in records
    )
    head = (
        f"<tr><th>{label}</th><th>PSI</th><th>level</th><th>test</th><th>statistic</th>"
        "<th>missing (training)</th><th>missing (run)</th></tr>"
    )
    return f"<table>{head}{rows}</table>"


def _feature_figure(record: Mapping[str, Any]) -> str:
    bins = record["bins"]
    keep = [i for i, (a, b) in enumerate(zip(bins["reference"], bins["scoring"], strict=True)) if a or b]
    labels = [bins["labels"][i] for i in keep]
    x = np.arange(len(keep))
    fig = Figure(figsize=(5.4, 3.0), dpi=90)
    ax = fig.add_subplot()
    ax.bar(x - 0.2, [bins["reference"][i] for i in keep], width=0.4, label="training", color="#8da0cb")
    ax.bar(x + 0.2, [bins["scoring"][i] for i in keep], width=0.4, label="this run", color="#fc8d62")
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("share of customers")
    ax.set_title(f"{record['name']} (PSI {record['psi']:.3f})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    caption = f"{record['name']} (driver {record['driver']}): PSI {record['psi']:.3f}, {record['level']}"
    return f"<figure><img src='data:image/png;base64,{data}' alt='{_e(caption)}'><figcaption>{_e(caption)}</figcaption></figure>"


def _level(level: str) -> str:
    return f"<td style='{LEVEL_STYLE.get(level, '')}'>{_e(level)}</td>"


def _na(text: str) -> str:
    return f"<p class='na'>Not available: {_e(text)}</p>"


def _num(value: Any, sign: str = "") -> str:
    return "–" if value is None else f"{float(value):{sign}.3f}"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}%"


def _int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
