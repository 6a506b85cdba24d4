"""Reason codes per driver: scoring's fast version gives exactly explain's top_drivers + reason_columns,
and a driver (business reason) appears at most once among a customer's reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omvald.explain.drivers import top_drivers
from omvald.explain.reasons import reason_columns
from omvald.features.spec import FeatureSpec
from omvald.scoring.score import drivers_and_reasons

SPECS = {
    "tenure_months": FeatureSpec("tenure_months", "t", "months as a customer", "months", driver="tenure"),
    "plan_last": FeatureSpec("plan_last", "t", "current plan", "category", kind="categorical", driver="spend"),
    "price_shock_pct_3m": FeatureSpec(
        "price_shock_pct_3m", "t", "last invoice vs 3 months earlier", "%", driver="price_change"
    ),
    "price_shock_amount_3m": FeatureSpec(
        "price_shock_amount_3m", "t", "last invoice minus 3 months earlier", "money", driver="price_change"
    ),
}
DRIVERS = {name: spec.driver for name, spec in SPECS.items()}


def reference(contrib: pd.DataFrame, X: pd.DataFrame, k: int, prefix: str) -> pd.DataFrame:
    drivers = top_drivers(contrib, X, k=k, prefix=prefix, drivers=DRIVERS)
    reasons = reason_columns(drivers, SPECS, prefix=prefix, k=k)
    drivers = drivers.drop(columns=[c for c in drivers.columns if c.endswith("_value_raw")])
    return pd.concat([drivers, pd.DataFrame(reasons, index=drivers.index)], axis=1)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_same_as_explain_module(k: int) -> None:
    rng = np.random.default_rng(7)
    n = 400
    X = pd.DataFrame(
        {
            "tenure_months": rng.choice([1.0, 2.0, 14.0, np.nan], n),
            "price_shock_pct_3m": rng.choice([0.0, -0.0, 12.5, -3.0, np.nan], n),
            "plan_last": pd.Series(rng.choice(["basic", "premium", None], n), dtype="str"),
            "price_shock_amount_3m": rng.choice([0.0, 4.5, 9.0], n),
            "not_in_registry": rng.normal(size=n),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    # ties, zeros and negatives: only positive sums are drivers, ties by the order of the drivers' first features
    contrib = pd.DataFrame(rng.choice([-1.0, 0.0, 0.25, 0.25, 2.0], (n, 5)), columns=list(X.columns), index=X.index)
    contrib["bias"] = -1.5
    expected = reference(contrib, X, k, "churn_")
    got = drivers_and_reasons(contrib, X, SPECS, k=k, prefix="churn_")
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True)
    assert set(got.columns) == set(expected.columns)


def test_no_rows() -> None:
    X = pd.DataFrame({"tenure_months": pd.Series(dtype=float)})
    contrib = pd.DataFrame({"tenure_months": pd.Series(dtype=float), "bias": pd.Series(dtype=float)})
    expected = reference(contrib, X, 3, "")
    got = drivers_and_reasons(contrib, X, SPECS, k=3)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True)


DOWNGRADES = {
    "tp_downgrade_request_180d": FeatureSpec(
        "tp_downgrade_request_180d", "touchpoints", "downgrade requests, last 180 days", "count", driver="downsizing"
    ),
    "tp_downgrade_request_90d": FeatureSpec(
        "tp_downgrade_request_90d", "touchpoints", "downgrade requests, last 90 days", "count", driver="downsizing"
    ),
    "price_shock_pct_3m": SPECS["price_shock_pct_3m"],
    "tenure_months": SPECS["tenure_months"],
}


def test_one_request_counted_over_two_windows_is_one_reason_named_by_its_strongest_feature() -> None:
    # Feature by feature the top two would be the same downgrade request (0.9 and 0.6): per driver it is one
    # reason worth 0.9 + 0.6 = 1.5, named by the 180-day count (its larger part); the price rise is second.
    X = pd.DataFrame(
        {
            "tp_downgrade_request_180d": [1.0],
            "tp_downgrade_request_90d": [1.0],
            "price_shock_pct_3m": [18.0],
            "tenure_months": [30.0],
        }
    )
    contrib = pd.DataFrame(
        {
            "tp_downgrade_request_180d": [0.9],
            "tp_downgrade_request_90d": [0.6],
            "price_shock_pct_3m": [0.5],
            "tenure_months": [-0.2],
            "bias": [-2.0],
        }
    )
    got = drivers_and_reasons(contrib, X, DOWNGRADES, k=3, prefix="churn_").iloc[0]
    assert [got["churn_driver_1"], got["churn_driver_2"]] == ["downsizing", "price_change"]
    assert got["churn_driver_1_feature"] == "tp_downgrade_request_180d"
    assert got["churn_driver_1_contribution"] == pytest.approx(1.5)
    assert got["churn_driver_1_value"] == "1"
    assert got["churn_reason_1"] == "declining use: downgrade requests, last 180 days: 1"
    assert got["churn_reason_2"] == "price rise: invoice up 18% in the last 3 months"
    assert pd.isna(got["churn_driver_3"]) and pd.isna(got["churn_reason_3"])  # tenure lowers the risk


def test_members_that_cancel_out_are_no_reason() -> None:
    # A driver whose features pull both ways counts by its sum: 0.7 - 0.9 < 0 is no reason at all.
    X = pd.DataFrame({"tp_downgrade_request_180d": [2.0], "tp_downgrade_request_90d": [0.0], "tenure_months": [3.0]})
    contrib = pd.DataFrame(
        {"tp_downgrade_request_180d": [0.7], "tp_downgrade_request_90d": [-0.9], "tenure_months": [0.1], "bias": [0.0]}
    )
    got = drivers_and_reasons(contrib, X, DOWNGRADES, k=2).iloc[0]
    assert got["driver_1"] == "tenure" and got["driver_1_feature"] == "tenure_months"
    assert pd.isna(got["driver_2"])


def test_no_driver_repeats_within_a_customer_on_random_contributions() -> None:
    rng = np.random.default_rng(11)
    features = list(DOWNGRADES)
    X = pd.DataFrame(rng.integers(0, 3, (300, len(features))).astype(float), columns=features)
    contrib = pd.DataFrame(rng.normal(size=(300, len(features))), columns=features)
    contrib["bias"] = 0.0
    got = drivers_and_reasons(contrib, X, DOWNGRADES, k=3)
    drivers = got[["driver_1", "driver_2", "driver_3"]]
    for _, row in drivers.iterrows():
        named = [d for d in row if isinstance(d, str)]
        assert len(named) == len(set(named))
