"""Touchpoint features: what the customer and the company did together, and NPS.

Every window is ``(t - N days, t]``: a touchpoint dated ``t`` is known at
``t``; nothing after ``t`` is read. Each touchpoint is paired with the
spine rows of its customer whose as-of date lies in its window (two binary
searches over the sorted as-of dates, then a customers x dates table of
spine rows), and the pairs are summed to columns with ``numpy.bincount``, so
there is no Python loop over customers and no join. Price reactions, the
last contact and NPS still run in DuckDB (ASOF joins over few rows).

Width: channel x event counts exist for the 90-day window only; 30 and 180
days get per-event counts over all channels. The vocabulary comes from
``features.channels`` / ``features.events``; values outside it go to an
``other`` bucket, so an unseen channel never breaks a run or adds columns.
``email`` and the events ``sent``, ``opened``, ``clicked``, ``complaint`` are
always in the vocabulary because named features below depend on them.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from omvald.config import FeatureConfig
from omvald.features.asof import fresh_database
from omvald.features.segments import customer_codes, is_customer_initiated, map_values
from omvald.features.spec import BucketTables, FeatureSpec

FAMILY = "touchpoints"
NPS_FAMILY = "nps"
PRICE_FAMILY = "price_reaction"

DEFAULT_CHANNELS = ("email", "sms", "phone", "chat", "app", "web", "store", "letter", "invoice", "social")
DEFAULT_EVENTS = ("sent", "opened", "clicked", "login", "contact", "complaint", "survey", "nps", "downgrade_request")
REQUIRED_CHANNELS = ("email",)
REQUIRED_EVENTS = ("sent", "opened", "clicked", "complaint")
OTHER = "other"

EVENT_WINDOWS = (30, 90, 180)
PIVOT_WINDOW = 90
RATE_WINDOWS = (90, 180)
NPS_WINDOW = 365
PRICE_RISE_REACTION_DAYS = 30
# Self-service and answers to our messages are customer-initiated but not a contact.
NOT_A_CONTACT = frozenset({"sent", "opened", "clicked", "login", "survey", "nps"})
NPS_CATEGORIES = ("promoter", "passive", "detractor")
# The business reason a count of each event speaks for (FeatureSpec.driver), on every channel and
# window: 13 complaint columns are one reason. Events outside this map are a driver of their own.
EVENT_DRIVERS = {
    "sent": "outreach",
    "opened": "engagement",
    "clicked": "engagement",
    "login": "engagement",
    "contact": "service_contact",
    "complaint": "complaint",
    "survey": "satisfaction",
    "nps": "satisfaction",
    "downgrade_request": "downsizing",
}


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(value).strip().lower()).strip("_")


def _vocab(configured: tuple[str, ...], default: tuple[str, ...], required: tuple[str, ...]) -> list[str]:
    """Configured values (or the default), plus required ones, deduplicated by slug; ``other`` last."""
    out: list[str] = []
    for value in (*(configured or default), *required):
        slug = _slug(value)
        if slug and slug != OTHER and slug not in out:
            out.append(slug)
    return [*out, OTHER]


def event_driver(event: str) -> str:
    """The driver of count features of ``event`` (``complaint`` -> ``complaint``; unknown -> ``<event>_events``)."""
    return EVENT_DRIVERS.get(event, f"{event}_events")


def channel_vocab(cfg: FeatureConfig) -> list[str]:
    return _vocab(cfg.channels, DEFAULT_CHANNELS, REQUIRED_CHANNELS)


def event_vocab(cfg: FeatureConfig) -> list[str]:
    return _vocab(cfg.events, DEFAULT_EVENTS, REQUIRED_EVENTS)


def is_inbound_contact(df: pd.DataFrame) -> pd.Series:
    """Customer-initiated touchpoints that are a contact (call, chat, complaint, ...), not self-service."""
    not_contact = map_values(df["event"], lambda e: e in NOT_A_CONTACT, False).astype(bool)
    return is_customer_initiated(df) & ~not_contact


def is_nps_answer(df: pd.DataFrame) -> pd.Series:
    """Rows holding a 0-10 recommendation answer: event ``nps``, or ``survey`` with a 0-10 value."""
    if "value" not in df.columns:
        return pd.Series(False, index=df.index)
    answer_event = map_values(df["event"], lambda e: e in {"nps", "survey"}, False).astype(bool)
    on_scale = pd.to_numeric(df["value"], errors="coerce").between(0, 10).fillna(False).to_numpy(dtype=bool)
    return pd.Series(answer_event & on_scale, index=df.index, name="nps_answer")


def nps_category(value: pd.Series) -> pd.Series:
    """promoter (9-10) / passive (7-8) / detractor (0-6) as a categorical with fixed levels."""
    labels = np.select([value >= 9, value >= 7, value >= 0], ["promoter", "passive", "detractor"], default="")
    cat = pd.Categorical(labels, categories=list(NPS_CATEGORIES))
    return pd.Series(cat, index=value.index)


def _has(columns: dict[str, list[str]], table: str, *names: str) -> bool:
    return set(names) <= set(columns.get(table, []))


def touchpoint_feature_specs(cfg: FeatureConfig, columns: dict[str, list[str]]) -> list[FeatureSpec]:
    """Specs of the touchpoint families whose input columns are present in ``columns``."""
    if not _has(columns, "touchpoints", "customer_id", "channel", "event") or not (
        {"date", "timestamp"} & set(columns.get("touchpoints", []))
    ):
        return []
    ch_ev = (("touchpoints", "channel"), ("touchpoints", "event"))
    ev = (("touchpoints", "event"),)
    specs: list[FeatureSpec] = []
    for channel in channel_vocab(cfg):
        for event in event_vocab(cfg):
            what = f"'{event}' events via {channel}" if OTHER not in (channel, event) else f"{event} / {channel} events"
            specs.append(
                FeatureSpec(
                    f"tp_{channel}_{event}_{PIVOT_WINDOW}d",
                    FAMILY,
                    f"{what}, last {PIVOT_WINDOW} days",
                    "count",
                    requires=ch_ev,
                    driver=event_driver(event),
                )
            )
    for days in EVENT_WINDOWS:
        for event in event_vocab(cfg):
            specs.append(
                FeatureSpec(
                    f"tp_{event}_{days}d",
                    FAMILY,
                    f"'{event}' events on any channel, last {days} days",
                    "count",
                    requires=ev,
                    driver=event_driver(event),
                )
            )
    for days in EVENT_WINDOWS:
        specs.append(
            FeatureSpec(
                f"tp_inbound_{days}d",
                FAMILY,
                f"contacts the customer started (call, chat, complaint...), last {days} days",
                "count",
                requires=ev,
                driver="service_contact",
            )
        )
    specs.append(
        FeatureSpec(
            "days_since_last_inbound",
            FAMILY,
            f"days since the customer last contacted us (empty if not in {cfg.lookback_days} days)",
            "days",
            requires=ev,
            driver="service_contact",
        )
    )
    for days in RATE_WINDOWS:
        specs.append(
            FeatureSpec(
                f"email_open_rate_{days}d",
                FAMILY,
                f"e-mails opened per e-mail sent, last {days} days",
                "share",
                requires=ch_ev,
                driver="engagement",
            )
        )
        specs.append(
            FeatureSpec(
                f"email_click_rate_{days}d",
                FAMILY,
                f"e-mails clicked per e-mail sent, last {days} days",
                "share",
                requires=ch_ev,
                driver="engagement",
            )
        )
    if _has(columns, "billing", "customer_id", "invoice_date", "amount"):
        specs.append(
            FeatureSpec(
                "contacts_after_price_increase_90d",
                PRICE_FAMILY,
                f"contacts within {PRICE_RISE_REACTION_DAYS} days after a higher invoice, last 90 days",
                "count",
                requires=(*ev, ("billing", "invoice_date"), ("billing", "amount")),
                driver="price_change",  # the customer's reaction to a price rise
            )
        )
    if _has(columns, "touchpoints", "value"):
        req = (*ev, ("touchpoints", "value"))
        specs += [
            FeatureSpec(
                "nps_last",
                NPS_FAMILY,
                "last answer to 'would you recommend us' (0-10), last 12 months",
                "score 0-10",
                requires=req,
                driver="satisfaction",
            ),
            FeatureSpec(
                "nps_mean_12m",
                NPS_FAMILY,
                "average recommendation answer (0-10), last 12 months",
                "score 0-10",
                requires=req,
                driver="satisfaction",
            ),
            FeatureSpec(
                "nps_trend_12m",
                NPS_FAMILY,
                "last answer minus the average of earlier answers, last 12 months",
                "score 0-10",
                requires=req,
                driver="satisfaction",
            ),
            FeatureSpec(
                "nps_category_last",
                NPS_FAMILY,
                "promoter / passive / detractor at the last answer",
                "category",
                kind="categorical",
                requires=req,
                driver="satisfaction",
            ),
        ]
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"touchpoint feature names collide (check features.channels / features.events): {dupes}")
    return specs


def _codes(values: pd.Series, vocab: list[str]) -> np.ndarray:
    """Index of each value in ``vocab``; unseen values (and nulls) get the index of ``other``."""
    index = {v: i for i, v in enumerate(vocab)}
    other = index[OTHER]
    return map_values(values, lambda v: index.get(_slug(v), other), other).astype(np.int64)


def _sum_by(row_id: np.ndarray, key: np.ndarray, n_keys: int, weights: np.ndarray, n_rows: int) -> np.ndarray:
    """Sums of ``weights`` per (key, row): an array of ``n_keys`` x ``n_rows`` (one row per key)."""
    flat = np.bincount(key * n_rows + row_id, weights=weights, minlength=n_keys * n_rows)
    # float64 even without pairs (bincount of nothing gives int64); no copy otherwise
    return flat.astype(np.float64, copy=False).reshape(n_keys, n_rows)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # Opens of mails sent before the window, or repeated opens, could push the
    # share above 1; a share is capped at 1. Nothing sent -> NaN, not 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, np.minimum(num / den, 1.0), np.nan)


def _date_column(df: pd.DataFrame) -> str:
    return "date" if "date" in df.columns else "timestamp"


def touchpoint_features(tables: BucketTables, spine: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """One row per spine row: ``customer_id, as_of`` and every touchpoint feature the columns allow.

    Counts are float64 (0 when nothing happened); rates, recency and NPS are
    NaN when undefined; ``nps_category_last`` is a categorical.
    """
    tp, billing = tables.touchpoints, tables.billing
    columns = {"touchpoints": list(tp.columns), "billing": list(billing.columns) if billing is not None else []}
    specs = touchpoint_feature_specs(cfg, columns)
    out = spine[["customer_id", "as_of"]].reset_index(drop=True)
    if not specs:
        return out
    names = {s.name for s in specs}
    channels, events = channel_vocab(cfg), event_vocab(cfg)
    n_rows, n_ch, n_ev = len(out), len(channels), len(events)
    with_price = "contacts_after_price_increase_90d" in names
    with_nps = "nps_last" in names

    # Integer customer codes (joins on int64, not strings); rows of customers
    # outside the spine are dropped. One packed key per row:
    # key = ((channel * n_events + event) * 2 + inbound) * 2 + after_price_rise.
    has_billing = with_price and len(billing) > 0
    spine_cust, cust, *bill_cust = customer_codes(
        out["customer_id"], tp["customer_id"], *([billing["customer_id"]] if has_billing else [])
    )
    keep = cust >= 0
    chev = _codes(tp["channel"], channels) * n_ev + _codes(tp["event"], events)
    inbound = is_inbound_contact(tp).to_numpy(dtype=bool)
    rows = pd.DataFrame(
        {"cust": cust[keep], "date": tp[_date_column(tp)].to_numpy()[keep], "k": (chev * 2 + inbound)[keep]}
    )
    keys = pd.DataFrame(
        {
            "row_id": np.arange(n_rows),
            "cust": spine_cust,
            "as_of": out["as_of"],
        }
    )

    with fresh_database() as con:
        con.register("spine_", keys)
        con.register("rows_", rows)
        con.execute("CREATE TEMP TABLE s AS SELECT row_id, cust, CAST(as_of AS DATE) AS as_of FROM spine_")
        con.execute("CREATE TEMP TABLE r AS SELECT cust, CAST(date AS DATE) AS date, k FROM rows_")
        if has_billing:
            (bill_cust,) = bill_cust
            bill = pd.DataFrame(
                {
                    "cust": bill_cust,
                    "invoice_date": billing["invoice_date"].to_numpy(),
                    "amount": billing["amount"].to_numpy(dtype=float),
                }
            )
            con.register("billing_", bill[bill_cust >= 0])
            # A rise = the invoice total of a day exceeds the previous invoice day's
            # positive total. Only invoices dated on or before the contact can match
            # (ASOF: latest rise with invoice_date <= contact date), so no leakage.
            con.execute(
                """
                CREATE TEMP TABLE rises AS
                SELECT cust, invoice_date FROM (
                    SELECT cust, invoice_date, amount,
                           lag(amount) OVER (PARTITION BY cust ORDER BY invoice_date) AS prev
                    FROM (SELECT cust, CAST(invoice_date AS DATE) AS invoice_date, sum(amount) AS amount
                          FROM billing_ GROUP BY ALL))
                WHERE prev > 0 AND amount > prev
                """
            )
        price_rows = None
        if has_billing:
            # Contacts (k odd = inbound) at most PRICE_RISE_REACTION_DAYS after the latest
            # rise on or before the contact date, in the 90-day window. Only inbound rows
            # go through the ASOF join; the window counts below do not need it.
            price_rows = con.execute(
                f"""
                SELECT s.row_id, count(*) AS n
                FROM s JOIN (
                    SELECT r.cust, r.date
                    FROM (SELECT cust, date FROM r WHERE k % 2 = 1) r
                    ASOF JOIN rises x ON r.cust = x.cust AND r.date >= x.invoice_date
                    WHERE r.date - x.invoice_date <= {PRICE_RISE_REACTION_DAYS}
                ) c ON s.cust = c.cust AND c.date <= s.as_of AND c.date > s.as_of - 90
                GROUP BY s.row_id
                """
            ).fetchnumpy()
        last_inbound = con.execute(
            """
            SELECT s.row_id, s.as_of - i.date AS days
            FROM s ASOF JOIN (SELECT cust, date FROM r WHERE k % 2 = 1) i ON s.cust = i.cust AND s.as_of >= i.date
            """
        ).fetchnumpy()
        nps = _nps_aggregates(con, tp, cust) if with_nps else None

    agg = _window_counts(rows, keys, EVENT_WINDOWS)

    # Every numeric column is one row of a block (columns x spine rows, C order) that the
    # frame below wraps without a copy; at 1.5M spine rows each extra copy of the ~150
    # columns is ~2 GB and most of this function's time. The channel x event counts (the
    # leading specs, 110 of them by default) are bincount's own output; the other columns
    # share ``values``, so no block is filled with NaN only to be overwritten.
    nps_cols = _nps_columns(nps, n_rows) if nps is not None else {}
    pivot_names = [f"tp_{channel}_{event}_{PIVOT_WINDOW}d" for channel in channels for event in events]
    numeric = [s.name for s in specs if s.kind != "categorical"]
    if numeric[: len(pivot_names)] != pivot_names:
        raise AssertionError("the channel x event specs must lead the touchpoint specs, in this order")
    numeric = numeric[len(pivot_names) :]
    row = {name: i for i, name in enumerate(numeric)}
    values = np.full((len(numeric), n_rows), np.nan)

    row_id = np.asarray(agg["row_id"], dtype=np.int64)
    k = np.asarray(agg["k"], dtype=np.int64)
    inbound, chev = (k & 1).astype(bool), k >> 1
    ch, ev = chev // n_ev, chev % n_ev
    by_window = {
        days: np.asarray(agg[col], dtype=float)
        for days, col in zip(EVENT_WINDOWS, ("n_short", "n_mid", "n_long"), strict=True)
    }
    pivot = _sum_by(row_id, chev, n_ch * n_ev, by_window[PIVOT_WINDOW], n_rows)
    email = channels.index("email")
    for days, counts in by_window.items():
        values[[row[f"tp_{event}_{days}d"] for event in events]] = _sum_by(row_id, ev, n_ev, counts, n_rows)
        values[row[f"tp_inbound_{days}d"]] = np.bincount(row_id, weights=counts * inbound, minlength=n_rows)
        if days in RATE_WINDOWS:
            mail = _sum_by(row_id, ev, n_ev, counts * (ch == email), n_rows)
            sent = mail[events.index("sent")]
            values[row[f"email_open_rate_{days}d"]] = _ratio(mail[events.index("opened")], sent)
            values[row[f"email_click_rate_{days}d"]] = _ratio(mail[events.index("clicked")], sent)

    days_since = values[row["days_since_last_inbound"]]
    days_since.fill(np.nan)
    days = np.asarray(last_inbound["days"], dtype=float)
    days[days >= cfg.lookback_days] = np.nan  # only (t - lookback, t] is looked at
    days_since[np.asarray(last_inbound["row_id"], dtype=np.int64)] = days

    if with_price:
        price = values[row["contacts_after_price_increase_90d"]]
        price.fill(0.0)
        if price_rows is not None:
            ids = np.asarray(price_rows["row_id"], dtype=np.int64)
            price[:] = np.bincount(ids, weights=np.asarray(price_rows["n"], dtype=float), minlength=n_rows)
    for name, column in nps_cols.items():
        if name in row:
            values[row[name]] = column

    frame = pd.concat(
        [pd.DataFrame(pivot.T, columns=pivot_names, copy=False), pd.DataFrame(values.T, columns=numeric, copy=False)],
        axis=1,
    )
    frame.insert(0, "as_of", out["as_of"].to_numpy())
    frame.insert(0, "customer_id", out["customer_id"].to_numpy())
    for position, spec in enumerate(specs, start=2):
        if spec.kind == "categorical":
            frame.insert(position, spec.name, nps_cols[spec.name])
    return frame


def _days(values) -> np.ndarray:
    """Dates or timestamps as whole days since 1970 (int64; the day a timestamp falls on)."""
    return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]").astype(np.int64)


def _window_counts(rows: pd.DataFrame, keys: pd.DataFrame, windows: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Every (spine row, touchpoint) pair with the touchpoint in ``(t - longest window, t]``, and in which windows.

    In: touchpoint ``rows`` (``cust`` code, ``date``, key ``k``) and the spine
    ``keys`` (``row_id``, ``cust``, ``as_of``). Out: ``row_id``, ``k`` and, per
    pair, 1/0 in ``n_short`` / ``n_mid`` / ``n_long`` (the touchpoint lies in
    the short / middle / long window). Summed per spine row they are the window
    counts. The as-of dates are few and sorted, so the dates a touchpoint
    counts at are one run of them (two binary searches), and the spine row of
    (customer, date) comes from a customers x dates table: no join, no hash
    table, no sort (this replaced a DuckDB range join and GROUP BY that took a
    quarter of the bucket's time).
    """
    short, mid, long = windows
    spine_day = _days(keys["as_of"])
    dates, date_of_row = np.unique(spine_day, return_inverse=True)
    n_cust = int(max(keys["cust"].to_numpy().max(initial=-1), rows["cust"].to_numpy().max(initial=-1))) + 1
    row_of = np.full((n_cust, len(dates)), -1, dtype=np.int32)  # a bucket has far fewer than 2**31 spine rows
    row_of[keys["cust"].to_numpy(), date_of_row] = keys["row_id"].to_numpy()
    day = _days(rows["date"])
    # the window holds day when t - long < day <= t, i.e. day <= t < day + long
    first = np.searchsorted(dates, day, side="left")
    count = np.searchsorted(dates, day + long, side="left") - first
    pair_row = np.repeat(np.arange(len(day)), count)
    offset = np.arange(len(pair_row)) - np.repeat(np.cumsum(count) - count, count)
    date_index = first[pair_row] + offset
    row_id = row_of[rows["cust"].to_numpy()[pair_row], date_index].astype(np.int64)
    seen = row_id >= 0
    row_id, pair_row, date_index = row_id[seen], pair_row[seen], date_index[seen]
    age = dates[date_index] - day[pair_row]
    return {
        "row_id": row_id,
        "k": rows["k"].to_numpy()[pair_row],
        "n_short": (age < short).astype(np.float64),
        "n_mid": (age < mid).astype(np.float64),
        "n_long": np.ones(len(row_id)),
    }


def _nps_aggregates(con: duckdb.DuckDBPyConnection, tp: pd.DataFrame, cust: np.ndarray) -> dict[str, np.ndarray]:
    """Per spine row: number, sum and last of the 0-10 answers in ``(t - 365d, t]``."""
    mask = is_nps_answer(tp).to_numpy() & (cust >= 0)
    answers = pd.DataFrame(
        {
            "cust": cust[mask],
            "date": tp[_date_column(tp)].to_numpy()[mask],
            "ts": tp["timestamp" if "timestamp" in tp.columns else "date"].to_numpy()[mask],
            "value": pd.to_numeric(tp["value"], errors="coerce").to_numpy(dtype=float)[mask],
        }
    )
    con.register("answers_", answers)
    # seq breaks ties between answers with the same timestamp deterministically.
    return con.execute(
        f"""
        WITH a AS (
            SELECT cust, CAST(date AS DATE) AS date, value,
                   row_number() OVER (PARTITION BY cust ORDER BY CAST(ts AS TIMESTAMP), value) AS seq
            FROM answers_)
        SELECT s.row_id, count(*) AS n, sum(a.value) AS total, arg_max(a.value, a.seq) AS last
        FROM s JOIN a ON s.cust = a.cust AND a.date <= s.as_of AND a.date > s.as_of - {NPS_WINDOW}
        GROUP BY s.row_id
        """
    ).fetchnumpy()


def _nps_columns(agg: dict[str, np.ndarray], n_rows: int) -> pd.DataFrame:
    idx = np.asarray(agg["row_id"], dtype=np.int64)
    n = np.asarray(agg["n"], dtype=float)
    total = np.asarray(agg["total"], dtype=float)
    last_value = np.asarray(agg["last"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        earlier_mean = np.where(n > 1, (total - last_value) / (n - 1), np.nan)
    cols = {name: np.full(n_rows, np.nan) for name in ("nps_last", "nps_mean_12m", "nps_trend_12m")}
    cols["nps_last"][idx] = last_value
    cols["nps_mean_12m"][idx] = total / n
    cols["nps_trend_12m"][idx] = last_value - earlier_mean
    frame = pd.DataFrame(cols)
    frame["nps_category_last"] = nps_category(frame["nps_last"])
    return frame
