"""Active / passive segment: does the customer seek contact themselves?

Active customers log in, open and click, call, complain and answer surveys;
passive ones only receive invoices and mailings. The rule lives in
``params.yaml`` (``features.active_rule``): a customer is active at ``t`` when
they made at least ``min_active_events`` customer-initiated touchpoints in
``(t - window_days, t]``.

``segment`` is returned for slicing metrics and reports; it is not a model
feature (``is_active`` carries the same information), so it has no spec.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from omvald.config import FeatureConfig
from omvald.features.asof import fresh_database
from omvald.features.spec import BucketTables, FeatureSpec

FAMILY = "segment"

# Events only the customer can cause, whatever the direction column says: an
# "opened" row is often logged with the direction of the mail (outbound).
CUSTOMER_EVENTS = frozenset({"opened", "clicked", "login", "complaint", "nps", "downgrade_request"})
# Customer-initiated unless the data says otherwise: an outbound "contact" is
# the company calling, an outbound "survey" is the invitation (the answer is
# "nps" or an inbound "survey"). Counting invitations made ~7% of the
# synthetic passive customers look active.
DIRECTIONAL_EVENTS = frozenset({"contact", "survey"})

# Weights for the engagement score. Opens count half: mail clients prefetch
# tracking pixels (e.g. Apple Mail Privacy Protection), so an open is weaker
# evidence of attention than a click, a login or a call.
EVENT_WEIGHTS = {"opened": 0.5}
DEFAULT_WEIGHT = 1.0


def map_values(values: pd.Series, fn: Callable[[str], Any], missing: Any) -> np.ndarray:
    """``fn`` applied to each distinct value (lower-cased), broadcast back; nulls get ``missing``.

    Vocabularies are small and tables large: mapping the distinct values
    keeps string work independent of the number of rows.
    """
    codes, uniques = _factorize(values)
    mapped = np.array([fn(str(u).lower()) for u in uniques] + [missing])
    return mapped[codes]  # code -1 (null) picks the trailing ``missing``


# The touchpoint and segment families map the same event / direction columns
# several times per bucket; factorizing a 4M-row text column costs ~0.3 s.
# Arrow-backed columns are immutable, so their factorization is kept while the
# column lives (weak reference, checked on every hit).
_FACTORIZED: dict[int, tuple[weakref.ref, np.ndarray, Any]] = {}


def _factorize(values: pd.Series) -> tuple[np.ndarray, Any]:
    key = getattr(values.array, "_pa_array", None)
    if key is None:
        return pd.factorize(values, use_na_sentinel=True)
    hit = _FACTORIZED.get(id(key))
    if hit is not None and hit[0]() is key:
        return hit[1], hit[2]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes.flags.writeable = False
    for stale in [k for k, (ref, _, _) in _FACTORIZED.items() if ref() is None]:
        del _FACTORIZED[stale]
    with contextlib.suppress(TypeError):  # not weak-referenceable: no caching
        _FACTORIZED[id(key)] = (weakref.ref(key), codes, uniques)
    return codes, uniques


def customer_codes(population: pd.Series, *others: pd.Series) -> list[np.ndarray]:
    """Integer codes of the population's ids and of each of ``others`` (-1 = not in the population).

    DuckDB joins on int64 far faster than on strings. String ids are looked up
    with Arrow's hash join (``index_in``), several times faster than
    ``Index.get_indexer`` on millions of touchpoint rows; the codes are the
    same as ``pd.factorize`` (order of first appearance).
    """
    arrays = [_large_strings(s) for s in (population, *others)]
    if any(a is None for a in arrays) or arrays[0].null_count:
        codes, uniques = pd.factorize(population)
        index = pd.Index(uniques)
        return [codes.astype(np.int64), *(index.get_indexer(ids) for ids in others)]
    uniques = pc.unique(arrays[0])
    return [
        pc.index_in(a, value_set=uniques).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) for a in arrays
    ]


def _large_strings(values: pd.Series) -> pa.Array | None:
    """``values`` as one Arrow large_string array, or None when they are not text."""
    try:
        if hasattr(values.array, "__arrow_array__"):
            arr = pa.array(values.array)
        else:
            arr = pa.array(values.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)):
        return None
    return arr.cast(pa.large_string())


def is_customer_initiated(df: pd.DataFrame) -> pd.Series:
    """True for touchpoints the customer started (bool Series aligned with ``df``).

    Customer-initiated = ``direction == "inbound"``, or an event in
    :data:`CUSTOMER_EVENTS` (opened, clicked, login, complaint, nps,
    downgrade_request; any direction), or an event in
    :data:`DIRECTIONAL_EVENTS` (contact, survey) whose direction is missing
    (column absent or null). Needs ``event``; ``direction`` is optional.
    """
    by_event = map_values(df["event"], lambda e: e in CUSTOMER_EVENTS, False).astype(bool)
    directional = map_values(df["event"], lambda e: e in DIRECTIONAL_EVENTS, False).astype(bool)
    if "direction" in df.columns:
        inbound = map_values(df["direction"], lambda d: d == "inbound", False).astype(bool)
        unknown = directional & df["direction"].isna().to_numpy()
    else:
        inbound = np.zeros(len(df), dtype=bool)
        unknown = directional
    return pd.Series(by_event | inbound | unknown, index=df.index, name="customer_initiated")


def active_events_name(cfg: FeatureConfig) -> str:
    return f"active_events_{cfg.active_rule.window_days}d"


def segment_feature_specs(cfg: FeatureConfig, columns: dict[str, list[str]]) -> list[FeatureSpec]:
    """Specs of the segment family; empty when the input has no touchpoints table."""
    present = set(columns.get("touchpoints", []))
    if not {"customer_id", "event"} <= present or not ({"date", "timestamp"} & present):
        return []
    rule = cfg.active_rule
    req = (("touchpoints", "event"),)
    return [
        FeatureSpec(
            "engagement_score",
            FAMILY,
            f"customer-initiated touchpoints per 30 days over the last {rule.window_days} days (opens count half)",
            "count",
            requires=req,
            driver="engagement",
        ),
        FeatureSpec(
            active_events_name(cfg),
            FAMILY,
            f"touchpoints the customer started, last {rule.window_days} days",
            "count",
            requires=req,
            driver="engagement",
        ),
        FeatureSpec(
            "is_active",
            FAMILY,
            f"seeks contact: at least {rule.min_active_events} self-started touchpoints in {rule.window_days} days",
            "flag",
            requires=req,
            driver="engagement",
        ),
    ]


def segment_features(tables: BucketTables, spine: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """One row per spine row: ``customer_id, as_of``, the segment features and ``segment``.

    Counts use customer-initiated touchpoints dated in ``(t - window_days, t]``;
    a customer without any is passive with score 0. Without a touchpoints
    table everyone is passive (no evidence of seeking contact).
    """
    rule = cfg.active_rule
    out = spine[["customer_id", "as_of"]].reset_index(drop=True)
    n = len(out)
    events = np.zeros(n)
    score = np.zeros(n)
    tp = tables.touchpoints
    columns = {"touchpoints": list(tp.columns)} if tp is not None else {}
    specs = segment_feature_specs(cfg, columns)
    if specs and n and len(tp):
        initiated = is_customer_initiated(tp).to_numpy()
        spine_cust, cust = customer_codes(out["customer_id"], tp["customer_id"])
        keep = initiated & (cust >= 0)
        rows = pd.DataFrame(
            {
                "cust": cust[keep],
                "date": tp["date" if "date" in tp.columns else "timestamp"].to_numpy()[keep],
                "weight": map_values(tp["event"], lambda e: EVENT_WEIGHTS.get(e, DEFAULT_WEIGHT), 0.0)[keep].astype(
                    float
                ),
            }
        )
        keys = pd.DataFrame(
            {
                "row_id": np.arange(n),
                "cust": spine_cust,
                "as_of": out["as_of"],
            }
        )
        with fresh_database() as con:
            con.register("rows_", rows)
            con.register("spine_", keys)
            # Window (t - W, t]: a touchpoint dated t is known at t.
            agg = con.execute(
                """
                WITH s AS (SELECT row_id, cust, CAST(as_of AS DATE) AS as_of FROM spine_),
                     r AS (SELECT cust, CAST(date AS DATE) AS date, weight FROM rows_)
                SELECT s.row_id, count(*) AS n, sum(r.weight) AS w
                FROM s JOIN r ON s.cust = r.cust
                     AND r.date <= s.as_of AND r.date > s.as_of - CAST(? AS INTEGER)
                GROUP BY s.row_id
                """,
                [rule.window_days],
            ).fetchnumpy()
        idx = np.asarray(agg["row_id"], dtype=np.int64)
        events[idx] = np.asarray(agg["n"], dtype=float)
        score[idx] = np.asarray(agg["w"], dtype=float)
    active = events >= rule.min_active_events
    if specs:
        out["engagement_score"] = score * 30.0 / rule.window_days
        out[active_events_name(cfg)] = events
        out["is_active"] = active.astype("float64")
    out["segment"] = pd.Series(np.where(active, "active", "passive"), dtype="str")
    return out
