"""Score one bucket of customers: the step both engines run once per bucket.

:func:`score_bucket` takes one bucket's validated tables, the run's
:class:`~omvald.scoring.plan.ScoringPlan` and the models, and returns a
:class:`BucketResult`: features at the as-of date -> probabilities, tier and
revenue at risk (:func:`omvald.scoring.score.score_features`) -> reason
codes for the customers the ``--explain`` policy picks. The results of all
buckets are merged by :class:`omvald.scoring.finish.ScoredBuckets`.

Reason codes with ``top:N`` depend on every customer's revenue at risk, so
a bucket cannot know whether its customers are in the run's top N. Either
it explains its own top N right away (``defer_top=False``: Spark, where the
buckets run in parallel and the driver should only collect rows) or it
hands their feature rows on as ``candidates`` and the finisher explains the
run's top N at the end (``defer_top=True``: the local engine, one bucket
after another, so no customer is explained twice). Both give the same
reasons: a customer in the run's top N is in their bucket's top N.

A new per-bucket output (a per-customer column, or a partial statistic to
merge at the end) is a field of :class:`BucketResult`, filled here, merged
in :class:`~omvald.scoring.finish.ScoredBuckets` and carried through
:meth:`BucketResult.rows` / :meth:`BucketResult.from_rows` on Spark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from omvald.features.build import build_features
from omvald.features.spec import BucketTables
from omvald.scoring import score as sc
from omvald.scoring.clock import PhaseClock
from omvald.scoring.customer_facts import customer_facts
from omvald.scoring.plan import ScoringModels, ScoringPlan, empty_table_columns
from omvald.scoring.select import select_for_explanation, top_n_positions

REASON_COLUMNS = sc.REASON_COLUMNS
# Spark rows carry a bucket's drift counts as JSON in this column, on the bucket's first row only.
DRIFT_COLUMN = "drift_counts"


@dataclass(frozen=True)
class BucketResult:
    """One bucket's scored customers.

    ``scores``: :data:`omvald.scoring.score.SCORE_COLUMNS`, one row per
    customer in the population at the as-of date. ``reasons``: the reason
    columns of the customers explained so far, indexed by ``customer_id``.
    ``candidates`` (``top:N`` deferred only): the feature rows of the
    bucket's best N (``customer_id``, the models' columns,
    ``revenue_at_risk``), explained by the finisher if they make the run's
    top N. ``drift_counts``: the bucket's feature values counted in the
    training reference's bins (:meth:`omvald.model.reference.Reference.count_features`;
    None without a reference), summed over buckets by the finisher.
    """

    scores: pd.DataFrame
    reasons: pd.DataFrame
    candidates: pd.DataFrame | None = None
    drift_counts: np.ndarray | None = None

    def rows(self) -> pd.DataFrame:
        """One frame of :data:`omvald.scoring.score.ROW_COLUMNS` plus :data:`DRIFT_COLUMN` (how a Spark task
        returns its bucket)."""
        out = assemble(self.scores, [self.reasons])
        drift = pd.Series(None, index=out.index, dtype="str")
        if self.drift_counts is not None and len(out):
            drift.iloc[0] = json.dumps(self.drift_counts.tolist())
        return out.assign(**{DRIFT_COLUMN: drift})

    @classmethod
    def from_rows(cls, rows: pd.DataFrame) -> BucketResult:
        """The result that :meth:`rows` wrote, for one bucket or many (``candidates`` are not carried: Spark
        explains in the task; the drift counts of all buckets in ``rows`` are summed)."""
        explained = rows["explained"].to_numpy(dtype=bool)
        reasons = rows.loc[explained, REASON_COLUMNS]
        reasons.index = rows.loc[explained, "customer_id"].astype("str").to_numpy()
        counts = None
        if DRIFT_COLUMN in rows:
            parts = [np.asarray(json.loads(text), dtype=np.int64) for text in rows[DRIFT_COLUMN].dropna()]
            counts = np.sum(parts, axis=0) if parts else None
        return cls(rows[sc.SCORE_COLUMNS], reasons, drift_counts=counts)


def score_bucket(
    tables: BucketTables,
    plan: ScoringPlan,
    models: ScoringModels,
    *,
    defer_top: bool = True,
    clock: PhaseClock | None = None,
) -> BucketResult:
    """Scores and reason codes of one bucket's population at ``plan.as_of``.

    ``tables`` are the bucket's validated tables (any row order the
    validation gives). ``defer_top``: with ``top:N``, hand the bucket's
    best N on as candidates instead of explaining them (see the module
    docstring). ``clock`` times the phases ``features``, ``predict`` and
    ``reasons``. An empty bucket gives an empty result.
    """
    clock = clock or PhaseClock()
    tables = with_empty_table_columns(tables, plan.empty_tables)
    if not len(tables.customers):
        return _empty_result()
    clock.enter("features")
    feats = build_features(tables, [plan.as_of], plan.features, plan.meta, with_labels=False)
    if not len(feats):
        return _empty_result()
    clock.enter("predict")
    feats = feats.reset_index(drop=True)
    facts = customer_facts(
        tables.customers,
        tables.billing,
        tables.touchpoints,
        plan.as_of,
        value_months=plan.value_months,
        channel_days=plan.features.lookback_days,
    )
    scores = sc.score_features(
        feats,
        models.churn,
        models.phase_out,
        contactable(tables.customers),
        horizon_days=plan.features.horizon_days,
        phase_out_drop=plan.features.phase_out_drop,
        risk_tiers=plan.risk_tiers,
        facts=facts,
    )
    drift = None
    if models.reference is not None:
        clock.enter("drift")
        drift = models.reference.count_features(feats)
    policy = plan.policy
    if policy.is_global and defer_top:
        candidates = top_candidates(feats, scores, models.columns, int(policy.value or 0))
        return BucketResult(scores, _no_reasons(), candidates, drift)
    if policy.is_global:
        chosen = np.zeros(len(scores), dtype=bool)
        chosen[top_n_positions(scores, int(policy.value or 0))] = True
    else:
        chosen = select_for_explanation(scores, policy)
    if not chosen.any():
        return BucketResult(scores, _no_reasons(), drift_counts=drift)
    clock.enter("reasons")
    return BucketResult(scores, explain_rows(feats.loc[chosen], plan, models), drift_counts=drift)


def explain_rows(feats: pd.DataFrame, plan: ScoringPlan, models: ScoringModels) -> pd.DataFrame:
    """Reason columns of the feature rows ``feats``, indexed by ``customer_id``."""
    reasons = sc.reason_codes(feats, models.churn, models.phase_out, plan.specs)
    reasons.index = feats["customer_id"].astype("str").to_numpy()
    return reasons


def top_candidates(feats: pd.DataFrame, scores: pd.DataFrame, columns: list[str], n: int) -> pd.DataFrame | None:
    """The feature rows (``customer_id``, ``columns``, ``revenue_at_risk``) of the best ``n`` by revenue at risk.

    Ties: lowest ``customer_id``. ``None`` when ``n`` is 0.
    """
    if n <= 0:
        return None
    keep = top_n_positions(scores, n)
    fresh = feats.iloc[keep][["customer_id", *[c for c in columns if c != "customer_id"]]].copy()
    fresh["customer_id"] = fresh["customer_id"].astype("str")
    fresh["revenue_at_risk"] = scores["revenue_at_risk"].to_numpy()[keep]
    return fresh.reset_index(drop=True)


def contactable(customers: pd.DataFrame) -> pd.Series:
    """``marketing_opt_in`` indexed by ``customer_id`` (no such column: nobody is contactable)."""
    ids = customers["customer_id"].astype("str").to_numpy()
    if "marketing_opt_in" not in customers:
        return pd.Series(False, index=ids)
    return pd.Series(customers["marketing_opt_in"].fillna(False).astype(bool).to_numpy(), index=ids)


def with_empty_table_columns(tables: BucketTables, empty_tables: tuple[str, ...]) -> BucketTables:
    """Give the tables that are empty in the whole input every optional contract column, so their features build."""
    if not empty_tables:
        return tables
    frames = {name: getattr(tables, name) for name in ("customers", "billing", "touchpoints")}
    for name in empty_tables:
        df = frames[name]
        extra = {c: pd.Series(dtype=dtype) for c, dtype in empty_table_columns(name, list(df.columns)).items()}
        if extra:
            frames[name] = df.assign(**extra)
    return BucketTables(**frames)


def assemble(scores: pd.DataFrame, reason_parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Scores with reason columns (empty for customers not explained), sorted by ``customer_id``.

    Columns: :data:`omvald.scoring.score.ROW_COLUMNS`.

    ``reason_parts`` are reason frames indexed by ``customer_id``; a
    customer is ``explained`` when one of them holds their row.
    """
    reason_parts = [r for r in reason_parts if len(r)]
    scores = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    ids = scores["customer_id"].to_numpy()
    if reason_parts:
        found = pd.concat(reason_parts)
        reasons = found.reindex(ids)
        explained = reasons.index.isin(found.index)
        # reindex turns all-missing str columns into object/float: restore the schema
        reasons = reasons.astype({c: ("float64" if c.endswith("_contribution") else "str") for c in reasons.columns})
    else:
        reasons = sc.empty_reason_frame(pd.RangeIndex(len(scores)))
        explained = np.zeros(len(scores), dtype=bool)
    reasons = reasons.reset_index(drop=True)
    out = pd.concat([scores, reasons], axis=1)
    out["explained"] = np.asarray(explained, dtype=bool)
    return out[sc.ROW_COLUMNS]


def _no_reasons() -> pd.DataFrame:
    return sc.empty_reason_frame(pd.Index([], dtype="str"))


def _empty_result() -> BucketResult:
    return BucketResult(pd.DataFrame(columns=sc.SCORE_COLUMNS), _no_reasons())
