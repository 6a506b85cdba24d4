"""Who gets reason codes: the ``--explain`` policy.

Reason codes cost a TreeSHAP pass per customer, so a scoring run explains
only the customers someone will act on:

- ``top:N``  the N customers with the highest revenue at risk,
- ``risk:P`` every customer with ``p_churn >= P`` or ``p_phase_out >= P``,
- ``all`` / ``none``.

Ties are broken by ``customer_id`` (ascending) so the same input always
explains the same customers, whatever the bucket order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from omvald.errors import ConfigError

KINDS = ("top", "risk", "all", "none")


@dataclass(frozen=True)
class ExplainPolicy:
    """A parsed ``--explain`` value: ``kind`` in :data:`KINDS`, ``value`` N (top) or P (risk)."""

    kind: str
    value: float | None = None

    @property
    def is_global(self) -> bool:
        """True when a customer's selection depends on the other customers (``top:N``)."""
        return self.kind == "top"

    def __str__(self) -> str:
        if self.kind == "top":
            return f"top:{int(self.value or 0)}"
        if self.kind == "risk":
            return f"risk:{self.value:g}"
        return self.kind


def parse_explain_policy(text: str) -> ExplainPolicy:
    """Parse ``top:N``, ``risk:P``, ``all`` or ``none``; anything else is a :class:`ConfigError`."""
    raw = str(text).strip().lower()
    if raw in ("all", "none"):
        return ExplainPolicy(raw)
    kind, sep, arg = raw.partition(":")
    hint = "expected top:N (N >= 0 customers), risk:P (0 <= P <= 1), all or none"
    if not sep or kind not in ("top", "risk"):
        raise ConfigError(f"--explain {text!r}: {hint}")
    try:
        value = float(arg)
    except ValueError:
        raise ConfigError(f"--explain {text!r}: {hint}") from None
    if not math.isfinite(value):
        raise ConfigError(f"--explain {text!r}: {'N' if kind == 'top' else 'P'} must be a finite number; {hint}")
    if kind == "top" and (value < 0 or value != int(value)):
        raise ConfigError(f"--explain {text!r}: N must be a whole number >= 0")
    if kind == "risk" and not 0.0 <= value <= 1.0:
        raise ConfigError(f"--explain {text!r}: P must be a probability between 0 and 1")
    return ExplainPolicy(kind, int(value) if kind == "top" else value)


def select_for_explanation(scores: pd.DataFrame, policy: ExplainPolicy) -> np.ndarray:
    """Boolean mask over ``scores`` rows: which customers get reason codes.

    ``scores`` needs ``customer_id``, ``p_churn``, ``p_phase_out`` and
    ``revenue_at_risk``. For ``top:N`` the order is revenue at risk
    (descending), then ``customer_id`` (ascending).
    """
    n = len(scores)
    if policy.kind == "none" or n == 0:
        return np.zeros(n, dtype=bool)
    if policy.kind == "all":
        return np.ones(n, dtype=bool)
    if policy.kind == "risk":
        p = float(policy.value or 0.0)
        return ((scores["p_churn"].to_numpy() >= p) | (scores["p_phase_out"].to_numpy() >= p)).astype(bool)
    mask = np.zeros(n, dtype=bool)
    mask[top_n_positions(scores, int(policy.value or 0))] = True
    return mask


def top_n_positions(scores: pd.DataFrame, n: int) -> np.ndarray:
    """Row positions of the ``n`` highest ``revenue_at_risk`` (ties: lowest ``customer_id`` first)."""
    if n <= 0 or scores.empty:
        return np.zeros(0, dtype=np.int64)
    # lexsort sorts by the last key first: revenue at risk descending, then id ascending.
    ids = scores["customer_id"].to_numpy(dtype=object).astype(str)
    risk = np.nan_to_num(scores["revenue_at_risk"].to_numpy(dtype=float), nan=-np.inf)
    order = np.lexsort((ids, -risk))
    return np.sort(order[:n])
