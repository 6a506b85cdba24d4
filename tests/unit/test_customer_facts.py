"""A customer's value (revenue over the lookback) and preferred channel, and the A/B/C cut (hand-made tables)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from omvald.errors import ConfigError
from omvald.scoring.customer_facts import customer_facts, lookback_start
from omvald.scoring.value_tiers import value_cuts, value_tier

T = dt.date(2025, 2, 28)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_lookback_from_a_month_end_ends_on_a_month_end():
    assert lookback_start(T, 12) == day("2024-02-29")  # leap year: the month end, not the 28th
    assert lookback_start(day("2025-03-15"), 12) == day("2024-03-15")
    assert lookback_start(day("2025-03-31"), 1) == day("2025-02-28")


def test_value_is_everything_billed_in_the_twelve_months_credit_notes_included_never_negative():
    customers = pd.DataFrame({"customer_id": ["A", "B", "C", "D"]})
    billing = pd.DataFrame(
        [
            ("A", "2024-02-29", 500.0),  # on the window's exclusive start: out
            ("A", "2024-03-01", 100.0),
            ("A", "2025-02-28", 100.0),  # on t: in
            ("A", "2025-01-10", -30.0),  # credit note: counts
            ("B", "2025-01-31", 20.0),
            ("B", "2025-02-10", -50.0),  # a net credit is worth 0, not less
            ("C", "2023-05-31", 80.0),  # long ago: out
        ],
        columns=["customer_id", "invoice_date", "amount"],
    ).assign(invoice_date=lambda d: d["invoice_date"].map(day))
    touch = pd.DataFrame(columns=["customer_id", "date", "channel", "event", "direction"])
    facts = customer_facts(customers, billing, touch, T, value_months=12, channel_days=365)
    assert facts["value"].to_dict() == {"A": 170.0, "B": 0.0, "C": 0.0, "D": 0.0}


def test_preferred_channel_is_the_most_used_inbound_channel_else_the_most_received():
    customers = pd.DataFrame({"customer_id": ["act", "pas", "tie", "old", "none"]})
    rows = [
        # act: two app logins beat one phone call; the five e-mails sent to them do not count against inbound
        *[("act", "2025-02-01", "app", "inbound")] * 2,
        ("act", "2025-02-02", "phone", "inbound"),
        *[("act", "2025-02-03", "email", "outbound")] * 5,
        # pas: passive, nothing inbound: the channel that reaches them most
        *[("pas", "2025-01-05", "email", "outbound")] * 3,
        *[("pas", "2025-01-06", "invoice", "outbound")] * 2,
        # tie: one each: the first name in alphabetical order
        ("tie", "2025-02-01", "web", "inbound"),
        ("tie", "2025-02-01", "chat", "inbound"),
        # old: the only inbound contact is before the window, so what they receive decides
        ("old", "2023-12-01", "phone", "inbound"),
        ("old", "2025-02-01", "letter", "outbound"),
    ]
    touch = pd.DataFrame(rows, columns=["customer_id", "date", "channel", "direction"])
    touch["date"] = touch["date"].map(day)
    billing = pd.DataFrame(columns=["customer_id", "invoice_date", "amount"])
    facts = customer_facts(customers, billing, touch, T, value_months=12, channel_days=365)
    got = facts["preferred_channel"]
    assert got[["act", "pas", "tie", "old"]].tolist() == ["app", "email", "chat", "letter"]
    assert pd.isna(got["none"])


def test_abc_cut_on_a_hand_made_distribution():
    # values 50, 30, 10, 5, 5, 0 (total 100): above each, 0, 50, 80, 90, 95, 100 -> A while < 80: 50 and 30;
    # B while < 95: 10 and the first 5 -> cut_B = 5, so both customers worth 5 are B (ties share the tier).
    values = np.array([5.0, 50.0, 0.0, 30.0, 10.0, 5.0])
    cuts = value_cuts(values, {"A": 0.8, "B": 0.15})
    assert (cuts.a, cuts.b, cuts.total) == (30.0, 5.0, 100.0)
    assert value_tier(values, cuts).tolist() == ["B", "A", "C", "A", "B", "B"]


def test_without_revenue_everyone_is_c_and_bad_shares_are_refused():
    cuts = value_cuts(np.zeros(3), {"A": 0.8, "B": 0.15})
    assert value_tier(np.zeros(3), cuts).tolist() == ["C", "C", "C"]
    with pytest.raises(ConfigError, match="A \\+ B <= 1"):
        value_cuts(np.ones(3), {"A": 0.9, "B": 0.2})
    with pytest.raises(ConfigError, match="tiers A and B"):
        value_cuts(np.ones(3), {"top": 0.8})
