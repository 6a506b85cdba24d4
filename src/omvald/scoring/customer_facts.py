"""Facts about each customer that a retention plan needs next to the scores: value and preferred channel.

Both are functions of one customer's own rows up to the as-of date, so a
bucket computes them for its customers (:func:`omvald.scoring.bucket.score_bucket`)
and both engines give the same numbers. Neither is a model feature.

- ``value`` (money): everything billed in the value lookback ``(t - m months,
  t]`` (``score.value_lookback_months``, 12 by default), credit notes
  included, never below 0. A month-end ``t`` looks back to a month end, as the
  phase-out label does (2025-02-28 - 12 months = 2024-02-29). It is the
  basis of the A/B/C value tiers (:mod:`omvald.scoring.value_tiers`) and of
  the saved revenue a retention action is worth (:mod:`omvald.actions.plan`).
- ``preferred_channel``: the channel the customer actually uses or receives,
  for "served through the channel they actually receive". In the window
  ``(t - days, t]`` (``features.lookback_days``): the channel of most
  *inbound* touchpoints (the customer's own contacts, opens, clicks,
  logins); a customer with none (a passive customer) gets the channel of
  most touchpoints the company sent; ties go to the first name in
  alphabetical order. Without any touchpoint it is missing, and the
  plan's rule table falls back to ``plan.default_channel``. Without a
  ``direction`` column every touchpoint counts as sent.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

FACT_COLUMNS = ("value", "preferred_channel")


def lookback_start(as_of: dt.date, months: int) -> dt.date:
    """The exclusive start of ``(t - months, t]``; a month end maps to a month end."""
    year, month = divmod(as_of.year * 12 + as_of.month - 1 - months, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    if as_of.day == calendar.monthrange(as_of.year, as_of.month)[1]:
        return dt.date(year, month, last)
    return dt.date(year, month, min(as_of.day, last))


def customer_value(billing: pd.DataFrame, ids: pd.Index, as_of: dt.date, months: int) -> pd.Series:
    """Billed in ``(t - months, t]`` per customer of ``ids`` (money, >= 0; 0 without invoices), index ``ids``."""
    if billing.empty or "amount" not in billing:
        return pd.Series(0.0, index=ids, dtype="float64")
    dates = pd.to_datetime(billing["invoice_date"]).to_numpy()
    start, end = np.datetime64(lookback_start(as_of, months)), np.datetime64(as_of)
    inside = (dates > start) & (dates <= end)
    amounts = billing["amount"].to_numpy(dtype=float)[inside]
    billed = pd.Series(amounts).groupby(billing["customer_id"].astype("str").to_numpy()[inside]).sum()
    return billed.reindex(ids).fillna(0.0).clip(lower=0.0).astype("float64")


def preferred_channel(touchpoints: pd.DataFrame, ids: pd.Index, as_of: dt.date, days: int) -> pd.Series:
    """The channel of most inbound touchpoints in ``(t - days, t]``, else of most sent ones (module docstring)."""
    out = pd.Series(None, index=ids, dtype="str")
    if touchpoints.empty:
        return out
    dates = pd.to_datetime(touchpoints["date"]).to_numpy()
    end = np.datetime64(as_of)
    inside = (dates > end - np.timedelta64(days, "D")) & (dates <= end)
    rows = pd.DataFrame(
        {
            "customer_id": touchpoints["customer_id"].astype("str").to_numpy()[inside],
            "channel": touchpoints["channel"].astype("str").to_numpy()[inside],
            "inbound": (
                (touchpoints["direction"].astype("str").to_numpy()[inside] == "inbound")
                if "direction" in touchpoints
                else np.zeros(int(inside.sum()), dtype=bool)
            ),
        }
    )
    if rows.empty:
        return out
    counts = rows.groupby(["customer_id", "inbound", "channel"]).size().rename("n").reset_index()
    # inbound first, then the most touchpoints, then the channel name: the first row per customer wins
    counts = counts.sort_values(["customer_id", "inbound", "n", "channel"], ascending=[True, False, False, True])
    best = counts.drop_duplicates("customer_id").set_index("customer_id")["channel"]
    return best.reindex(ids).astype("str")


def customer_facts(
    customers: pd.DataFrame,
    billing: pd.DataFrame,
    touchpoints: pd.DataFrame,
    as_of: dt.date,
    value_months: int,
    channel_days: int,
) -> pd.DataFrame:
    """:data:`FACT_COLUMNS` for every customer of one bucket's tables, indexed by ``customer_id``."""
    ids = pd.Index(customers["customer_id"].astype("str").to_numpy(), name="customer_id")
    return pd.DataFrame(
        {
            "value": customer_value(billing, ids, as_of, value_months),
            "preferred_channel": preferred_channel(touchpoints, ids, as_of, channel_days),
        },
        index=ids,
    )
