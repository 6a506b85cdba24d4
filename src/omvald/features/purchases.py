"""Purchase-history features at each as-of date, for businesses without contracts.

A purchase is a customer's invoice day with at least one positive line
(credit notes and zero lines are not purchases); several invoices on one
day are one purchase, as in the BG/NBD model. Windows are ``(t - w, t]``
in days: a purchase dated ``t`` is known at ``t``. "Since the first
purchase" features use the whole history up to ``t``, not only the
lookback: a customer's usual rhythm is a fact of their whole history.

Only non-contractual businesses get this family (registry rule): billed on
a schedule, every contract customer buys every month, so counts and gaps
are near-constant and the billing family already says what they would.

The same per-customer summary (purchases, first and last purchase day) is
the input of the BG/NBD model (:mod:`omvald.features.btyd`): frequency
``x`` = purchases - 1, recency ``t_x`` = last - first purchase day, age
``T`` = ``t`` - first purchase day, all in days.
"""

from __future__ import annotations

import pandas as pd

from omvald.config import FeatureConfig
from omvald.features.asof import connect, fetch_frame
from omvald.features.labels import phase_out_months, reference_start_sql
from omvald.features.spec import BucketTables, FeatureSpec

FAMILY = "purchases"
WINDOW_DAYS = (30, 90, 180, 365)
REQUIRES = (("billing", "amount"),)
CONTRACTUAL_REASON = (
    "contractual business: customers are billed on a schedule, so purchase counts and gaps are near-constant "
    "(the billing features describe them); purchase history is used for businesses without contracts"
)


def purchase_feature_specs(cfg: FeatureConfig) -> list[FeatureSpec]:
    """Every purchase-history feature (available only for non-contractual businesses)."""
    months = phase_out_months(cfg.horizon_days)
    reference = f"the last {months} whole months" if months else f"the last {cfg.horizon_days} days"

    def spec(name: str, description: str, unit: str, driver: str) -> FeatureSpec:
        return FeatureSpec(name, FAMILY, description, unit, "numeric", REQUIRES, driver=driver)

    specs = [spec(f"purchases_{w}d", f"purchases, last {w} days", "count", "purchase_frequency") for w in WINDOW_DAYS]
    return [
        *specs,
        spec("purchases_total", "purchases since the first purchase", "count", "purchase_frequency"),
        spec("days_since_first_purchase", "days since the first purchase", "days", "tenure"),
        spec("days_since_last_purchase", "days since the last purchase", "days", "recency"),
        spec("purchase_gap_mean_days", "usual days between purchases (average)", "days", "purchase_frequency"),
        spec("purchase_gap_std_days", "spread of the days between purchases", "days", "purchase_frequency"),
        spec(
            "purchase_overdue_ratio",
            "days since the last purchase, in multiples of the usual gap between purchases",
            "ratio",
            "recency",
        ),
        spec(
            "spend_reference_months",
            f"spent in {reference} (the amount phase-out is measured against)",
            "money",
            "spend",
        ),
        spec("first_purchase_amount", "amount of the first purchase", "money", "spend"),
        spec("last_purchase_amount", "amount of the last purchase", "money", "spend"),
        spec(
            "purchase_month_share",
            "share of months with a purchase since the first purchase",
            "share",
            "purchase_frequency",
        ),
    ]


def purchase_features(tables: BucketTables, spine: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """Purchase-history features for each spine row (customer_id, as_of), one row per spine row, in spine order.

    Counts are floats (0 when no purchase), days and money floats, NaN where
    undefined: no purchase up to ``t`` (days, amounts), fewer than two
    purchases (gap mean, overdue ratio) or three (gap spread).
    """
    con = connect(tables, spine)
    params = {"horizon": cfg.horizon_days, "months": phase_out_months(cfg.horizon_days)}
    out = fetch_frame(con, purchase_sql(), params)
    con.close()
    for col in out.columns:
        if col not in ("customer_id", "as_of"):
            out[col] = out[col].astype("float64")
    return out


def history_sql() -> str:
    """CTEs ``ids``, ``days`` and ``hist`` over views ``spine`` and ``billing`` (for ``WITH``, no leading keyword).

    ``days``: one row per customer (small integer ``cid``) and purchase day
    ``d`` with its ``charge`` (sum of the positive lines). ``hist``: each
    purchase day with the running history up to and including it: ``n``
    purchases, ``first_d``, ``first_amount``, ``gap_sq_sum`` (sum of squared
    days between consecutive purchases) and ``months`` (calendar months with
    a purchase). "The history at t" is the ``hist`` row of the last purchase
    day ``<= t`` (an ASOF join): one probe per spine row, whatever the
    length of the history.
    """
    return """
        ids AS (
            SELECT customer_id, CAST(row_number() OVER () AS INTEGER) AS cid
            FROM (SELECT DISTINCT customer_id FROM spine)
        ),
        days AS (
            SELECT ids.cid, invoice_date AS d, sum(amount) FILTER (WHERE amount > 0) AS charge
            FROM billing JOIN ids USING (customer_id)
            GROUP BY ids.cid, invoice_date
            HAVING count(*) FILTER (WHERE amount > 0) > 0
        ),
        steps AS (
            SELECT cid, d, charge,
                   d - lag(d) OVER w AS gap,
                   CASE WHEN date_trunc('month', d) IS DISTINCT FROM date_trunc('month', lag(d) OVER w)
                        THEN 1 ELSE 0 END AS new_month
            FROM days
            WINDOW w AS (PARTITION BY cid ORDER BY d)
        ),
        hist AS (
            SELECT cid, d, charge,
                   row_number() OVER w AS n,
                   first_value(d) OVER w AS first_d,
                   first_value(charge) OVER w AS first_amount,
                   coalesce(sum(CAST(gap AS BIGINT) * gap) OVER w, 0) AS gap_sq_sum,
                   sum(new_month) OVER w AS months
            FROM steps
            WINDOW w AS (PARTITION BY cid ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )"""


def purchase_sql() -> str:
    """SQL for :func:`purchase_features` on views ``spine`` and ``billing``; parameters ``$horizon``, ``$months``."""
    counts = ", ".join(f"count(*) FILTER (WHERE p.d > sp.as_of - {w}) AS n_{w}" for w in WINDOW_DAYS)
    windows = ", ".join(f"coalesce(w.n_{w}, 0) AS purchases_{w}d" for w in WINDOW_DAYS)
    longest = max(WINDOW_DAYS)
    return f"""
        WITH {history_sql()},
        sp AS (
            SELECT ids.cid, spine.customer_id, spine.as_of, spine.spine_row,
                   {reference_start_sql("spine.as_of")} AS ref_start
            FROM spine JOIN ids USING (customer_id)
        ),
        w AS (
            -- windows are (t - w, t]: a purchase dated t is known at t
            SELECT sp.cid, sp.as_of, {counts}
            FROM sp JOIN days p ON p.cid = sp.cid AND p.d > sp.as_of - {longest} AND p.d <= sp.as_of
            GROUP BY sp.cid, sp.as_of
        ),
        spend AS (
            -- the phase-out label's reference amount: every invoice line (credit notes too) in (ref_start, t]
            SELECT sp.cid, sp.as_of, sum(b.amount) AS amount
            FROM sp JOIN (SELECT ids.cid, invoice_date, amount FROM billing JOIN ids USING (customer_id)) b
              ON b.cid = sp.cid AND b.invoice_date > sp.ref_start AND b.invoice_date <= sp.as_of
            GROUP BY sp.cid, sp.as_of
        ),
        last AS (
            SELECT sp.cid, sp.as_of, h.d, h.charge, h.n, h.first_d, h.first_amount, h.gap_sq_sum, h.months
            FROM sp ASOF JOIN hist h ON sp.cid = h.cid AND sp.as_of >= h.d
        )
        SELECT sp.customer_id, sp.as_of, {windows},
               coalesce(l.n, 0) AS purchases_total,
               sp.as_of - l.first_d AS days_since_first_purchase,
               sp.as_of - l.d AS days_since_last_purchase,
               CASE WHEN l.n >= 2 THEN (l.d - l.first_d) / (l.n - 1) END AS purchase_gap_mean_days,
               CASE WHEN l.n >= 3 THEN sqrt(greatest(
                   (l.gap_sq_sum - (l.d - l.first_d) * (l.d - l.first_d) / (l.n - 1)) / (l.n - 2), 0)) END
                   AS purchase_gap_std_days,
               CASE WHEN l.n >= 2 THEN (sp.as_of - l.d) / ((l.d - l.first_d) / (l.n - 1)) END
                   AS purchase_overdue_ratio,
               coalesce(s.amount, 0) AS spend_reference_months,
               l.first_amount AS first_purchase_amount,
               l.charge AS last_purchase_amount,
               l.months / (datediff('month', l.first_d, sp.as_of) + 1) AS purchase_month_share
        FROM sp
        LEFT JOIN w ON w.cid = sp.cid AND w.as_of = sp.as_of
        LEFT JOIN spend s ON s.cid = sp.cid AND s.as_of = sp.as_of
        LEFT JOIN last l ON l.cid = sp.cid AND l.as_of = sp.as_of
        ORDER BY sp.spine_row
    """
