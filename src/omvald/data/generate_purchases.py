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
from omvald.errors import ConfigError

PURCHASE_BUSINESSES = ("purchases", "purchases_btyd")
LEAVE_DRIVERS = ["baseline", "decline", "price_rise"]
BASELINE, DECLINE, PRICE_RISE = 0, 1, 2
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.2425
_CLOCK_MARGIN_DAYS = 1_100  # the truth looks up to a horizon beyond the end of data
TOUCHPOINTS_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("timestamp", pa.timestamp("s")), ("channel", pa.string()), ("event", pa.string())]
)


@dataclass(frozen=True)
class Mechanisms:
    """Mechanism strengths in effect: all off for ``purchases_btyd``. Times in days."""

    seasonality: float
    peak_month: int
    decline_share: float
    decline_rate: float
    decline_basket: float
    decline_hazard: float  # per day while declining
    rise_days: np.ndarray  # int days since epoch, one per price rise
    rise_share: float
    rise_factor: float
    rise_dropout: float

    @classmethod
    def of(cls, cfg: GenerateConfig, cal: Calendar) -> Mechanisms:
        pc = cfg.purchases
        on = cfg.business == "purchases"
        first_month = cal.start.astype("datetime64[M]")
        rise_days = (first_month + np.array(pc.price_rise_months if on else (), dtype=np.int64)).astype("datetime64[D]")
        return cls(
            seasonality=pc.seasonality if on else 0.0,
            peak_month=pc.seasonality_peak_month,
            decline_share=pc.decline_share if on else 0.0,
            decline_rate=pc.decline_rate,
            decline_basket=pc.decline_basket,
            decline_hazard=1.0 / (pc.decline_months * DAYS_PER_MONTH),
            rise_days=rise_days.astype(np.int64),
            rise_share=pc.price_rise_share,
            rise_factor=1.0 + pc.price_rise_pct,
            rise_dropout=pc.price_rise_dropout,
        )


@dataclass(frozen=True)
class SeasonalClock:
    """Integrated seasonal rate: ``S(u) = integral of s`` with ``s`` constant within each day.

    ``S`` is piecewise linear, so :meth:`inverse` is exact. A purchase
    process with rate ``lambda * s(u)`` has its next purchase after ``u`` at
    ``inverse(integral(u) + E / lambda)``, ``E ~ Exp(1)``. Both are table
    look-ups (no search): ``s`` is at least ``1 - amplitude`` > 0.
    """

    first_day: int
    rate: np.ndarray  # s of day first_day + k
    cum: np.ndarray  # S at the start of day first_day + k (one more entry than rate)
    day_at: np.ndarray  # day_at[j]: the last day k with cum[k] <= j

    @classmethod
    def build(cls, first_day: int, last_day: int, amplitude: float, peak_month: int) -> SeasonalClock:
        days = np.arange(first_day, last_day, dtype=np.int64)
        # Day 0 (1970-01-01) is a January 1st; the drift over decades is a fraction of a day.
        year_fraction = ((days + 0.5) % DAYS_PER_YEAR) / DAYS_PER_YEAR
        rate = 1.0 + amplitude * np.cos(2 * np.pi * (year_fraction - (peak_month - 0.5) / 12))
        cum = np.concatenate([[0.0], np.cumsum(rate)])
        day_at = np.searchsorted(cum, np.arange(int(cum[-1]) + 1), side="right") - 1
        return cls(first_day, rate, cum, day_at)

    def integral(self, u: np.ndarray) -> np.ndarray:
        offset = np.clip(u - self.first_day, 0.0, len(self.rate) - 1e-9)
        k = offset.astype(np.int64)
        return self.cum[k] + self.rate[k] * (offset - k)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, self.cum[-1] - 1e-9)
        k = self.day_at[x.astype(np.int64)]
        for _ in range(2):  # a unit of S spans at most two day boundaries (s >= 0.5 is checked)
            k = np.where(self.cum[np.minimum(k + 1, len(self.rate) - 1)] <= x, k + 1, k)
        k = np.minimum(k, len(self.rate) - 1)
        return self.first_day + k + (x - self.cum[k]) / self.rate[k]

    def day_rates(self, first: np.ndarray, n_days: int) -> np.ndarray:
        """``s`` of days ``first[i] .. first[i] + n_days - 1``, shape (len(first), n_days)."""
        return self.rate[(first[:, None] - self.first_day) + np.arange(n_days)]


@dataclass
class Buyers:
    """Arrays over one chunk of customers (index ``i`` = customer ``first_index + i``)."""

    first_index: int
    first_purchase: np.ndarray  # float days: the first purchase, i.e. the signup
    rate: np.ndarray  # purchases per day while alive (before seasonality)
    dropout: np.ndarray  # chance of leaving after each repeat purchase
    basket: np.ndarray  # mean basket value
    channel: np.ndarray  # code into purchases.channel_shares
    region: np.ndarray  # code into region_shares
    opt_in: np.ndarray  # bool
    rise_hit: np.ndarray  # bool (n, number of price rises): sees that rise

    def __len__(self) -> int:
        return len(self.first_purchase)


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


def price_factor(b: Buyers, mech: Mechanisms, cust: np.ndarray, time: np.ndarray) -> np.ndarray:
    """How much more than at the start customer ``cust`` pays at ``time`` for the same basket."""
    seen = b.rise_hit[cust] & (mech.rise_days[None, :] <= time[:, None])
    return mech.rise_factor ** seen.sum(axis=1)


def basket_values(
    b: Buyers, mech: Mechanisms, noise: float, cust: np.ndarray, time: np.ndarray, declining: np.ndarray, rng
) -> np.ndarray:
    """Basket values of purchases by ``cust`` at ``time`` (mean-preserving lognormal noise)."""
    scale = b.basket[cust] * np.where(declining, mech.decline_basket, 1.0) * price_factor(b, mech, cust, time)
    return scale * rng.lognormal(-0.5 * noise**2, noise, len(cust))


def take_shocks(pending: np.ndarray, mech: Mechanisms, time: np.ndarray) -> np.ndarray:
    """Price rises first seen at purchases at ``time`` (count per row of ``pending``); clears them in place."""
    due = pending & (mech.rise_days[None, :] <= time[:, None])
    pending &= ~due
    return due.sum(axis=1)


@dataclass
class BuyerState:
    """What changes while a customer buys; one slot per simulated customer (or per drawn future).

    ``cust`` maps a slot to its customer in :class:`Buyers`. The simulation and
    the true probabilities' Monte Carlo advance slots with the same two steps,
    :func:`next_purchase_times` and :func:`repeat_purchases`.
    """

    cust: np.ndarray
    declining: np.ndarray  # bool
    decline_death: np.ndarray  # float days: leaving by the decline's time hazard (memoryless: drawn at onset)
    pending: np.ndarray  # bool (slots, price rises): a rise the customer has not yet paid

    @classmethod
    def fresh(cls, b: Buyers, cust: np.ndarray) -> BuyerState:
        return cls(cust, np.zeros(len(cust), bool), np.full(len(cust), np.inf), b.rise_hit[cust].copy())


def next_purchase_times(
    b: Buyers, mech: Mechanisms, clock: SeasonalClock, state: BuyerState, slots: np.ndarray, u: np.ndarray, rng
) -> np.ndarray:
    """Time of each slot's next purchase after ``u``: rate ``lambda * s(u)``, times ``decline_rate`` while declining."""
    rate = b.rate[state.cust[slots]] * np.where(state.declining[slots], mech.decline_rate, 1.0)
    return clock.inverse(clock.integral(u) + rng.standard_exponential(slots.size) / rate)


def repeat_purchases(
    b: Buyers, mech: Mechanisms, noise: float, state: BuyerState, slots: np.ndarray, time: np.ndarray, rng
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A repeat purchase of each slot at ``time``: (basket value, leaves after it, leave driver, decline starts).

    A decline may start with this purchase: the basket is already the smaller
    one. Then the customer leaves with ``p_i``, raised by ``rise_dropout`` for
    each price rise first paid now (BG/NBD: leaving follows a purchase).
    """
    cust = state.cust[slots]
    starts = ~state.declining[slots] & (rng.random(slots.size) < mech.decline_share)
    new = slots[starts]
    state.declining[new] = True
    state.decline_death[new] = time[starts] + rng.standard_exponential(new.size) / mech.decline_hazard
    declining = state.declining[slots]
    amount = basket_values(b, mech, noise, cust, time, declining, rng)
    seen = state.pending[slots]
    shocks = take_shocks(seen, mech, time)
    state.pending[slots] = seen
    coin = rng.random(slots.size)
    base = b.dropout[cust]
    leaves = coin < 1 - (1 - base) * (1 - mech.rise_dropout) ** shocks
    driver = np.where(declining, DECLINE, np.where(coin < base, BASELINE, PRICE_RISE)).astype(np.int8)
    return amount, leaves, driver, starts


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
