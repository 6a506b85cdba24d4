"""Active / passive rule and engagement score on hand-made touchpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from omvald.config import ActiveRule, FeatureConfig
from omvald.features.segments import is_customer_initiated, segment_feature_specs, segment_features
from omvald.features.spec import BucketTables

CFG = FeatureConfig(active_rule=ActiveRule(window_days=90, min_active_events=2))
T = "2024-03-31"


def touchpoints(rows: list[tuple]) -> pd.DataFrame:
    """rows: (customer_id, date, event, direction)."""
    df = pd.DataFrame(rows, columns=["customer_id", "date", "event", "direction"])
    df["date"] = pd.to_datetime(df["date"]).dt.date
    df["timestamp"] = pd.to_datetime(df["date"])
    df["channel"] = "email"
    return df


def build(tp: pd.DataFrame, ids=("a",), cfg: FeatureConfig = CFG) -> pd.DataFrame:
    spine = pd.DataFrame({"customer_id": list(ids), "as_of": pd.to_datetime([T] * len(ids))})
    return segment_features(BucketTables(pd.DataFrame(), pd.DataFrame(), tp), spine, cfg).set_index("customer_id")


def test_is_customer_initiated_by_direction_and_event():
    tp = touchpoints(
        [
            ("a", T, "sent", "outbound"),  # company mailing
            ("a", T, "opened", "outbound"),  # an open is the customer's act whatever the direction says
            ("a", T, "contact", "outbound"),  # the company called
            ("a", T, "contact", None),  # unknown direction: a contact counts
            ("a", T, "letter_received", "inbound"),  # unknown event, inbound
            ("a", T, "sent", None),
            ("a", T, "survey", "outbound"),  # the invitation, not the answer
            ("a", T, "survey", None),
            ("a", T, "nps", "outbound"),  # an answer is the customer's act
        ]
    )
    assert is_customer_initiated(tp).tolist() == [False, True, False, True, True, False, False, True, True]
    without = is_customer_initiated(tp.drop(columns="direction")).tolist()
    assert without == [False, True, True, True, False, False, True, True, True]


def test_is_active_exactly_at_the_threshold():
    tp = touchpoints(
        [
            ("at", "2024-03-31", "login", None),  # at t: inside
            ("at", "2024-01-02", "clicked", None),  # t - 89 days: inside
            ("below", "2024-03-31", "login", None),
            ("below", "2024-01-01", "clicked", None),  # t - 90 days: outside (t - 90, t]
            ("below", "2024-04-01", "login", None),  # after t: ignored
            ("below", "2024-03-15", "sent", "outbound"),  # not customer-initiated
        ]
    )
    out = build(tp, ids=("at", "below", "none"))
    assert out["active_events_90d"].tolist() == [2.0, 1.0, 0.0]
    assert out["is_active"].tolist() == [1.0, 0.0, 0.0]
    assert out["segment"].tolist() == ["active", "passive", "passive"]


def test_engagement_score_is_weighted_per_30_days():
    tp = touchpoints(
        [
            ("a", "2024-03-01", "opened", None),
            ("a", "2024-03-02", "clicked", None),
            ("a", "2024-03-03", "contact", "inbound"),
        ]
    )
    # weights 0.5 + 1 + 1 = 2.5 over 90 days -> 2.5 * 30 / 90
    assert np.isclose(build(tp).loc["a", "engagement_score"], 2.5 / 3)


def test_empty_touchpoints_everyone_passive():
    out = build(touchpoints([]), ids=("a", "b"))
    assert out["segment"].tolist() == ["passive", "passive"]
    assert out["engagement_score"].tolist() == [0.0, 0.0]


def test_specs_exclude_segment_and_follow_window():
    cfg = FeatureConfig(active_rule=ActiveRule(window_days=60, min_active_events=3))
    names = [s.name for s in segment_feature_specs(cfg, {"touchpoints": ["customer_id", "date", "event"]})]
    assert names == ["engagement_score", "active_events_60d", "is_active"]
    assert segment_feature_specs(cfg, {}) == []


def test_rule_in_params_recovers_the_generators_latent_type():
    from omvald.config import GenerateConfig
    from omvald.data.generate import generate_business

    business = generate_business(GenerateConfig(n_customers=1500, months=18), seed=7)
    customers, truth = business["customers"], business["truth"]
    as_of = pd.to_datetime(["2023-12-31", "2024-03-31", "2024-06-30"])
    spine = customers.merge(pd.DataFrame({"as_of": as_of}), how="cross")
    churn = pd.to_datetime(spine["churn_date"])
    live = (pd.to_datetime(spine["signup_date"]) <= spine["as_of"]) & (churn.isna() | (churn > spine["as_of"]))
    spine = spine.loc[live, ["customer_id", "as_of"]]
    tables = BucketTables(customers, business["billing"], business["touchpoints"])
    out = segment_features(tables, spine, CFG).merge(truth[["customer_id", "latent_type"]], on="customer_id")
    assert (out["segment"] == out["latent_type"].astype(str)).mean() >= 0.85
