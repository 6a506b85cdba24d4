"""The retention list: whom to contact, with which action, within the budget, and who is held out.

Pure: a scores frame and the ``plan`` settings in, the list and its summary
out (:mod:`omvald.actions.plan_stage` reads and writes the files).

1. **Who**: contactable customers (``marketing_opt_in``) whose action
   (:mod:`omvald.actions.rules`) is worth more than it costs.
2. **Ranked by expected saved revenue** (money)::

       saved = (p_churn + p_phase_out x phase_out_drop) x value x effect - cost

   ``value`` is the customer's revenue over the value lookback (12 months by
   default): what a year of the customer is worth, kept when a churn is
   prevented; a phase-out loses at least ``phase_out_drop`` of it (the
   revenue-at-risk rule of :mod:`omvald.scoring.score`). ``effect`` is the
   share of that risk the action removes: measured (``--effects``) where a
   campaign measured it precisely enough, else assumed (the rule table).
   Ties: lowest ``customer_id`` first.
3. **How many**: the longest head of the ranking whose *contacts* fit the
   budget (``plan.budget_contacts`` and/or ``plan.budget_cost``). Control
   customers are not contacted, so they cost nothing.
4. **Holdout**: in each cell (action x segment x value tier) of the listed
   customers, ``round(holdout_share x n)`` (halves up) are the control group:
   those with the lowest stable hash of ``holdout_salt`` and ``customer_id``.
   The same customers in the same cell are held out in every run; without
   them no effect can be measured later (``omvald effect``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from omvald.actions.rules import action_columns, check_rules, customer_driver, match_actions
from omvald.config import PlanConfig
from omvald.errors import ConfigError

CELL = ["action", "segment", "value_tier"]
LIST_COLUMNS = [
    "customer_id",
    "as_of",
    "rank",
    "group",
    "value_tier",
    "risk_tier",
    "segment",
    "driver",
    "action",
    "channel",
    "theme",
    "reason",
    "p_churn",
    "p_phase_out",
    "value",
    "effect",
    "effect_source",
    "cost",
    "expected_saved_revenue",
]
ASSUMED = "assumed"


@dataclass(frozen=True)
class MeasuredEffects:
    """Relative churn reductions a campaign measured, by ``(action, segment, value_tier)``; ``None`` = any.

    Built from ``omvald effect``'s JSON by :func:`measured_effects`; only
    groups measured on their own (``precise``) are in it.
    """

    effects: dict[tuple[str, str | None, str | None], float]
    source: str

    def lookup(self, action: str, segment: str, tier: str) -> tuple[float, str] | None:
        """The most specific measured effect: the cell, else action x segment, else the action."""
        for key, level in (
            ((action, segment, tier), "cell"),
            ((action, segment, None), "action x segment"),
            ((action, None, None), "action"),
        ):
            if key in self.effects:
                return self.effects[key], f"measured ({level})"
        return None


def measured_effects(effect: Mapping[str, Any], source: str) -> MeasuredEffects:
    """The precise groups' relative churn reductions from an effect JSON (:mod:`omvald.actions.effect`)."""
    out: dict[tuple[str, str | None, str | None], float] = {}
    for group in effect.get("groups", []):
        value = group.get("churn_relative_reduction")
        if group.get("precise") and group.get("action") is not None and value is not None:
            out[(group["action"], group.get("segment"), group.get("value_tier"))] = float(value)
    return MeasuredEffects(out, source)


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """``floor(x + 0.5)`` as integers (0.5 -> 1, 1.5 -> 2), with slack for float error (0.1 x 15)."""
    return np.floor(np.asarray(x, dtype=float) + 0.5 + 1e-9).astype(np.int64)


def stable_unit(ids: np.ndarray, salt: str) -> np.ndarray:
    """A number in [0, 1) per id from blake2b of ``salt:id``: the same in every run, unrelated to any score."""
    out = np.empty(len(ids))
    for i, cid in enumerate(ids):
        digest = hashlib.blake2b(f"{salt}:{cid}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def expected_saved_revenue(
    p_churn: np.ndarray, p_phase_out: np.ndarray, value: np.ndarray, effect: np.ndarray, cost: np.ndarray, drop: float
) -> np.ndarray:
    """``(p_churn + p_phase_out x drop) x value x effect - cost`` (money; a missing p_phase_out counts as 0)."""
    risk = np.asarray(p_churn, dtype=float) + np.nan_to_num(np.asarray(p_phase_out, dtype=float), nan=0.0) * drop
    return risk * np.asarray(value, dtype=float) * np.asarray(effect, dtype=float) - np.asarray(cost, dtype=float)


def within_budget(cells: pd.DataFrame, cost: np.ndarray, cfg: PlanConfig) -> int:
    """How many rows of the ranking (``cells`` in rank order) fit: contacts and their cost within the budget.

    A cell of ``n`` listed customers holds ``round_half_up(share x n)`` out,
    so adding one customer adds 0 or 1 contact: the counts only grow down
    the ranking, and the answer is the longest head that fits.
    """
    n = cells.groupby(CELL, sort=False, dropna=False).cumcount().to_numpy() + 1
    contacts_of = n - round_half_up(cfg.holdout_share * n)
    added = contacts_of - (n - 1 - round_half_up(cfg.holdout_share * (n - 1)))
    fits = np.ones(len(n), dtype=bool)
    if cfg.budget_contacts is not None:
        fits &= np.cumsum(added) <= cfg.budget_contacts
    if cfg.budget_cost is not None:
        fits &= np.cumsum(added * cost) <= cfg.budget_cost + 1e-9
    return int(np.argmin(fits)) if not fits.all() else len(fits)


def holdout(listed: pd.DataFrame, share: float, salt: str) -> np.ndarray:
    """``True`` for the control customers of ``listed``: per cell, the ``round_half_up(share x n)`` lowest hashes."""
    u = stable_unit(listed["customer_id"].to_numpy(dtype=object), salt)
    frame = listed[CELL].assign(_u=u, _id=listed["customer_id"].to_numpy())
    frame = frame.sort_values([*CELL, "_u", "_id"], kind="stable")
    position = frame.groupby(CELL, sort=False, dropna=False).cumcount().to_numpy()
    size = frame.groupby(CELL, sort=False, dropna=False)["_u"].transform("size").to_numpy()
    control = pd.Series(position < round_half_up(share * size), index=frame.index)
    return control.reindex(listed.index).to_numpy(dtype=bool)


def check_plan_config(cfg: PlanConfig) -> None:
    """A :class:`ConfigError` for settings no plan can follow."""
    check_rules(cfg.actions, cfg.rules)
    if not 0.0 <= cfg.holdout_share < 1.0:
        raise ConfigError(f"plan.holdout_share: a share in [0, 1), got {cfg.holdout_share}")
    for key in ("budget_contacts", "budget_cost"):
        value = getattr(cfg, key)
        if value is not None and value < 0:
            raise ConfigError(f"plan.{key}: must be >= 0 or null (no limit), got {value}")


def retention_list(
    scores: pd.DataFrame, cfg: PlanConfig, phase_out_drop: float, measured: MeasuredEffects | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The list (:data:`LIST_COLUMNS`, in rank order) and counts of who was left off and why.

    ``scores`` is a scores file's frame (one row per customer).
    """
    check_plan_config(cfg)
    pool = scores.loc[scores["contactable"].astype(bool).to_numpy()].reset_index(drop=True)
    driver = customer_driver(pool, phase_out_drop)
    action, _ = match_actions(driver, pool["segment"].to_numpy(), pool["value_tier"].to_numpy(), cfg.rules)
    columns = action_columns(action, pool["preferred_channel"].to_numpy(dtype=object), cfg.actions, cfg.default_channel)
    pool = pd.concat([pool, columns], axis=1).assign(driver=driver, action=action, effect_source=ASSUMED)
    ruled = pool["action"].notna().to_numpy()
    if measured is not None:
        found = [
            measured.lookup(a, s, t) if a is not None else None
            for a, s, t in zip(pool["action"], pool["segment"], pool["value_tier"], strict=True)
        ]
        hit = np.array([f is not None for f in found], dtype=bool)
        pool.loc[hit, "effect"] = [f[0] for f in found if f is not None]
        pool.loc[hit, "effect_source"] = [f[1] for f in found if f is not None]
    pool["expected_saved_revenue"] = expected_saved_revenue(
        pool["p_churn"], pool["p_phase_out"], pool["value"], pool["effect"], pool["cost"], phase_out_drop
    )
    worth = ruled & (pool["expected_saved_revenue"].to_numpy() > 0)
    ranked = pool.loc[worth].sort_values(
        ["expected_saved_revenue", "customer_id"], ascending=[False, True], kind="stable"
    )
    ranked = ranked.head(within_budget(ranked[CELL], ranked["cost"].to_numpy(), cfg)).reset_index(drop=True)
    control = holdout(ranked, cfg.holdout_share, cfg.holdout_salt)
    ranked["group"] = np.where(control, "control", "contact")
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    ranked["reason"] = _reason(ranked, phase_out_drop)
    counts = {
        "scored": len(scores),
        "contactable": len(pool),
        "no_rule": int((~ruled).sum()),
        "not_worth_contacting": int((ruled & ~worth).sum()),
        "over_budget": int(worth.sum()) - len(ranked),
        "without_reason_codes": int((driver == "unknown").sum()),
    }
    return ranked[LIST_COLUMNS], counts


def _reason(listed: pd.DataFrame, phase_out_drop: float) -> np.ndarray:
    """The reason in words of the driver the action answers: the churn reason or the phase-out one."""
    churn = listed["churn_reason_1"].to_numpy(dtype=object)
    phase_out = listed["phase_out_reason_1"].to_numpy(dtype=object)
    from_churn = listed["driver"].to_numpy(dtype=object) == listed["churn_driver_1"].to_numpy(dtype=object)
    return np.where(from_churn, churn, np.where(pd.isna(phase_out), churn, phase_out))
