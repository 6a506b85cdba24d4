"""The purchase-only synthetic businesses: ``generate.business: purchases | purchases_btyd``.

A shop whose export is only who bought when for how much (no churn dates, no
touchpoints): the business a buy-till-you-die (BTYD) model is made for.

``purchases_btyd`` is the BG/NBD process (Fader, Hardie & Lee 2005) with
gamma-gamma spend: customer ``i`` buys at a constant rate ``lambda_i ~
Gamma(rate_shape, mean rate_mean a month)`` while alive, and after every
*repeat* purchase leaves for good with probability ``p_i ~ Beta(dropout_a,
dropout_b)``. Basket values scatter around a customer's own mean
(``basket_mean``, gamma across customers, lognormal ``basket_noise`` per
purchase). Time is continuous; a purchase is dated by its day.

``purchases`` adds three mechanisms a BTYD model cannot see, each written to
the ground truth:

- **decline** (spend falling before leaving): at a repeat purchase a
  customer starts to drift away with probability ``decline_share``; from that
  basket on they buy ``decline_basket`` times as much, ``decline_rate`` times
  as often, and leave within ``decline_months`` on average (a time hazard),
  if not already after a purchase;
- **price rise**: on the first day of each ``price_rise_months`` (counted from
  the start) a ``price_rise_share`` of customers pays ``price_rise_pct`` more
  for the same basket; at their first purchase at the new price they leave
  with the extra probability ``price_rise_dropout`` (on top of ``p_i``);
- **seasonality**: the purchase rate is ``1 + seasonality * cos(...)`` times
  ``lambda_i``, highest in ``seasonality_peak_month``.

Customers are an initial base, who first bought up to
``initial_base_max_years`` before the start (their earlier purchases are
simulated and left out of the export), plus first purchases spread over the
months. Each has an acquisition channel and a region (no effect on behaviour)
and a marketing opt-in.

Layers: :func:`draw_buyers` and :func:`simulate_purchases` (numpy arrays,
one chunk of customers), :func:`purchase_tables` (Arrow contract tables and
the per-customer truth). Times are float days since 1970-01-01.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from omvald.config import GenerateConfig
from omvald.data.generate_customers import Calendar, customer_ids
from omvald.data.generate_purchase_steps import (
    DAYS_PER_MONTH,
    DECLINE,
    LEAVE_DRIVERS,
    Buyers,
    BuyerState,
    Mechanisms,
    SeasonalClock,
    basket_values,
    next_purchase_times,
    repeat_purchases,
    take_shocks,
)
from omvald.errors import ConfigError

PURCHASE_BUSINESSES = ("purchases", "purchases_btyd")
_CLOCK_MARGIN_DAYS = 1_100  # the truth looks up to a horizon beyond the end of data
TOUCHPOINTS_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("timestamp", pa.timestamp("s")), ("channel", pa.string()), ("event", pa.string())]
)


@dataclass
class PurchaseHistory:
    """Every simulated purchase (pre-history included) and each customer's leaving."""

    cust: np.ndarray  # index in the chunk
    time: np.ndarray  # float days
    amount: np.ndarray
    leave_time: np.ndarray  # float days; inf = still a customer at the end of the data
    leave_driver: np.ndarray  # code into LEAVE_DRIVERS, -1 = not left
    decline_time: np.ndarray  # float days the decline started; inf = never


def check_purchase_config(cfg: GenerateConfig) -> None:
    pc = cfg.purchases
    if cfg.business not in ("subscription", *PURCHASE_BUSINESSES):
        raise ConfigError(f"generate.business: use subscription, purchases or purchases_btyd, got {cfg.business!r}")
    if pc.months < 2 or pc.rate_mean <= 0 or pc.rate_shape <= 0 or pc.basket_mean <= 0 or pc.basket_shape <= 0:
        raise ConfigError(
            "generate.purchases: months >= 2 and positive rate_mean, rate_shape, basket_mean, basket_shape"
        )
    if pc.dropout_a <= 0 or pc.dropout_b <= 0 or pc.decline_months <= 0 or pc.oracle_draws < 1:
        raise ConfigError("generate.purchases: dropout_a, dropout_b, decline_months and oracle_draws must be positive")
    if not 0 <= pc.seasonality <= 0.5 or not 1 <= pc.seasonality_peak_month <= 12:
        raise ConfigError("generate.purchases: seasonality in [0, 0.5] and seasonality_peak_month in 1..12")
    for name in ("decline_share", "price_rise_share", "price_rise_dropout", "initial_base_share"):
        if not 0 <= getattr(pc, name) <= 1:
            raise ConfigError(f"generate.purchases.{name}: must be in [0, 1], got {getattr(pc, name)}")
    if any(not 0 < m < pc.months for m in pc.price_rise_months):
        raise ConfigError(f"generate.purchases.price_rise_months: months after the start, 1..{pc.months - 1}")


def purchase_calendar(cfg: GenerateConfig) -> Calendar:
    first = np.datetime64(cfg.start_date.replace(day=1), "M")
    return Calendar((first + np.arange(cfg.purchases.months + 1)).astype("datetime64[D]"))


def season_clock(cfg: GenerateConfig, cal: Calendar, mech: Mechanisms) -> SeasonalClock:
    first = int(cal.start.astype(np.int64)) - int(cfg.purchases.initial_base_max_years * 366) - 2
    return SeasonalClock.build(
        first, int(cal.end.astype(np.int64)) + _CLOCK_MARGIN_DAYS, mech.seasonality, mech.peak_month
    )


def _choice(rng: np.random.Generator, shares: dict[str, float], n: int, what: str) -> np.ndarray:
    p = np.array(list(shares.values()), dtype=float)
    if len(p) == 0 or (p < 0).any() or p.sum() <= 0:
        raise ConfigError(f"generate.{what}: needs at least one non-negative share, got {shares!r}")
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def draw_buyers(
    cfg: GenerateConfig, cal: Calendar, mech: Mechanisms, rng: np.random.Generator, first_index: int, n: int
) -> Buyers:
    """Draw ``n`` customers: an initial base (first purchase before the start) plus first purchases over the months."""
    pc = cfg.purchases
    start = float(cal.start.astype(np.int64))
    base = rng.random(n) < pc.initial_base_share
    base_first = start - rng.random(n) * pc.initial_base_max_years * 365.25
    weights = np.linspace(0.8, 1.2, cal.months)  # slowly growing intake
    month = rng.choice(cal.months, size=n, p=weights / weights.sum())
    month_days = cal.month_starts.astype(np.int64).astype(float)
    new_first = month_days[month] + rng.random(n) * (month_days[month + 1] - month_days[month])
    return Buyers(
        first_index=first_index,
        first_purchase=np.where(base, base_first, new_first),
        rate=rng.gamma(pc.rate_shape, pc.rate_mean / pc.rate_shape, n) / DAYS_PER_MONTH,
        dropout=rng.beta(pc.dropout_a, pc.dropout_b, n),
        basket=rng.gamma(pc.basket_shape, pc.basket_mean / pc.basket_shape, n),
        channel=_choice(rng, pc.channel_shares, n, "purchases.channel_shares"),
        region=_choice(rng, cfg.region_shares, n, "region_shares"),
        opt_in=rng.random(n) < cfg.marketing_opt_in_share,
        rise_hit=rng.random((n, len(mech.rise_days))) < mech.rise_share,
    )


def simulate_purchases(
    cfg: GenerateConfig, cal: Calendar, b: Buyers, mech: Mechanisms, clock: SeasonalClock, rng: np.random.Generator
) -> PurchaseHistory:
    """Every purchase of every customer from their first one to the end of the data (or their leaving).

    One round = everyone still buying makes their next purchase; a round's
    draws are vectorised over those customers.
    """
    n = len(b)
    end = float(cal.end.astype(np.int64))
    noise = cfg.purchases.basket_noise
    everyone = np.arange(n)
    state = BuyerState.fresh(b, everyone)
    u = b.first_purchase.copy()
    decline_time = np.full(n, np.inf)
    leave_time = np.full(n, np.inf)
    driver = np.full(n, -1, np.int8)
    rows: dict[str, list[np.ndarray]] = defaultdict(list)

    take_shocks(state.pending, mech, u)  # a first purchase after a rise is no price shock: no earlier price to compare
    rows["cust"].append(everyone)
    rows["time"].append(u.copy())
    rows["amount"].append(basket_values(b, mech, noise, everyone, u, state.declining, rng))
    active = everyone
    while active.size:
        nxt = next_purchase_times(b, mech, clock, state, active, u[active], rng)
        timed_out = state.decline_death[active] <= np.minimum(nxt, end)
        gone = active[timed_out]
        leave_time[gone], driver[gone] = state.decline_death[gone], DECLINE
        buys = ~timed_out & (nxt < end)
        i, t = active[buys], nxt[buys]
        amount, leaves, why, starts = repeat_purchases(b, mech, noise, state, i, t, rng)
        decline_time[i[starts]] = t[starts]
        rows["cust"].append(i)
        rows["time"].append(t)
        rows["amount"].append(amount)
        leave_time[i[leaves]], driver[i[leaves]] = t[leaves], why[leaves]
        u[i] = t
        active = i[~leaves]
    return PurchaseHistory(
        cust=np.concatenate(rows["cust"]),
        time=np.concatenate(rows["time"]),
        amount=np.round(np.concatenate(rows["amount"]), 2),
        leave_time=leave_time,
        leave_driver=driver,
        decline_time=decline_time,
    )


def _dates(days: np.ndarray) -> pa.Array:
    finite = np.isfinite(days)
    whole = np.where(finite, np.floor(np.where(finite, days, 0)), 0).astype(np.int64)
    return pa.array(whole.astype("datetime64[D]"), pa.date32(), mask=~finite)


def _names(codes: np.ndarray, names: list[str]) -> pa.Array:
    valid = codes >= 0
    return pa.DictionaryArray.from_arrays(
        pa.array(np.where(valid, codes, 0).astype(np.int32), mask=~valid), pa.array(names, pa.string())
    ).cast(pa.string())


def export_rows(hist: PurchaseHistory, cal: Calendar) -> np.ndarray:
    """Positions of the purchases inside the export ``[start, end)``, sorted by customer and time."""
    inside = np.flatnonzero(hist.time >= float(cal.start.astype(np.int64)))
    return inside[np.lexsort((hist.time[inside], hist.cust[inside]))]


def purchase_tables(cfg: GenerateConfig, cal: Calendar, b: Buyers, mech: Mechanisms, hist: PurchaseHistory) -> dict:
    """The contract tables (``customers`` without churn_date, ``billing``, empty ``touchpoints``) and ``truth``."""
    n = len(b)
    ids = customer_ids(b.first_index, n, width=max(7, len(str(cfg.n_customers))))
    rows = export_rows(hist, cal)
    customers = pa.table(
        {
            "customer_id": ids,
            "signup_date": _dates(b.first_purchase),
            "acquisition_channel": _names(b.channel, list(cfg.purchases.channel_shares)),
            "region": _names(b.region, list(cfg.region_shares)),
            "marketing_opt_in": pa.array(b.opt_in, pa.bool_()),
        }
    )
    billing = pa.table(
        {
            "customer_id": ids.take(pa.array(hist.cust[rows])),
            "invoice_date": _dates(hist.time[rows]),
            "amount": pa.array(hist.amount[rows], pa.float64()),
        }
    )
    first_rise = np.full(n, np.inf)
    if len(mech.rise_days):
        hit_any = b.rise_hit.any(axis=1)
        first_rise[hit_any] = mech.rise_days[np.argmax(b.rise_hit[hit_any], axis=1)]
    truth = pa.table(
        {
            "customer_id": ids,
            "purchases_per_month": pa.array(b.rate * DAYS_PER_MONTH, pa.float64()),
            "dropout_per_purchase": pa.array(b.dropout, pa.float64()),
            "basket_mean": pa.array(b.basket, pa.float64()),
            "price_rise_date": _dates(first_rise),
            "decline_start": _dates(hist.decline_time),
            "leave_date": _dates(hist.leave_time),
            "leave_driver": _names(hist.leave_driver, LEAVE_DRIVERS),
        }
    )
    return {"customers": customers, "billing": billing, "touchpoints": TOUCHPOINTS_SCHEMA.empty_table(), "truth": truth}
