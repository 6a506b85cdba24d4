"""The retention list (omvald.actions.plan): ranking by expected saved revenue, budget, holdout, rule table."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from omvald.actions.plan import MeasuredEffects, retention_list, round_half_up
from omvald.config import config_from_dict
from omvald.errors import ConfigError

AS_OF = dt.date(2025, 12, 31)
ACTIONS = {
    "plan_review": {"channel": "preferred", "cost": 2.0, "effect": 0.25, "theme": "plan review"},
    "service_recovery_call": {"channel": "phone", "cost": 15.0, "effect": 0.3, "theme": "call"},
    "renewal_offer": {"channel": "preferred", "cost": 5.0, "effect": 0.2, "theme": "renewal"},
    "relevant_information": {"channel": "preferred", "cost": 0.5, "effect": 0.05, "theme": "info"},
}
RULES = [
    {"driver": ["price_change"], "action": "plan_review"},
    {"driver": ["complaint"], "segment": ["active"], "action": "service_recovery_call"},
    {"driver": ["binding"], "action": "renewal_offer"},
    {"segment": ["passive"], "action": "relevant_information"},
]


def plan_cfg(**overrides):
    plan = {"actions": ACTIONS, "rules": RULES, "budget_contacts": None, "holdout_share": 0.0, **overrides}
    return config_from_dict({"plan": plan}).plan


def scores(rows: list[tuple], channels: list | None = None) -> pd.DataFrame:
    cols = ["customer_id", "p_churn", "p_phase_out", "value", "contactable", "segment", "value_tier", "churn_driver_1"]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.assign(
        as_of=AS_OF,
        risk_tier="high",
        preferred_channel=channels or "email",
        churn_reason_1=[
            f"reason of {c}" if d else None for c, d in zip(frame["customer_id"], frame["churn_driver_1"], strict=True)
        ],
        phase_out_driver_1=None,
        phase_out_reason_1=None,
    )


TINY = scores(
    [
        # id, p_churn, p_phase_out, value, contactable, segment, tier, driver
        ("a", 0.5, 0.1, 1000.0, True, "passive", "A", "price_change"),
        ("b", 0.2, 0.0, 2000.0, True, "active", "A", "complaint"),
        ("c", 0.3, np.nan, 500.0, True, "passive", "B", "binding"),
        ("d", 0.9, 0.0, 100.0, False, "passive", "C", "price_change"),
        ("e", 0.01, 0.0, 100.0, True, "passive", "C", None),
        ("f", 0.6, 0.0, 250.0, True, "passive", "B", "binding"),
        ("g", 0.4, 0.0, 900.0, True, "active", "B", None),
    ],
    channels=["email", None, "letter", "sms", "app", "web", "email"],
)


def test_ranked_by_expected_saved_revenue_computed_by_hand():
    # saved = (p_churn + p_phase_out x 0.3) x value x effect - cost
    #   a: (0.5 + 0.1 x 0.3) x 1000 x 0.25 - 2  = 130.5   plan review
    #   b: 0.2 x 2000 x 0.3 - 15               = 105     service-recovery call (active, complaint)
    #   c: 0.3 x 500 x 0.2 - 5                 = 25      renewal (p_phase_out missing counts as 0)
    #   f: 0.6 x 250 x 0.2 - 5                 = 25      renewal; ties with c, so the lower id c goes first
    #   d: not contactable; e: 0.01 x 100 x 0.05 - 0.5 < 0, not worth a contact;
    #   g: active and not explained: no rule matches it
    listed, counts = retention_list(TINY, plan_cfg(), phase_out_drop=0.3)
    assert listed["customer_id"].tolist() == ["a", "b", "c", "f"]
    assert listed["expected_saved_revenue"].tolist() == pytest.approx([130.5, 105.0, 25.0, 25.0])
    assert listed["action"].tolist() == ["plan_review", "service_recovery_call", "renewal_offer", "renewal_offer"]
    # 'preferred' is the customer's own channel; b has none but the call goes by phone anyway
    assert listed["channel"].tolist() == ["email", "phone", "letter", "web"]
    assert listed["rank"].tolist() == [1, 2, 3, 4] and (listed["group"] == "contact").all()
    assert listed["reason"].tolist() == ["reason of a", "reason of b", "reason of c", "reason of f"]
    assert counts == {
        "scored": 7,
        "contactable": 6,
        "no_rule": 1,
        "not_worth_contacting": 1,
        "over_budget": 0,
        "without_reason_codes": 2,
    }


def test_budget_in_contacts_and_in_money_keeps_the_head_of_the_ranking():
    by_count, counts = retention_list(TINY, plan_cfg(budget_contacts=2), phase_out_drop=0.3)
    assert by_count["customer_id"].tolist() == ["a", "b"] and counts["over_budget"] == 2
    # cost: a 2 + b 15 = 17 fits 20; c would make it 22
    by_cost, _ = retention_list(TINY, plan_cfg(budget_cost=20.0), phase_out_drop=0.3)
    assert by_cost["customer_id"].tolist() == ["a", "b"]


def test_measured_effects_replace_the_assumed_ones_where_measured():
    # renewal measured at 0.5 for passive B customers: c and f are now worth 0.3 x 500 x 0.5 - 5 = 70, 70
    measured = MeasuredEffects({("renewal_offer", "passive", "B"): 0.5, ("plan_review", None, None): 0.1}, "e.json")
    listed, _ = retention_list(TINY, plan_cfg(), phase_out_drop=0.3, measured=measured)
    got = listed.set_index("customer_id")
    assert got.loc["c", "expected_saved_revenue"] == pytest.approx(70.0)
    assert got.loc["c", "effect_source"] == "measured (cell)"
    assert got.loc["a", "effect"] == 0.1 and got.loc["a", "effect_source"] == "measured (action)"
    assert got.loc["b", "effect_source"] == "assumed"
    assert listed["customer_id"].tolist() == ["b", "c", "f", "a"]  # a: 0.53 x 1000 x 0.1 - 2 = 51


def many(n_per_cell: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = []
    for (segment, tier), n in n_per_cell.items():
        for i in range(n):
            rows.append((f"{segment}-{tier}-{i:04d}", 0.3 + i * 1e-4, 0.0, 1000.0, True, segment, tier, "price_change"))
    return scores(rows)


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_holdout_is_the_configured_share_of_every_cell_and_the_same_in_every_run(share):
    table = many({("passive", "A"): 95, ("active", "A"): 15, ("active", "C"): 5, ("passive", "B"): 1})
    listed, _ = retention_list(table, plan_cfg(holdout_share=share), phase_out_drop=0.3)
    assert listed["customer_id"].is_unique
    for _, cell in listed.groupby(["action", "segment", "value_tier"]):
        assert (cell["group"] == "control").sum() == round_half_up(share * len(cell))
    again, _ = retention_list(table.sample(frac=1.0, random_state=3), plan_cfg(holdout_share=share), 0.3)
    pd.testing.assert_frame_equal(listed, again)
    redrawn, _ = retention_list(table, plan_cfg(holdout_share=share, holdout_salt="another"), 0.3)
    assert set(redrawn.loc[redrawn["group"] == "control", "customer_id"]) != set(
        listed.loc[listed["group"] == "control", "customer_id"]
    )


def test_control_customers_cost_nothing_so_the_budget_counts_contacts_only():
    table = many({("passive", "A"): 300})
    listed, _ = retention_list(table, plan_cfg(holdout_share=0.1, budget_contacts=100), phase_out_drop=0.3)
    contacts = (listed["group"] == "contact").sum()
    # 111 listed: round(11.1) = 11 held out, 100 contacted; a 112th would make 101 contacts (11.2 -> 11)
    assert (len(listed), contacts) == (111, 100)


def test_a_rule_naming_an_unknown_action_is_refused():
    with pytest.raises(ConfigError, match=r"plan.rules\[0\]: action 'call_them'"):
        retention_list(TINY, plan_cfg(rules=[{"action": "call_them"}]), phase_out_drop=0.3)
    with pytest.raises(ConfigError, match="holdout_share"):
        retention_list(TINY, plan_cfg(holdout_share=1.0), phase_out_drop=0.3)


def test_the_stage_writes_the_list_and_a_summary_that_adds_up(tmp_path):
    import json

    from omvald.actions.plan_stage import run_plan

    cfg = config_from_dict({"plan": {"actions": ACTIONS, "rules": RULES, "budget_contacts": 3, "holdout_share": 0.5}})
    TINY.to_parquet(tmp_path / "scores.parquet", index=False)
    result = run_plan(cfg, tmp_path / "scores.parquet", tmp_path / "list.csv", tmp_path / "plan.json", run_json=None)
    written = pd.read_csv(tmp_path / "list.csv", dtype={"customer_id": "str"})
    assert written["customer_id"].tolist() == result.retention_list["customer_id"].tolist()
    assert written["as_of"].unique().tolist() == ["2025-12-31"]
    summary = json.loads((tmp_path / "plan.json").read_text())
    counts = summary["counts"]
    assert counts["contact"] <= 3 and counts["contact"] + counts["control"] == counts["listed"] == len(written)
    assert sum(c["listed"] for c in summary["by_cell"]) == len(written)
    assert sum(a["contact"] for a in summary["by_action"].values()) == counts["contact"]
    assert summary["contact_cost"] == pytest.approx(written.loc[written["group"] == "contact", "cost"].sum())


def test_an_effect_json_gives_the_plan_its_precise_groups_only():
    from omvald.actions.effect import measure
    from omvald.actions.plan import measured_effects

    rows = []
    for group, n, churns in (("contact", 200, 20), ("control", 40, 8)):
        rows += [(group, "plan_review", "passive", "A", float(i < churns)) for i in range(n)]
    rows += [("contact", "renewal_offer", "active", "B", 0.0)] * 5 + [("control", "renewal_offer", "active", "B", 1.0)]
    outcomes = pd.DataFrame(rows, columns=["group", "action", "segment", "value_tier", "churn"]).assign(
        phase_out=0.0, value=100.0, cost=1.0, expected_saved_revenue=2.0
    )
    measured = measured_effects({"groups": measure(outcomes, min_group=30)}, "effect.json")
    # plan review: control 8/40 = 0.2, contacted 20/200 = 0.1 -> half the churn: relative reduction 0.5
    assert measured.lookup("plan_review", "passive", "A") == (pytest.approx(0.5), "measured (cell)")
    assert measured.lookup("renewal_offer", "active", "B") is None  # 5 and 1 customers: pooled, not used
