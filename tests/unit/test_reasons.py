"""Reason sentences: a driver and its value in plain words, for each unit of the registry."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from omvald.explain.reasons import format_value, reason_columns, reason_sentence
from omvald.features.spec import FeatureSpec


def spec(name: str, description: str, unit: str, kind: str = "numeric") -> FeatureSpec:
    return FeatureSpec(name, "test", description, unit, kind)


@pytest.mark.parametrize(
    ("feature", "value", "sentence"),
    [
        (
            spec("price_shock_pct_3m", "last invoice vs invoice about 3 months earlier", "%"),
            18.0,
            "invoice up 18% in the last 3 months",
        ),
        (
            spec("price_shock_pct_3m", "last invoice vs invoice about 3 months earlier", "%"),
            -7.4,
            "invoice down 7.4% in the last 3 months",
        ),
        (spec("days_late_max_180d", "most days a payment was late, last 180 days", "days"), 23.0, "paid 23 days late"),
        (spec("days_late_max_180d", "most days a payment was late, last 180 days", "days"), 1.0, "paid 1 day late"),
        (
            spec("days_since_last_inbound", "days since the customer last contacted us", "days"),
            140.0,
            "no contact with us for 140 days",
        ),
        (
            spec("loyalty_gap_pct", "last invoice above the price a new customer pays", "%"),
            22.5,
            "pays 22% more than a new customer for the same offer",
        ),
        (spec("tenure_months", "months since signup", "months"), 14.0, "customer for 14 months"),
    ],
)
def test_known_features_read_as_their_own_sentence(feature, value, sentence):
    assert reason_sentence(feature, value) == sentence


@pytest.mark.parametrize(
    ("unit", "value", "sentence"),
    [
        ("%", 12.4, "amount change: up 12%"),
        ("%", -3.0, "amount change: down 3%"),
        ("%", 0.2, "amount change: unchanged"),
        ("money", 449.5, "amount change: 450"),
        ("money", 29.0, "amount change: 29.00"),
        ("days", 45.0, "amount change: 45 days"),
        ("months", 1.0, "amount change: 1 month"),
        ("count", 3.0, "amount change: 3"),
        ("count", 0.5, "amount change: 0.5"),
        ("share", 0.25, "amount change: 25%"),
        ("flag", 1.0, "amount change: yes"),
        ("flag", 0.0, "amount change: no"),
        ("%-points", 4.0, "amount change: 4 %-points"),
        ("score 0-10", 6.0, "amount change: 6"),
    ],
)
def test_generic_sentence_per_unit(unit, value, sentence):
    assert reason_sentence(spec("some_new_feature", "amount change", unit), value) == sentence


def test_categorical_feature_reads_its_level():
    feature = spec("plan_last", "current plan", "category", kind="categorical")
    assert reason_sentence(feature, "premium") == "current plan: premium"


def test_missing_value_reads_no_data():
    assert (
        reason_sentence(spec("days_since_last_inbound", "days since contact", "days"), math.nan)
        == "days since contact: no data"
    )
    assert (
        reason_sentence(spec("plan_last", "current plan", "category", "categorical"), None) == "current plan: no data"
    )


def test_reason_columns_use_the_registry_and_leave_empty_drivers_empty():
    drivers = pd.DataFrame(
        {
            "churn_driver_1": ["payment", None],
            "churn_driver_1_feature": ["days_late_max_180d", None],
            "churn_driver_1_value_raw": [23.0, None],
            "churn_driver_2": ["unknown_feature", None],
            "churn_driver_2_feature": ["unknown_feature", None],
            "churn_driver_2_value_raw": [2.0, None],
        }
    )
    specs = {"days_late_max_180d": spec("days_late_max_180d", "most days late", "days")}
    out = reason_columns(drivers, specs, prefix="churn_", k=2)
    # a known driver opens the sentence in plain words; a feature that is its own driver reads as itself
    assert out["churn_reason_1"].tolist()[0] == "payments: paid 23 days late"
    assert out["churn_reason_2"].tolist()[0] == "unknown feature: 2"
    assert out["churn_reason_1"].isna().tolist() == [False, True]


def test_format_value_keeps_numbers_exact_enough_and_categories_verbatim():
    assert format_value(18.0) == "18"
    assert format_value(0.123456789) == "0.123457"
    assert format_value("monthly") == "monthly"
    assert format_value(math.nan) is None
