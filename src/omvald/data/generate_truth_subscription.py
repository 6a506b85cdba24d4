"""True churn and phase-out probabilities of the subscription business (see :mod:`omvald.data.generate_truth`).

The simulation (:mod:`omvald.data.generate_sim`) decides in every billing
cycle whether a customer churns (leave day uniform in the cycle) and whether
a phase-out starts (request day uniform in the cycle; one plan down at list
price from the next invoice, one product fewer with probability 1/2; churn
hazard raised by ``churn_phase_out`` in the ``phase_out_months`` after it).
Given the state at ``t`` (signed up, not churned, a phase-out requested or
not), the labels depend on those two coins in the cycles of the horizon.
Every path of onset cycle (or none) is enumerated exactly:

    P(path) = prod over cycles (1 - q_c) x onset chances along the path

with ``q_c`` the chance of leaving in ``(t, t+H]`` within cycle ``c`` (the
part of its leave days inside the horizon; conditional on not having left by
``t`` in the cycle that holds ``t``) and the phase-out label of a path
decided by its invoices after ``t`` against the realised billing before ``t``.

**An upper bound, not a forecast.** The hazards are the ones the simulation
*applied* (``HazardPaths``): the realised price increases, incidents and
satisfaction of the horizon, which nobody knows at ``t``. After a churn the
hazards continue as the customer would have had them without new events.
Left out of the amounts after ``t``: anniversary price increases and credit
notes (they move a three-month total by a few per cent; phase-out needs 30%).
"""

from __future__ import annotations

import numpy as np

from omvald.config import FeatureConfig, GenerateConfig
from omvald.data.generate_customers import Calendar, Customers
from omvald.data.generate_sim import CHURN_DRIVERS, SimResult
from omvald.data.generate_truth import AsOfWindow, ProbabilityRows, as_of_windows, billed_between

DRIVERS = CHURN_DRIVERS  # driver_true: the largest churn-hazard component in the cycle that holds t
NO_ONSET = -10_000


def subscription_probabilities(
    cfg: GenerateConfig, cal: Calendar, cust: Customers, sim: SimResult, features: FeatureConfig
) -> ProbabilityRows:
    """True probabilities of every customer of the chunk who is a customer at each month end."""
    signup_day = cust.signup.astype("datetime64[D]").astype(np.int64)
    out = ProbabilityRows.empty()
    for w in as_of_windows(cal, features):
        pop = np.flatnonzero((signup_day <= w.t) & ((sim.churn_day < 0) | (sim.churn_day > w.t)))
        p_stay, p_po = probabilities_at(cfg, cal, cust, sim, features, w, pop)
        stays = p_stay > 0
        if_stays = np.divide(p_po, p_stay, out=np.zeros_like(p_po), where=stays)
        out.add(pop, w.t, np.ones(len(pop), bool), 1.0 - p_stay, p_po, if_stays, sim.paths.driver[w.month][pop])
    return out


def probabilities_at(
    cfg: GenerateConfig,
    cal: Calendar,
    cust: Customers,
    sim: SimResult,
    features: FeatureConfig,
    w: AsOfWindow,
    pop: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(P(no churn in (t, t+H]), P(no churn and phase-out label 1))`` of the chunk's customers ``pop`` at ``w``.

    From the hazards the simulation recorded (``sim.paths``); a campaign
    passes paths scaled by its effect to get the treated probabilities.
    """
    if sim.paths is None:
        raise ValueError("subscription probabilities need simulate(..., record=True)")
    n = len(cust)
    cycles_in_horizon = features.horizon_days // 28 + 3  # enough cycles to cover (t, t+H] for any billing day
    first = cal.start.astype("datetime64[M]")
    month_days = (first + np.arange(cal.months + cycles_in_horizon + 2)).astype("datetime64[D]").astype(np.int64)
    invoice_day = month_days[:, None] + cust.billing_day[None, :] - 1
    b = sim.billing
    cycles = w.month + np.arange(cycles_in_horizon)
    inv, nxt = invoice_day[cycles][:, pop], invoice_day[cycles + 1][:, pop]
    before = billed_between(b["cust"], b["date"], b["amount"], n, w.phase_start, w.t)[pop]
    return _paths(cfg, cust, sim, pop, w, cycles, inv, nxt, before, 1.0 - features.phase_out_drop)


def _per_cycle(values: np.ndarray, cycles: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Recorded ``values`` (months, customers) of ``cycles`` x ``pop``; beyond the data, the last cycle's."""
    return values[np.minimum(cycles, len(values) - 1)][:, pop]


def _paths(cfg, cust, sim, pop, w: AsOfWindow, cycles, inv, nxt, before, keep) -> tuple[np.ndarray, np.ndarray]:
    """P(no churn in the horizon) and P(no churn and phase-out label 1), summed over the onset paths."""
    paths = sim.paths
    span = np.maximum(nxt - inv - 1, 1)  # possible leave (and request) days of a cycle: inv+1 .. nxt-1
    done = np.clip(w.t - inv, 0, span) / span  # share of them on or before t
    inside = np.clip(np.minimum(nxt - 1, w.t + w.horizon) - np.maximum(inv, w.t), 0, None) / span
    rest = _per_cycle(paths.churn_rest, cycles, pop)
    bump = _per_cycle(paths.phase_out_churn, cycles, pop)
    first_cycle = (cycles[:, None] - cust.signup_month[pop][None, :]) == 0
    onset_h = np.clip(_per_cycle(paths.onset, cycles, pop), 0.0, 1.0)
    onset = onset_h * (1 - done) / (1 - onset_h * done)  # starts in cycle c after t, given not by t

    def no_churn(onset_cycle: np.ndarray) -> np.ndarray:
        since = cycles[:, None] - onset_cycle[None, :]
        raised = (since >= 1) & (since <= cfg.phase_out_months) & ~first_cycle
        h = np.clip(rest + bump * raised, 0.0, 1.0)
        return np.prod(1 - h * inside / (1 - h * done), axis=0)

    requested = sim.phase_out_day[pop]
    known = (requested >= 0) & (requested <= w.t)
    realised = np.where(known, paths.phase_out_cycle[pop], NO_ONSET)
    amount_now = paths.amount[w.month][pop]
    after = (cycles[:, None] > w.month) & (inv <= w.phase_end)  # invoices in (t, phase_end]
    drop = _drop_chance(cfg, paths, w, pop, cycles, after, amount_now, before, keep)

    p_stay = np.zeros(len(pop))
    p_po = np.zeros(len(pop))
    # known onset: one path; its invoices after t are lower from the cycle after the onset
    stay_known = no_churn(realised)
    p_stay += np.where(known, stay_known, 0.0)
    p_po += np.where(known, stay_known * drop(realised), 0.0)
    # otherwise: an onset in one of the horizon's cycles, or none
    no_onset_yet = np.ones(len(pop))
    for j, c in enumerate(cycles):
        path = no_churn(np.full(len(pop), c)) * no_onset_yet * onset[j]
        p_stay += np.where(known, 0.0, path)
        p_po += np.where(known, 0.0, path * drop(np.full(len(pop), c)))
        no_onset_yet = no_onset_yet * (1 - onset[j])
    path = no_churn(np.full(len(pop), NO_ONSET)) * no_onset_yet
    p_stay += np.where(known, 0.0, path)
    p_po += np.where(known, 0.0, path * drop(np.full(len(pop), NO_ONSET)))
    return p_stay, p_po


def _drop_chance(cfg, paths, w: AsOfWindow, pop, cycles, after, amount_now, before, keep):
    """A function: onset cycle per customer -> chance that the invoices after t fall to ``keep`` x ``before``."""
    prices = np.array(sorted(cfg.plan_prices.values()))
    plan = paths.plan[w.month][pop].astype(np.int64)
    products = paths.products[w.month][pop].astype(np.int64)
    lower = prices[np.maximum(plan - 1, 0)]

    def drop(onset_cycle: np.ndarray) -> np.ndarray:
        factor = paths.list_factor[np.clip(onset_cycle + 1, 0, len(paths.list_factor) - 1)]
        lowered = after & (cycles[:, None] > onset_cycle[None, :]) & (onset_cycle[None, :] >= w.month)
        chance = np.zeros(len(pop))
        for fewer, weight in ((0, 0.5), (1, 0.5)):
            fewer_products = np.where(products > 1, fewer, 0)
            down = np.round((lower + cfg.addon_price * (products - 1 - fewer_products)) * factor, 2)
            billed = np.where(lowered, down[None, :], amount_now[None, :]).sum(axis=0, where=after)
            chance += weight * ((before > 0) & (billed <= keep * before))
        return chance

    return drop
