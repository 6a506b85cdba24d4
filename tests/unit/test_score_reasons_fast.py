"""Scoring's fast reason codes give exactly what explain's top_drivers + reason_columns give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omvald.explain.drivers import top_drivers
from omvald.explain.reasons import reason_columns
from omvald.features.spec import FeatureSpec
from omvald.scoring.score import drivers_and_reasons

SPECS = {
    "tenure_months": FeatureSpec("tenure_months", "t", "months as a customer", "months"),
    "plan_last": FeatureSpec("plan_last", "t", "current plan", "category", kind="categorical"),
    "price_shock_pct_3m": FeatureSpec("price_shock_pct_3m", "t", "last invoice vs 3 months earlier", "%"),
}


def reference(contrib: pd.DataFrame, X: pd.DataFrame, k: int, prefix: str) -> pd.DataFrame:
    drivers = top_drivers(contrib, X, k=k, prefix=prefix)
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
            "plan_last": pd.Series(rng.choice(["basic", "premium", None], n), dtype="str"),
            "price_shock_pct_3m": rng.choice([0.0, -0.0, 12.5, -3.0, np.nan], n),
            "not_in_registry": rng.normal(size=n),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    # ties, zeros and negatives: only positive contributions are drivers, ties by feature order
    contrib = pd.DataFrame(rng.choice([-1.0, 0.0, 0.25, 0.25, 2.0], (n, 4)), columns=list(X.columns), index=X.index)
    contrib["bias"] = -1.5
    expected = reference(contrib, X, k, "churn_")
    got = drivers_and_reasons(contrib, X, SPECS, k=k, prefix="churn_")
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True)


def test_no_rows() -> None:
    X = pd.DataFrame({"tenure_months": pd.Series(dtype=float)})
    contrib = pd.DataFrame({"tenure_months": pd.Series(dtype=float), "bias": pd.Series(dtype=float)})
    expected = reference(contrib, X, 3, "")
    got = drivers_and_reasons(contrib, X, SPECS, k=3)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True)
