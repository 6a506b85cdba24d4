"""The monthly life of a chunk of synthetic customers (prices, engagement, churn).

One loop over billing cycles with numpy arrays over customers. In cycle
``m`` a live customer is invoiced (after any yearly price increase: the
*price shock*), interacts with the company, and may then churn (before the
next invoice) or start phasing out (downgrade request now, lower invoices
from the next cycle). Churn and phase-out onset are monthly hazards, a sum of
one component per mechanism; the ground-truth driver is the largest one.
Dates are int days since 1970-01-01 inside the loop.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from omvald.config import GenerateConfig
from omvald.data.generate_customers import Calendar, Customers

CHANNELS = ["invoice", "email", "app", "web", "phone", "chat", "social"]  # social: only with generate.shift
EVENTS = ["sent", "opened", "clicked", "login", "contact", "complaint", "survey", "nps", "downgrade_request"]
DIRECTIONS = ["inbound", "outbound"]
CHURN_DRIVERS = [
    "baseline", "price_shock", "loyalty_gap", "complaint", "satisfaction", "binding_end", "phase_out",
    "competitor",  # only with generate.shift (added to the stacked components, see simulate)
]  # fmt: skip
COMPETITOR = CHURN_DRIVERS.index("competitor")
PHASE_OUT_DRIVERS = ["baseline", "price_shock", "loyalty_gap", "satisfaction"]
_CH = {c: i for i, c in enumerate(CHANNELS)}
_EV = {e: i for i, e in enumerate(EVENTS)}
_IN, _OUT = 0, 1
GAP_FREE = 1.1  # paying up to 10% above the list price goes unnoticed
SECONDS_PER_DAY = 86_400


@dataclass
class SimResult:
    """Row arrays of billing and touchpoints (``cust`` = index in the chunk) and per-customer truth."""

    billing: dict[str, np.ndarray]
    touchpoints: dict[str, np.ndarray]
    churn_day: np.ndarray  # int days, -1 = alive at the end
    churn_driver: np.ndarray  # code into CHURN_DRIVERS, -1 = not churned
    phase_out_day: np.ndarray  # int days, -1 = never
    phase_out_driver: np.ndarray  # code into PHASE_OUT_DRIVERS, -1 = never
    paths: HazardPaths | None = None  # with simulate(record=True)


@dataclass
class HazardPaths:
    """What the simulation applied in each cycle, shape (months, customers), for the true probabilities.

    Recorded for every customer from signup on, also after churn (the hazard
    the customer would have had: no new incidents or price increases then).
    ``churn_rest`` is the churn hazard without the phase-out component, after
    binding damping, 0 in the first cycle; ``phase_out_churn`` the phase-out
    component it would add (damped); ``onset`` the phase-out onset hazard
    (0 before the third cycle).
    """

    churn_rest: np.ndarray
    phase_out_churn: np.ndarray
    onset: np.ndarray
    amount: np.ndarray  # the invoice amount of the cycle
    plan: np.ndarray  # plan code after any phase-out downgrade of the cycle
    products: np.ndarray
    driver: np.ndarray  # largest churn-hazard component (code into CHURN_DRIVERS)
    list_factor: np.ndarray  # (months,): list-price growth factor of the cycle
    phase_out_cycle: np.ndarray  # (customers,): cycle of the phase-out onset, -10_000 = never


class _Rows:
    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = defaultdict(list)

    def add(self, **cols: np.ndarray) -> None:
        for name, values in cols.items():
            self.parts[name].append(values)

    def concat(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(values) for name, values in self.parts.items()}

    def copy(self) -> _Rows:
        twin = _Rows()
        for name, values in self.parts.items():
            twin.parts[name] = list(values)
        return twin


def _days(d: np.ndarray | np.datetime64) -> np.ndarray:
    return np.asarray(d).astype("datetime64[D]").astype(np.int64)


@dataclass
class SimState:
    """Each customer's state between billing cycles (arrays over the chunk), carried from one cycle to the next.

    ``pending_*``: decisions drawn in the last simulated cycle that fall on
    or after the end of data (a leave day, a phase-out request day). The
    export cannot show them; a continuation past that end
    (:meth:`Simulation.extend`) makes them happen, so the continued world is
    the one that would have been simulated with the later end all along.
    """

    plan: np.ndarray
    products: np.ndarray
    ratio: np.ndarray
    usage_level: np.ndarray
    satisfaction: np.ndarray
    shock: np.ndarray  # recent price increases, halving each month
    complaints: np.ndarray  # recent complaints, halving each month
    list_factor: float
    churned: np.ndarray
    churn_day: np.ndarray
    churn_driver: np.ndarray
    po_cycle: np.ndarray
    po_day: np.ndarray
    po_driver: np.ndarray
    pending_leave_day: np.ndarray
    pending_leave_driver: np.ndarray
    pending_onset_cycle: np.ndarray
    pending_onset_day: np.ndarray
    pending_onset_driver: np.ndarray

    @classmethod
    def start(cls, cust: Customers) -> SimState:
        n = len(cust)
        return cls(
            plan=cust.plan.astype(np.int64),
            products=cust.products.astype(np.int64),
            ratio=cust.price_ratio.copy(),
            usage_level=cust.usage_level.copy(),
            satisfaction=cust.satisfaction_base.copy(),
            shock=np.zeros(n),
            complaints=np.zeros(n),
            list_factor=1.0,
            churned=np.zeros(n, bool),
            churn_day=np.full(n, -1, np.int64),
            churn_driver=np.full(n, -1, np.int8),
            po_cycle=np.full(n, -10_000, np.int64),
            po_day=np.full(n, -1, np.int64),
            po_driver=np.full(n, -1, np.int8),
            pending_leave_day=np.full(n, -1, np.int64),
            pending_leave_driver=np.full(n, -1, np.int8),
            pending_onset_cycle=np.full(n, -10_000, np.int64),
            pending_onset_day=np.full(n, -1, np.int64),
            pending_onset_driver=np.full(n, -1, np.int8),
        )


def simulate(
    cfg: GenerateConfig,
    cal: Calendar,
    cust: Customers,
    outages: np.ndarray,
    rng: np.random.Generator,
    record: bool = False,
    shift_rng: np.random.Generator | None = None,
) -> SimResult:
    """Run all billing cycles for one chunk; ``outages[region, m]`` flags regional service outages.

    ``record`` keeps the hazards of every cycle (:class:`HazardPaths`); it draws nothing
    more, so the business is the same with or without it. ``shift_rng`` draws what only
    ``generate.shift`` needs (the new channel), so ``rng`` draws exactly what it draws
    without a shift and everything before the shift month is the unshifted business.
    """
    sim = Simulation(cfg, cal, cust, outages, rng, record, shift_rng=shift_rng)
    sim.run(range(cal.months))
    return sim.result()


class Simulation:
    """The billing cycles of one chunk, run in steps: :func:`simulate` runs them all at once.

    ``cal`` may reach beyond the end of data ``end`` (int days; default the
    calendar's end): a campaign runs the cycles up to the list's as-of
    date, then :meth:`extend` moves the end and continues with its own
    random stream and the campaign's effect (:mod:`omvald.data.generate_campaign`).
    """

    def __init__(
        self,
        cfg: GenerateConfig,
        cal: Calendar,
        cust: Customers,
        outages: np.ndarray,
        rng: np.random.Generator,
        record: bool = False,
        end: int | None = None,
        shift_rng: np.random.Generator | None = None,
    ) -> None:
        self.cfg, self.cal, self.cust, self.outages, self.rng = cfg, cal, cust, outages, rng
        self.shift_rng = shift_rng
        self.end = int(_days(cal.end)) if end is None else int(end)
        self.state = SimState.start(cust)
        self.bill, self.touch = _Rows(), _Rows()
        self.paths = _empty_paths(cal.months, len(cust)) if record else None

    def extend(self, end: int, rng: np.random.Generator) -> None:
        """Move the end of data to ``end`` and draw from ``rng`` from now on; decisions pending at the old end happen."""
        st, self.end, self.rng = self.state, int(end), rng
        leave = (st.pending_leave_day >= 0) & (st.pending_leave_day < end) & ~st.churned
        st.churned |= leave
        st.churn_day[leave] = st.pending_leave_day[leave]
        st.churn_driver[leave] = st.pending_leave_driver[leave]
        start = (st.pending_onset_day >= 0) & (st.pending_onset_day < end) & (st.po_day < 0)
        st.po_cycle[start] = st.pending_onset_cycle[start]
        st.po_day[start] = st.pending_onset_day[start]
        st.po_driver[start] = st.pending_onset_driver[start]
        for pending in (st.pending_leave_day, st.pending_onset_day):
            pending[leave | start] = -1
        requested = np.flatnonzero(start)
        stamp = st.po_day[requested] * SECONDS_PER_DAY + rng.integers(8 * 3600, 20 * 3600, len(requested))
        _CycleEvents(self.touch, rng, np.zeros(len(self.cust), np.int64), np.ones(len(self.cust), np.int64)).at(
            requested, stamp, ["phone", "web", "chat"], "downgrade_request", _IN
        )

    def fork(self) -> Simulation:
        """An independent copy to continue in several ways (the rows so far are shared: they never change)."""
        twin = copy.copy(self)
        twin.state = copy.deepcopy(self.state)
        twin.paths = copy.deepcopy(self.paths)
        twin.bill, twin.touch = self.bill.copy(), self.touch.copy()
        return twin

    def result(self) -> SimResult:
        """Rows and truth so far; payments on or after the end of data are not in the data yet (empty)."""
        st = self.state
        billing = self.bill.concat()
        billing["paid"] = np.where(billing["paid"] >= self.end, -1, billing["paid"])
        if self.paths is not None:
            self.paths.phase_out_cycle = st.po_cycle.copy()
        return SimResult(
            billing, self.touch.concat(), st.churn_day.copy(), st.churn_driver.copy(), st.po_day.copy(),
            st.po_driver.copy(), self.paths,
        )  # fmt: skip

    def run(self, months: range, churn_factor: np.ndarray | None = None) -> None:
        """Simulate the billing cycles ``months``; ``churn_factor`` (per customer) multiplies the churn hazard."""
        cfg, cal, cust, outages, rng, st, paths = (
            self.cfg, self.cal, self.cust, self.outages, self.rng, self.state, self.paths
        )  # fmt: skip
        bill, touch, end = self.bill, self.touch, self.end
        n = len(cust)
        month_days = _days(cal.month_starts)
        prices = np.array(sorted(cfg.plan_prices.values()))
        usage_scale = 20.0 * 2.5 ** np.arange(len(prices))
        late_share = np.array([cfg.late_payment_share[p] for p in cfg.payment_shares])[cust.payment]
        passive = cust.passive
        react = np.where(passive, cfg.passive_reactivity, 1.0)
        plan, products, ratio, usage_level = st.plan, st.products, st.ratio, st.usage_level
        satisfaction, shock, complaints, list_factor = st.satisfaction, st.shock, st.complaints, st.list_factor
        churned, churn_day, churn_driver = st.churned, st.churn_day, st.churn_driver
        po_cycle, po_day, po_driver = st.po_cycle, st.po_day, st.po_driver
        shift = cfg.shift
        # Price-sensitive passive customers: those a cheap competitor plan lures once the shift starts.
        lured = np.where(passive, shift.competitor_churn, 0.0)

        for m in months:
            shifted = shift.month is not None and m >= shift.month
            live = (cust.signup_month <= m) & ~churned
            idx = np.flatnonzero(live)
            tenure = m - cust.signup_month
            first_cycle = tenure == 0
            inv = month_days[m] + cust.billing_day - 1
            nxt = month_days[m + 1] + cust.billing_day - 1
            since_po = m - po_cycle

            if m > 0 and cal.is_january(m):  # list prices rise a little; existing customers' bills do not
                list_factor *= 1 + cfg.list_price_growth
                ratio = np.where(cust.signup_month < m, ratio / (1 + cfg.list_price_growth), ratio)
            if shift.month is not None and m == shift.month:  # a new price list: every invoice changes with it
                list_factor *= 1 + shift.billing_change
            # Phase-out decided last cycle: one plan down at today's list price, maybe one product fewer.
            start_po = live & (since_po == 1)
            plan = np.where(start_po, np.maximum(plan - 1, 0), plan)
            ratio = np.where(start_po, 1.0, ratio)
            products = np.where(start_po & (products > 1) & (rng.random(n) < 0.5), products - 1, products)
            usage_level = np.where(
                live & (since_po >= 1) & (since_po <= 3), usage_level * cfg.phase_out_usage_decay, usage_level
            )
            # Yearly increase on the signup anniversary: the price shock at this invoice.
            anniversary = live & (tenure > 0) & (tenure % 12 == 0) & ~start_po
            hit = anniversary & (rng.random(n) < cfg.price_increase_share)
            increase = np.where(hit, rng.uniform(cfg.price_increase_min, cfg.price_increase_max, n), 0.0)
            ratio *= 1 + increase
            shock = 0.5 * shock + increase

            list_price = np.round((prices[plan] + cfg.addon_price * (products - 1)) * list_factor, 2)
            amount = np.round(ratio * list_price, 2)
            usage = np.round(usage_level * usage_scale[plan] * rng.lognormal(0.0, 0.2, n), 1)
            due = inv + cust.due_days
            late = rng.random(n) < late_share
            on_time = np.where(cust.payment == 0, due, inv + rng.integers(1, cust.due_days + 1))
            paid = np.where(late, due + 1 + rng.geometric(0.12, n), on_time)
            # paid on or after the end of data: empty in the export (censored in result(), not here)
            paid = np.where(rng.random(n) < cfg.unpaid_share, -1, paid)
            bill.add(
                cust=idx, date=inv[idx], amount=amount[idx], list_price=list_price[idx], due=due[idx],
                paid=paid[idx], plan=plan[idx], products=products[idx], usage=usage[idx],
            )  # fmt: skip

            # Service experience: incidents (more during regional outages) and who complains about them.
            incident = live & (rng.random(n) < cfg.incident_rate + 0.3 * outages[cust.region, m])
            complaint_share = np.where(passive, cfg.complaint_share_passive, cfg.complaint_share_active)
            complaint = (incident & (rng.random(n) < complaint_share)) | (hit & ~passive & (rng.random(n) < 0.1))
            complaints = 0.5 * complaints + complaint
            satisfaction = np.clip(
                satisfaction
                + 0.15 * (cust.satisfaction_base - satisfaction)
                + rng.normal(0.0, 0.35, n)
                - 1.2 * incident
                - np.where(passive, 2.0, 8.0) * increase,
                0.0,
                10.0,
            )

            # Monthly churn hazard, one component per mechanism (order of CHURN_DRIVERS).
            unhappy = np.maximum(6.0 - satisfaction, 0.0) / 6.0
            gap = np.maximum(ratio - GAP_FREE, 0.0)
            at_binding_end = (
                (cust.binding_months > 0) & (tenure >= cust.binding_months) & (tenure < cust.binding_months + 3)
            )
            hazard = np.stack(
                [
                    np.where(passive, cfg.churn_base_passive, cfg.churn_base_active),
                    np.where(passive, cfg.churn_price_shock_passive, cfg.churn_price_shock_active) * shock,
                    cfg.churn_loyalty_gap * gap * react,
                    cfg.churn_complaint * complaints * react,
                    cfg.churn_satisfaction * unhappy * react,
                    np.where(at_binding_end, cfg.churn_binding_end, 0.0),
                    np.where((since_po >= 1) & (since_po <= cfg.phase_out_months), cfg.churn_phase_out, 0.0),
                ]
            )
            damping = np.where(tenure < cust.binding_months, cfg.binding_damping, 1.0)
            hazard *= damping  # leaving early costs a fee
            # The shift's competitor is added to the sums, never stacked: a sum over 8 rows may round differently
            # from one over 7, and the business before the shift must stay bit for bit the unshifted one.
            lure = np.where(shifted & (gap > 0), lured, 0.0) * damping
            if paths is not None:
                paths.churn_rest[m] = np.where(first_cycle, 0.0, _plus(hazard[:-1].sum(axis=0), lure))
                paths.phase_out_churn[m] = cfg.churn_phase_out * damping
                paths.driver[m] = _largest(hazard, lure)
                paths.amount[m], paths.plan[m], paths.products[m] = amount, plan, products
                paths.list_factor[m] = list_factor
            hazard[:, ~live | first_cycle] = 0.0
            lure[~live | first_cycle] = 0.0
            leave_day = inv + rng.integers(1, nxt - inv)
            # a campaign's effect scales the hazard of contacted customers (1.0 elsewhere: the same draws)
            total = _plus(hazard.sum(axis=0), lure)
            leaving = rng.random(n) < (total if churn_factor is None else total * churn_factor)
            leaves = leaving & (leave_day < end)
            churned |= leaves
            churn_day[leaves] = leave_day[leaves]
            churn_driver[leaves] = _largest(hazard[:, leaves], lure[leaves])
            after_end = leaving & ~leaves  # would leave after the end of data: decided, seen only if the data goes on
            st.pending_leave_day[after_end] = leave_day[after_end]
            st.pending_leave_driver[after_end] = _largest(hazard[:, after_end], lure[after_end])

            # Phase-out onset (order of PHASE_OUT_DRIVERS): at most once per customer.
            onset_hazard = np.stack(
                [
                    np.where(passive, cfg.phase_out_base_passive, cfg.phase_out_base_active),
                    cfg.phase_out_price_shock * shock,
                    cfg.phase_out_loyalty_gap * gap,
                    cfg.phase_out_satisfaction * unhappy * react,
                ]
            )
            if paths is not None:
                paths.onset[m] = np.where(tenure >= 2, onset_hazard.sum(axis=0), 0.0)
            request_day = inv + rng.integers(1, nxt - inv)
            eligible = live & ~leaves & (po_day < 0) & (tenure >= 2) & (request_day < end)
            starting = rng.random(n) < onset_hazard.sum(axis=0)
            onset = eligible & starting
            po_cycle[onset] = m
            po_day[onset] = request_day[onset]
            po_driver[onset] = onset_hazard[:, onset].argmax(axis=0)
            late_onset = starting & live & ~leaving & (po_day < 0) & (tenure >= 2) & (request_day >= end)
            st.pending_onset_cycle[late_onset] = m
            st.pending_onset_day[late_onset] = request_day[late_onset]
            st.pending_onset_driver[late_onset] = onset_hazard[:, late_onset].argmax(axis=0)

            # Touchpoints of the cycle fall in [invoice, next invoice), before churn and the data end.
            limit = np.minimum(np.where(leaves, leave_day + 1, nxt), end)
            events = _CycleEvents(touch, rng, inv, limit - inv, self.shift_rng)
            events.at(idx, inv[idx] * SECONDS_PER_DAY + 6 * 3600, "invoice", "sent", _OUT)
            sent = np.where(live, rng.poisson(cfg.email_rate * np.where(cust.opt_in, 1.0, 0.3)), 0)
            open_share = np.minimum(
                np.where(passive, cfg.open_share_passive, cfg.open_share_active * cust.engagement), 0.95
            )
            mails = events.spread(sent, "email", "sent", _OUT)
            opens = events.follow(mails, open_share, "email", "opened", _IN)
            events.follow(opens, np.full(n, 0.3), "email", "clicked", _IN)
            drifting = (since_po >= 0) & (since_po <= cfg.phase_out_months)
            login_rate = np.where(passive, cfg.login_rate_passive, cfg.login_rate_active * cust.engagement)
            events.spread(
                np.where(live, rng.poisson(login_rate * np.where(drifting, 0.5, 1.0)), 0), ["app", "web"], "login", _IN
            )
            contact_rate = np.where(passive, cfg.contact_rate_passive, cfg.contact_rate_active * cust.engagement)
            contacts = np.where(live, rng.poisson(contact_rate), 0) + (hit & ~passive & (rng.random(n) < 0.3))
            social = shift.new_channel_share if shifted else 0.0
            events.spread(contacts, ["phone", "chat"], "contact", _IN, new_channel_share=social)
            events.spread(complaint.astype(np.int64), ["phone", "chat"], "complaint", _IN, new_channel_share=social)
            surveys = events.spread(
                (live & (rng.random(n) < cfg.survey_rate)).astype(np.int64), "email", "survey", _OUT
            )
            answer_share = np.where(passive, cfg.answer_share_passive, cfg.answer_share_active)
            events.follow(surveys, answer_share, "email", "nps", _IN, score=satisfaction)
            requested = np.flatnonzero(onset)
            stamp = po_day[requested] * SECONDS_PER_DAY + rng.integers(8 * 3600, 20 * 3600, len(requested))
            events.at(requested, stamp, ["phone", "web", "chat"], "downgrade_request", _IN)

            # Goodwill credit notes, more often after a complaint; dated within the cycle, never after churn.
            credit = np.flatnonzero(live & (rng.random(n) < cfg.credit_note_rate + 0.3 * complaint))
            credit_day = np.minimum(inv[credit] + rng.integers(1, 11, len(credit)), limit[credit] - 1)
            bill.add(
                cust=credit, date=credit_day, amount=-np.round(amount[credit] * rng.uniform(0.1, 0.5, len(credit)), 2),
                list_price=np.full(len(credit), np.nan), due=credit_day, paid=credit_day, plan=plan[credit],
                products=products[credit], usage=np.zeros(len(credit)),
            )  # fmt: skip

        st.plan, st.products, st.ratio, st.usage_level = plan, products, ratio, usage_level
        st.satisfaction, st.shock, st.complaints, st.list_factor = satisfaction, shock, complaints, list_factor


def _plus(total: np.ndarray, lure: np.ndarray) -> np.ndarray:
    """``total + lure``, or ``total`` itself where nothing lures (adding 0.0 changes no bit, but skip the copy)."""
    return total + lure if lure.any() else total


def _largest(hazard: np.ndarray, lure: np.ndarray) -> np.ndarray:
    """Code into CHURN_DRIVERS of the largest component per customer, the competitor included."""
    driver = hazard.argmax(axis=0)
    return np.where(lure > hazard.max(axis=0, initial=0.0), COMPETITOR, driver)


def _empty_paths(months: int, n: int) -> HazardPaths:
    def per_cycle(dtype) -> np.ndarray:
        return np.zeros((months, n), dtype)

    return HazardPaths(
        churn_rest=per_cycle(np.float64),
        phase_out_churn=per_cycle(np.float64),
        onset=per_cycle(np.float64),
        amount=per_cycle(np.float64),
        plan=per_cycle(np.int8),
        products=per_cycle(np.int16),
        driver=per_cycle(np.int8),
        list_factor=np.ones(months),
        phase_out_cycle=np.full(n, -10_000, np.int64),
    )


class _CycleEvents:
    """Adds touchpoint rows for one cycle, with timestamps inside each customer's window."""

    def __init__(
        self,
        rows: _Rows,
        rng: np.random.Generator,
        lo: np.ndarray,
        span: np.ndarray,
        shift_rng: np.random.Generator | None = None,
    ) -> None:
        self.rows, self.rng, self.lo, self.span = rows, rng, lo, np.maximum(span, 1)
        self.shift_rng = shift_rng

    def spread(
        self,
        counts: np.ndarray,
        channel: str | list[str],
        event: str,
        direction: int,
        new_channel_share: float = 0.0,
    ) -> tuple:
        """``counts[i]`` events for customer ``i`` at random moments of their window; returns (cust, stamp).

        ``new_channel_share`` of them come through ``social`` instead (drawn from ``shift_rng``).
        """
        cust = np.repeat(np.arange(len(counts)), counts)
        k = len(cust)
        day = self.lo[cust] + (self.rng.random(k) * self.span[cust]).astype(np.int64)
        stamp = day * SECONDS_PER_DAY + self.rng.integers(7 * 3600, 22 * 3600, k)
        self.at(cust, stamp, channel, event, direction, new_channel_share=new_channel_share)
        return cust, stamp

    def follow(
        self,
        parents: tuple,
        share: np.ndarray,
        channel: str,
        event: str,
        direction: int,
        score: np.ndarray | None = None,
    ) -> tuple:
        """Responses to earlier events (open after send, answer after survey), within two days of them.

        ``share[i]`` is customer ``i``'s response probability; ``score`` (0-10 satisfaction) gives the
        answer's ``value``.
        """
        cust, stamp = parents
        keep = self.rng.random(len(cust)) < share[cust]
        cust, stamp = cust[keep], stamp[keep]
        last = (self.lo[cust] + self.span[cust]) * SECONDS_PER_DAY - 1
        stamp = np.minimum(stamp + self.rng.integers(60, 2 * SECONDS_PER_DAY, len(cust)), last)
        value = None
        if score is not None:
            value = np.clip(np.round(score[cust] + self.rng.normal(0.0, 1.2, len(cust))), 0, 10)
        self.at(cust, stamp, channel, event, direction, value)
        return cust, stamp

    def at(
        self,
        cust: np.ndarray,
        stamp: np.ndarray,
        channel: str | list[str],
        event: str,
        direction: int,
        value: np.ndarray | None = None,
        new_channel_share: float = 0.0,
    ) -> None:
        k = len(cust)
        if isinstance(channel, str):
            codes = np.full(k, _CH[channel], np.int8)
        else:
            codes = np.array([_CH[c] for c in channel], np.int8)[self.rng.integers(0, len(channel), k)]
        if new_channel_share > 0:
            assert self.shift_rng is not None, "a shifted business needs its own random stream"
            codes = np.where(self.shift_rng.random(k) < new_channel_share, np.int8(_CH["social"]), codes)
        self.rows.add(
            cust=cust,
            stamp=stamp,
            channel=codes,
            event=np.full(k, _EV[event], np.int8),
            direction=np.full(k, direction, np.int8),
            value=np.full(k, np.nan) if value is None else value.astype(float),
        )
