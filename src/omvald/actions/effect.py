"""The measured effect of a campaign: contacted vs control customers, with 95% intervals.

Pure: the retention list joined with what happened to each listed customer
(``churn`` 0/1 and ``phase_out`` 0/1/missing over the horizon after the
list's as-of date, by the training labels' rules) in, a list of groups out.

For each group (everyone; each action; action x segment; action x segment x
value tier, the cell the holdout was drawn in):

- churn rate of the control and of the contacted customers, and the
  **churn reduction** ``control - contact`` (percentage points; > 0: fewer
  churned when contacted) with its interval: the difference of two
  independent proportions by Newcombe's hybrid score method
  (``statsmodels.stats.proportion.confint_proportions_2indep``,
  ``method="newcomb"``), which keeps its coverage at small counts and at
  rates near 0;
- the **relative reduction** ``1 - rate_contact / rate_control`` (the
  ``effect`` a plan uses) with the interval of the risk ratio
  (``compare="ratio"``, ``method="log-adjusted"``); missing when no control
  customer churned;
- the same difference for **phase-out** among customers who stayed and
  whose billing was observed;
- **saved revenue** = churn reduction x the contacted customers' value
  (revenue over the value lookback), with the interval scaled the same way;
  next to it the plan's expected saved revenue and the contacts' cost.

A group with fewer than ``min_group_customers`` contacted or control
customers is **pooled upward**: it gets no estimate of its own, only its
counts and ``pooled_into``, the nearest enclosing group that has enough
(cell -> action x segment -> action -> everyone). "Everyone" always gets
its estimate, marked ``precise: false`` when it is small too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all", ()),
    ("action", ("action",)),
    ("action x segment", ("action", "segment")),
    ("cell", ("action", "segment", "value_tier")),
)
KEYS = ("action", "segment", "value_tier")
METHOD = "Newcombe hybrid score interval for a difference of two independent proportions (statsmodels)"


def proportion_difference(
    x_control: int, n_control: int, x_contact: int, n_contact: int, alpha: float
) -> tuple[float, float, float]:
    """``(control rate - contact rate, low, high)``: Newcombe's interval (statsmodels, ``method="newcomb"``)."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        x_control, n_control, x_contact, n_contact, method="newcomb", compare="diff", alpha=alpha
    )
    return x_control / n_control - x_contact / n_contact, float(low), float(high)


def relative_reduction(
    x_control: int, n_control: int, x_contact: int, n_contact: int, alpha: float
) -> tuple[float | None, float | None, float | None]:
    """``1 - rate_contact / rate_control`` and its interval from the risk ratio's; ``None`` without control churns."""
    if x_control == 0:
        return None, None, None
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        x_contact, n_contact, x_control, n_control, method="log-adjusted", compare="ratio", alpha=alpha
    )
    ratio = (x_contact / n_contact) / (x_control / n_control)
    return 1.0 - ratio, 1.0 - float(high), 1.0 - float(low)


def compare(rows: pd.DataFrame, alpha: float) -> dict[str, Any]:
    """The estimates of one group (module docstring); ``rows`` has ``group``, ``churn``, ``phase_out``,
    ``value``, ``cost`` and ``expected_saved_revenue``. Both groups must be non-empty."""
    contact = (rows["group"] == "contact").to_numpy()
    churn = rows["churn"].to_numpy(dtype=float)
    x_t, n_t = int(churn[contact].sum()), int(contact.sum())
    x_c, n_c = int(churn[~contact].sum()), int((~contact).sum())
    reduction, low, high = proportion_difference(x_c, n_c, x_t, n_t, alpha)
    rel, rel_low, rel_high = relative_reduction(x_c, n_c, x_t, n_t, alpha)
    value = float(rows.loc[contact, "value"].sum())
    out: dict[str, Any] = {
        "churns_contact": x_t,
        "churns_control": x_c,
        "churn_rate_contact": x_t / n_t,
        "churn_rate_control": x_c / n_c,
        "churn_reduction": reduction,
        "churn_reduction_low": low,
        "churn_reduction_high": high,
        "churn_relative_reduction": rel,
        "churn_relative_reduction_low": rel_low,
        "churn_relative_reduction_high": rel_high,
        "saved_revenue": reduction * value,
        "saved_revenue_low": low * value,
        "saved_revenue_high": high * value,
    }
    stayed = ~np.isnan(rows["phase_out"].to_numpy(dtype=float))
    po = rows["phase_out"].to_numpy(dtype=float)
    m_t, m_c = int((contact & stayed).sum()), int((~contact & stayed).sum())
    if m_t and m_c:
        y_t, y_c = int(po[contact & stayed].sum()), int(po[~contact & stayed].sum())
        po_red, po_low, po_high = proportion_difference(y_c, m_c, y_t, m_t, alpha)
        out.update(
            phase_out_rate_contact=y_t / m_t,
            phase_out_rate_control=y_c / m_c,
            phase_out_reduction=po_red,
            phase_out_reduction_low=po_low,
            phase_out_reduction_high=po_high,
        )
    return out


def measure(outcomes: pd.DataFrame, min_group: int, confidence: float = 0.95) -> list[dict[str, Any]]:
    """Every group of every level (module docstring), everyone first, then in sorted order within a level.

    ``outcomes``: one row per measured listed customer, with ``group``
    (contact/control), :data:`KEYS`, ``churn``, ``phase_out``, ``value``,
    ``cost`` and ``expected_saved_revenue``.
    """
    alpha = 1.0 - confidence
    groups: list[dict[str, Any]] = []
    precise_keys: set[tuple[str, ...]] = set()
    for level, keys in LEVELS:
        parts = [((), outcomes)] if not keys else outcomes.groupby(list(keys), sort=True)
        for key, rows in parts:
            key = key if isinstance(key, tuple) else (key,)
            contact = rows["group"] == "contact"
            n_t, n_c = int(contact.sum()), int((~contact).sum())
            record: dict[str, Any] = {
                "level": level,
                **{k: (str(key[i]) if i < len(key) else None) for i, k in enumerate(KEYS)},
                "label": label(dict(zip(keys, key, strict=True))),
                "n_contact": n_t,
                "n_control": n_c,
                "contact_cost": round(float(rows.loc[contact, "cost"].sum()), 2),
                "expected_saved_revenue": round(float(rows.loc[contact, "expected_saved_revenue"].sum()), 2),
                "precise": n_t >= min_group and n_c >= min_group,
                "pooled_into": None,
            }
            if record["precise"]:
                precise_keys.add(tuple(key))
            if (record["precise"] or level == "all") and n_t and n_c:
                record.update(compare(rows, alpha))
            elif level != "all":
                record["pooled_into"] = _pooled_into(tuple(key), keys, precise_keys)
            groups.append(record)
    return groups


def label(key: dict[str, Any]) -> str:
    """``action=plan_review, segment=passive, value_tier=A``; ``all`` for everyone."""
    return ", ".join(f"{k}={v}" for k, v in key.items()) or "all"


def _pooled_into(key: tuple[str, ...], keys: Sequence[str], precise: set[tuple[str, ...]]) -> str:
    for depth in range(len(key) - 1, 0, -1):
        if key[:depth] in precise:
            return label(dict(zip(keys[:depth], key[:depth], strict=True)))
    return "all"
