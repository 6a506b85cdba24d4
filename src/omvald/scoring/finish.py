"""Finish a scoring run: merge the buckets' results, explain the run's top N, write the scores and the summary.

Both engines end here: the local stage adds each bucket's
:class:`~omvald.scoring.bucket.BucketResult` to :class:`ScoredBuckets` as it
goes, Spark adds the rows its tasks returned, and :func:`finish_scoring`
writes the same file and :class:`ScoreSummary` from either. Nothing is
written unless the run succeeded; both files are written atomically.

Run-level numbers (the summary's tables) are computed from the merged
result in :func:`summarize`; statistics gathered per bucket are merged in
:meth:`ScoredBuckets.add`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omvald.errors import ConfigError, DataContractError
from omvald.io import write_json, write_table
from omvald.scoring import score as sc
from omvald.scoring.bucket import BucketResult, assemble, explain_rows
from omvald.scoring.clock import PhaseClock
from omvald.scoring.drift import SCORE_NAMES, drift_report, drift_summary, skipped_report
from omvald.scoring.plan import ScoringModels, ScoringPlan
from omvald.scoring.select import top_n_positions
from omvald.scoring.value_tiers import tier_risk_matrix, value_cuts, value_tier

log = logging.getLogger(__name__)

# top:N: the run's top N are explained at the end in chunks of this many rows (bounds TreeSHAP's memory).
REASON_CHUNK = 50_000
OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq")


class ScoredBuckets:
    """The buckets' results merged so far; memory stays bounded by the scores plus N candidate rows."""

    def __init__(self, plan: ScoringPlan) -> None:
        self.top_n = int(plan.policy.value or 0) if plan.policy.is_global else 0
        self.scores: list[pd.DataFrame] = []
        self.reasons: list[pd.DataFrame] = []
        self.candidates: pd.DataFrame | None = None
        self.drift_counts: np.ndarray | None = None

    def add(self, part: BucketResult) -> None:
        """Merge one bucket's result; ``top:N`` candidates are trimmed to the best N so far (ties: lowest id)."""
        if len(part.scores):
            self.scores.append(part.scores)
        if len(part.reasons):
            self.reasons.append(part.reasons)
        if part.drift_counts is not None:
            have = self.drift_counts
            self.drift_counts = part.drift_counts.copy() if have is None else have + part.drift_counts
        if part.candidates is not None and len(part.candidates) and self.top_n > 0:
            pool = part.candidates
            if self.candidates is not None:
                pool = pd.concat([self.candidates, pool], ignore_index=True)
            self.candidates = pool.iloc[top_n_positions(pool, self.top_n)].reset_index(drop=True)


def merge_results(plan: ScoringPlan, models: ScoringModels, merged: ScoredBuckets, clock: PhaseClock) -> pd.DataFrame:
    """One row per customer, :data:`omvald.scoring.score.OUTPUT_COLUMNS`, sorted by ``customer_id``.

    With ``top:N`` only the run's top N by revenue at risk keep reason
    codes: reasons a bucket gave its own top N outside them are dropped,
    and candidates not explained yet are explained now. Raises
    :class:`DataContractError` when no customer is in the population.
    """
    if not merged.scores:
        raise DataContractError(
            "customers",
            None,
            f"no customer is in the population at the as-of date {plan.as_of} (signed up on or before it and, "
            "for a contractual business, not churned by then; for a non-contractual one, an invoice in the "
            "lookback window); choose another --as-of",
            path=plan.source,
        )
    scores = pd.concat(merged.scores, ignore_index=True)
    reasons = list(merged.reasons)
    if plan.policy.is_global:
        top = scores["customer_id"].to_numpy()[top_n_positions(scores, merged.top_n)]
        reasons = [r.loc[r.index.isin(top)] for r in reasons]
        pending = merged.candidates
        if pending is not None:
            done = np.concatenate([r.index.to_numpy() for r in reasons]) if reasons else []
            pending = pending.loc[pending["customer_id"].isin(top) & ~pending["customer_id"].isin(done)]
        if pending is not None and len(pending):
            clock.enter("reasons")
            for start in range(0, len(pending), REASON_CHUNK):
                reasons.append(explain_rows(pending.iloc[start : start + REASON_CHUNK], plan, models))
    clock.enter("write")
    return with_value_tiers(assemble(scores, reasons), plan)


def with_value_tiers(result: pd.DataFrame, plan: ScoringPlan) -> pd.DataFrame:
    """``result`` with ``value_tier`` (A/B/C from the run's cuts), columns :data:`omvald.scoring.score.OUTPUT_COLUMNS`."""
    cuts = value_cuts(result["value"].to_numpy(dtype=float), plan.value_tiers)
    out = result.assign(value_tier=pd.Series(value_tier(result["value"].to_numpy(), cuts), dtype="str"))
    return out[sc.OUTPUT_COLUMNS]


@dataclass(frozen=True)
class ScoreSummary(Mapping[str, Any]):
    """The numbers printed after a run and written to ``--summary`` (money in the input's currency).

    Reads as the JSON it is written as (``summary["n_scored"]``,
    :meth:`as_json`). ``by_tier_segment`` is ``{tier: {segment: {customers,
    revenue_at_risk, contactable}}}``, tiers highest risk first.
    ``value_revenue`` is the customers' revenue over the value lookback;
    ``value_tiers`` says how the A/B/C tiers were cut (``lookback_months``,
    ``shares``, ``cuts``: the lowest value of an A and of a B customer) and
    ``by_value_tier_risk`` is the tier x risk matrix ``{A|B|C: {risk tier:
    {customers, revenue, revenue_at_risk, contactable}}}`` (every cell, its
    sums are the scored totals).
    ``engine`` is written for Spark runs only (the local summary's format
    predates it). ``drift`` is :func:`omvald.scoring.drift.drift_summary`'s
    (what is above the warning threshold; the whole table is in ``drift.json``).
    """

    as_of: dt.date
    explain_policy: str
    models: str
    n_scored: int
    n_explained: int
    n_contactable: int
    monthly_revenue: float
    revenue_at_risk: float
    revenue_at_risk_contactable: float
    mean_p_churn: float
    mean_p_phase_out: float | None
    by_tier_segment: dict[str, dict[str, dict[str, float]]]
    value_revenue: float
    value_tiers: dict[str, Any]
    by_value_tier_risk: dict[str, dict[str, dict[str, float]]]
    warnings: list[str]
    timings_s: dict[str, float]
    input: str
    output: str
    engine: str = "local"
    drift: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The summary file's content, keys in this order."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["as_of"] = self.as_of.isoformat()
        if self.engine == "local":
            del out["engine"]
        if self.drift is None:
            del out["drift"]
        return out

    def __getitem__(self, key: str) -> Any:
        return self.as_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_json())

    def __len__(self) -> int:
        return len(self.as_json())


def summarize(
    result: pd.DataFrame,
    plan: ScoringPlan,
    models: ScoringModels,
    timings: dict[str, float],
    output: Path,
    engine: str = "local",
    drift: dict[str, Any] | None = None,
) -> ScoreSummary:
    """The :class:`ScoreSummary` of the merged ``result`` (one row per customer); ``drift``: its drift summary."""
    by = (
        result.groupby(["risk_tier", "segment"], observed=True)
        .agg(
            customers=("customer_id", "size"),
            revenue_at_risk=("revenue_at_risk", "sum"),
            contactable=("contactable", "sum"),
        )
        .reset_index()
    )
    rank = {t: i for i, t in enumerate(plan.tier_order)}
    by = by.sort_values(
        ["risk_tier", "segment"], key=lambda s: s.map(rank).fillna(len(rank)) if s.name == "risk_tier" else s
    )
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row in by.itertuples(index=False):
        table.setdefault(str(row.risk_tier), {})[str(row.segment)] = {
            "customers": int(row.customers),
            "revenue_at_risk": round(float(row.revenue_at_risk), 2),
            "contactable": int(row.contactable),
        }
    contactable = result["contactable"]
    cuts = value_cuts(result["value"].to_numpy(dtype=float), plan.value_tiers)
    warnings = list(plan.warnings)
    if cuts.total <= 0:
        warnings.append(
            f"no customer was billed in the {plan.value_months} months before {plan.as_of}: every value tier is C"
        )
    return ScoreSummary(
        as_of=plan.as_of,
        explain_policy=str(plan.policy),
        models=models.source,
        n_scored=int(len(result)),
        n_explained=int(result["explained"].sum()),
        n_contactable=int(contactable.sum()),
        monthly_revenue=round(float(result["monthly_revenue"].clip(lower=0).sum()), 2),
        revenue_at_risk=round(float(result["revenue_at_risk"].sum()), 2),
        revenue_at_risk_contactable=round(float(result.loc[contactable, "revenue_at_risk"].sum()), 2),
        mean_p_churn=round(float(result["p_churn"].mean()), 6),
        mean_p_phase_out=None if result["p_phase_out"].isna().all() else round(float(result["p_phase_out"].mean()), 6),
        by_tier_segment=table,
        value_revenue=round(float(cuts.total), 2),
        value_tiers={"lookback_months": plan.value_months, "shares": dict(plan.value_tiers), "cuts": cuts.as_json()},
        by_value_tier_risk=tier_risk_matrix(result, plan.tier_order),
        warnings=warnings,
        timings_s=timings,
        input=plan.source,
        output=str(output),
        engine=engine,
        drift=drift,
    )


def finish_scoring(
    plan: ScoringPlan,
    models: ScoringModels,
    merged: ScoredBuckets,
    output: Path,
    summary_path: Path | None,
    clock: PhaseClock,
    engine: str = "local",
    drift_path: Path | None = None,
) -> ScoreSummary:
    """Merge, write ``output`` (``.csv`` or ``.parquet``), ``drift_path`` and ``summary_path`` (JSON, if given).

    Drift against the models' training reference is measured whenever there
    is one (:func:`run_drift`); ``drift_path`` only says where it is written.
    """
    result = merge_results(plan, models, merged, clock)
    write_table(result, output)
    clock.enter("drift")
    report = run_drift(plan, models, merged, result)
    if drift_path is not None:
        write_json(report, drift_path)
    drift = drift_summary(report, None if drift_path is None else str(drift_path))
    summary = summarize(result, plan, models, clock.stop(), output, engine, drift)
    if summary_path is not None:
        write_json(summary.as_json(), summary_path)
    return summary


def run_drift(plan: ScoringPlan, models: ScoringModels, merged: ScoredBuckets, result: pd.DataFrame) -> dict[str, Any]:
    """``drift.json``'s content: the buckets' merged counts and the run's scores against the training reference."""
    reference = models.reference
    if reference is None:
        log.warning("score: drift not measured: %s", models.reference_missing)
        return skipped_report(str(models.reference_missing), plan.as_of)
    counts = merged.drift_counts if merged.drift_counts is not None else np.zeros(reference.n_feature_bins, np.int64)
    scores = {name: result[name].to_numpy(dtype="float64") for name in SCORE_NAMES if result[name].notna().any()}
    return drift_report(reference, counts, scores, as_of=plan.as_of, warn=plan.drift_warn, alert=plan.drift_alert)


def default_drift_path(output: Path, summary_path: Path | None) -> Path:
    """``drift.json`` beside the summary, or beside the output (``<output stem>.drift.json``) without one."""
    if summary_path is not None:
        return Path(summary_path).with_name("drift.json")
    return Path(output).with_name(f"{Path(output).stem}.drift.json")


def check_output(output: Path) -> None:
    """Refuse an output name that is neither ``.csv`` nor ``.parquet`` before any work is done."""
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--output {output}: use a .csv or .parquet file name")
