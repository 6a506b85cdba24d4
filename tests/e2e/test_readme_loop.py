"""The README's "From scores to a campaign and back", followed as written (issue #17, "Done when").

In a git copy of the project (a small business: 1,500 customers; a budget
that binds; groups of 10 measured on their own, so the re-plan has measured
effects to use), the section's bash block runs line by line in one shell:
``dvc repro`` scores and plans, the generator runs the campaign, ``omvald
effect`` measures it, the report shows it, and the newer export is scored
and planned again with the measured effects. The tests then check what the
issue promises of each step's output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from omvald.actions.plan import CELL, round_half_up
from pipeline_run import REPO, copy_project

pytestmark = [pytest.mark.slow, pytest.mark.pipeline, pytest.mark.xdist_group("readme_loop")]

SECTION = "## From scores to a campaign and back"
BUDGET = 150
SETTINGS = {
    "generate": {"n_customers": 1500},
    "plan": {"budget_contacts": BUDGET},
    "effect": {"min_group_customers": 10},
}


def readme_commands() -> list[str]:
    """The lines of the first bash block after the section heading (continuation lines joined)."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index(SECTION) :], re.S)
    assert block, f"no bash block after {SECTION!r} in README.md"
    joined = block.group(1).replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


def _merge(target: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _merge(target.setdefault(key, {}), value)
        else:
            target[key] = value


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("readme_loop") / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    _merge(params, SETTINGS)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    script = "set -e\n" + "\n".join(readme_commands())
    out = subprocess.run(["bash", "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, f"the README's loop failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return project


def test_the_section_runs_score_plan_contact_measure_and_replan():
    commands = readme_commands()
    assert commands[0].startswith("source .venv/bin/activate") and commands[1] == "dvc repro"
    verbs = [c.split()[1] for c in commands[2:]]
    assert verbs == ["generate", "effect", "report", "score", "plan"]


def test_dvc_repro_writes_a_list_within_budget_of_contactable_customers_each_once(loop):
    listed = pd.read_csv(loop / "data/plan/retention_list.csv", dtype={"customer_id": "str"})
    scores = pd.read_parquet(loop / "data/scores/scores.parquet").set_index("customer_id")
    assert len(listed) > 0 and listed["customer_id"].is_unique
    assert scores.loc[listed["customer_id"], "contactable"].all()
    assert (listed["group"] == "contact").sum() <= BUDGET
    summary = json.loads((loop / "reports/plan_summary.json").read_text())
    assert summary["counts"]["over_budget"] > 0  # the budget binds, so the check above means something
    assert (listed["expected_saved_revenue"] > 0).all()
    assert listed["expected_saved_revenue"].is_monotonic_decreasing


def test_each_cell_holds_out_the_configured_share(loop):
    listed = pd.read_csv(loop / "data/plan/retention_list.csv")
    for _, cell in listed.groupby(CELL):
        assert (cell["group"] == "control").sum() == round_half_up(0.1 * len(cell))
    assert (listed["group"] == "control").sum() > 0


def test_tier_by_risk_matrix_sums_to_the_scored_totals(loop):
    summary = json.loads((loop / "reports/score_summary.json").read_text())
    cells = [c for tier in summary["by_value_tier_risk"].values() for c in tier.values()]
    assert sum(c["customers"] for c in cells) == summary["n_scored"]
    assert sum(c["contactable"] for c in cells) == summary["n_contactable"]
    assert sum(c["revenue_at_risk"] for c in cells) == pytest.approx(summary["revenue_at_risk"], abs=0.1)
    assert sum(c["revenue"] for c in cells) == pytest.approx(summary["value_revenue"], abs=0.1)


def test_no_driver_appears_twice_among_a_customers_reasons(loop):
    scores = pd.read_parquet(loop / "data/scores/scores.parquet")
    for prefix in ("churn_", "phase_out_"):
        drivers = scores[[f"{prefix}driver_{i}" for i in (1, 2, 3)]].to_numpy(dtype=object)
        named = [[d for d in row if isinstance(d, str)] for row in drivers]
        assert all(len(row) == len(set(row)) for row in named)
    assert scores["churn_driver_1"].notna().mean() > 0.5  # the pipeline explains everyone (score.explain: all)


def test_the_campaign_keeps_the_past_and_writes_the_planted_effects_to_the_truth(loop):
    truth = pd.read_parquet(loop / "data/ground_truth_next.parquet")
    listed = pd.read_csv(loop / "data/plan/retention_list.csv", dtype={"customer_id": "str"})
    on_list = truth.set_index("customer_id").loc[listed["customer_id"]]
    assert (on_list["campaign_group"].to_numpy() == listed["group"].to_numpy()).all()
    assert (on_list.loc[listed["group"].to_numpy() == "control", "churn_hazard_cut"] == 0).all()
    contacted = on_list[listed["group"].to_numpy() == "contact"]
    assert (contacted["p_churn_treated_true"] <= contacted["p_churn_untreated_true"] + 1e-12).all()
    old = pd.read_parquet(loop / "data/synthetic/billing.parquet")
    new = pd.read_parquet(loop / "data/synthetic_next/billing.parquet")
    assert new["invoice_date"].max() > old["invoice_date"].max()
    end = pd.Timestamp(old["invoice_date"].max())
    cut = new[pd.to_datetime(new["invoice_date"]) <= end].reset_index(drop=True)
    pd.testing.assert_frame_equal(cut.drop(columns="paid_date"), old.drop(columns="paid_date"))


def test_effect_is_measured_reported_and_used_by_the_next_plan(loop):
    effect = json.loads((loop / "reports/effect.json").read_text())
    overall = effect["groups"][0]
    assert overall["label"] == "all" and overall["n_control"] > 0
    assert overall["churn_reduction_low"] <= overall["churn_reduction"] <= overall["churn_reduction_high"]
    pooled = [g for g in effect["groups"] if g["pooled_into"]]
    assert all("churn_reduction" not in g for g in pooled)
    page = (loop / "reports/report.html").read_text()
    for key in ("value", "plan", "effect"):
        assert f"<section id='{key}'>" in page
    assert "<p class='na'>" not in page
    assert "churn reduction" in page and "Value tiers x risk" in page
    replanned = pd.read_csv(loop / "data/next/retention_list.csv")
    precise_actions = {
        g["action"]
        for g in effect["groups"]
        if g["precise"] and g["action"] and g.get("churn_relative_reduction") is not None
    }
    used = replanned["effect_source"].str.startswith("measured")
    assert used.any() == bool(precise_actions & set(replanned["action"]))
    assert np.isin(replanned.loc[used, "action"], list(precise_actions)).all()
