"""How a buyer of the purchase businesses buys: the steps the simulation and the true probabilities share.

:func:`next_purchase_times` (a seasonal Poisson process, slower while
declining) and :func:`repeat_purchases` (basket value, a decline that may
start, leaving after the purchase) advance one slot per customer in
:func:`omvald.data.generate_purchases.simulate_purchases`, and one slot per
drawn future in the Monte Carlo of
:mod:`omvald.data.generate_truth_purchases`: the oracle uses exactly the
hazards that made the data. Times are float days since 1970-01-01.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omvald.config import GenerateConfig
from omvald.data.generate_customers import Calendar

LEAVE_DRIVERS = ["baseline", "decline", "price_rise"]
BASELINE, DECLINE, PRICE_RISE = 0, 1, 2
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.2425


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
