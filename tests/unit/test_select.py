"""The --explain policy: who gets reason codes, exactly and deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omvald.errors import ConfigError
from omvald.scoring.select import ExplainPolicy, parse_explain_policy, select_for_explanation


@pytest.fixture
def scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c5", "c1", "c3", "c2", "c4"],
            "p_churn": [0.05, 0.40, 0.10, 0.29, 0.31],
            "p_phase_out": [0.35, 0.01, 0.02, 0.10, 0.00],
            "revenue_at_risk": [30.0, 120.0, 30.0, 30.0, 80.0],
        }
    )


def chosen(scores: pd.DataFrame, policy: str) -> list[str]:
    return sorted(scores.loc[select_for_explanation(scores, parse_explain_policy(policy)), "customer_id"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("top:100", ExplainPolicy("top", 100)),
        ("risk:0.3", ExplainPolicy("risk", 0.3)),
        (" ALL ", ExplainPolicy("all")),
        ("none", ExplainPolicy("none")),
        ("top:0", ExplainPolicy("top", 0)),
    ],
)
def test_parse_reads_every_policy(text, expected):
    assert parse_explain_policy(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "top",
        "top:-1",
        "top:2.5",
        "risk:1.5",
        "risk:x",
        "best:3",
        "",
        "some",
        "top:nan",
        "top:inf",
        "risk:nan",
        "risk:-inf",
    ],
)
def test_parse_rejects_malformed_policies_with_a_config_error(text):
    with pytest.raises(ConfigError, match="--explain"):
        parse_explain_policy(text)


def test_top_n_picks_the_highest_revenue_at_risk(scores):
    assert chosen(scores, "top:2") == ["c1", "c4"]


def test_top_n_breaks_ties_by_lowest_customer_id(scores):
    # c2, c3 and c5 tie at 30.0: the third and fourth places go to c2 then c3
    assert chosen(scores, "top:3") == ["c1", "c2", "c4"]
    assert chosen(scores, "top:4") == ["c1", "c2", "c3", "c4"]


def test_top_n_does_not_depend_on_row_order(scores):
    shuffled = scores.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert chosen(shuffled, "top:3") == chosen(scores, "top:3")


def test_top_n_larger_than_the_base_explains_everyone(scores):
    assert chosen(scores, "top:100") == ["c1", "c2", "c3", "c4", "c5"]


def test_risk_p_takes_either_probability_at_or_above_p(scores):
    # c1 and c4 by churn, c5 by phase-out; c2 (0.29) just misses
    assert chosen(scores, "risk:0.3") == ["c1", "c4", "c5"]
    assert chosen(scores, "risk:0.29") == ["c1", "c2", "c4", "c5"]


def test_all_and_none(scores):
    assert chosen(scores, "all") == ["c1", "c2", "c3", "c4", "c5"]
    assert chosen(scores, "none") == []
    assert chosen(scores, "top:0") == []


def test_empty_scores_select_nobody():
    empty = pd.DataFrame({"customer_id": [], "p_churn": [], "p_phase_out": [], "revenue_at_risk": []})
    assert select_for_explanation(empty, parse_explain_policy("top:3")).tolist() == []
    assert isinstance(select_for_explanation(empty, parse_explain_policy("all")), np.ndarray)
