"""Which model scores: LightGBM, the logistic regression or their blend, judged on the validation window.

On a small export the LightGBM settings can lose to the logistic
regression (issue #16: "never worse than our own baseline"). So after the
search, the train stage compares three candidates on the validation window
by ROC AUC (ranking: calibration is monotone and fitted afterwards) and
keeps the best; ``train.keep`` can name one instead.

- ``lgbm``: the (searched) LightGBM model;
- ``logistic``: the logistic regression on every feature;
- ``blend``: ``w x`` LightGBM log-odds ``+ (1 - w) x`` logistic log-odds
  (:class:`omvald.model.blend.BlendModel`), ``w`` in 0.1 .. 0.9.

The blend's weight is tuned, so judging it on the rows that chose the
weight would flatter it. The validation customers are halved by the stable
hash (a customer's dates stay together); each half is scored with the
weight chosen on the other half, and every candidate's validation AUC is
the mean over the two halves. The kept blend then takes the weight chosen
on the whole window.

A gain below :data:`MIN_GAIN` is not evidence (on a few thousand validation
rows two similar models differ by that much by chance), so the kept model
is the simplest of :data:`PREFERENCE` (logistic, lgbm, blend) whose
validation AUC is within ``MIN_GAIN`` of the best: the logistic regression
unless a tree model is clearly better, and LightGBM before the blend.

Why the regression first: LightGBM's validation AUC is flattered. Its
trees were early-stopped, and its settings searched, on this same
validation window, which the logistic regression never saw. On the
one-snapshot benchmark (benchmarks/README.md), with LightGBM first in this
order, LightGBM (0.0004 behind the regression on validation) was kept and
lost by 0.005 on test. The test window, which no choice
sees, is the check: ``metrics/*.json`` ``comparison`` says whether the kept
model lost there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from omvald.buckets import hash_slot
from omvald.errors import ConfigError

CANDIDATES = ("lgbm", "logistic", "blend")
KEEP_CHOICES = ("best", *CANDIDATES)
PREFERENCE = ("logistic", "lgbm", "blend")  # simplest first: kept on a validation gain under MIN_GAIN
WEIGHTS = tuple(round(0.1 * k, 1) for k in range(1, 10))  # LightGBM's weight in the blend
MIN_GAIN = 0.002  # validation ROC AUC a later candidate must gain to be kept (module docstring)


@dataclass(frozen=True)
class KeptChoice:
    """The kept candidate, the blend weight and each candidate's (cross-fitted) validation AUC."""

    kept: str
    weight: float
    valid_auc: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def record(self) -> dict[str, Any]:
        """Plain JSON for ``targets.json`` and MLflow."""
        return {
            "kept": self.kept,
            "blend_weight": self.weight,
            "valid_auc": {k: round(v, 6) for k, v in self.valid_auc.items()},
            "reason": self.reason,
        }


def best_weight(y: np.ndarray, lgbm: np.ndarray, logistic: np.ndarray) -> float:
    """The blend weight in :data:`WEIGHTS` with the highest ROC AUC on ``y`` (the lowest weight on a tie)."""
    aucs = [roc_auc_score(y, w * lgbm + (1 - w) * logistic) for w in WEIGHTS]
    return WEIGHTS[int(np.argmax(aucs))]


def pick_kept(valid_auc: dict[str, float]) -> str:
    """The first of :data:`PREFERENCE` (simplest first) whose validation AUC is within :data:`MIN_GAIN` of the best."""
    best = max(valid_auc.values())
    return next(name for name in PREFERENCE if valid_auc[name] >= best - MIN_GAIN)


def choose_kept(
    y: Any, lgbm: Any, logistic: Any, groups: Sequence[Any] | None = None, keep: str = "best"
) -> KeptChoice:
    """Choose among lgbm, logistic and blend from their raw validation scores (module docstring).

    ``y``: validation labels; ``lgbm``, ``logistic``: raw log-odds per row;
    ``groups``: customer ids (the halves); ``keep``: ``best`` or a candidate
    to keep whatever the scores say. Raises :class:`ConfigError` for an
    unknown ``keep``.
    """
    if keep not in KEEP_CHOICES:
        raise ConfigError(f"train.keep is {keep!r}; use one of {', '.join(KEEP_CHOICES)}.")
    y, lgbm, logistic = (np.asarray(a, dtype=float) for a in (y, lgbm, logistic))
    if len(np.unique(y)) < 2:
        kept = "lgbm" if keep == "best" else keep
        return KeptChoice(kept, 0.5, {}, "the validation window has a single class: nothing to judge by")
    weight = best_weight(y, lgbm, logistic)
    half = _halves(groups, len(y))
    if all(len(np.unique(y[half == h])) == 2 for h in (0, 1)):
        aucs = {name: [] for name in CANDIDATES}
        for h in (0, 1):
            on, other = half == h, half != h
            w = best_weight(y[other], lgbm[other], logistic[other])
            aucs["lgbm"].append(roc_auc_score(y[on], lgbm[on]))
            aucs["logistic"].append(roc_auc_score(y[on], logistic[on]))
            aucs["blend"].append(roc_auc_score(y[on], w * lgbm[on] + (1 - w) * logistic[on]))
        valid_auc = {name: float(np.mean(v)) for name, v in aucs.items()}
        how = "mean over two customer halves, the blend weighted as chosen on the other half"
    else:  # too few rows to halve: the blend is judged on the rows that chose its weight (flattered)
        valid_auc = {
            "lgbm": float(roc_auc_score(y, lgbm)),
            "logistic": float(roc_auc_score(y, logistic)),
            "blend": float(roc_auc_score(y, weight * lgbm + (1 - weight) * logistic)),
        }
        how = "whole validation window (a half had a single class)"
    best = pick_kept(valid_auc)
    scores = ", ".join(f"{name} {valid_auc[name]:.4f}" for name in CANDIDATES)
    if keep == "best":
        reason = f"best validation ROC AUC, within {MIN_GAIN} the simpler: logistic, lgbm, blend ({scores}; {how})"
        return KeptChoice(best, weight, valid_auc, reason)
    return KeptChoice(keep, weight, valid_auc, f"train.keep = {keep} (validation ROC AUC {scores}; best: {best})")


def _halves(groups: Sequence[Any] | None, n: int) -> np.ndarray:
    """0/1 per row: the stable hash of the row's customer (row parity without customer ids)."""
    if groups is None:
        return np.arange(n) % 2
    return (hash_slot(pd.Series(np.asarray(groups)).astype(str)).to_numpy() % 2).astype(int)
