"""Realized metrics of an old scoring run, beside the metrics the model had at training time. Pure.

The numbers are the evaluate stage's (:func:`omvald.model.metrics.sliced_summary`:
ROC/PR AUC, log loss, Brier, calibration error, top-decile lift and
capture; overall, per segment and per tenure cohort), on the same labels:

- churn: every scored customer, label ``churn``;
- phase-out ``combined``: every scored customer, ``p_phase_out`` (the score
  users see) against "phased out and did not churn" (a churner counts 0);
- phase-out ``if_stays``: customers who did not churn and whose phase-out
  label exists, ``p_phase_out / (1 - p_churn)`` (the phase-out model alone).

Customers contacted in a campaign are measured apart: contact changes
the outcome the score predicted, so the headline uses the customers the
campaign left alone (not in the list, or its control group).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from omvald.model import metrics as m

HEADLINE_KEYS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift", "capture", "positive_rate", "mean_predicted")
CONTACT, CONTROL = "contact", "control"
UNTREATED = "not contacted"


def realized_blocks(frame: pd.DataFrame, bins: int, top_fraction: float, phase_out: bool) -> dict[str, Any]:
    """``{"churn": block, "phase_out": {"combined": block, "if_stays": block}}`` of ``frame``'s rows.

    ``frame``: ``p_churn``, ``p_phase_out``, ``churn``, ``phase_out``,
    ``segment``, ``tenure_months``. A block is ``{n_rows, positive_rate,
    metrics: sliced_summary, calibration: [{bin, mean_predicted,
    observed_rate, n}]}``. Without a phase-out model (``phase_out`` False)
    the phase-out part is left out.
    """
    churn = frame["churn"].astype(float)
    out: dict[str, Any] = {"churn": _block(frame, churn, frame["p_churn"], bins, top_fraction)}
    if not phase_out:
        return out
    stays = frame["phase_out"].notna() & (churn == 0)
    label = frame["phase_out"].fillna(0).where(churn == 0, 0)
    if_stays = frame["p_phase_out"] / (1 - frame["p_churn"]).where(frame["p_churn"] < 1)
    out["phase_out"] = {
        "combined": _block(frame, label, frame["p_phase_out"], bins, top_fraction),
        "if_stays": _block(frame.loc[stays], frame.loc[stays, "phase_out"], if_stays.loc[stays], bins, top_fraction),
    }
    return out


def _block(frame: pd.DataFrame, y: pd.Series, p: pd.Series, bins: int, top_fraction: float) -> dict[str, Any]:
    y, p = y.to_numpy(dtype=float), p.to_numpy(dtype=float)
    ok = ~np.isnan(p)
    y, p, rows = y[ok], p[ok], frame.loc[ok]
    return {
        "n_rows": int(len(y)),
        "positive_rate": float(y.mean()) if len(y) else 0.0,
        "metrics": m.sliced_summary(y, p, rows["segment"], rows["tenure_months"], bins, top_fraction),
        "calibration": m.calibration_points(y, p, bins).to_dict("records") if len(y) else [],
    }


def compare(realized: Mapping[str, Any], training: Mapping[str, float] | None) -> dict[str, Any]:
    """``{metric: {"training", "realized", "change"}}`` of the overall metrics (change = realized - training)."""
    overall = realized["metrics"]["overall"]
    out = {}
    for key in HEADLINE_KEYS:
        now = overall.get(key)
        then = None if training is None else training.get(key)
        change = None if now is None or then is None else round(float(now) - float(then), 6)
        out[key] = {"training": then, "realized": now, "change": change}
    return out


def auc_flag(name: str, comparison: Mapping[str, Any], max_drop: float) -> str | None:
    """A sentence when the realized ROC AUC fell more than ``max_drop`` below the training-time one, else None."""
    auc = comparison.get("roc_auc") or {}
    if auc.get("change") is None or -auc["change"] <= max_drop:
        return None
    return (
        f"{name}: ROC AUC fell by {-auc['change']:.3f} ({auc['training']:.3f} at training, {auc['realized']:.3f} "
        f"realized), more than monitor.max_auc_drop = {max_drop:g}"
    )


def campaign_groups(customer_ids: pd.Series, campaign: pd.DataFrame | None) -> pd.Series:
    """Each scored customer's group: ``contact``, ``control`` (from the campaign list) or ``not contacted``."""
    groups = pd.Series(UNTREATED, index=customer_ids.index, dtype="str")
    if campaign is None:
        return groups
    listed = campaign.drop_duplicates("customer_id", keep="last").set_index("customer_id")["group"]
    found = customer_ids.map(listed)
    return groups.where(found.isna(), found.astype("str"))
