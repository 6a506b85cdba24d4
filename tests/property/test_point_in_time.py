"""Point in time, as a property: nothing dated after t changes a feature at t.

Random small businesses are built twice: once as drawn, once with every row
dated after ``t`` (invoices, payments, touchpoints, churn dates) replaced by
other random rows after ``t``. Features at ``t`` must be identical; labels at
``t`` may only change through rows in ``(t, t+H]``.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from omvald.config import FeatureConfig
from omvald.features.build import build_features
from omvald.features.spec import BucketTables
from property_budget import examples

START = dt.date(2023, 1, 1)
T = dt.date(2024, 3, 31)
H = 90
CFG = FeatureConfig(horizon_days=H, lookback_days=365)
DATA_END = dt.date(2025, 6, 30)
IDS = ["a", "b", "c"]
T_DAY = (T - START).days

invoice = st.tuples(
    st.sampled_from(IDS),
    st.integers(0, 900),  # invoice day (offset from START)
    st.sampled_from([-20.0, 50.0, 100.0, 118.0, 130.0]),
    st.one_of(st.none(), st.integers(0, 60)),  # paid this many days after the invoice, or never
    st.sampled_from(["basic", "plus"]),
)
touch = st.tuples(
    st.sampled_from(IDS),
    st.integers(0, 900),
    st.sampled_from(["email", "phone", "pigeon"]),
    st.sampled_from(["sent", "opened", "contact", "nps", "teleport"]),
    st.sampled_from(["inbound", "outbound"]),
    st.integers(0, 10),
)
churn_day = st.one_of(st.none(), st.integers(1, 900))


def day(offset: int) -> dt.date:
    return START + dt.timedelta(days=offset)


def make(invoices, touches, churn_days, contractual: bool) -> BucketTables:
    customers = pd.DataFrame({"customer_id": IDS, "signup_date": [START] * len(IDS), "tier": ["x", "y", "12m"]})
    if contractual:
        customers["churn_date"] = [day(c) if c is not None else None for c in churn_days]
    billing = pd.DataFrame(
        {
            "customer_id": pd.Series([i[0] for i in invoices], dtype="str"),
            "invoice_date": pd.Series([day(i[1]) for i in invoices], dtype=object),
            "amount": pd.Series([i[2] for i in invoices], dtype="float64"),
            "list_price": pd.Series([100.0] * len(invoices), dtype="float64"),
            "due_date": pd.Series([day(i[1] + 14) for i in invoices], dtype=object),
            "paid_date": pd.Series([day(i[1] + i[3]) if i[3] is not None else None for i in invoices], dtype=object),
            "plan": pd.Series([i[4] for i in invoices], dtype="str"),
        }
    )
    timestamps = pd.to_datetime(pd.Series([day(x[1]) for x in touches], dtype=object)) + pd.Timedelta(hours=9)
    touchpoints = pd.DataFrame(
        {
            "customer_id": pd.Series([x[0] for x in touches], dtype="str"),
            "timestamp": timestamps.astype("datetime64[us]"),
            "date": pd.Series([day(x[1]) for x in touches], dtype=object),
            "channel": pd.Series([x[2] for x in touches], dtype="str"),
            "event": pd.Series([x[3] for x in touches], dtype="str"),
            "direction": pd.Series([x[4] for x in touches], dtype="str"),
            "value": pd.Series([float(x[5]) for x in touches], dtype="float64"),
        }
    )
    return BucketTables(customers, billing, touchpoints)


def features_at_t(tables: BucketTables, contractual: bool) -> pd.DataFrame:
    meta = {
        "data_end": DATA_END.isoformat(),
        "contractual": contractual,
        "rows": {"billing": 1, "touchpoints": 1},
        "binding_column": None,
        "attribute_kinds": {"tier": "categorical"},
    }
    return build_features(tables, [T], CFG, meta, with_labels=True)


def known_at(rows, cutoff: int):
    """Rows (and payment dates) as they are known at day ``cutoff``; later rows dropped."""
    out = []
    for r in rows:
        if r[1] > cutoff:
            continue
        out.append(r)
    return out


def after(rows, cutoff: int):
    return [r for r in rows if r[1] > cutoff]


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    invoices=st.lists(invoice, max_size=25),
    touches=st.lists(touch, max_size=15),
    churn=st.lists(churn_day, min_size=3, max_size=3),
    new_future_invoices=st.lists(invoice, max_size=10),
    new_future_touches=st.lists(touch, max_size=8),
    new_churn=st.lists(churn_day, min_size=3, max_size=3),
    contractual=st.booleans(),
)
def test_rows_after_t_never_change_features_at_t(
    invoices, touches, churn, new_future_invoices, new_future_touches, new_churn, contractual
):
    # Same past, different future: future invoices / touchpoints / churn dates
    # are redrawn; a payment made after t may move to another day after t.
    past_invoices = [i for i in invoices if i[1] <= T_DAY]
    moved_payments = [
        (i[0], i[1], i[2], None if i[3] is None or i[1] + i[3] > T_DAY else i[3], i[4]) for i in past_invoices
    ]
    future = [(i[0], T_DAY + 1 + i[1] % 400, *i[2:]) for i in new_future_invoices]
    future_touches = [(x[0], T_DAY + 1 + x[1] % 400, *x[2:]) for x in new_future_touches]
    churn_a = [c if c is None or c <= T_DAY else c for c in churn]
    churn_b = [
        c if c is not None and c <= T_DAY else (None if n is None else T_DAY + 1 + n % 400)
        for c, n in zip(churn, new_churn, strict=True)
    ]

    a = make(invoices, touches, churn_a, contractual)
    b = make(moved_payments + future, known_at(touches, T_DAY) + future_touches, churn_b, contractual)
    fa, fb = features_at_t(a, contractual), features_at_t(b, contractual)
    labels = ["churn", "phase_out", "next_revenue"]
    pd.testing.assert_frame_equal(fa.drop(columns=labels), fb.drop(columns=labels))


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    invoices=st.lists(invoice, max_size=25),
    churn=st.lists(churn_day, min_size=3, max_size=3),
    new_late_invoices=st.lists(invoice, max_size=10),
    contractual=st.booleans(),
)
def test_labels_at_t_change_only_through_rows_in_the_horizon(invoices, churn, new_late_invoices, contractual):
    horizon_end = T_DAY + H
    late = [(i[0], horizon_end + 1 + i[1] % 300, *i[2:]) for i in new_late_invoices]
    # churn dates after t+H are moved to other days after t+H (still "not within the horizon")
    churn_b = [c if c is None or c <= horizon_end else horizon_end + 1 + (c * 7) % 300 for c in churn]
    # "this business has no billing at all" is a fact about the whole export, not a row: keep it fixed
    assume(bool(invoices) == bool(known_at(invoices, horizon_end) + late))
    a = make(invoices, [], churn, contractual)
    b = make(known_at(invoices, horizon_end) + late, [], churn_b, contractual)
    fa, fb = features_at_t(a, contractual), features_at_t(b, contractual)
    pd.testing.assert_frame_equal(fa, fb)
    assert not any(churn) or fa["churn"].notna().all()
