"""The classical BG/NBD model as a feature family: P(alive), P(no purchase) and expected purchases.

BG/NBD (Fader, Hardie & Lee 2005): while alive, a customer buys at a
personal Poisson rate (gamma across customers, parameters ``r``, ``alpha``)
and may drop out right after any repeat purchase with a personal
probability (beta across customers, ``a``, ``b``). Its population
parameters are fitted once per as-of date before the buckets, on data up to
that date only (:mod:`omvald.features.btyd_fit`); here each customer's own
history at ``t`` -- frequency ``x`` (repeat purchase days), recency ``t_x``
(days from the first to the last purchase) and age ``T`` (days from the
first purchase to ``t``), see :mod:`omvald.features.purchases` -- gives,
with ``H`` = ``features.horizon_days``:

- ``btyd_p_alive``: P(still a buyer at ``t``) -- the library's
  ``conditional_probability_alive``;
- ``btyd_expected_purchases``: E[purchases in ``(t, t+H]``] -- the library's
  ``conditional_expected_number_of_purchases_up_to_time``;
- ``btyd_p_no_purchase``: P(no purchase in ``(t, t+H]``)
  ``= 1 - P(alive) + P(alive) ((alpha+T) / (alpha+T+H))^(r+x)``: a dead
  customer never buys, a live one has posterior rate Gamma(r+x, alpha+T)
  and cannot drop out without buying first. This is Hardie's note 039
  eq. (34) for zero purchases; lifetimes has no such function, and
  pymc-marketing's (0.19) agrees with it to 1e-14 for ``x > 0`` but drops
  the ``x > 0`` condition of the second term, which is wrong for ``x = 0``.

Time is in days throughout (``alpha`` is in days). Customers with no
purchase up to ``t`` get NaN (the model describes buyers).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from omvald.config import FeatureConfig
from omvald.features.asof import connect, fetch_frame
from omvald.features.purchases import REQUIRES, history_sql
from omvald.features.spec import BucketTables, FeatureSpec

FAMILY = "btyd"
PARAM_NAMES = ("r", "alpha", "a", "b")


def btyd_feature_specs(cfg: FeatureConfig) -> list[FeatureSpec]:
    """The three BG/NBD features (available for non-contractual businesses whose population fit succeeded)."""
    h = cfg.horizon_days

    def spec(name: str, description: str, unit: str) -> FeatureSpec:
        return FeatureSpec(name, FAMILY, description, unit, "numeric", REQUIRES, driver="btyd")

    return [
        spec("btyd_p_alive", "chance the customer still buys at all (BG/NBD model)", "share"),
        spec("btyd_p_no_purchase", f"chance of no purchase in the next {h} days (BG/NBD model)", "share"),
        spec("btyd_expected_purchases", f"expected purchases in the next {h} days (BG/NBD model)", "count"),
    ]


def summary_sql() -> str:
    """SQL: ``customer_id, as_of, frequency, recency, age`` (days) for each row of view ``spine``, in spine order.

    NULL where the customer has no purchase up to ``as_of``.
    """
    return f"""
        WITH {history_sql()}
        SELECT spine.customer_id, spine.as_of,
               CAST(h.n - 1 AS DOUBLE) AS frequency,
               CAST(h.d - h.first_d AS DOUBLE) AS recency,
               CAST(spine.as_of - h.first_d AS DOUBLE) AS age
        FROM spine JOIN ids USING (customer_id)
        ASOF LEFT JOIN hist h ON ids.cid = h.cid AND spine.as_of >= h.d
        ORDER BY spine.spine_row
    """


def customer_summary(tables: BucketTables, spine: pd.DataFrame) -> pd.DataFrame:
    """Frequency, recency and age in days of each spine row's customer at its ``as_of`` (NaN: no purchase yet)."""
    con = connect(tables, spine)
    out = fetch_frame(con, summary_sql())
    con.close()
    return out


def btyd_features(tables: BucketTables, spine: pd.DataFrame, cfg: FeatureConfig, fit: dict[str, Any]) -> pd.DataFrame:
    """BG/NBD features for each spine row, one row per spine row in spine order.

    ``fit`` is the population fit (``meta["btyd"]``, see
    :func:`omvald.features.btyd_fit.fit_population`); it must hold
    parameters for every as-of date of the spine.
    """
    summary = customer_summary(tables, spine)
    n = len(summary)
    cols = {name: np.full(n, np.nan) for name in ("btyd_p_alive", "btyd_p_no_purchase", "btyd_expected_purchases")}
    as_of = pd.to_datetime(summary["as_of"]).to_numpy(dtype="datetime64[D]").astype(str)
    bought = summary["frequency"].notna().to_numpy()
    for day in np.unique(as_of[bought]):
        params = fit["params"].get(day)
        if params is None:
            raise KeyError(f"the BG/NBD population fit has no parameters for as-of date {day}")
        rows = bought & (as_of == day)
        x, t_x, age = (summary[c].to_numpy()[rows] for c in ("frequency", "recency", "age"))
        p_alive, p_none, expected = bgnbd_predictions(params, x, t_x, age, cfg.horizon_days)
        cols["btyd_p_alive"][rows] = p_alive
        cols["btyd_p_no_purchase"][rows] = p_none
        cols["btyd_expected_purchases"][rows] = expected
    return pd.DataFrame({"customer_id": summary["customer_id"], "as_of": summary["as_of"], **cols})


def bgnbd_predictions(
    params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, age: np.ndarray, horizon: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(alive), P(no purchase in horizon), E[purchases in horizon]) per customer, from BG/NBD ``params``.

    In: ``params`` ``{"r", "alpha", "a", "b"}`` (``alpha`` in days), and per
    customer ``frequency`` (repeat purchases), ``recency`` and ``age`` in
    days, ``horizon`` in days. Values the formulas cannot give (the
    expected-purchases series diverges for some ``a + b < 1``) are NaN.
    """
    model = bgnbd_model(params)
    r, alpha = params["r"], params["alpha"]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_alive = np.asarray(model.conditional_probability_alive(frequency, recency, age), dtype="float64")
        expected = np.asarray(
            model.conditional_expected_number_of_purchases_up_to_time(horizon, frequency, recency, age),
            dtype="float64",
        )
        stay_silent = ((alpha + age) / (alpha + age + horizon)) ** (r + frequency)
    p_none = 1.0 - p_alive + p_alive * stay_silent
    return p_alive, p_none, np.where(np.isfinite(expected), expected, np.nan)


def bgnbd_model(params: dict[str, float]) -> Any:
    """A lifetimes ``BetaGeoFitter`` holding ``params`` (no fit): its predictive methods read only ``params_``."""
    fitter_class = beta_geo_fitter_class()
    model = fitter_class()
    model.params_ = pd.Series({name: float(params[name]) for name in PARAM_NAMES})
    return model


def beta_geo_fitter_class() -> type:
    """lifetimes' ``BetaGeoFitter``, imported on first use (it takes ~1 s and only non-contractual runs need it).

    lifetimes sets a pandas option that pandas 3 deprecated at import; its warning is not ours to show.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter
    return BetaGeoFitter
