"""Behavioural tests of the trained models: invariance, direction and minimum functionality.

The models are the ones ``small_pipeline`` trained (1,500 customers). Each
test scores a modified copy of that business's raw folder (``data/synthetic``)
through ``omvald score``, exactly as a user would, and compares the result
with the scores of the unmodified folder.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_run import run_cli

pytestmark = pytest.mark.xdist_group("pipeline")

TABLES = ("customers", "billing", "touchpoints")
PRICE_RISE = 1.2


def read_raw(project: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(project / "data/synthetic" / f"{name}.parquet") for name in TABLES}


def score_tables(project: Path, tables: dict[str, pd.DataFrame], name: str, explain: str = "none") -> pd.DataFrame:
    """Write ``tables`` as a contract folder under the project, ``omvald score`` it, return the scores by customer."""
    folder = project / "behaviour" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for table, frame in tables.items():
        frame.to_parquet(folder / f"{table}.parquet", index=False)
    output = project / "behaviour" / f"{name}_scores.parquet"
    args = ["score", "--input", str(folder), "--output", str(output), "--explain", explain]
    run_cli(project, args, project / "params.yaml")
    return pd.read_parquet(output).set_index("customer_id")


def default_policy(project: Path) -> str:
    return yaml.safe_load((project / "params.yaml").read_text())["score"]["explain"]


@pytest.fixture(scope="module")
def raw(small_pipeline: Path) -> dict[str, pd.DataFrame]:
    return read_raw(small_pipeline)


@pytest.fixture(scope="module")
def baseline(small_pipeline: Path, raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Scores of the unmodified business (no reason codes)."""
    return score_tables(small_pipeline, raw, "baseline")


@pytest.fixture(scope="module")
def as_of(baseline: pd.DataFrame) -> dt.date:
    (value,) = pd.to_datetime(baseline["as_of"]).dt.date.unique()
    return value


def test_scoring_the_same_folder_twice_gives_identical_output(small_pipeline, raw):
    # The pipeline's own score stage ran on data/synthetic with the default
    # explain policy; a second run on the same data must match it to the bit,
    # reason codes included.
    first = pd.read_parquet(small_pipeline / "data/scores/scores.parquet").set_index("customer_id")
    second = score_tables(small_pipeline, raw, "again", explain=default_policy(small_pipeline))
    assert first["explained"].sum() > 0, "the default policy should explain someone, or reasons go untested"
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_renaming_a_customer_or_changing_their_email_and_name_never_changes_their_scores(small_pipeline, raw, baseline):
    ids = baseline.index.to_numpy()
    renamed = {old: f"Z{i:07d}" for i, old in enumerate(ids[::7])}  # every 7th customer gets a new id everywhere
    relabelled = set(ids[3::7])  # others get a new e-mail and name
    tables = {name: frame.copy() for name, frame in raw.items()}
    for frame in tables.values():
        frame["customer_id"] = frame["customer_id"].replace(renamed)
    customers = tables["customers"]
    touched = customers["customer_id"].isin(relabelled)
    customers.loc[touched, "email"] = "someone.else@example.org"
    customers.loc[touched, "name"] = "Someone Else"

    modified = score_tables(small_pipeline, tables, "renamed")

    back = modified.rename(index={new: old for old, new in renamed.items()})
    assert len(renamed) > 100 and len(relabelled) > 100
    assert sorted(back.index) == sorted(baseline.index)
    for column in ("p_churn", "p_phase_out", "risk_tier", "segment", "revenue_at_risk"):
        pd.testing.assert_series_equal(back[column].loc[ids], baseline[column], check_exact=True)


def test_a_twenty_percent_price_rise_on_the_last_invoice_raises_p_churn_for_most_customers(
    small_pipeline, raw, baseline, as_of
):
    billing = raw["billing"].copy()
    dates = pd.to_datetime(billing["invoice_date"]).dt.date
    last_month = (dates > as_of - dt.timedelta(days=30)) & (dates <= as_of) & (billing["amount"] > 0)
    billing.loc[last_month, "amount"] = (billing.loc[last_month, "amount"] * PRICE_RISE).round(2)
    raised = set(billing.loc[last_month, "customer_id"])  # list_price unchanged: a rise above list

    modified = score_tables(small_pipeline, {**raw, "billing": billing}, "price_rise")

    ids = [c for c in baseline.index if c in raised]
    delta = modified.loc[ids, "p_churn"] - baseline.loc[ids, "p_churn"]
    share_up = float((delta > 0).mean())
    print(
        f"\nprice rise x{PRICE_RISE} on {len(ids)} customers: p_churn up for {share_up:.1%}; "
        f"delta quantiles (5/50/95%): {np.round(delta.quantile([0.05, 0.5, 0.95]).to_numpy(), 4)}; "
        f"mean p_churn {baseline.loc[ids, 'p_churn'].mean():.4f} -> {modified.loc[ids, 'p_churn'].mean():.4f}"
    )
    assert len(ids) > 0.8 * len(baseline)  # nearly everyone is billed monthly
    assert share_up >= 0.8  # measured 0.88 on the small business
    assert delta.mean() > 0
    # Never a nonsensical move. The few scores that fall (measured: ~10%, at most
    # -0.15) are mostly customers whose bill just dropped with a downgrade; the
    # rise hides part of that drop, a phase-out signal. Largest rise measured: +0.14.
    assert delta.abs().max() <= 0.3
    untouched = [c for c in baseline.index if c not in raised]
    pd.testing.assert_series_equal(modified.loc[untouched, "p_churn"], baseline.loc[untouched, "p_churn"])


def test_a_customer_without_any_touchpoint_still_scores_as_passive(small_pipeline, raw, baseline):
    tp_counts = raw["touchpoints"]["customer_id"].value_counts()
    active = baseline.loc[baseline["segment"] == "active"].index
    silenced = [c for c in active if tp_counts.get(c, 0) > 0][:5]  # the least passive kind of customer
    touchpoints = raw["touchpoints"].loc[~raw["touchpoints"]["customer_id"].isin(silenced)]

    modified = score_tables(small_pipeline, {**raw, "touchpoints": touchpoints}, "no_touchpoints", explain="all")

    assert len(silenced) == 5
    rows = modified.loc[silenced]
    assert np.isfinite(rows[["p_churn", "p_phase_out"]].to_numpy()).all()
    assert ((rows["p_churn"] > 0) & (rows["p_churn"] < 1)).all()
    assert (rows["segment"] == "passive").all()
    assert rows["explained"].all()
