"""Metrics and curve data for binary risk scores: pure functions of ``(y, p)``.

Every value is a plain float so it can go straight into ``metrics/*.json``;
metrics that are undefined on a slice (AUC with one class) are left out
rather than written as NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

TENURE_COHORTS: tuple[tuple[str, float, float], ...] = (
    ("<12", -math.inf, 12),
    ("12-24", 12, 24),
    ("24+", 24, math.inf),
)
MAX_CURVE_POINTS = 201


def expected_calibration_error(y: Any, p: Any, bins: int = 10) -> float:
    """ECE with ``bins`` equal-width bins on [0, 1]: sum over bins of (rows share) x |mean p - positive rate|.

    A probability of exactly 1.0 falls in the last bin.
    """
    y, p = _arrays(y, p)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(idx):
        sel = idx == b
        total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def top_k(n: int, top_fraction: float) -> int:
    """Rows in the top ``top_fraction``: ``ceil(top_fraction * n)``, at least 1."""
    return max(1, math.ceil(top_fraction * n - 1e-9))


def lift_and_capture(y: Any, p: Any, top_fraction: float) -> tuple[float, float]:
    """Lift and capture of the ``top_k`` highest scores.

    capture = positives in the top / all positives; lift = positive rate in
    the top / overall positive rate. Ties are broken by row order (stable
    sort), so the numbers are reproducible.
    """
    y, p = _arrays(y, p)
    k = top_k(len(y), top_fraction)
    order = np.argsort(-p, kind="stable")
    hits = y[order[:k]].sum()
    positives = y.sum()
    if positives == 0:
        return 0.0, 0.0
    return float((hits / k) / (positives / len(y))), float(hits / positives)


def summary(y: Any, p: Any, bins: int = 10, top_fraction: float = 0.1) -> dict[str, float]:
    """All scalar metrics of one score on one slice (n rows, positive rate, AUCs, losses, ECE, lift, capture)."""
    y, p = _arrays(y, p)
    out: dict[str, float] = {"n_rows": int(len(y))}
    if len(y) == 0:
        return out
    out["positive_rate"] = float(y.mean())
    out["mean_predicted"] = float(p.mean())
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(skm.roc_auc_score(y, p))
        out["pr_auc"] = float(skm.average_precision_score(y, p))
    out["log_loss"] = float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
    out["brier"] = float(skm.brier_score_loss(y, p, pos_label=1)) if len(y) else 0.0
    out["ece"] = expected_calibration_error(y, p, bins)
    out["lift"], out["capture"] = lift_and_capture(y, p, top_fraction)
    return out


def sliced_summary(
    y: Any, p: Any, segment: pd.Series, tenure_months: pd.Series, bins: int = 10, top_fraction: float = 0.1
) -> dict[str, Any]:
    """``summary`` overall, per ``segment`` value (active / passive) and per tenure cohort (<12, 12-24, 24+ months)."""
    y, p = _arrays(y, p)
    seg = pd.Series(segment).astype(str).to_numpy()
    tenure = pd.to_numeric(pd.Series(tenure_months), errors="coerce").to_numpy(dtype=float)
    out: dict[str, Any] = {"overall": summary(y, p, bins, top_fraction), "segment": {}, "tenure": {}}
    for value in sorted(set(seg) - {"nan", "<NA>", "None"}):
        sel = seg == value
        out["segment"][value] = summary(y[sel], p[sel], bins, top_fraction)
    for name, lo, hi in TENURE_COHORTS:
        sel = (tenure >= lo) & (tenure < hi)
        if sel.any():
            out["tenure"][name] = summary(y[sel], p[sel], bins, top_fraction)
    return out


def roc_points(y: Any, p: Any) -> pd.DataFrame:
    """ROC curve (``fpr``, ``tpr``), thinned to at most ``MAX_CURVE_POINTS`` points."""
    y, p = _arrays(y, p)
    if not 0 < y.sum() < len(y):
        return pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]})
    fpr, tpr, _ = skm.roc_curve(y, p)
    return _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}))


def pr_points(y: Any, p: Any) -> pd.DataFrame:
    """Precision-recall curve (``recall``, ``precision``), thinned, ordered by recall."""
    y, p = _arrays(y, p)
    if y.sum() == 0:
        return pd.DataFrame({"recall": [0.0], "precision": [0.0]})
    precision, recall, _ = skm.precision_recall_curve(y, p)
    return _thin(pd.DataFrame({"recall": recall[::-1], "precision": precision[::-1]}))


def calibration_points(y: Any, p: Any, bins: int = 10) -> pd.DataFrame:
    """Per non-empty equal-width bin: ``bin``, ``mean_predicted``, ``observed_rate``, ``n``."""
    y, p = _arrays(y, p)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    frame = pd.DataFrame({"bin": idx, "p": p, "y": y}).groupby("bin", sort=True)
    out = frame.agg(mean_predicted=("p", "mean"), observed_rate=("y", "mean"), n=("y", "size")).reset_index()
    return out


def gains_points(y: Any, p: Any, n_points: int = 100) -> pd.DataFrame:
    """Cumulative gains: ``share_targeted`` (0..1, top-scored first) vs ``share_captured`` of positives."""
    y, p = _arrays(y, p)
    order = np.argsort(-p, kind="stable")
    captured = np.concatenate([[0.0], np.cumsum(y[order]) / max(y.sum(), 1)])
    shares = np.linspace(0, 1, n_points + 1)
    at = np.round(shares * len(y)).astype(int)
    return pd.DataFrame({"share_targeted": shares, "share_captured": captured[at]})


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= MAX_CURVE_POINTS:
        return frame.reset_index(drop=True)
    keep = np.unique(np.linspace(0, len(frame) - 1, MAX_CURVE_POINTS).round().astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).astype(int)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape} vs {p.shape}")
    return y, p
