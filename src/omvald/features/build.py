"""Build features: the pure per-bucket entry point that every engine calls.

:func:`build_features` turns one bucket's interim tables into one row per
(customer, as-of date) of the population: every available feature, the
``segment``, ``tenure_months``, ``monthly_revenue`` and, when asked, the
labels. It depends only on each customer's own rows, the as-of date and
the facts about the whole input in ``meta`` (:mod:`omvald.features.facts`),
so one bucket or sixteen give the same rows; the features stage
(:mod:`omvald.features.stage`), scoring and Spark all call it. No paths, no
I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from omvald.config import FeatureConfig
from omvald.features import asof, btyd_fit, labels, registry
from omvald.features.billing import billing_features
from omvald.features.btyd import btyd_features
from omvald.features.facts import AttributeFacts, attribute_meta
from omvald.features.purchases import purchase_features
from omvald.features.segments import segment_features
from omvald.features.spec import BucketTables
from omvald.features.static import static_features
from omvald.features.touchpoints import touchpoint_features

KEYS = ["customer_id", "as_of"]
ALWAYS = ["segment", "tenure_months", "monthly_revenue"]
TABLES = ("customers", "billing", "touchpoints")


def build_features(
    tables: BucketTables,
    as_of_dates: list[dt.date],
    cfg: FeatureConfig,
    meta: dict[str, Any],
    with_labels: bool = True,
) -> pd.DataFrame:
    """Features (and labels) for one bucket of customers at each as-of date.

    In: the bucket's interim tables, the as-of dates, the feature settings
    and the interim ``meta.json`` (``contractual``, ``columns``, ``rows``,
    ``data_end``; pass the features stage's meta, which adds
    ``binding_column`` and ``attribute_kinds``, to get bucket-independent
    columns, and ``billing_observed_until``, without which phase-out labels
    assume billing is observed through ``data_end``). Out: one row per
    customer in the population at each date, sorted by ``as_of,
    customer_id``: keys, the available features of the registry (float64,
    or strings for categoricals), ``segment``, ``tenure_months``,
    ``monthly_revenue`` and, if ``with_labels``, ``churn`` (Int8),
    ``phase_out`` and ``next_revenue`` (float64), missing where ``as_of +
    horizon_days > data_end`` (the last two also where it is after
    ``billing_observed_until``). Inputs are not modified.
    """
    dates = sorted(set(as_of_dates))
    meta = feature_meta(meta, tables, dates, cfg)
    contractual = bool(meta.get("contractual", "churn_date" in tables.customers.columns))
    spine = asof.population_spine(tables, dates, cfg, contractual)
    entries = registry.registry_entries(cfg, meta)
    available = [e.spec for e in entries if e.available]
    # Every family returns one row per spine row in spine order, so the
    # frames line up by position: no joins or sorts on the string keys.
    frames = [
        billing_features(tables, spine, cfg),
        static_features(tables, spine, cfg, binding_column=meta.get("binding_column")),
        touchpoint_features(tables, spine, cfg),
        segment_features(tables, spine, cfg),
    ]
    families = {spec.family for spec in available}
    if "purchases" in families:
        frames.append(purchase_features(tables, spine, cfg))
    if "btyd" in families:
        frames.append(btyd_features(tables, spine, cfg, meta["btyd"]))
    if with_labels:
        data_end = dt.date.fromisoformat(str(meta["data_end"]))
        billing_empty = int(meta.get("rows", {}).get("billing", len(tables.billing))) == 0
        until = meta.get("billing_observed_until")
        billing_until = dt.date.fromisoformat(str(until)) if until else None
        frames.append(labels.labels(tables, spine, cfg, data_end, contractual, billing_empty, billing_until))
    found: dict[str, pd.Series] = {}
    for frame in frames:
        _check_aligned(frame, spine)
        for col in frame.columns:
            if col not in KEYS and col not in found:
                found[col] = frame[col]
    kinds = {spec.name: spec.kind for spec in available}
    for name in ALWAYS:
        kinds.setdefault(name, "categorical" if name == "segment" else "numeric")
    result = _assemble(spine, kinds, found)
    if with_labels:
        for name in ("churn", "phase_out", "next_revenue"):
            result[name] = found[name].array
    return result


def _check_aligned(frame: pd.DataFrame, spine: pd.DataFrame) -> None:
    """Raise if a family's rows are not the spine's rows in the spine's order (a bug, not bad input)."""
    ids, expected = frame["customer_id"].reset_index(drop=True), spine["customer_id"].reset_index(drop=True)
    if ids.dtype != expected.dtype:
        ids, expected = ids.astype(object), expected.astype(object)
    if len(ids) != len(expected) or not ids.equals(expected):
        raise AssertionError("a feature family returned rows out of spine order")


def _assemble(spine: pd.DataFrame, kinds: dict[str, str], found: dict[str, pd.Series]) -> pd.DataFrame:
    """Keys, then each column of ``kinds`` in order (missing ones empty): numbers in one float64 block.

    At 1M customers x 12 dates a bucket's frame is ~1 GB; filling one
    preallocated block copies each column once, where a dict of columns is
    copied again when pandas consolidates it.
    """
    n = len(spine)
    numeric = [name for name, kind in kinds.items() if kind != "categorical"]
    # empty, not NaN-filled: nearly every column is written below (~330 MB per
    # 200k-customer bucket at 12 dates that would be written twice)
    block = np.empty((n, len(numeric)), dtype="float64", order="F")
    for i, name in enumerate(numeric):
        if name in found:
            block[:, i] = found[name].to_numpy(dtype="float64", na_value=np.nan)
        else:
            block[:, i] = np.nan
    result = pd.DataFrame(block, columns=numeric, copy=False)
    for position, (name, kind) in enumerate(kinds.items()):
        if kind == "categorical":
            values = found[name] if name in found else pd.Series(index=range(n), dtype="str")
            result.insert(position, name, values.astype("str").array)
    result.insert(0, "as_of", asof.to_date_objects(spine["as_of"]).to_numpy())
    result.insert(0, "customer_id", spine["customer_id"].to_numpy())
    return result


def feature_meta(
    meta: dict[str, Any],
    tables: BucketTables,
    dates: list[dt.date] | None = None,
    cfg: FeatureConfig | None = None,
) -> dict[str, Any]:
    """``meta`` plus ``columns``, ``attribute_kinds``, ``binding_column`` and, without contracts, the BG/NBD fit
    ``btyd``, where it lacks them.

    Missing facts are taken from ``tables`` alone (:mod:`omvald.features.facts`;
    the BG/NBD population at ``dates``, default ``data_end``, with
    ``cfg.btyd_sample_customers``): right for one bucket holding every
    customer; the stages pass facts decided on the whole input.
    """
    out = dict(meta)
    out.setdefault("columns", {t: [c for c in getattr(tables, t).columns if c != "hash_slot"] for t in TABLES})
    missing = [key for key in ("attribute_kinds", "binding_column") if key not in out]
    if missing:
        decided = attribute_meta(AttributeFacts.of_customers(tables.customers))
        out.update({key: decided[key] for key in missing})
    if dates is None:
        dates = [dt.date.fromisoformat(str(out["data_end"]))] if out.get("data_end") else []
    return btyd_fit.with_population_fit(out, tables, dates, cfg or FeatureConfig())
