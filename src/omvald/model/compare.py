"""Does the model beat the baselines on the test window? Beat, tie or lose, with the uncertainty of the difference.

Users compare us with the answers they already know (issue #16): a
logistic regression, the BG/NBD probability of no purchase, an RFM
regression. One test window's ROC AUC difference of 0.004 on a few thousand
rows is noise, so every difference comes with a 95% interval and a verdict:

- the models are scored on the **same** test rows, so the difference is
  paired: each bootstrap draw reweights the rows once and both AUCs are
  computed under the same weights (far tighter than two separate intervals);
- a customer's test dates move together (Poisson bootstrap weight per
  customer, the same for each of their rows): rows of one customer are not
  independent, and a row bootstrap would be too narrow;
- ``beat`` when the whole interval is above 0, ``lose`` when it is below 0,
  ``tie`` otherwise.

The interval is a percentile interval over ``draws`` draws (``evaluate.comparison_draws``),
seeded by ``seed``: the same rows and scores give the same interval.

Candidates are LightGBM (``lgbm``) and the blend; every other model is a
baseline, the logistic regression too, even when it is the kept model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

CANDIDATES = ("lgbm", "blend")  # the models under test; every other name is a baseline they must beat
LEVEL = 0.95
VERDICT_CODES = {"beat": 1, "tie": 0, "lose": -1}  # numbers for MLflow, which keeps no strings as metrics


def weighted_auc(rank: np.ndarray, n_levels: int, y: np.ndarray, weights: np.ndarray) -> float:
    """ROC AUC of scores given as ``rank`` (0 .. n_levels-1, equal scores share a rank) under row ``weights``.

    Ties count one half, as in scikit-learn. NaN when a class has no weight.
    """
    pos = np.bincount(rank, weights=weights * y, minlength=n_levels)
    neg = np.bincount(rank, weights=weights * (1 - y), minlength=n_levels)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))


def paired_auc_differences(
    y: Any,
    scores: Mapping[str, Any],
    customers: Sequence[Any],
    pairs: Sequence[tuple[str, str]],
    draws: int,
    seed: int,
) -> dict[tuple[str, str], dict[str, Any]]:
    """ROC AUC of ``a`` minus that of ``b`` per pair ``(a, b)``, with its customer-bootstrap 95% interval and verdict.

    ``y``: 0/1 labels; ``scores``: ``{model: score per row}``; ``customers``:
    the customer id of each row. Returns ``{(a, b): {"auc_diff", "low",
    "high", "verdict", "outcome"}}``; with ``draws`` 0 there is no interval:
    ``low``/``high`` are None and the verdict is ``tie`` (no evidence either way).
    """
    y = np.asarray(y, dtype=float)
    ones = np.ones(len(y))
    ranked = {}
    for name in {n for pair in pairs for n in pair}:
        levels, rank = np.unique(np.asarray(scores[name], dtype=float), return_inverse=True)
        ranked[name] = (rank.ravel(), len(levels))
    point = {name: weighted_auc(*ranked[name], y, ones) for name in ranked}
    spread: dict[tuple[str, str], np.ndarray] = {pair: np.full(draws, np.nan) for pair in pairs}
    if draws > 0 and len(y):
        codes, uniques = pd.factorize(pd.Series(np.asarray(customers)).astype(str))
        rng = np.random.default_rng(seed)
        for d in range(draws):
            weights = rng.poisson(1.0, len(uniques)).astype(float)[codes]
            aucs = {name: weighted_auc(*ranked[name], y, weights) for name in ranked}
            for a, b in pairs:
                spread[(a, b)][d] = aucs[a] - aucs[b]
    out = {}
    for a, b in pairs:
        diff = point[a] - point[b]
        sample = spread[(a, b)][np.isfinite(spread[(a, b)])]
        if len(sample) and np.isfinite(diff):
            low, high = (float(q) for q in np.quantile(sample, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]))
            verdict = "beat" if low > 0 else "lose" if high < 0 else "tie"
        else:
            low = high = None
            verdict = "tie"
        out[(a, b)] = {
            "auc_diff": None if not np.isfinite(diff) else float(diff),
            "low": low,
            "high": high,
            "verdict": verdict,
            "outcome": VERDICT_CODES[verdict],
        }
    return out


def comparison(
    y: Any,
    scores: Mapping[str, Any],
    customers: Sequence[Any],
    auc: Mapping[str, float | None],
    kept: str,
    draws: int,
    seed: int,
) -> dict[str, Any]:
    """The test window's verdicts: LightGBM and the kept model against the best baseline, and against each baseline.

    ``auc``: each model's overall test ROC AUC (the best baseline is the
    one with the highest; None = undefined). Returns ``{"kept_model",
    "best_baseline", "best_baseline_roc_auc", "lgbm_roc_auc", "kept_roc_auc",
    "lgbm_vs_best_baseline", "kept_vs_best_baseline", "versus": {model:
    {baseline: difference}}, "interval"}``; a ``*_vs_best_baseline`` is a
    difference record (:func:`paired_auc_differences`) or None (no such
    model, no baseline, or the kept model is that baseline itself).
    """
    baselines = {n: a for n, a in auc.items() if n not in CANDIDATES and a is not None and np.isfinite(a)}
    best = max(baselines, key=lambda n: baselines[n]) if baselines else None
    tested = [n for n in dict.fromkeys(("lgbm", kept)) if n in scores and auc.get(n) is not None]
    pairs = [(model, base) for model in tested for base in baselines if base != model]
    diffs = paired_auc_differences(y, scores, customers, pairs, draws, seed) if pairs else {}
    versus = {model: {base: diffs[(model, base)] for base in baselines if base != model} for model in tested}

    def against_best(model: str) -> dict[str, Any] | None:
        return versus.get(model, {}).get(best) if best is not None else None

    return {
        "kept_model": kept,
        "kept_roc_auc": auc.get(kept),
        "lgbm_roc_auc": auc.get("lgbm"),
        "best_baseline": best,
        "best_baseline_roc_auc": baselines.get(best) if best else None,
        "lgbm_vs_best_baseline": against_best("lgbm"),
        "kept_vs_best_baseline": against_best(kept),
        "versus": versus,
        "interval": {
            "level": LEVEL,
            "draws": draws,
            "method": "paired customer bootstrap (Poisson weights per customer) of the ROC AUC difference",
        },
    }
