"""Point in time for the purchase and BG/NBD families, population fit included.

A BG/NBD-like shop (300 buyers by ``t``) is built twice: once as drawn,
once with the rows after ``t`` rewritten -- later purchases added, dropped,
credit notes, customers whose first purchase comes after ``t``. The
population is refitted on each version (on a hash sample, so the sample is
under test too); its parameters at ``t`` and every feature at ``t`` must be
identical.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.businesses import bgnbd_purchases
from omvald.config import FeatureConfig
from omvald.features.build import build_features, feature_meta
from omvald.features.spec import BucketTables
from property_budget import examples

T = dt.date(2024, 3, 31)
CFG = dataclasses.replace(FeatureConfig(horizon_days=92, lookback_days=365), btyd_sample_customers=150)
BASE = bgnbd_purchases(300, {"r": 0.8, "alpha": 40.0, "a": 1.0, "b": 8.0}, end=dt.date(2024, 12, 31), seed=5)
BASE_IDS = sorted(set(BASE["customer_id"]))
LATE_IDS = [f"N{i:02d}" for i in range(30)]  # first purchase after t
META = {"data_end": "2025-06-30", "contractual": False, "rows": {"billing": 1, "touchpoints": 0}}

later_invoice = st.tuples(
    st.sampled_from(BASE_IDS[:40] + LATE_IDS[:5]),
    st.integers(1, 400),  # days after t
    st.sampled_from([-15.0, 0.0, 9.5, 42.0, 130.0]),
)


def business(billing: pd.DataFrame) -> BucketTables:
    ids = BASE_IDS + LATE_IDS
    customers = pd.DataFrame({"customer_id": ids, "signup_date": pd.Series([dt.date(2022, 12, 1)] * len(ids))})
    touch = pd.DataFrame({c: pd.Series(dtype="str") for c in ("customer_id", "channel", "event")})
    touch["date"] = pd.Series(dtype=object)
    return BucketTables(customers, billing.reset_index(drop=True), touch)


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    added=st.lists(later_invoice, max_size=25),
    forgotten=st.sets(st.sampled_from(BASE_IDS), max_size=60),  # their rows after t vanish
    newcomers=st.integers(0, len(LATE_IDS)),  # this many first buy after t (>= 10 move the sample's slot range)
)
def test_rows_after_t_never_change_the_population_fit_or_the_purchase_features_at_t(added, forgotten, newcomers):
    after = BASE["invoice_date"] > T
    kept = BASE[~after | ~BASE["customer_id"].isin(forgotten)]
    first_buys = [(cid, 3 + i, 25.0) for i, cid in enumerate(LATE_IDS[:newcomers])]
    new_rows = pd.DataFrame(
        [(cid, T + dt.timedelta(days=days), amount) for cid, days, amount in added + first_buys],
        columns=["customer_id", "invoice_date", "amount"],
    ).astype({"invoice_date": object})
    drawn, rewritten = business(BASE), business(pd.concat([kept, new_rows], ignore_index=True))

    fit_a = feature_meta(META, drawn, [T], CFG)["btyd"]
    fit_b = feature_meta(META, rewritten, [T], CFG)["btyd"]
    assert fit_a["unavailable"] is None and 100 <= fit_a["fitted_on"][T.isoformat()]["customers"] < 300
    assert fit_a == fit_b

    fa = build_features(drawn, [T], CFG, {**META, "btyd": fit_a}, with_labels=False)
    fb = build_features(rewritten, [T], CFG, {**META, "btyd": fit_b}, with_labels=False)
    assert {"purchases_total", "spend_reference_months", "btyd_p_no_purchase"} <= set(fa.columns)
    pd.testing.assert_frame_equal(fa, fb)
