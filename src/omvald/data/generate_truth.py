"""True churn and phase-out probabilities at each as-of date: the windows and the output table.

The generator knows every customer's latent state and hazards, so it can
say how likely each label was *before* it was drawn. Ranking customers by
these probabilities gives the best ROC AUC any model could reach (the
oracle, :mod:`omvald.data.generate_oracle`). The label definitions are the
features stage's (:mod:`omvald.features.labels`), with horizon ``H``
(``features.horizon_days``), drop ``d`` (``features.phase_out_drop``) and
``m = phase_out_months(H)`` whole months:

- as-of dates ``t``: every month end of the data;
- ``p_churn_true``: P(no invoice in ``(t, t+H]``) for a purchase business,
  P(``churn_date`` in ``(t, t+H]``) for the subscription one;
- ``p_phase_out_true``: P(not churned and billed in ``(t, t + m months]`` <=
  ``(1 - d)`` x billed in ``(t - m months, t]``), the billed-before part being
  the realised one (it is known at ``t``); 0 when nothing was billed before;
  the label evaluation counts as 0 for churners (``metrics/phase_out.json``,
  ``combined``);
- ``p_phase_out_if_stays_true``: the same given no churn (the ``if_stays``
  block); missing for a customer who has left.

One row per customer in the population at ``t`` (the features stage's
definition: contractual -- signed up and not churned; purchases -- an
invoice in ``(t - lookback_days, t]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from omvald.config import FeatureConfig
from omvald.data.generate_customers import Calendar
from omvald.features.labels import phase_out_months

PROBABILITY_COLUMNS = (
    "customer_id",
    "as_of",
    "alive_true",
    "p_churn_true",
    "p_phase_out_true",
    "p_phase_out_if_stays_true",
    "driver_true",
)


@dataclass(frozen=True)
class AsOfWindow:
    """One month-end as-of date ``t`` and its label windows, as int days since 1970-01-01.

    ``month`` is the calendar month of ``t`` (0 = the first month of the data).
    Billed-before is ``(phase_start, t]``, billed-after ``(t, phase_end]``,
    churn looks at ``(t, t + horizon]``.
    """

    month: int
    t: int
    phase_start: int
    phase_end: int
    horizon: int


def as_of_windows(cal: Calendar, features: FeatureConfig) -> list[AsOfWindow]:
    """Every month end inside the data ``[start, end)`` with its label windows."""
    months = phase_out_months(features.horizon_days)
    first = cal.start.astype("datetime64[M]")

    def month_start(k: int) -> int:
        return int((first + k).astype("datetime64[D]").astype(np.int64))

    out = []
    for m in range(cal.months):
        t = month_start(m + 1) - 1
        if months:  # month ends map to month ends (labels.label_sql)
            start, end = month_start(m - months + 1) - 1, month_start(m + months + 1) - 1
        else:
            start, end = t - features.horizon_days, t + features.horizon_days
        out.append(AsOfWindow(m, t, start, end, features.horizon_days))
    return out


def billed_between(cust: np.ndarray, day: np.ndarray, amount: np.ndarray, n: int, lo: int, hi: int) -> np.ndarray:
    """Amount billed per customer (``n`` of them) on days in ``(lo, hi]``."""
    inside = (day > lo) & (day <= hi)
    return np.bincount(cust[inside], weights=amount[inside], minlength=n)


@dataclass
class ProbabilityRows:
    """Rows of the probability table for one chunk, before the customer ids are attached."""

    cust: list[np.ndarray]
    as_of: list[np.ndarray]
    alive: list[np.ndarray]
    p_churn: list[np.ndarray]
    p_phase_out: list[np.ndarray]
    p_phase_out_if_stays: list[np.ndarray]
    driver: list[np.ndarray]

    @classmethod
    def empty(cls) -> ProbabilityRows:
        return cls([], [], [], [], [], [], [])

    def add(self, cust, t: int, alive, p_churn, p_phase_out, p_if_stays, driver) -> None:
        self.cust.append(cust)
        self.as_of.append(np.full(len(cust), t, np.int64))
        self.alive.append(alive)
        self.p_churn.append(p_churn)
        self.p_phase_out.append(p_phase_out)
        self.p_phase_out_if_stays.append(p_if_stays)
        self.driver.append(driver)

    def table(self, ids: pa.Array, drivers: list[str]) -> pa.Table:
        """Arrow table sorted by customer and as-of date; ``drivers`` names the driver codes."""
        cat = {name: np.concatenate(getattr(self, name)) for name in self.__dataclass_fields__}
        order = np.lexsort((cat["as_of"], cat["cust"]))
        driver = pa.DictionaryArray.from_arrays(
            pa.array(cat["driver"][order].astype(np.int32)), pa.array(drivers, pa.string())
        ).cast(pa.string())
        return pa.table(
            {
                "customer_id": ids.take(pa.array(cat["cust"][order])),
                "as_of": pa.array(cat["as_of"][order].astype("datetime64[D]"), pa.date32()),
                "alive_true": pa.array(cat["alive"][order], pa.bool_()),
                "p_churn_true": pa.array(np.clip(cat["p_churn"][order], 0.0, 1.0), pa.float64()),
                "p_phase_out_true": pa.array(np.clip(cat["p_phase_out"][order], 0.0, 1.0), pa.float64()),
                "p_phase_out_if_stays_true": pa.array(
                    np.clip(cat["p_phase_out_if_stays"][order], 0.0, 1.0), pa.float64(), from_pandas=True
                ),
                "driver_true": driver,
            }
        )
