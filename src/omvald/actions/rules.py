"""The rule table: which action a customer gets, from their driver, segment and value tier.

``plan.rules`` in ``params.yaml`` is an ordered list; each row names an
action of ``plan.actions`` and lists the drivers, segments and value tiers it
applies to (an empty list: any). The first row that matches a customer
decides. A last row with no condition is the fallback: customers it does
not catch (and no row catches) are left off the list and counted.

A customer's driver is the first reason of the risk that costs more: the
churn driver when ``p_churn >= p_phase_out x phase_out_drop``, else the
phase-out driver (a reason the scores carry only for explained customers;
a customer without one has the driver ``unknown``, which only rows without a
driver condition match).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from omvald.config import ActionSpec, PlanRule
from omvald.errors import ConfigError

UNKNOWN_DRIVER = "unknown"
PREFERRED = "preferred"
SEGMENTS = ("active", "passive")
TIERS = ("A", "B", "C")


def check_rules(actions: Mapping[str, ActionSpec], rules: Sequence[PlanRule]) -> None:
    """A :class:`ConfigError` naming the row or action when the table cannot be used."""
    if not actions:
        raise ConfigError("plan.actions: no action defined; params.yaml lists the defaults (README, 'plan')")
    if not rules:
        raise ConfigError("plan.rules: no rule; end the table with a row without conditions, e.g. {action: newsletter}")
    for name, action in actions.items():
        if action.cost < 0:
            raise ConfigError(f"plan.actions.{name}.cost: must be >= 0 (money per contact), got {action.cost}")
        if not -1.0 <= action.effect <= 1.0:
            raise ConfigError(
                f"plan.actions.{name}.effect: the share of the risk removed, between -1 and 1; got {action.effect}"
            )
        if not action.channel:
            raise ConfigError(f"plan.actions.{name}.channel: name a channel, or 'preferred' for the customer's own")
    for i, rule in enumerate(rules):
        if rule.action not in actions:
            raise ConfigError(
                f"plan.rules[{i}]: action {rule.action!r} is not in plan.actions ({', '.join(sorted(actions))})"
            )
        bad = [s for s in rule.segment if s not in SEGMENTS] + [t for t in rule.tier if t not in TIERS]
        if bad:
            raise ConfigError(f"plan.rules[{i}]: unknown segment or tier {bad}; segments {SEGMENTS}, tiers {TIERS}")


def customer_driver(scores: pd.DataFrame, phase_out_drop: float) -> np.ndarray:
    """The driver a rule looks at, per row of ``scores`` (module docstring)."""
    churn = scores["churn_driver_1"].to_numpy(dtype=object)
    phase_out = scores["phase_out_driver_1"].to_numpy(dtype=object)
    p_churn = scores["p_churn"].to_numpy(dtype=float)
    p_phase_out = np.nan_to_num(scores["p_phase_out"].to_numpy(dtype=float), nan=0.0)
    churn_first = p_churn >= p_phase_out * phase_out_drop
    first = np.where(churn_first, churn, phase_out)
    second = np.where(churn_first, phase_out, churn)
    out = np.where(_present(first), first, np.where(_present(second), second, UNKNOWN_DRIVER))
    return out.astype(object)


def match_actions(
    driver: np.ndarray, segment: np.ndarray, tier: np.ndarray, rules: Sequence[PlanRule]
) -> tuple[np.ndarray, np.ndarray]:
    """``(action, rule index)`` per customer: the first matching rule's action (None and -1 when none matches)."""
    n = len(driver)
    action = np.full(n, None, dtype=object)
    which = np.full(n, -1, dtype=np.int64)
    for i, rule in enumerate(rules):
        hit = which < 0
        for values, allowed in ((driver, rule.driver), (segment, rule.segment), (tier, rule.tier)):
            if allowed:
                hit &= np.isin(np.asarray(values, dtype=object).astype(str), list(allowed))
        action[hit] = rule.action
        which[hit] = i
    return action, which


def action_columns(
    action: np.ndarray, preferred: np.ndarray, actions: Mapping[str, ActionSpec], default_channel: str
) -> pd.DataFrame:
    """``channel``, ``theme``, ``cost`` and the assumed ``effect`` of each customer's action (rows without one: empty)."""
    n = len(action)
    channel = np.full(n, None, dtype=object)
    theme = np.full(n, None, dtype=object)
    cost = np.full(n, np.nan)
    effect = np.full(n, np.nan)
    own = np.where(_present(preferred), preferred, default_channel)
    for name, spec in actions.items():
        hit = action == name
        channel[hit] = own[hit] if spec.channel == PREFERRED else spec.channel
        theme[hit] = spec.theme
        cost[hit] = spec.cost
        effect[hit] = spec.effect
    return pd.DataFrame({"channel": channel, "theme": theme, "cost": cost, "effect": effect})


def _present(values: np.ndarray) -> np.ndarray:
    return np.array([isinstance(v, str) and v not in ("", "nan", "None") for v in values], dtype=bool)
