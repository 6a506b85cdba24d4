"""Who the synthetic customers are: signup, static attributes and latent type.

Pure numpy: :func:`draw_customers` returns arrays over one chunk of customers,
:func:`customers_table` turns them into the contract's ``customers`` table.
Categorical attributes are kept as integer codes into the (ordered) names of
the matching ``GenerateConfig`` dict until the table is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from omvald.config import GenerateConfig
from omvald.errors import ConfigError

_FIRST = (
    "anna eva maria karin sara lena emma elin ida julia erik lars karl anders johan per nils "
    "olof jonas oskar lucas hugo liam noah elsa maja alva saga ella frida"
)
_LAST = (
    "andersson johansson karlsson nilsson eriksson larsson olsson persson svensson gustafsson "
    "pettersson jonsson jansson hansson bengtsson lindberg lindqvist berg holm sandberg"
)
FIRST_NAMES, LAST_NAMES = _FIRST.split(), _LAST.split()


@dataclass(frozen=True)
class Calendar:
    """Monthly billing cycles: cycle ``m`` starts on month ``month_starts[m]``.

    Data covers ``[month_starts[0], end)``; ``end = month_starts[months]``.
    """

    month_starts: np.ndarray  # datetime64[D], months + 1 entries

    @classmethod
    def from_config(cls, cfg: GenerateConfig) -> Calendar:
        first = np.datetime64(cfg.start_date.replace(day=1), "M")
        return cls((first + np.arange(cfg.months + 1)).astype("datetime64[D]"))

    @property
    def months(self) -> int:
        return len(self.month_starts) - 1

    @property
    def start(self) -> np.datetime64:
        return self.month_starts[0]

    @property
    def end(self) -> np.datetime64:
        return self.month_starts[-1]

    def is_january(self, m: int) -> bool:
        return int(self.month_starts[m].astype("datetime64[M]").astype(int) % 12) == 0


@dataclass
class Customers:
    """Arrays over one chunk of customers (index ``i`` = customer ``first_index + i``)."""

    first_index: int
    signup: np.ndarray  # datetime64[D]
    signup_month: np.ndarray  # int, months since the calendar start (negative for the initial base)
    billing_day: np.ndarray  # int 1..28: invoices are issued on this day of each month
    contract: np.ndarray  # code into cfg.contract_shares
    binding_months: np.ndarray  # 0 / 12 / 24
    plan: np.ndarray  # code into the price-ordered cfg.plan_prices
    products: np.ndarray  # int >= 1
    payment: np.ndarray  # code into cfg.payment_shares
    region: np.ndarray  # code into cfg.region_shares
    opt_in: np.ndarray  # bool
    passive: np.ndarray  # bool, the latent type
    engagement: np.ndarray  # activity multiplier (mean 1 for active, 1 for passive)
    satisfaction_base: np.ndarray  # 0-10, where satisfaction reverts to
    usage_level: np.ndarray  # usage per month before plan factor
    due_days: np.ndarray  # payment term in days (14-30)
    price_ratio: np.ndarray  # amount / list_price at the start of the simulation

    def __len__(self) -> int:
        return len(self.signup)


def plan_order(cfg: GenerateConfig) -> list[str]:
    """Plan names from cheapest to dearest: a downgrade moves one step left."""
    return sorted(cfg.plan_prices, key=lambda p: cfg.plan_prices[p])


def binding_of(contract: str) -> int:
    """Binding months of a contract name: ``monthly`` -> 0, ``12m`` -> 12."""
    if contract == "monthly":
        return 0
    if contract.endswith("m") and contract[:-1].isdigit():
        return int(contract[:-1])
    raise ConfigError(f"generate.contract_shares: cannot read binding of {contract!r} (use 'monthly' or e.g. '12m')")


def _choice(rng: np.random.Generator, shares: dict[str, float], n: int, what: str) -> np.ndarray:
    p = np.array(list(shares.values()), dtype=float)
    if len(p) == 0 or (p < 0).any() or p.sum() <= 0:
        raise ConfigError(f"generate.{what}: needs at least one non-negative share, got {shares!r}")
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def draw_customers(cfg: GenerateConfig, cal: Calendar, rng: np.random.Generator, first_index: int, n: int) -> Customers:
    """Draw ``n`` customers: an initial base (signed up before the start) plus signups spread over the months."""
    base = rng.random(n) < cfg.initial_base_share
    # Initial base: signed up up to `initial_base_max_years` before the start.
    days_before = rng.integers(1, int(cfg.initial_base_max_years * 365) + 1, size=n)
    base_signup = cal.start - days_before.astype("timedelta64[D]")
    # New customers: slightly growing intake over the months, any day 1-28.
    weights = np.linspace(0.8, 1.2, cal.months)
    new_month = rng.choice(cal.months, size=n, p=weights / weights.sum())
    new_day = rng.integers(1, 29, size=n)
    new_signup = cal.month_starts[new_month] + (new_day - 1).astype("timedelta64[D]")
    signup = np.where(base, base_signup, new_signup)

    signup_m = signup.astype("datetime64[M]")
    signup_month = (signup_m - cal.start.astype("datetime64[M]")).astype(int)
    billing_day = np.minimum((signup - signup_m.astype("datetime64[D]")).astype(int) + 1, 28)

    contract = _choice(rng, cfg.contract_shares, n, "contract_shares")
    binding = np.array([binding_of(c) for c in cfg.contract_shares])[contract]
    order = plan_order(cfg)
    unknown = sorted(set(cfg.plan_shares) - set(order))
    if unknown:
        raise ConfigError(f"generate.plan_shares: plan(s) {unknown} have no price in generate.plan_prices")
    plan = np.array([order.index(p) for p in cfg.plan_shares], dtype=np.int8)[
        _choice(rng, cfg.plan_shares, n, "plan_shares")
    ]
    payment = _choice(rng, cfg.payment_shares, n, "payment_shares")
    missing = sorted(set(cfg.payment_shares) - set(cfg.late_payment_share))
    if missing:
        raise ConfigError(f"generate.late_payment_share: no late-payment share for payment method(s) {missing}")
    passive = rng.random(n) < cfg.passive_share

    # Existing customers already carry the yearly increases of their tenure before the start
    # (the loyalty gap); list prices grew by list_price_growth a year meanwhile.
    tenure0 = -signup_month
    years_before = np.where(base, np.maximum(tenure0 - 1, 0) // 12, 0)
    ratio = np.ones(n)
    for year in range(int(years_before.max(initial=0))):
        hit = (years_before > year) & (rng.random(n) < cfg.price_increase_share)
        inc = rng.uniform(cfg.price_increase_min, cfg.price_increase_max, size=n)
        ratio = np.where(hit, ratio * (1 + inc), ratio) / np.where(years_before > year, 1 + cfg.list_price_growth, 1)

    return Customers(
        first_index=first_index,
        signup=signup,
        signup_month=signup_month,
        billing_day=billing_day,
        contract=contract,
        binding_months=binding,
        plan=plan,
        products=1 + rng.choice(3, size=n, p=[0.55, 0.3, 0.15]),
        payment=payment,
        region=_choice(rng, cfg.region_shares, n, "region_shares"),
        opt_in=rng.random(n) < cfg.marketing_opt_in_share,
        passive=passive,
        engagement=np.where(passive, 1.0, rng.gamma(4.0, 0.25, size=n)),
        satisfaction_base=np.clip(rng.normal(7.3, 1.6, size=n), 0, 10),
        usage_level=rng.lognormal(0.0, 0.5, size=n),
        due_days=rng.choice(np.array([14, 20, 30]), size=n),
        price_ratio=np.maximum(ratio, 1.0),
    )


def customer_ids(first_index: int, n: int, width: int) -> pa.Array:
    """Ids ``C0000001``... for customers ``first_index .. first_index + n - 1`` (1-based in the id)."""
    return pa.array([f"C{i:0{width}d}" for i in range(first_index + 1, first_index + n + 1)], pa.string())


def _codes_to_strings(codes: np.ndarray, names: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names, pa.string())).cast(
        pa.string()
    )


def customers_table(
    cfg: GenerateConfig, cust: Customers, ids: pa.Array, churn_date: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    """The contract's ``customers`` table, including the personal columns ``name`` and ``email``."""
    n = len(cust)
    first = rng.integers(0, len(FIRST_NAMES), size=n)
    last = rng.integers(0, len(LAST_NAMES), size=n)
    names = [f"{FIRST_NAMES[a].title()} {LAST_NAMES[b].title()}" for a, b in zip(first, last, strict=True)]
    emails = [
        f"{FIRST_NAMES[a]}.{LAST_NAMES[b]}{cust.first_index + i + 1}@example.com"
        for i, (a, b) in enumerate(zip(first, last, strict=True))
    ]
    order = plan_order(cfg)
    signup_plan = _codes_to_strings(cust.plan, order)
    return pa.table(
        {
            "customer_id": ids,
            "signup_date": pa.array(cust.signup, pa.date32()),
            "churn_date": pa.array(churn_date, pa.date32(), mask=np.isnat(churn_date)),
            "contract_type": _codes_to_strings(cust.contract, list(cfg.contract_shares)),
            "plan_tier": signup_plan,
            "region": _codes_to_strings(cust.region, list(cfg.region_shares)),
            "payment_method": _codes_to_strings(cust.payment, list(cfg.payment_shares)),
            "marketing_opt_in": pa.array(cust.opt_in, pa.bool_()),
            "name": pa.array(names, pa.string()),
            "email": pa.array(emails, pa.string()),
        }
    )
