"""The scoring core that both engines drive: plan, per-bucket step, finish (omvald.scoring.plan/bucket/finish).

Twelve customers with one invoice a month (customer k pays 10 x k every
month of 2024) are scored at 2024-12-31 by linear "models" whose exact
contributions are their terms, so who is riskiest is known by hand: the
churn log-odds rise with the monthly bill, so C12, C11, C10 have the most
revenue at risk.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omvald.config import config_from_dict
from omvald.features.facts import DISTINCT_CAP, AttributeFacts, attribute_meta
from omvald.features.spec import BucketTables
from omvald.scoring.bucket import BucketResult, score_bucket
from omvald.scoring.clock import PhaseClock
from omvald.scoring.finish import ScoredBuckets, ScoreSummary, merge_results, summarize
from omvald.scoring.plan import ScoringModels, plan_scoring, whole_input_facts
from omvald.scoring.select import parse_explain_policy
from omvald.scoring.stage import bucket_slices, read_and_validate

CFG = config_from_dict({"features": {"n_buckets": 4, "horizon_days": 90}, "score": {"risk_tiers": {"high": 0.5}}})


class LinearModel:
    """p = logistic(bias + sum w x); its exact contributions are the terms w x (missing counts as 0)."""

    def __init__(self, weights: dict[str, float], bias: float) -> None:
        self.feature_names_ = list(weights)
        self.weights, self.bias = np.array(list(weights.values())), bias

    def _terms(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.feature_names_].to_numpy(dtype=float, na_value=0.0) * self.weights

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-(self.bias + self._terms(X).sum(axis=1))))
        return np.column_stack([1 - p, p])

    def predict_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        contrib = pd.DataFrame(self._terms(X), columns=self.feature_names_, index=X.index)
        contrib["bias"] = self.bias
        return contrib


MODELS = ScoringModels(
    churn=LinearModel({"monthly_revenue": 0.02, "tenure_months": -0.01}, bias=-2.0),
    phase_out=LinearModel({"monthly_revenue": 0.01}, bias=-1.0),
    source="linear test models",
)


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    ids = [f"C{k:02d}" for k in range(1, 13)]
    pd.DataFrame(
        {"customer_id": ids, "signup_date": "2024-01-05", "marketing_opt_in": [k % 2 == 0 for k in range(1, 13)]}
    ).to_csv(folder / "customers.csv", index=False)
    months = pd.date_range("2024-01-31", "2024-12-31", freq="ME").strftime("%Y-%m-%d")
    invoices = [(cid, day, 10.0 * k) for k, cid in enumerate(ids, start=1) for day in months]
    pd.DataFrame(invoices, columns=["customer_id", "invoice_date", "amount"]).to_csv(
        folder / "billing.csv", index=False
    )
    (folder / "touchpoints.csv").write_text("customer_id,timestamp,channel,event\n")
    tables, meta, warnings = read_and_validate(CFG, folder, None)
    return tables, meta, warnings, str(folder)


def plan_for(validated, explain: str):
    tables, meta, warnings, source = validated
    attributes = AttributeFacts.of_customers(tables["customers"])
    policy = parse_explain_policy(explain)
    return plan_scoring(CFG, policy, meta, attributes, as_of=None, source=source, warnings=warnings)


def score_all(validated, explain: str, defer_top: bool) -> pd.DataFrame:
    tables = validated[0]
    plan = plan_for(validated, explain)
    merged = ScoredBuckets(plan)
    slices = {name: bucket_slices(df, plan.n_buckets) for name, df in tables.items()}
    for b in range(plan.n_buckets):
        bucket = BucketTables(**{name: df.iloc[slices[name][b]] for name, df in tables.items()})
        merged.add(score_bucket(bucket, plan, MODELS, defer_top=defer_top))
    return merge_results(plan, MODELS, merged, PhaseClock())


def test_plan_scores_at_the_end_of_data_and_gives_the_empty_touchpoints_their_optional_columns(validated):
    plan = plan_for(validated, "none")
    assert plan.as_of == dt.date(2024, 12, 31)
    assert plan.empty_tables == ("touchpoints",)
    assert {"direction", "value"} <= set(plan.meta["columns"]["touchpoints"])
    assert "rows" not in plan.meta  # features follow the columns: no touchpoints = counts of 0
    assert plan.tier_order == ["high", "low"]


def test_top_n_explains_the_highest_revenue_at_risk_whether_buckets_explain_now_or_defer(validated):
    deferred = score_all(validated, "top:3", defer_top=True)  # the local engine
    in_buckets = score_all(validated, "top:3", defer_top=False)  # Spark: each bucket its own top 3
    pd.testing.assert_frame_equal(in_buckets, deferred)
    explained = deferred.loc[deferred["explained"], "customer_id"].tolist()
    assert explained == ["C10", "C11", "C12"]
    # the reason is the business driver (registry: monthly_revenue speaks for "spend"), named by its feature
    assert deferred.loc[deferred["explained"], "churn_driver_1"].eq("spend").all()
    assert deferred.loc[deferred["explained"], "churn_driver_1_feature"].eq("monthly_revenue").all()
    assert deferred.loc[deferred["explained"], "churn_reason_1"].str.startswith("spend: ").all()
    assert deferred.loc[~deferred["explained"], "churn_reason_1"].isna().all()


def test_revenue_at_risk_and_risk_are_computed_from_the_models(validated):
    result = score_all(validated, "all", defer_top=True).set_index("customer_id")
    c12 = result.loc["C12"]
    tenure = (dt.date(2024, 12, 31) - dt.date(2024, 1, 5)).days / 30.4375  # months since signup
    p_churn = 1 / (1 + np.exp(-(-2.0 + 0.02 * 120 - 0.01 * tenure)))
    p_stays = 1 / (1 + np.exp(-(-1.0 + 0.01 * 120)))
    assert c12["monthly_revenue"] == 120.0
    assert c12["p_churn"] == pytest.approx(p_churn, rel=1e-12)
    assert c12["p_phase_out"] == pytest.approx((1 - p_churn) * p_stays, rel=1e-12)
    # revenue at risk = monthly bill x H/30 x (p_churn + p_phase_out x phase_out_drop 0.3)
    expected = 120.0 * 90 / 30 * (p_churn + (1 - p_churn) * p_stays * 0.3)
    assert c12["revenue_at_risk"] == pytest.approx(expected, rel=1e-12)
    assert bool(c12["contactable"]) is True and bool(result.loc["C11", "contactable"]) is False


def test_risk_policy_explains_exactly_the_customers_at_or_above_the_threshold(validated):
    result = score_all(validated, "risk:0.5", defer_top=True)
    at_risk = (result["p_churn"] >= 0.5) | (result["p_phase_out"] >= 0.5)
    assert 0 < at_risk.sum() < len(result)
    assert result["explained"].tolist() == at_risk.tolist()


def test_a_bucket_result_travels_as_rows_and_back_unchanged(validated):
    tables = validated[0]
    plan = plan_for(validated, "risk:0.5")
    result = score_bucket(BucketTables(**tables), plan, MODELS)
    rows = result.rows()
    again = BucketResult.from_rows(rows)
    pd.testing.assert_frame_equal(again.rows(), rows)
    assert again.reasons.index.tolist() == rows.loc[rows["explained"], "customer_id"].tolist()


def test_the_summary_reads_as_its_json_and_names_the_engine_for_spark_only(validated):
    plan = plan_for(validated, "top:3")
    result = score_all(validated, "top:3", defer_top=True)
    local = summarize(result, plan, MODELS, {"write": 0.1}, output=Path("scores.csv"))
    assert isinstance(local, ScoreSummary)
    assert local["n_scored"] == local.n_scored == 12 and local["n_explained"] == 3
    assert local["as_of"] == "2024-12-31" and "engine" not in local
    assert list(local)[-2:] == ["input", "output"]
    assert local.by_tier_segment["high"]["passive"]["customers"] == int((result["p_churn"] >= 0.5).sum())
    spark = summarize(result, plan, MODELS, {}, output=Path("scores.csv"), engine="spark")
    assert spark.as_json()["engine"] == "spark"


def test_attribute_facts_decide_the_binding_column_from_the_whole_table():
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "contract": ["12m", "24m", "monthly", None],  # contract terms: the binding column
            "region": ["north", "south", "north", "east"],
            "score": [1.5, 2.0, None, 3.0],
        }
    )
    facts = AttributeFacts.of_customers(customers)
    assert facts.kinds == {"contract": "categorical", "region": "categorical", "score": "numeric"}
    assert attribute_meta(facts) == {"attribute_kinds": facts.kinds, "binding_column": "contract"}
    # a column with more distinct values than the cap is never a binding column, even if they read as terms
    many = pd.DataFrame({"customer_id": range(DISTINCT_CAP + 1), "term": [f"{m}m" for m in range(DISTINCT_CAP + 1)]})
    assert AttributeFacts.of_customers(many).distinct == {"term": None}
    assert attribute_meta(AttributeFacts.of_customers(many))["binding_column"] is None
    assert attribute_meta(AttributeFacts.of_customers(many.head(DISTINCT_CAP)))["binding_column"] == "term"


def test_whole_input_facts_keep_the_input_meta_and_add_the_decided_facts():
    meta = {"data_end": "2024-12-31", "rows": {"billing": 0}, "columns": {"billing": ["customer_id", "hash_slot"]}}
    facts = AttributeFacts({"plan": "categorical"}, {"plan": ["basic", "pro"]})
    out = whole_input_facts(meta, facts, empty_tables=("billing",))
    assert out["data_end"] == "2024-12-31" and "rows" not in out
    assert out["columns"]["billing"][:2] == ["customer_id", "hash_slot"]
    assert {"list_price", "due_date", "paid_date", "plan", "products", "usage"} <= set(out["columns"]["billing"])
    assert out["attribute_kinds"] == {"plan": "categorical"} and out["binding_column"] is None
    assert meta["columns"]["billing"] == ["customer_id", "hash_slot"]  # the input meta is not modified


def test_a_business_without_contracts_is_scored_with_one_bgnbd_fit_whatever_the_buckets(tmp_path):
    # The BG/NBD parameters are fitted once on the whole export at the scoring date (population_fit),
    # never per bucket: the btyd features of a customer must not depend on how customers are bucketed.
    from fixtures.businesses import write_non_contractual
    from omvald.features.btyd_fit import fit_frame
    from omvald.features.build import build_features
    from omvald.scoring.plan import population_fit

    folder = write_non_contractual(tmp_path / "shop", n_customers=600)
    tables, meta, warnings = read_and_validate(CFG, folder, None)
    assert meta["contractual"] is False
    population = population_fit(CFG, meta, tables["billing"], None)
    as_of = dt.date.fromisoformat(str(meta["data_end"])[:10])
    assert population["btyd"] == fit_frame(tables["billing"], [as_of], CFG.features)
    plan = plan_scoring(
        CFG,
        parse_explain_policy("none"),
        meta,
        AttributeFacts.of_customers(tables["customers"]),
        as_of=None,
        source=str(folder),
        population=population,
    )
    assert plan.meta["btyd"] == population["btyd"]

    def features(n_buckets: int) -> pd.DataFrame:
        slices = {name: bucket_slices(df, n_buckets) for name, df in tables.items()}
        parts = [
            build_features(
                BucketTables(**{name: df.iloc[slices[name][b]] for name, df in tables.items()}),
                [plan.as_of],
                CFG.features,
                plan.meta,
                with_labels=False,
            )
            for b in range(n_buckets)
        ]
        return pd.concat(parts).sort_values("customer_id").reset_index(drop=True)

    one, four = features(1), features(4)
    assert one["btyd_p_alive"].notna().sum() > 100
    pd.testing.assert_frame_equal(one, four)
    assert population_fit(CFG, {**meta, "contractual": True}, tables["billing"], None) == {}


def test_value_tiers_are_the_abc_cut_of_twelve_months_of_revenue(validated):
    # Customer k was billed 10 x k in each month of 2024: value = 120 x k, total 120 x 78 = 9,360.
    # Highest first, the revenue of the customers above C06 is 1,440+...+840 = 6,840 < 80% (7,488): C06..C12 are A;
    # above C05 it is 7,560, past 80%, and above C03 8,640 < 95% (8,892): C03..C05 are B; C01, C02 are C.
    result = score_all(validated, "none", defer_top=True).set_index("customer_id")
    assert result.loc["C07", "value"] == 840.0
    expected = {f"C{k:02d}": "A" if k >= 6 else "B" if k >= 3 else "C" for k in range(1, 13)}
    assert result["value_tier"].to_dict() == expected
    plan = plan_for(validated, "none")
    summary = summarize(result.reset_index(), plan, MODELS, {}, output=Path("scores.csv"))
    assert summary.value_tiers["cuts"] == {"A": 720.0, "B": 360.0}
    assert summary.value_revenue == 9360.0


def test_tier_by_risk_matrix_adds_up_to_the_scored_totals(validated):
    result = score_all(validated, "none", defer_top=True)
    summary = summarize(result, plan_for(validated, "none"), MODELS, {}, output=Path("scores.csv"))
    cells = [cell for tier in summary.by_value_tier_risk.values() for cell in tier.values()]
    assert set(summary.by_value_tier_risk) == {"A", "B", "C"}
    assert all(set(tier) == {"high", "low"} for tier in summary.by_value_tier_risk.values())
    assert sum(c["customers"] for c in cells) == summary.n_scored == 12
    assert sum(c["contactable"] for c in cells) == summary.n_contactable == 6
    assert sum(c["revenue"] for c in cells) == pytest.approx(summary.value_revenue, abs=0.01)
    assert sum(c["revenue_at_risk"] for c in cells) == pytest.approx(summary.revenue_at_risk, abs=0.01 * len(cells))
    a_high = summary.by_value_tier_risk["A"]["high"]
    in_cell = result[(result["value_tier"] == "A") & (result["risk_tier"] == "high")]
    assert a_high["customers"] == len(in_cell) and a_high["revenue"] == pytest.approx(in_cell["value"].sum())
