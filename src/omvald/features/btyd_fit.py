"""The BG/NBD population fit: parameters per as-of date, on data up to that date only.

Fitted once per as-of date before the buckets (the features stage in
``plan_features``, scoring at its as-of date), never per bucket: every
bucket, worker, Spark task and the scoring run read the same numbers from
the plain-JSON record this module returns (``meta["btyd"]``, also written to
``data/features/meta.json``)::

    {"model": "BG/NBD", "library": "lifetimes 0.11.3", "time_unit": "days",
     "sample_customers": 20000,
     "params": {"2024-01-31": {"r": ..., "alpha": ..., "a": ..., "b": ...}, ...},
     "fitted_on": {"2024-01-31": {"customers": 18234, "repeat_buyers": 9120}, ...},
     "unavailable": null}

``unavailable`` is the reason (a sentence) when some date could not be
fitted; the registry then lists the ``btyd`` family as unavailable with it
and the rest of the pipeline runs.

Point in time: at ``t`` the fit sees each customer's purchases up to ``t``
(whole history since the first purchase, as BG/NBD assumes), every customer
whose first purchase is on or before ``t`` -- including those who stopped
buying long ago, without whom P(alive) would be biased upwards -- and a
stable sample of them: customers whose hash slot
(:func:`omvald.buckets.hash_slot`) is below ``ceil(1024 x S / buyers_t)``,
``S`` = ``features.btyd_sample_customers`` and ``buyers_t`` the number of
customers with a purchase up to ``t``. Nothing dated after ``t`` changes
who is sampled or what they look like. Fitting is maximum likelihood
(lifetimes' ``BetaGeoFitter``, no penalty) on the distinct (x, t_x, T)
patterns weighted by their counts: deterministic, ~0.2 s for 20k customers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import math
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from omvald.buckets import N_SLOTS, hash_slot
from omvald.config import FeatureConfig
from omvald.features import asof
from omvald.features.btyd import PARAM_NAMES, beta_geo_fitter_class, customer_summary
from omvald.features.spec import BucketTables

log = logging.getLogger(__name__)

MODEL = "BG/NBD"
TIME_UNIT = "days"
# Below these the four parameters are not identified well enough to rank anyone by them.
MIN_CUSTOMERS = 100
MIN_REPEAT_BUYERS = 20
# BFGS gradient tolerances tried in turn. lifetimes' 1e-7 on the per-customer likelihood
# sometimes stops with "precision loss" at the optimum (gradient ~1e-7): one of 19 month
# ends of a 400-customer shop; where both converge, 1e-6 and 1e-7 agree to ~1e-5 relative.
FIT_TOLERANCES = (1e-7, 1e-6, 1e-5)


def fit_population(
    con: duckdb.DuckDBPyConnection,
    source: str,
    dates: list[dt.date],
    cfg: FeatureConfig,
    buyers: dict[dt.date, int] | None = None,
) -> dict[str, Any]:
    """Fit BG/NBD at each of ``dates`` on the purchases in relation ``source``; the ``meta["btyd"]`` record.

    In: an open DuckDB connection and a relation on it (a view or table
    name, or ``read_parquet('...')``) with ``customer_id``, ``invoice_date``,
    ``amount`` and optionally ``hash_slot`` (computed from ``customer_id``
    when absent); the as-of dates; ``cfg.btyd_sample_customers``; ``buyers``:
    the number of buyers up to each date in the whole input when ``source``
    holds only some customers (at least the sampled ones: the Spark engine
    collects just them, see :func:`first_purchase_counts`). Out: the
    record described in the module docstring. A date that cannot be fitted
    (too few buyers or repeat buyers, no convergence) makes the record
    ``unavailable`` with the reason, logged as a warning; it never raises
    for data reasons.
    """
    record: dict[str, Any] = {
        "model": MODEL,
        "library": f"lifetimes {metadata.version('lifetimes')}",
        "time_unit": TIME_UNIT,
        "sample_customers": cfg.btyd_sample_customers,
        "params": {},
        "fitted_on": {},
        "unavailable": None,
    }
    dates = sorted(set(dates))
    samples = sample_histories(con, source, dates, cfg.btyd_sample_customers, buyers)
    for day in dates:
        started = time.perf_counter()
        params, facts, problem = fit_one_date(samples.get(day))
        key = day.isoformat()
        if problem is not None:
            record["unavailable"] = f"the BG/NBD model could not be fitted at {key}: {problem}"
            log.warning("features: %s; the btyd features are left out", record["unavailable"])
            break
        record["params"][key] = params
        record["fitted_on"][key] = facts
        log.info(
            "features: BG/NBD at %s on %d customers (%d repeat buyers) in %.2f s: %s",
            key,
            facts["customers"],
            facts["repeat_buyers"],
            time.perf_counter() - started,
            ", ".join(f"{k}={v:.4g}" for k, v in params.items()),
        )
    return record


def fit_parquet(billing_path: Path, dates: list[dt.date], cfg: FeatureConfig) -> dict[str, Any]:
    """:func:`fit_population` on an interim ``billing.parquet`` (the features stage's call)."""
    con = asof.connect()
    try:
        return fit_population(con, f"read_parquet('{str(billing_path).replace(chr(39), chr(39) * 2)}')", dates, cfg)
    finally:
        con.close()


def fit_frame(
    billing: pd.DataFrame, dates: list[dt.date], cfg: FeatureConfig, buyers: dict[dt.date, int] | None = None
) -> dict[str, Any]:
    """:func:`fit_population` on an in-memory billing table (validated ``billing``, or a bucket's)."""
    con = asof.connect()
    try:
        asof.register_dated(con, "_btyd_billing", billing)
        return fit_population(con, "_btyd_billing", dates, cfg, buyers)
    finally:
        con.close()


def first_purchase_counts(billing: pd.DataFrame) -> dict[str, int]:
    """``{day: customers whose first purchase (an invoice with a positive amount) is that day}`` (ISO days).

    The counts of disjoint sets of customers add up; :func:`buyers_up_to`
    then gives the whole input's buyers at a date, which decide the sample
    (:func:`sample_slots`) without reading every customer's invoices.
    """
    bought = billing.loc[billing["amount"] > 0]
    firsts = pd.to_datetime(bought.groupby("customer_id", sort=False)["invoice_date"].min()).dt.strftime("%Y-%m-%d")
    return {str(day): int(n) for day, n in firsts.value_counts().items()}


def buyers_up_to(counts: dict[str, int], day: dt.date) -> int:
    """Customers whose first purchase is on or before ``day``, from :func:`first_purchase_counts`."""
    return sum(n for first, n in counts.items() if dt.date.fromisoformat(first) <= day)


def with_population_fit(
    meta: dict[str, Any], tables: BucketTables, dates: list[dt.date], cfg: FeatureConfig
) -> dict[str, Any]:
    """``meta`` with a ``btyd`` record covering ``dates``, fitting the missing dates on ``tables.billing``.

    Nothing to do for a contractual business, when every date is already
    fitted, or when an earlier fit was unavailable. Fitting here uses the
    rows given: pass the features plan's (or scoring's) meta so that buckets
    do not each fit their own population.
    """
    contractual = meta.get("contractual", "churn_date" in tables.customers.columns)
    record = meta.get("btyd")
    if contractual or (record is not None and record.get("unavailable")):
        return meta
    done = set(record["params"]) if record else set()
    missing = [d for d in sorted(set(dates)) if d.isoformat() not in done]
    if not missing:
        return meta
    if not {"customer_id", "invoice_date", "amount"} <= set(tables.billing.columns):
        return meta
    fresh = fit_frame(tables.billing, missing, cfg)
    if record is not None:
        fresh = {
            **fresh,
            "params": {**record["params"], **fresh["params"]},
            "fitted_on": {**record["fitted_on"], **fresh["fitted_on"]},
        }
    return {**meta, "btyd": fresh}


def sample_histories(
    con: duckdb.DuckDBPyConnection,
    source: str,
    dates: list[dt.date],
    sample_customers: int,
    buyers: dict[dt.date, int] | None = None,
) -> dict[dt.date, pd.DataFrame]:
    """Each date's sampled customers' (frequency, recency, age) in days: {date: DataFrame}.

    ``buyers``: the whole input's buyers per date (default: counted in ``source``).
    """
    columns = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    slot, slot_join = "b.hash_slot", ""
    if "hash_slot" not in columns:
        ids = con.execute(f"SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id FROM {source}").df()
        con.register("_btyd_slots", ids.assign(hash_slot=hash_slot(ids["customer_id"]).astype("int16")))
        slot, slot_join = "s.hash_slot", "JOIN _btyd_slots s ON s.customer_id = CAST(b.customer_id AS VARCHAR)"
    con.register("_btyd_dates", pd.DataFrame({"as_of": pd.Series(dates, dtype=object)}))
    firsts = f"""
        SELECT CAST(b.customer_id AS VARCHAR) AS customer_id, min({slot}) AS slot,
               min(CAST(b.invoice_date AS DATE)) AS first_d
        FROM {source} b {slot_join} WHERE b.amount > 0 GROUP BY 1
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _btyd_firsts AS {firsts}")
    if buyers is None:
        buyers = dict(
            con.execute(
                """SELECT CAST(d.as_of AS DATE), count(f.customer_id)
                   FROM _btyd_dates d LEFT JOIN _btyd_firsts f ON f.first_d <= CAST(d.as_of AS DATE) GROUP BY 1"""
            ).fetchall()
        )
    limits = {day: sample_slots(buyers.get(day, 0), sample_customers) for day in dates}
    widest = max(limits.values(), default=0)
    sampled = con.execute("SELECT * FROM _btyd_firsts WHERE slot < $k", {"k": widest}).df()
    billing = con.execute(
        f"""SELECT CAST(b.customer_id AS VARCHAR) AS customer_id, CAST(b.invoice_date AS DATE) AS invoice_date, b.amount
            FROM {source} b SEMI JOIN _btyd_firsts f ON f.customer_id = CAST(b.customer_id AS VARCHAR) AND f.slot < $k""",
        {"k": widest},
    ).df()
    con.execute("DROP TABLE _btyd_firsts")
    first_d = asof.to_date_objects(sampled["first_d"]).to_numpy()
    spine_parts = []
    for day in dates:
        keep = (sampled["slot"].to_numpy() < limits[day]) & (first_d <= day)
        spine_parts.append(pd.DataFrame({"customer_id": sampled["customer_id"].to_numpy()[keep], "as_of": day}))
    spine = pd.concat(spine_parts, ignore_index=True) if spine_parts else pd.DataFrame(columns=["customer_id", "as_of"])
    spine["as_of"] = spine["as_of"].astype(object)
    empty = pd.DataFrame({"customer_id": pd.Series(dtype="str")})
    summary = customer_summary(BucketTables(empty, billing, empty), spine)
    summary["as_of"] = asof.to_date_objects(summary["as_of"])
    return {day: part for day, part in summary.groupby("as_of", sort=True)}


def sample_slots(buyers: int, sample_customers: int) -> int:
    """Hash slots ``[0, k)`` holding about ``sample_customers`` of ``buyers`` customers (all slots if fewer)."""
    if buyers <= sample_customers:
        return N_SLOTS
    return min(N_SLOTS, max(1, math.ceil(N_SLOTS * sample_customers / buyers)))


def fit_one_date(history: pd.DataFrame | None) -> tuple[dict[str, float], dict[str, int], str | None]:
    """(params, {customers, repeat_buyers}, problem) for one date's (frequency, recency, age) in days."""
    if history is None or history.empty:
        return {}, {}, "no customer has bought anything yet"
    patterns = history.groupby(["frequency", "recency", "age"], sort=True).size().reset_index(name="weight")
    customers = int(patterns["weight"].sum())
    repeat = int(patterns.loc[patterns["frequency"] > 0, "weight"].sum())
    facts = {"customers": customers, "repeat_buyers": repeat}
    if customers < MIN_CUSTOMERS or repeat < MIN_REPEAT_BUYERS:
        return (
            {},
            facts,
            (
                f"{customers} customers have bought, {repeat} of them more than once "
                f"(at least {MIN_CUSTOMERS} and {MIN_REPEAT_BUYERS} needed); set features.as_of_first later"
            ),
        )
    for tol in FIT_TOLERANCES:
        fitter = beta_geo_fitter_class()()
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed), np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitter.fit(
                    patterns["frequency"], patterns["recency"], patterns["age"], weights=patterns["weight"], tol=tol
                )
            break
        except Exception as error:  # lifetimes raises ConvergenceError, LinAlgError, ValueError ...
            log.debug("BG/NBD fit with tol %g failed: %s %s", tol, error, printed.getvalue())
            failure = f"the optimiser failed ({type(error).__name__}: {str(error).strip()[:200]})"
    else:
        return {}, facts, failure
    params = {name: float(fitter.params_[name]) for name in PARAM_NAMES}
    if not all(np.isfinite(v) and v > 0 for v in params.values()):
        return {}, facts, f"the fitted parameters are not positive numbers ({params})"
    return params, facts, None
