"""Why a model cannot be trained on the data at hand: the reason the train stage records when it skips one.

A meaningless model is skipped with its reason (``models/targets.json``,
``metrics/<target>.json``, the report, the score log), never trained
silently. Only the phase-out model can be skipped: churn labels are checked
by the features stage, which stops before writing anything when they are
unusable.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from omvald.model.split import Split

# The shortest stretch of whole calendar months that always fits in a horizon:
# a one-month comparison needs at least 31 days (features/labels.py).
ONE_MONTH_DAYS = 31


def phase_out_skip_reason(frame: pd.DataFrame, split: Split, meta: dict[str, Any]) -> str | None:
    """Why the phase-out model cannot be trained and evaluated on ``frame`` (labelled rows), or None.

    It needs a horizon of at least one whole month, phase-out labels in
    the train, validation and test windows, and both classes in training.
    The reason names the data fact or setting behind it. ``meta`` is the
    features stage's ``meta.json`` (``horizon_days``, ``phase_out_months``,
    billing coverage).
    """
    from omvald.model.artifacts import target_rows

    horizon = meta.get("horizon_days")
    if meta.get("phase_out_months") == 0:
        return (
            f"no phase-out labels: the {horizon}-day horizon is shorter than one whole month ({ONE_MONTH_DAYS} "
            "days). Phase-out compares billed amounts over whole calendar months (with monthly billing, a "
            "shorter window holds one invoice or none, so almost every customer would look like a phase-out). "
            f"Set features.horizon_days to {ONE_MONTH_DAYS} or more to model phase-out."
        )
    rows = target_rows(frame, "phase_out")
    if not rows.any():
        until = meta.get("billing_observed_until")
        if not meta.get("rows", {}).get("billing", 1):
            return "no phase-out labels: the business has no billing, and phase-out is a fall in billed amount"
        if until is None:
            return "no phase-out labels at the labelled as-of dates (see data/features/meta.json)"
        return (
            f"no phase-out labels: billing is observed until {until} (latest invoice {meta.get('billing_end')} "
            f"+ one {meta.get('billing_period_days')}-day billing period), but the {horizon}-day horizon of every "
            "labelled as-of date ends later, so a fall in billing cannot be seen. Provide billing through the "
            "horizon or set features.as_of_last earlier."
        )
    for window in ("train", "valid", "test"):
        n = int((rows & split.mask(frame, window)).sum())
        if n == 0:
            return f"no phase-out labels in the {window} window (billing does not cover its horizon)"
    classes = frame.loc[rows & split.mask(frame, "train"), "phase_out"].nunique()
    if classes < 2:
        return "the training window has a single phase-out class; the model cannot learn"
    return None
