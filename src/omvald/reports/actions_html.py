"""The report's sections from scores to actions: value tier x risk, the retention list, the measured effect.

Pure like :mod:`omvald.reports.html` (which places these sections): summary
dicts in (the score summary, ``reports/plan_summary.json``,
``reports/effect.json``), HTML out. Aggregates only: counts, money and rates
per tier, action and cell; no customer appears.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

RISK_ORDER = ("high", "medium", "low")
# heat-map shades for the share of the run's revenue at risk in a cell (white -> deep orange)
SHADES = ("#ffffff", "#fff1e0", "#ffe0bd", "#ffc98f", "#ffad5c", "#f98c2c")


def value_risk_section(summary: Mapping[str, Any] | None, missing: str) -> str:
    """The A/B/C x risk tier heat map: customers, revenue, revenue at risk and contactable customers per cell."""
    matrix = (summary or {}).get("by_value_tier_risk")
    if not matrix:
        return _na(missing)
    tiers = summary.get("value_tiers") or {}
    risks = _ordered(next(iter(matrix.values())).keys())
    total_risk = sum(c["revenue_at_risk"] for row in matrix.values() for c in row.values()) or 1.0
    shares = tiers.get("shares") or {}
    cuts = tiers.get("cuts") or {}
    intro = (
        f"<p class='sub'>Value = revenue over the last {_e(tiers.get('lookback_months'))} months. "
        f"A: the customers who together make the top {_pct(shares.get('A'))} of it (from {_money(cuts.get('A'))} a "
        f"customer), B: the next {_pct(shares.get('B'))} (from {_money(cuts.get('B'))}), C: the rest. Risk tiers "
        "by p_churn. Each cell: customers, revenue, <b>revenue at risk</b> (the shade: its share of all revenue "
        "at risk) and contactable customers.</p>"
    )
    head = "<tr><th>value tier</th>" + "".join(f"<th>{_e(r)} risk</th>" for r in risks) + "<th>all</th></tr>"
    rows = []
    for tier, cells in matrix.items():
        tds = []
        for risk in risks:
            c = cells.get(risk) or {}
            share = float(c.get("revenue_at_risk", 0.0)) / total_risk
            shade = SHADES[min(int(share * 2 * len(SHADES)), len(SHADES) - 1)]
            tds.append(f"<td class='cell' style='background:{shade}'>{_cell(c)}</td>")
        row_total = {
            k: sum(float(c.get(k, 0)) for c in cells.values())
            for k in ("customers", "revenue", "revenue_at_risk", "contactable")
        }
        tds.append(f"<td class='cell'>{_cell(row_total)}</td>")
        rows.append(f"<tr><th>{_e(tier)}</th>{''.join(tds)}</tr>")
    col_total = [
        {k: sum(float((matrix[t].get(r) or {}).get(k, 0)) for t in matrix) for k in ("customers", "revenue", "revenue_at_risk", "contactable")}
        for r in risks
    ]  # fmt: skip
    grand = {k: sum(c[k] for c in col_total) for k in ("customers", "revenue", "revenue_at_risk", "contactable")}
    totals = "".join(f"<td class='cell'>{_cell(c)}</td>" for c in [*col_total, grand])
    rows.append(f"<tr><th>all</th>{totals}</tr>")
    return intro + f"<table class='heat'>{head}{''.join(rows)}</table>"


def plan_section(plan: Mapping[str, Any] | None, missing: str) -> str:
    """The retention list's summary: budget used, per action and per cell, contacted and held out."""
    if not plan:
        return _na(missing)
    counts = plan.get("counts") or {}
    budget = plan.get("budget") or {}
    limits = (
        ", ".join(
            f"{label} {_int(v) if key == 'contacts' else _money(v)}"
            for key, label in (("contacts", "at most"), ("cost", "cost at most"))
            if (v := budget.get(key)) is not None
        )
        or "no budget limit"
    )
    kpis = [
        (_int(counts.get("contact")), "to contact"),
        (_int(counts.get("control")), f"held out as control ({_pct(plan.get('holdout_share'))} per cell)"),
        (_money(plan.get("contact_cost")), "cost of the contacts"),
        (_money(plan.get("expected_saved_revenue")), "expected saved revenue"),
    ]
    parts = ["".join(f"<div class='kpi'><b>{v}</b>{_e(label)}</div>" for v, label in kpis)]
    parts.append(
        f"<p class='sub'>List at {_e(plan.get('as_of'))}: contactable customers (marketing opt-in) ranked by "
        "expected saved revenue = (p_churn + p_phase_out x drop) x value x effect - cost; budget: "
        f"{_e(limits)}. Of {_int(counts.get('contactable'))} contactable: {_int(counts.get('not_worth_contacting'))} "
        f"not worth a contact, {_int(counts.get('over_budget'))} over the budget, {_int(counts.get('no_rule'))} "
        f"without a matching rule. Effects: {_e(plan.get('effects'))}.</p>"
    )
    actions = plan.get("by_action") or {}
    if actions:
        rows = [
            [a, _e(v.get("theme")), ", ".join(f"{_e(k)} {_int(n)}" for k, n in (v.get("channels") or {}).items()),
             _int(v.get("contact")), _int(v.get("control")), _money(v.get("cost")),
             _money(v.get("expected_saved_revenue")),
             ", ".join(f"{_e(k)} {_int(n)}" for k, n in (v.get("effect_sources") or {}).items())]
            for a, v in actions.items()
        ]  # fmt: skip
        parts.append("<h3>By action</h3>" + _grid(
            ["action", "message", "channels", "contact", "control", "cost", "expected saved revenue", "effect"], rows
        ))  # fmt: skip
    cells = plan.get("by_cell") or []
    if cells:
        rows = [
            [_e(c["action"]), _e(c["segment"]), _e(c["value_tier"]), _int(c["contact"]), _int(c["control"]),
             _money(c["cost"]), _money(c["expected_saved_revenue"])]
            for c in cells
        ]  # fmt: skip
        parts.append(
            "<h3>By cell (action x segment x value tier: the control group is drawn per cell)</h3>"
            + _grid(["action", "segment", "value tier", "contact", "control", "cost", "expected saved revenue"], rows)
        )
    return "".join(parts)


def effect_section(effect: Mapping[str, Any] | None, missing: str) -> str:
    """Contacted vs control after the horizon: churn and phase-out rates, reductions with intervals, saved revenue."""
    if not effect:
        return _na(missing)
    level = f"{float(effect.get('confidence', 0.95)):.0%}"
    parts = [
        f"<p class='sub'>The list at {_e(effect.get('as_of'))}, measured on {_e(effect.get('input'))} over "
        f"({_e(effect.get('as_of'))}, {_e(effect.get('observed_until'))}] with the training labels' rules. "
        f"Reduction = control rate - contacted rate (percentage points; above 0: the action kept customers), "
        f"with its {level} interval ({_e(effect.get('method'))}). Saved revenue = the churn reduction x the "
        f"contacted customers' value. Groups with fewer than {_int(effect.get('min_group_customers'))} "
        "contacted or control customers are pooled into the group above them and show no estimate.</p>"
    ]
    rows = []
    for g in effect.get("groups") or []:
        name = _e(g.get("label"))
        counts = [_int(g.get("n_contact")), _int(g.get("n_control"))]
        if g.get("churn_reduction") is None:
            rows.append([name, *counts, "", "", f"pooled into {_e(g.get('pooled_into'))}", "", "", ""])
            continue
        if not g.get("precise"):
            name += " <i>(few customers: imprecise)</i>"
        rows.append([
            name, *counts, _pct(g.get("churn_rate_contact")), _pct(g.get("churn_rate_control")),
            _interval(g, "churn_reduction", points=True), _interval(g, "phase_out_reduction", points=True),
            _interval(g, "saved_revenue"), _money(g.get("expected_saved_revenue")),
        ])  # fmt: skip
    parts.append(
        _grid(
            [
                "group",
                "contacted",
                "control",
                "churn contacted",
                "churn control",
                "churn reduction",
                "phase-out reduction",
                "saved revenue",
                "expected by the plan",
            ],
            rows,
        )  # fmt: skip
    )
    parts.append(
        "<p class='sub'>`omvald plan --effects` uses a group's measured relative reduction instead of the assumed "
        "effect where the group was measured on its own (cell, else action x segment, else action).</p>"
    )
    return "".join(parts)


def _cell(c: Mapping[str, Any]) -> str:
    return (
        f"{_int(c.get('customers'))} customers<br>revenue {_money(c.get('revenue'))}<br>"
        f"<b>at risk {_money(c.get('revenue_at_risk'))}</b><br>{_int(c.get('contactable'))} contactable"
    )


def _interval(g: Mapping[str, Any], key: str, points: bool = False) -> str:
    value, low, high = g.get(key), g.get(f"{key}_low"), g.get(f"{key}_high")
    if value is None:
        return "–"
    if points:
        return f"{100 * value:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"{_money(value)} [{_money(low)}, {_money(high)}]"


def _grid(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of already escaped cells (first column left-aligned by the page's CSS)."""
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _ordered(risks: Any) -> list[str]:
    names = list(risks)
    return sorted(names, key=lambda r: RISK_ORDER.index(r) if r in RISK_ORDER else len(RISK_ORDER))


def _na(reason: str) -> str:
    return f"<p class='na'>Not available: {_e(reason)}</p>"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _int(v: Any) -> str:
    return "–" if _missing(v) else f"{int(round(float(v))):,}"


def _money(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v):,.0f}"


def _pct(v: Any) -> str:
    return (
        "–"
        if _missing(v)
        else f"{100 * float(v):.0f}%"
        if float(v) * 100 == round(float(v) * 100)
        else f"{100 * float(v):.1f}%"
    )


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)
