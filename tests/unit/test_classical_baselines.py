"""The classical baselines: BG/NBD P(no purchase) as is, and the RFM logistic regression (the comparison: test_compare.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omvald.model.classical import (
    BGNBD_COLUMN,
    NO_PHASE_OUT_ANALOGUE,
    RFM_COLUMNS,
    ProbabilityColumnBaseline,
    RFMLogisticBaseline,
    baseline_models,
)

SHOP = ["tenure_months", *RFM_COLUMNS, "btyd_p_alive", BGNBD_COLUMN, "btyd_expected_purchases"]
CONTRACTUAL = "contractual business: customers are billed on a schedule"


def test_bgnbd_is_a_churn_baseline_only_where_the_btyd_family_is_available():
    models, missing = baseline_models("churn", SHOP, [], {})
    assert list(models) == ["logistic", "heuristic", "bgnbd", "rfm_logistic"] and missing == {}
    _, missing = baseline_models("phase_out", SHOP, [], {})
    assert missing == {"bgnbd": NO_PHASE_OUT_ANALOGUE}  # BG/NBD has no phase-out answer: said, not invented


def test_a_contractual_business_has_no_classical_baselines_and_says_why():
    features = ["tenure_months", "amount_mean_12m", "price_shock_pct_3m"]
    models, missing = baseline_models("churn", features, [], {"btyd": CONTRACTUAL, "purchases": CONTRACTUAL})
    assert list(models) == ["logistic", "heuristic"]
    assert missing == {"bgnbd": CONTRACTUAL, "rfm_logistic": CONTRACTUAL}
    _, missing = baseline_models("churn", features, [], {})  # no reason recorded: the missing columns are named
    assert missing["bgnbd"] == f"no feature {BGNBD_COLUMN} (the btyd family)"
    assert missing["rfm_logistic"] == "no feature(s) days_since_last_purchase, purchases_365d"


def test_the_bgnbd_baseline_scores_its_column_as_is_and_a_missing_value_as_the_training_mean():
    train = pd.DataFrame({BGNBD_COLUMN: [0.2, 0.4, 0.9], "other": [1.0, 2.0, 3.0]})
    model = ProbabilityColumnBaseline().fit(train, [0, 1, 1])
    rows = pd.DataFrame({BGNBD_COLUMN: [0.25, np.nan, 0.0], "other": [9.0, 9.0, 9.0]})
    p = model.predict_proba(rows)[:, 1]
    assert p[0] == 0.25 and p[1] == pytest.approx(0.5) and p[2] == 1e-6  # (0.2 + 0.4 + 0.9) / 3; clipped at 0
    np.testing.assert_allclose(model.predict_raw(rows)[:1], np.log(0.25 / 0.75))


def test_the_rfm_regression_reads_only_log_recency_frequency_and_money():
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame(
        {
            "days_since_last_purchase": rng.integers(0, 300, n).astype(float),
            "purchases_365d": rng.poisson(3, n).astype(float),
            "amount_mean_12m": rng.gamma(2, 20, n),
            "tenure_months": rng.integers(0, 40, n).astype(float),
        }
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-(X["days_since_last_purchase"] / 100 - 1.5)))).astype(int)
    model = RFMLogisticBaseline().fit(X, y)
    assert model.feature_names_ == list(RFM_COLUMNS)
    changed = X.assign(tenure_months=0.0)
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(changed))
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    logs = np.log1p(X[list(RFM_COLUMNS)].to_numpy())
    scaler = StandardScaler().fit(logs)
    by_hand = LogisticRegression(max_iter=2000).fit(scaler.transform(logs), y)
    np.testing.assert_allclose(model.predict_raw(X), by_hand.decision_function(scaler.transform(logs)), atol=1e-6)
