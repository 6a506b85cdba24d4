"""Churn, phase-out and next-horizon revenue labels at each as-of date.

Definitions (DATA_CONTRACT), horizon ``H`` days, drop ``d``:

- churn: contractual -- ``churn_date`` in ``(t, t+H]``; non-contractual -- no
  invoice in ``(t, t+H]``;
- phase_out: not churned within ``H`` and billed in ``(t, t+H]`` at most
  ``(1 - d)`` x billed in ``(t-H, t]``; NaN when churned; 0 when nothing
  (or a net credit) was billed in ``(t-H, t]``; NaN everywhere when the
  business has no billing at all;
- next_revenue: billed in ``(t, t+H]`` (revenue at stake).

Phase-out compares whole calendar months, not raw days: the two windows are
``(t - m months, t]`` and ``(t, t + m months]`` with ``m`` the most months
that always fit in ``H`` days (31 days -> 1, 62 -> 2, 92 -> 3, 184 -> 6, 366 ->
12). Why: a 90-day window holds two or three monthly invoices depending on
the month and the invoice day, so three invoices before ``t`` and two after
would look like a 33% drop with no change at all. Month windows from a
month-end ``t`` end on month ends. A horizon shorter than 31 days holds no
whole month, so there is **no phase-out label** (NaN everywhere): a 15- or
30-day window of monthly billing holds one invoice or none, and nearly
every customer who stays would count as phased out. The train stage then
skips the phase-out model and says why.

A label at ``t`` exists only when ``t + H <= data_end``; otherwise all three
are missing. Labels are the only place that reads rows dated after ``t``.

Billing may stop before the end of data (a single snapshot: every history
ends the day of the export, churn dates follow). Then "nothing billed in
``(t, t+H]``" means "not observed", not "phased out". So ``phase_out`` and
``next_revenue`` also need ``t + H <= billing_observed_until``: the latest
invoice date plus one billing period (the median number of days between a
customer's consecutive invoices, between 1 and 92; 31 when nobody has two
invoices). An invoice dated ``d`` covers the period up to the next one, so
billing in advance or in arrears both count as observed through ``d`` plus
one period.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from omvald.config import FeatureConfig
from omvald.errors import ConfigError
from omvald.features.asof import connect, fetch_frame, with_spine_ids
from omvald.features.spec import BucketTables

LABEL_COLUMNS = ("churn", "phase_out", "next_revenue")
# Longest stretch, in days, that k consecutive calendar months can span (k = 1..12).
_MAX_DAYS_OF_MONTHS = (31, 62, 92, 123, 153, 184, 215, 245, 276, 306, 337, 366)


def phase_out_months(horizon_days: int) -> int:
    """Whole calendar months of the phase-out windows: the most that always fit in ``horizon_days`` (0 = no label)."""
    return sum(1 for days in _MAX_DAYS_OF_MONTHS if days <= horizon_days)


DEFAULT_BILLING_PERIOD_DAYS = 31
MAX_BILLING_PERIOD_DAYS = 92


def billing_coverage(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Any]:
    """How far billing is observed: latest invoice date, billing period and their sum.

    ``source`` is a relation with ``customer_id, invoice_date`` (a view name or
    ``read_parquet(...)``). Returns ``billing_end`` (ISO date or None when there
    is no invoice), ``billing_period_days`` (int) and ``billing_observed_until``
    (ISO date or None): ``billing_end + billing_period_days``.
    """
    end, median_gap = con.execute(
        f"""
        WITH d AS (SELECT DISTINCT customer_id, CAST(invoice_date AS DATE) AS day FROM {source}),
        g AS (SELECT day, day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap FROM d)
        SELECT max(day), median(gap) FILTER (WHERE gap > 0) FROM g
        """
    ).fetchone()
    period = DEFAULT_BILLING_PERIOD_DAYS if median_gap is None else int(round(float(median_gap)))
    period = min(max(period, 1), MAX_BILLING_PERIOD_DAYS)
    if end is None:
        return {"billing_end": None, "billing_period_days": period, "billing_observed_until": None}
    end = end if isinstance(end, dt.date) else dt.date.fromisoformat(str(end)[:10])
    until = end + dt.timedelta(days=period)
    return {"billing_end": end.isoformat(), "billing_period_days": period, "billing_observed_until": until.isoformat()}


def reference_start_sql(as_of: str) -> str:
    """SQL for the exclusive start of the phase-out comparison window ``(start, t]`` of date column ``as_of``.

    ``t - m months`` (a month end maps to a month end), or ``t - H days`` when
    ``m = 0``; parameters ``$months`` (:func:`phase_out_months`) and
    ``$horizon`` (days). Shared with the purchase features, whose "spend in
    the phase-out reference months" must be exactly the label's reference.
    """
    months = "CAST($months AS INTEGER)"
    return f"""CASE WHEN {months} = 0 THEN CAST({as_of} - CAST($horizon AS INTEGER) AS DATE)
                        WHEN {as_of} = last_day({as_of}) THEN last_day(CAST({as_of} - to_months({months}) AS DATE))
                        ELSE CAST({as_of} - to_months({months}) AS DATE) END"""


def label_sql(contractual: bool, billing_empty: bool) -> str:
    """SQL computing labels for every row of view ``spine`` (customer_id, as_of, spine_row), in spine_row order.

    The result holds ``as_of, churn, phase_out, next_revenue``, not the id
    (:func:`omvald.features.asof.with_spine_ids` puts it back).

    Uses views ``customers`` and ``billing`` and parameters ``$horizon`` (days),
    ``$keep`` (``1 - phase_out_drop``), ``$data_end`` and ``$billing_until``
    (the last day billing is observed; see the module docstring).
    """
    churn = (
        "c.churn_date > sp.as_of AND c.churn_date <= sp.horizon_end"
        if contractual
        else "coalesce(lb.invoices_next, 0) = 0"
    )
    phase_out = (
        "NULL"
        if billing_empty
        else """CASE WHEN sp.m = 0 THEN NULL
                     WHEN coalesce(lb.billed_prev, 0) <= 0 THEN 0.0
                     WHEN coalesce(lb.billed_next_phase, 0) <= $keep * lb.billed_prev THEN 1.0
                     ELSE 0.0 END"""
    )
    next_revenue = "NULL" if billing_empty else "coalesce(lb.billed_next, 0.0)"
    return f"""
        WITH s0 AS (
            SELECT customer_id, as_of, spine_row,
                   CAST(as_of + CAST($horizon AS INTEGER) AS DATE) AS horizon_end,
                   as_of = last_day(as_of) AS month_end,
                   CAST($months AS INTEGER) AS m
            FROM spine
        ),
        sp AS (
            -- phase-out windows in whole months (module docstring); month ends map to month ends
            SELECT *,
                   {reference_start_sql("as_of")} AS phase_start,
                   CASE WHEN m = 0 THEN horizon_end
                        WHEN month_end THEN last_day(CAST(as_of + to_months(m) AS DATE))
                        ELSE CAST(as_of + to_months(m) AS DATE) END AS phase_end
            FROM s0
        ),
        lb AS (
            -- (phase_start, t] is the comparison period; (t, phase_end] and (t, t+H] the future
            SELECT sp.customer_id, sp.as_of,
                   sum(b.amount) FILTER (WHERE b.invoice_date > sp.as_of AND b.invoice_date <= sp.horizon_end)
                       AS billed_next,
                   sum(b.amount) FILTER (WHERE b.invoice_date > sp.as_of AND b.invoice_date <= sp.phase_end)
                       AS billed_next_phase,
                   sum(b.amount) FILTER (WHERE b.invoice_date <= sp.as_of) AS billed_prev,
                   count(*) FILTER (WHERE b.invoice_date > sp.as_of AND b.invoice_date <= sp.horizon_end)
                       AS invoices_next
            FROM sp JOIN billing b
              ON b.customer_id = sp.customer_id
             AND b.invoice_date > sp.phase_start AND b.invoice_date <= sp.horizon_end
            GROUP BY sp.customer_id, sp.as_of
        ),
        lab AS (
            SELECT sp.customer_id, sp.as_of, sp.spine_row, sp.horizon_end <= $data_end AS observed,
                   sp.horizon_end <= $billing_until AS billing_observed,
                   CASE WHEN {churn} THEN 1 ELSE 0 END AS churned,
                   {phase_out} AS phase_out_if_stays,
                   {next_revenue} AS next_revenue
            FROM sp
            LEFT JOIN customers c ON c.customer_id = sp.customer_id
            LEFT JOIN lb ON lb.customer_id = sp.customer_id AND lb.as_of = sp.as_of
        )
        SELECT as_of,
               CASE WHEN observed THEN churned END::TINYINT AS churn,
               CASE WHEN observed AND billing_observed AND churned = 0 THEN phase_out_if_stays END::DOUBLE
                   AS phase_out,
               CASE WHEN observed AND billing_observed THEN next_revenue END::DOUBLE AS next_revenue
        FROM lab
        ORDER BY spine_row
    """


def label_params(cfg: FeatureConfig, data_end: dt.date, billing_until: dt.date | None = None) -> dict:
    """Parameters of :func:`label_sql`; ``billing_until`` None = billing observed through ``data_end``."""
    until = data_end if billing_until is None else billing_until
    return {
        "horizon": cfg.horizon_days,
        "months": phase_out_months(cfg.horizon_days),
        "keep": 1.0 - cfg.phase_out_drop,
        "data_end": data_end,
        "billing_until": until,
    }


def run_label_sql(
    con: duckdb.DuckDBPyConnection,
    cfg: FeatureConfig,
    data_end: dt.date,
    contractual: bool,
    billing_empty: bool,
    billing_until: dt.date | None = None,
) -> pd.DataFrame:
    """Labels for view ``spine`` on an open connection (see :func:`label_sql`; no ``customer_id``)."""
    sql = label_sql(contractual, billing_empty)
    params = label_params(cfg, data_end, billing_until)
    if billing_empty:
        params.pop("keep")
    return fetch_frame(con, sql, params)


def labels(
    tables: BucketTables,
    spine: pd.DataFrame,
    cfg: FeatureConfig,
    data_end: dt.date,
    contractual: bool,
    billing_empty: bool,
    billing_until: dt.date | None = None,
) -> pd.DataFrame:
    """Labels for each spine row: customer_id, as_of, churn (Int8), phase_out, next_revenue (float64).

    All three are missing where ``as_of + horizon_days > data_end``;
    ``phase_out`` and ``next_revenue`` also where ``as_of + horizon_days >
    billing_until`` (None = no such limit). ``billing_empty`` and
    ``billing_until`` describe the *whole* business (not just this bucket),
    so one bucket or many give the same labels.
    """
    con = connect(tables, spine)
    out = with_spine_ids(run_label_sql(con, cfg, data_end, contractual, billing_empty, billing_until), spine)
    con.close()
    out["churn"] = out["churn"].astype("Int8")
    for col in ("phase_out", "next_revenue"):
        out[col] = out[col].astype("float64")
    return out


def check_label_balance(
    paths: dict[str, Path], cfg: FeatureConfig, meta: dict[str, Any], labelled_dates: list[dt.date]
) -> None:
    """Raise ConfigError unless the population at the labelled dates has both churners and stayers.

    Runs one query over the whole interim folder (``paths``: table -> Parquet
    file) before any feature is computed.
    """
    con = connect()
    for table in ("customers", "billing"):
        path = str(paths[table]).replace("'", "''")
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    con.register("dates", pd.DataFrame({"as_of": pd.Series(labelled_dates, dtype=object)}))
    params = {"horizon": cfg.horizon_days}
    if meta["contractual"]:
        sql = """
            SELECT count(*) FILTER (WHERE c.churn_date > d.as_of AND c.churn_date <= d.as_of + CAST($horizon AS INTEGER)),
                   count(*) FILTER (WHERE c.churn_date IS NULL OR c.churn_date > d.as_of + CAST($horizon AS INTEGER))
            FROM customers c JOIN dates d
              ON c.signup_date <= d.as_of AND (c.churn_date IS NULL OR c.churn_date > d.as_of)
        """
    else:
        params["lookback"] = cfg.lookback_days
        sql = """
            WITH hits AS (
                SELECT b.customer_id, d.as_of,
                       bool_or(b.invoice_date <= d.as_of) AS in_population,
                       bool_or(b.invoice_date > d.as_of) AS billed_next
                FROM (SELECT DISTINCT customer_id, invoice_date FROM billing) b JOIN dates d
                  ON b.invoice_date > d.as_of - CAST($lookback AS INTEGER)
                 AND b.invoice_date <= d.as_of + CAST($horizon AS INTEGER)
                GROUP BY ALL
            )
            SELECT count(*) FILTER (WHERE in_population AND NOT billed_next),
                   count(*) FILTER (WHERE in_population AND billed_next)
            FROM hits
        """
    churners, stayers = con.execute(sql, params).fetchone()
    con.close()
    if churners == 0 or stayers == 0:
        what = "no customer churns" if churners == 0 else "every customer churns"
        first, last = labelled_dates[0], labelled_dates[-1]
        raise ConfigError(
            f"at the labelled as-of dates ({first} .. {last}, {churners + stayers} customer-dates) {what} "
            f"within features.horizon_days = {cfg.horizon_days}: a churn model needs both. Change "
            "features.horizon_days, features.as_of_first / as_of_last, or data.data_end so that the "
            "horizons cover both customers who leave and customers who stay."
        )
