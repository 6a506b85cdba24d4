"""Drift of a scoring run against the training reference: PSI, a two-sample test, drift by driver.

Each bucket counts its customers' feature values in the reference's fixed
bins (:meth:`omvald.model.reference.Reference.count_features`); the counts
add up over buckets (:class:`~omvald.scoring.finish.ScoredBuckets`), so the
cost is one pass over the features the bucket has built anyway, and the
Spark engine gives the same numbers. The scores are binned at the end,
from the merged result. :func:`drift_report` then turns counts into numbers.

**Population stability index.** With reference shares ``e_i`` and scoring
shares ``a_i`` over the bins (the missing bin included)::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i),   shares floored at EPSILON = 1e-4

An empty bin on either side would make the log infinite, so a share below
``EPSILON`` counts as ``EPSILON`` (no renormalising); a bin empty on both
sides adds 0. A bin that holds 1% of this run's customers and none of the
training rows adds ``(0.01 - 0.0001) * ln(100) = 0.0456``. Conventional
reading: below 0.1 stable, 0.1-0.25 a shift worth a look, above 0.25 a
large one (``score.drift_warn`` and ``score.drift_alert``).

**Two-sample test.** At scoring sizes any difference is "significant", so
the levels follow PSI (an effect size) and the test is extra evidence, one
that fits binned counts: for a numeric variable the Kolmogorov-Smirnov
statistic of the binned distributions (the largest gap between the two
cumulative shares at the bin edges, among non-missing values; a lower bound
of the exact KS statistic, so its asymptotic p-value is conservative); for
a categorical one the chi-square test of homogeneity on the bin counts.

**Drift by driver.** A driver (the registry's business reason, e.g.
``price_change``) drifts as much as its most drifted feature: the maximum
PSI keeps the feature scale, so the same thresholds apply, and a reason
spread over many stable columns is not diluted by them. The sum of its
features' PSI (as the SHAP driver table sums contributions) is listed too,
``psi_sum``, but not held against the thresholds: correlated columns of one
reason move together, so it grows with the number of columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from omvald.model.reference import CATEGORICAL, Binning, Reference, bin_counts

EPSILON = 1e-4
OK, WARN, ALERT = "ok", "warn", "alert"
SCORE_NAMES = ("p_churn", "p_phase_out")


def psi(reference: np.ndarray, scoring: np.ndarray, epsilon: float = EPSILON) -> float | None:
    """Population stability index of two count vectors over the same bins (module docstring); None if one is empty."""
    ref, cur = np.asarray(reference, dtype="float64"), np.asarray(scoring, dtype="float64")
    if ref.sum() <= 0 or cur.sum() <= 0:
        return None
    e = np.maximum(ref / ref.sum(), epsilon)
    a = np.maximum(cur / cur.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_binned(reference: np.ndarray, scoring: np.ndarray) -> tuple[float, float] | None:
    """KS statistic and asymptotic p-value of two binned samples (value bins in order, no missing bin)."""
    ref, cur = np.asarray(reference, dtype="float64"), np.asarray(scoring, dtype="float64")
    n1, n2 = ref.sum(), cur.sum()
    if n1 <= 0 or n2 <= 0:
        return None
    d = float(np.max(np.abs(np.cumsum(ref) / n1 - np.cumsum(cur) / n2)))
    return d, float(stats.kstwobign.sf(np.sqrt(n1 * n2 / (n1 + n2)) * d))


def chi2_homogeneity(reference: np.ndarray, scoring: np.ndarray) -> tuple[float, float] | None:
    """Chi-square statistic and p-value that both count vectors come from one distribution (bins empty in both dropped)."""
    table = np.vstack([reference, scoring]).astype("float64")
    if table[0].sum() <= 0 or table[1].sum() <= 0:
        return None
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def level(value: float | None, warn: float, alert: float) -> str:
    """``alert`` above ``alert``, ``warn`` above ``warn``, else ``ok`` (strictly above: PSI 0.1 is still ok)."""
    if value is None:
        return OK
    return ALERT if value > alert else WARN if value > warn else OK


def compare(binning: Binning, reference: np.ndarray, scoring: np.ndarray, warn: float, alert: float) -> dict[str, Any]:
    """One variable's drift record: PSI, level, test, missing shares, and both distributions bin by bin."""
    value = psi(reference, scoring)
    if binning.kind == CATEGORICAL:
        test, result = "chi2", chi2_homogeneity(reference, scoring)
    else:
        test, result = "ks_binned", ks_binned(reference[:-1], scoring[:-1])
    n_ref, n_cur = int(reference.sum()), int(scoring.sum())
    return {
        "name": binning.name,
        "kind": binning.kind,
        "driver": binning.driver or binning.name,
        "psi": None if value is None else round(value, 6),
        "level": level(value, warn, alert),
        "test": test,
        "statistic": None if result is None else round(result[0], 6),
        "p_value": None if result is None else float(f"{result[1]:.4g}"),
        "n_reference": n_ref,
        "n_scoring": n_cur,
        "missing_share": {"reference": _share(reference[-1], n_ref), "scoring": _share(scoring[-1], n_cur)},
        "bins": {
            "labels": binning.labels,
            "reference": [_share(c, n_ref) for c in reference],
            "scoring": [_share(c, n_cur) for c in scoring],
        },
    }


def by_driver(features: list[dict[str, Any]], warn: float) -> list[dict[str, Any]]:
    """Drift per driver: the largest PSI of its features (and their sum), which feature, how many are above ``warn``;
    worst first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in features:
        groups.setdefault(record["driver"], []).append(record)
    out = []
    for driver, members in groups.items():
        scored = [m for m in members if m["psi"] is not None]
        worst = max(scored, key=lambda m: m["psi"]) if scored else None
        out.append(
            {
                "driver": driver,
                "psi": None if worst is None else worst["psi"],
                "psi_sum": round(sum(m["psi"] for m in scored), 6) if scored else None,
                "level": OK if worst is None else worst["level"],
                "feature": None if worst is None else worst["name"],
                "features": [m["name"] for m in members],
                "n_above_warn": sum(1 for m in scored if m["psi"] > warn),
            }
        )
    return _worst_first(out, "driver")


def drift_report(
    reference: Reference,
    feature_counts: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    as_of: dt.date,
    warn: float,
    alert: float,
) -> dict[str, Any]:
    """``drift.json``: every feature, driver and score of the run against ``reference``, worst first.

    ``feature_counts`` is the merged flat vector of the buckets' counts;
    ``scores`` the run's ``p_churn`` / ``p_phase_out`` (a score the
    reference lacks, e.g. a skipped phase-out model, is left out; its
    missing values are counted in the missing bin).
    """
    features = [
        compare(b, reference.counts[b.name], feature_counts[s], warn, alert)
        for b, s in zip(reference.features, reference.feature_slices.values(), strict=True)
    ]
    score_records = [
        compare(b, reference.counts[b.name], bin_counts(scores[b.name], b), warn, alert)
        for b in reference.scores
        if b.name in scores
    ]
    features = _worst_first(features, "name")
    drivers = by_driver(features, warn)
    return {
        "skipped": False,
        "as_of": as_of.isoformat(),
        "n_scored": int(feature_counts[: reference.features[0].n_bins].sum()) if reference.features else 0,
        "reference": dict(reference.about),
        "thresholds": {"warn": warn, "alert": alert},
        "psi_epsilon": EPSILON,
        "above_warn": {
            "features": [f["name"] for f in features if f["level"] != OK],
            "drivers": [d["driver"] for d in drivers if d["level"] != OK],
            "scores": [s["name"] for s in score_records if s["level"] != OK],
        },
        "scores": score_records,
        "drivers": drivers,
        "features": features,
    }


def skipped_report(reason: str, as_of: dt.date) -> dict[str, Any]:
    """``drift.json`` when drift cannot be measured (e.g. models trained before references existed)."""
    return {"skipped": True, "reason": reason, "as_of": as_of.isoformat()}


def drift_summary(report: Mapping[str, Any], path: str | None) -> dict[str, Any]:
    """What the score summary says about drift: the file, and what is above the warning threshold with its PSI."""
    if report.get("skipped"):
        return {"file": path, "skipped": True, "reason": report["reason"]}

    def above(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return [
            {key: r[key], "psi": r["psi"], "level": r["level"], **({"driver": r["driver"]} if key == "name" else {})}
            for r in records
            if r["level"] != OK
        ]

    return {
        "file": path,
        "skipped": False,
        "thresholds": report["thresholds"],
        "n_features": len(report["features"]),
        "features_above_warn": above(report["features"], "name"),
        "drivers_above_warn": above(report["drivers"], "driver"),
        "scores": {s["name"]: {"psi": s["psi"], "level": s["level"]} for s in report["scores"]},
    }


def _share(count: Any, total: int) -> float:
    return round(float(count) / total, 6) if total else 0.0


def _worst_first(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (-(r["psi"] if r["psi"] is not None else -1.0), str(r[key])))
