"""True churn and phase-out probabilities of a purchase business (see :mod:`omvald.data.generate_truth`).

The state of customer ``i`` at the end of day ``t`` (time ``T0 = t + 1``) is
what the simulation knows then: gone or not, declining or not, which price
rises they have yet to meet, their rate ``lambda_i``, dropout ``p_i`` and
basket. From it:

- **churn, exact.** Leaving happens right after a purchase or, while
  declining, at a time hazard ``mu``. A gone customer churns for sure. An
  active one does not buy in the horizon with probability
  ``exp(-lambda_i * (S(T0 + H) - S(T0)))`` (``S`` the integrated seasonal
  rate), whatever happens after a purchase. A declining one buys at
  ``kappa * lambda_i * s(u)`` until the hazard ``mu`` ends it; per day ``d``
  (rates constant within a day) it first buys on day ``d`` with probability
  ``survive_d * r_d / (r_d + mu) * (1 - exp(-(r_d + mu)))``, summed over the
  horizon.
- **phase-out, Monte Carlo.** Spend after ``t`` depends on how many purchases,
  their baskets and who leaves in between: ``oracle_draws`` futures per
  customer and date are drawn from the same hazards as the simulation
  (:mod:`omvald.data.generate_purchase_steps`), seeded by the
  chunk. The standard error of a probability ``p`` is ``sqrt(p (1 - p) /
  draws)``: at most 0.025 with 400 draws. Customers who billed nothing in the
  months before ``t`` cannot phase out (probability exactly 0), and gone
  customers neither; only the rest are drawn.
"""

from __future__ import annotations

import numpy as np

from omvald.config import FeatureConfig, GenerateConfig
from omvald.data.generate_customers import Calendar
from omvald.data.generate_purchase_steps import (
    DECLINE,
    LEAVE_DRIVERS,
    Buyers,
    BuyerState,
    Mechanisms,
    SeasonalClock,
    next_purchase_times,
    repeat_purchases,
)
from omvald.data.generate_purchases import PurchaseHistory, export_rows
from omvald.data.generate_truth import ProbabilityRows, as_of_windows, billed_between

DRIVERS = LEAVE_DRIVERS  # driver_true: why a gone customer left; "decline" while declining; else "baseline"
_BATCH_DRAWS = 1_000_000  # customer-draws simulated at once (bounds memory)


def purchase_probabilities(
    cfg: GenerateConfig,
    cal: Calendar,
    b: Buyers,
    mech: Mechanisms,
    clock: SeasonalClock,
    hist: PurchaseHistory,
    features: FeatureConfig,
    rng: np.random.Generator,
) -> ProbabilityRows:
    """True probabilities of every customer of the chunk in the population at every month end."""
    n = len(b)
    rows = export_rows(hist, cal)
    cust, day, amount = hist.cust[rows], np.floor(hist.time[rows]).astype(np.int64), hist.amount[rows]
    keep = 1.0 - features.phase_out_drop
    out = ProbabilityRows.empty()
    for w in as_of_windows(cal, features):
        t0 = float(w.t + 1)  # the end of day t
        recent = (day > w.t - features.lookback_days) & (day <= w.t)
        pop = np.unique(cust[recent])
        alive = hist.leave_time[pop] > t0
        declining = alive & (hist.decline_time[pop] <= t0)
        active = alive & ~declining
        p_churn = np.ones(len(pop))
        lam = b.rate[pop]
        seasonal_days = clock.integral(np.array([t0 + w.horizon])) - clock.integral(np.array([t0]))
        p_churn[active] = np.exp(-lam[active] * seasonal_days)
        p_churn[declining] = 1.0 - declining_buy_chance(
            lam[declining] * mech.decline_rate, mech.decline_hazard, w.t + 1, w.horizon, clock
        )

        before = billed_between(cust, day, amount, n, w.phase_start, w.t)[pop]
        p_po = np.zeros(len(pop))
        p_if_stays = np.where(alive, 0.0, np.nan)
        drawn = alive & (before > 0)
        if drawn.any():
            last = _last_purchase_before(hist, n, t0)
            joint, stays = _phase_out_draws(
                cfg, b, mech, clock, pop[drawn], declining[drawn], last, before[drawn], keep, w, rng
            )
            p_po[drawn] = joint
            p_if_stays[drawn] = np.divide(joint, stays, out=np.zeros_like(joint), where=stays > 0)
        driver = np.where(alive, np.where(declining, DECLINE, 0), hist.leave_driver[pop]).astype(np.int8)
        out.add(pop, w.t, alive, p_churn, p_po, p_if_stays, driver)
    return out


def declining_buy_chance(
    rate: np.ndarray, hazard: float, first_day: int, n_days: int, clock: SeasonalClock
) -> np.ndarray:
    """P(a purchase before leaving within days ``first_day .. first_day + n_days - 1``) at daily rate ``rate * s``."""
    if rate.size == 0:
        return rate
    r = rate[:, None] * clock.day_rates(np.full(rate.size, first_day), n_days)
    out_rate = r + hazard
    survive = np.exp(-np.cumsum(out_rate, axis=1) + out_rate)  # no event before day d
    return (survive * r / out_rate * -np.expm1(-out_rate)).sum(axis=1)


def _last_purchase_before(hist: PurchaseHistory, n: int, t0: float) -> np.ndarray:
    last = np.full(n, -np.inf)
    before = hist.time < t0
    np.maximum.at(last, hist.cust[before], hist.time[before])
    return last


def _phase_out_draws(
    cfg: GenerateConfig,
    b: Buyers,
    mech: Mechanisms,
    clock: SeasonalClock,
    cands: np.ndarray,
    declining: np.ndarray,
    last: np.ndarray,
    before: np.ndarray,
    keep: float,
    w,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Share of drawn futures with the phase-out label 1, and with no churn, per candidate customer."""
    draws = cfg.purchases.oracle_draws
    per_batch = max(1, _BATCH_DRAWS // draws)
    joint, stays = np.empty(len(cands)), np.empty(len(cands))
    for lo in range(0, len(cands), per_batch):
        sl = slice(lo, lo + per_batch)
        label, bought = _draw_futures(cfg, b, mech, clock, cands[sl], declining[sl], last, before[sl], keep, w, rng)
        joint[sl], stays[sl] = label.reshape(-1, draws).mean(axis=1), bought.reshape(-1, draws).mean(axis=1)
    return joint, stays


def _draw_futures(cfg, b, mech, clock, cands, declining, last, before, keep, w, rng):
    """``oracle_draws`` futures of each candidate from the end of day ``w.t``: (phase-out label, bought in H)."""
    draws = cfg.purchases.oracle_draws
    t0, horizon_end, phase_end = float(w.t + 1), float(w.t + 1 + w.horizon), float(w.phase_end + 1)
    ci = np.repeat(cands, draws)
    state = BuyerState.fresh(b, ci)
    state.declining[:] = np.repeat(declining, draws)
    state.decline_death[state.declining] = t0 + rng.standard_exponential(state.declining.sum()) / mech.decline_hazard
    # a rise is still to be paid when the customer has not bought since it (or it lies ahead)
    state.pending &= ~(last[ci][:, None] >= mech.rise_days[None, :])
    u = np.full(ci.size, t0)
    spend, bought = np.zeros(ci.size), np.zeros(ci.size, bool)
    active = np.arange(ci.size)
    while active.size:
        nxt = next_purchase_times(b, mech, clock, state, active, u[active], rng)
        buys = (state.decline_death[active] > nxt) & (nxt < horizon_end)
        a, t = active[buys], nxt[buys]
        bought[a] = True
        amount, leaves, _, _ = repeat_purchases(b, mech, cfg.purchases.basket_noise, state, a, t, rng)
        in_phase = t < phase_end
        spend[a[in_phase]] += amount[in_phase]
        u[a] = t
        active = a[~leaves & in_phase]  # after the phase window only "bought in H" matters, and it is known
    label = bought & (spend <= keep * np.repeat(before, draws))
    return label, bought
