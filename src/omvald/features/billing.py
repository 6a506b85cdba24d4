"""Billing features at each as-of date: spend, price shocks, loyalty gap, payment, plan, products, usage.

Every window is ``(t - w, t]``: an invoice dated ``t`` is known at ``t``, one
dated ``t + 1`` is not. Month windows are calendar months (``t - 3 months``),
not multiples of 30 days: with month-end as-of dates a 30-day window would
silently drop invoices dated the 1st. "Last invoice" features use the last
invoice within 12 months (NaN when there is none); its reference invoice is
the oldest one at most 3 (12) months before it.

Families and the billing columns they need (absent column -> family left out):
``billing_core`` (amount), ``price_gap`` (list_price), ``payment`` (due_date,
paid_date), ``plan`` (plan), ``products`` (products), ``usage`` (usage).
"""

from __future__ import annotations

import pandas as pd

from omvald.config import FeatureConfig
from omvald.features.asof import connect, fetch_frame, with_spine_ids
from omvald.features.spec import BucketTables, FeatureSpec

PAYMENT_WINDOW_DAYS = 180
PRICE_INCREASE_MIN_PCT = 0.5  # smaller moves are rounding, not a price rise


# The business reason each billing feature speaks for (FeatureSpec.driver). A price rise shows in
# five correlated columns; the driver-level SHAP importance sums them so the reason is not split.
DRIVERS = {
    "spend": (
        "monthly_revenue",
        "amount_mean_3m",
        "amount_mean_6m",
        "amount_mean_12m",
        "credit_notes_12m",
        "invoices_12m",
        "days_since_last_invoice",
        "plan_last",
        "products_last",
        "usage_mean_3m",
    ),
    "price_change": (
        "price_shock_pct_3m",
        "price_shock_amount_3m",
        "price_shock_pct_12m",
        "price_increases_12m",
        "price_increase_max_pct_12m",
    ),
    "loyalty_gap": ("loyalty_gap_pct", "loyalty_gap_growth_12m"),
    "payment": ("days_late_max_180d", "days_late_mean_180d", "unpaid_invoices_180d"),
    "downsizing": ("amount_trend_6m", "plan_changes_12m", "downgrades_12m", "products_change_6m", "usage_trend_6m"),
}
_DRIVER_OF = {name: driver for driver, names in DRIVERS.items() for name in names}


def _spec(name: str, family: str, description: str, unit: str, requires: tuple[str, ...], kind: str = "numeric"):
    requires_billing = tuple(("billing", c) for c in requires)
    return FeatureSpec(name, family, description, unit, kind, requires_billing, driver=_DRIVER_OF[name])


def billing_feature_specs(cfg: FeatureConfig, columns: dict[str, list[str]]) -> list[FeatureSpec]:
    """Every billing feature (available or not: ``requires`` says which columns it needs)."""
    core, gap, pay = ("amount",), ("amount", "list_price"), ("amount", "due_date", "paid_date")
    plan, prod, use = ("amount", "plan"), ("amount", "products"), ("amount", "usage")
    return [
        _spec("monthly_revenue", "billing_core", "billed in the last month", "money", core),
        _spec("amount_mean_3m", "billing_core", "average billed per month, last 3 months", "money", core),
        _spec("amount_mean_6m", "billing_core", "average billed per month, last 6 months", "money", core),
        _spec("amount_mean_12m", "billing_core", "average billed per month, last 12 months", "money", core),
        _spec("amount_trend_6m", "billing_core", "billed in the last 3 months vs the 3 months before", "%", core),
        _spec("price_shock_pct_3m", "billing_core", "last invoice vs invoice about 3 months earlier", "%", core),
        _spec(
            "price_shock_amount_3m", "billing_core", "last invoice minus invoice about 3 months earlier", "money", core
        ),
        _spec(
            "price_shock_pct_12m",
            "billing_core",
            "last invoice vs the oldest invoice up to 12 months earlier",
            "%",
            core,
        ),
        _spec(
            "price_increases_12m", "billing_core", "price increases on an unchanged plan, last 12 months", "count", core
        ),
        _spec("price_increase_max_pct_12m", "billing_core", "largest single price increase, last 12 months", "%", core),
        _spec("credit_notes_12m", "billing_core", "credit notes or refunds, last 12 months", "count", core),
        _spec("invoices_12m", "billing_core", "invoices, last 12 months", "count", core),
        _spec("days_since_last_invoice", "billing_core", "days since the last invoice", "days", core),
        _spec("loyalty_gap_pct", "price_gap", "last invoice above the price a new customer pays", "%", gap),
        _spec("loyalty_gap_growth_12m", "price_gap", "growth of that gap over 12 months", "%-points", gap),
        _spec("days_late_max_180d", "payment", "most days a payment was late, last 180 days", "days", pay),
        _spec("days_late_mean_180d", "payment", "average days payments were late, last 180 days", "days", pay),
        _spec("unpaid_invoices_180d", "payment", "invoices past due and still unpaid, last 180 days", "count", pay),
        _spec("plan_last", "plan", "current plan", "category", plan, kind="categorical"),
        _spec("plan_changes_12m", "plan", "plan changes, last 12 months", "count", plan),
        _spec("downgrades_12m", "plan", "changes to a cheaper plan, last 12 months", "count", plan),
        _spec("products_last", "products", "products on the last invoice", "count", prod),
        _spec("products_change_6m", "products", "change in products over the last 6 months", "count", prod),
        _spec("usage_mean_3m", "usage", "average usage per month, last 3 months", "usage", use),
        _spec("usage_trend_6m", "usage", "usage in the last 3 months vs the 3 months before", "%", use),
    ]


def billing_features(tables: BucketTables, spine: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """Billing features for each spine row (customer_id, as_of), one row per spine row, in spine order.

    Only features whose billing columns are present are returned; amounts in
    the currency of the input, days as floats, counts as floats (0 when no
    invoices), NaN where undefined (no earlier invoice to compare with).
    """
    present = set(tables.billing.columns)
    con = connect(tables, spine)
    out = with_spine_ids(fetch_frame(con, _billing_sql(present)).drop(columns="id_length"), spine)
    con.close()
    for col in out.columns:
        if col not in ("customer_id", "as_of", "plan_last"):
            out[col] = out[col].astype("float64")
    return out


def _billing_sql(present: set[str]) -> str:
    has = present.__contains__
    # One row per customer and invoice day; credit notes (negative lines) are
    # kept out of the price comparisons and counted on their own.
    inv_cols = [
        "sum(amount) AS net",
        "sum(amount) FILTER (WHERE amount > 0) AS charge",
        "count(*) FILTER (WHERE amount < 0) AS credit_notes",
    ]
    if has("list_price"):
        inv_cols.append("sum(list_price) FILTER (WHERE amount > 0) AS list_price")
    if has("plan"):
        inv_cols.append("max(plan) FILTER (WHERE amount > 0) AS plan")
    if has("products"):
        inv_cols.append("sum(products) FILTER (WHERE amount > 0) AS products")
    if has("usage"):
        inv_cols.append("sum(usage) AS usage")
    lag_cols = ["lag(charge) OVER w AS prev_charge"]
    same_offer = ["TRUE"]
    for col in ("plan", "products", "list_price"):
        if has(col):
            lag_cols.append(f"lag({col}) OVER w AS prev_{col}")
    for col in ("plan", "products"):
        if has(col):
            same_offer.append(f"{col} IS NOT DISTINCT FROM prev_{col}")
    increase = (
        f"charge IS NOT NULL AND prev_charge > 0 AND charge > prev_charge * (1 + {PRICE_INCREASE_MIN_PCT} / 100)"
        f" AND {' AND '.join(same_offer)}"
    )
    cheaper = "list_price < prev_list_price" if has("list_price") else "charge < prev_charge"
    plan_change = "charge IS NOT NULL AND prev_plan IS NOT NULL AND plan IS DISTINCT FROM prev_plan"

    win = [
        "sum(net) FILTER (WHERE d > t_1m) AS billed_1m",
        "sum(net) FILTER (WHERE d > t_3m) AS billed_3m",
        "sum(net) FILTER (WHERE d > t_6m AND d <= t_3m) AS billed_prev_3m",
        "sum(net) FILTER (WHERE d > t_6m) AS billed_6m",
        "sum(net) AS billed_12m",
        "sum(credit_notes) AS credit_notes_12m",
        "count(charge) AS invoices_12m",
        f"count(*) FILTER (WHERE {increase}) AS price_increases_12m",
        f"max((charge / prev_charge - 1) * 100) FILTER (WHERE {increase}) AS price_increase_max_pct_12m",
    ]
    if has("plan"):
        win += [
            f"count(*) FILTER (WHERE {plan_change}) AS plan_changes_12m",
            f"count(*) FILTER (WHERE {plan_change} AND {cheaper}) AS downgrades_12m",
        ]
    if has("usage"):
        win += [
            "sum(usage) FILTER (WHERE d > t_3m) AS usage_3m",
            "sum(usage) FILTER (WHERE d > t_6m AND d <= t_3m) AS usage_prev_3m",
        ]

    # The last invoice at t (within the 12-month window) and its reference
    # invoices are looked up by ASOF joins on the charge invoices, not
    # aggregated over the window: one probe per spine row instead of an
    # arg_max per column over every invoice of the last 12 months.
    last_cols = ["c.d AS last_d", "c.charge AS last_charge", "c.ref3_charge", "c.ref12_charge"]
    last_cols += [f"c.{col} AS last_{col}" for col in ("list_price", "plan", "products") if has(col)]
    if has("list_price"):
        last_cols.append("c.ref12_list_price")
    first_6m = ""
    if has("products"):
        # the first charge invoice in (t - 6 months, t]: products half a year ago
        first_6m = """,
        first6 AS (
            SELECT sp.cid, sp.as_of, c.products AS products_6m_ago
            FROM sp ASOF JOIN ch c ON sp.cid = c.cid AND sp.t_6m < c.d
            WHERE c.d <= sp.as_of
        )"""
    select = [
        "coalesce(w.billed_1m, 0) AS monthly_revenue",
        "coalesce(w.billed_3m, 0) / 3 AS amount_mean_3m",
        "coalesce(w.billed_6m, 0) / 6 AS amount_mean_6m",
        "coalesce(w.billed_12m, 0) / 12 AS amount_mean_12m",
        "CASE WHEN w.billed_prev_3m > 0 THEN (coalesce(w.billed_3m, 0) / w.billed_prev_3m - 1) * 100 END"
        " AS amount_trend_6m",
        "(l.last_charge / l.ref3_charge - 1) * 100 AS price_shock_pct_3m",
        "l.last_charge - l.ref3_charge AS price_shock_amount_3m",
        "(l.last_charge / l.ref12_charge - 1) * 100 AS price_shock_pct_12m",
        "coalesce(w.price_increases_12m, 0) AS price_increases_12m",
        "w.price_increase_max_pct_12m",
        "coalesce(w.credit_notes_12m, 0) AS credit_notes_12m",
        "coalesce(w.invoices_12m, 0) AS invoices_12m",
        "sp.as_of - l.last_d AS days_since_last_invoice",
    ]
    if has("list_price"):
        gap = "(l.last_charge / nullif(l.last_list_price, 0) - 1) * 100"
        gap12 = "(l.ref12_charge / nullif(l.ref12_list_price, 0) - 1) * 100"
        select += [f"{gap} AS loyalty_gap_pct", f"{gap} - {gap12} AS loyalty_gap_growth_12m"]
    if has("due_date") and has("paid_date"):
        select += [
            "p.days_late_max_180d",
            "p.days_late_mean_180d",
            "coalesce(p.unpaid_invoices_180d, 0) AS unpaid_invoices_180d",
        ]
    if has("plan"):
        select += [
            "l.last_plan AS plan_last",
            "coalesce(w.plan_changes_12m, 0) AS plan_changes_12m",
            "coalesce(w.downgrades_12m, 0) AS downgrades_12m",
        ]
    if has("products"):
        select += ["l.last_products AS products_last", "l.last_products - f6.products_6m_ago AS products_change_6m"]
    if has("usage"):
        select += [
            "coalesce(w.usage_3m, 0) / 3 AS usage_mean_3m",
            "CASE WHEN w.usage_prev_3m > 0 THEN (coalesce(w.usage_3m, 0) / w.usage_prev_3m - 1) * 100 END"
            " AS usage_trend_6m",
        ]

    payment_cte = ""
    payment_join = ""
    if has("due_date") and has("paid_date"):
        # Point in time: a payment made after t is unknown at t, so such an
        # invoice is unpaid at t and its lateness runs until t.
        late = "greatest(0, least(coalesce(b.paid_date, sp.as_of), sp.as_of) - b.due_date)::DOUBLE"
        payment_cte = f""",
        pay AS (
            SELECT sp.cid, sp.as_of,
                   max({late}) AS days_late_max_180d, avg({late}) AS days_late_mean_180d,
                   count(*) FILTER (WHERE b.due_date <= sp.as_of
                                      AND (b.paid_date IS NULL OR b.paid_date > sp.as_of)) AS unpaid_invoices_180d
            FROM sp JOIN (
                SELECT ids.cid, invoice_date, due_date, paid_date
                FROM billing JOIN ids USING (customer_id)
                WHERE amount > 0 AND due_date IS NOT NULL
            ) b
              ON b.cid = sp.cid
             AND b.invoice_date > sp.as_of - {PAYMENT_WINDOW_DAYS} AND b.invoice_date <= sp.as_of
            GROUP BY sp.cid, sp.as_of
        )"""
        payment_join = "LEFT JOIN pay p ON p.cid = sp.cid AND p.as_of = sp.as_of"

    # The result carries strlen(customer_id), not the id (the caller puts the
    # spine's ids back): without any use of the id, DuckDB drops it from ``sp``,
    # then builds the hash table of the 12-month join on the other side, which
    # sums each window's floats in another order (last bits move).
    # Customers become small integer keys: joins and windows on them are far
    # cheaper than on id strings. Each charge invoice carries its reference
    # invoices ("the oldest invoice at most 3 / 12 months before this one",
    # found by ASOF joins), so "the last invoice at t" brings them along.
    return f"""
        WITH ids AS (
            SELECT customer_id, CAST(row_number() OVER () AS INTEGER) AS cid
            FROM (SELECT DISTINCT customer_id FROM spine)
        ),
        inv0 AS (
            SELECT ids.cid, invoice_date AS d, {", ".join(inv_cols)}
            FROM billing JOIN ids USING (customer_id)
            GROUP BY ids.cid, invoice_date
        ),
        inv AS (
            SELECT *, {", ".join(lag_cols)}
            FROM inv0
            WINDOW w AS (PARTITION BY cid, charge IS NULL ORDER BY d)
        ),
        ch0 AS (
            SELECT cid, d, charge{"".join(f", {c}" for c in ("list_price", "plan", "products") if has(c))},
                   CAST(d - INTERVAL 3 MONTH AS DATE) AS d3, CAST(d - INTERVAL 12 MONTH AS DATE) AS d12
            FROM inv0 WHERE charge IS NOT NULL
        ),
        ch AS (
            -- reference = the oldest charge invoice in [d - 3 (12) months, d), if any
            SELECT c.cid, c.d, c.charge{"".join(f", c.{c}" for c in ("list_price", "plan", "products") if has(c))},
                   CASE WHEN r3.d < c.d THEN r3.charge END AS ref3_charge,
                   CASE WHEN r12.d < c.d THEN r12.charge END AS ref12_charge
                   {", CASE WHEN r12.d < c.d THEN r12.list_price END AS ref12_list_price" if has("list_price") else ""}
            FROM ch0 c
            ASOF JOIN ch0 r3 ON c.cid = r3.cid AND c.d3 <= r3.d
            ASOF JOIN ch0 r12 ON c.cid = r12.cid AND c.d12 <= r12.d
        ),
        sp AS (
            SELECT ids.cid, spine.customer_id, spine.as_of, spine.spine_row,
                   CAST(as_of - INTERVAL 1 MONTH AS DATE) AS t_1m,
                   CAST(as_of - INTERVAL 3 MONTH AS DATE) AS t_3m,
                   CAST(as_of - INTERVAL 6 MONTH AS DATE) AS t_6m,
                   CAST(as_of - INTERVAL 12 MONTH AS DATE) AS t_12m
            FROM spine JOIN ids USING (customer_id)
        ),
        w AS (
            -- window is (t-12m, t]: an invoice dated t is known at t
            SELECT sp.cid, sp.as_of, {", ".join(win)}
            FROM sp JOIN inv i ON i.cid = sp.cid AND i.d > sp.t_12m AND i.d <= sp.as_of
            GROUP BY sp.cid, sp.as_of
        ),
        last AS (
            SELECT sp.cid, sp.as_of, {", ".join(last_cols)}
            FROM sp ASOF JOIN ch c ON sp.cid = c.cid AND sp.as_of >= c.d
            WHERE c.d > sp.t_12m
        ){first_6m}{payment_cte}
        SELECT strlen(sp.customer_id) AS id_length, sp.as_of, {", ".join(select)}
        FROM sp
        LEFT JOIN w ON w.cid = sp.cid AND w.as_of = sp.as_of
        LEFT JOIN last l ON l.cid = sp.cid AND l.as_of = sp.as_of
        {"LEFT JOIN first6 f6 ON f6.cid = sp.cid AND f6.as_of = sp.as_of" if has("products") else ""}
        {payment_join}
        ORDER BY sp.spine_row
    """
