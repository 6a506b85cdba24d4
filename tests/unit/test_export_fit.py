"""Scoring checks that the export fits the models (omvald.scoring.export_fit, through plan_scoring).

Six customers, each billed 50 on every month end of 2024, scored at
2024-12-31. C1 left on 2024-06-30 and C2 on 2024-12-31 (the as-of date
itself); both are still billed, so only the churn date tells that they
have left. Tiny linear "models" read ``monthly_revenue`` and
``tenure_months``, which every export has.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omvald.config import config_from_dict
from omvald.errors import ModelError
from omvald.features.facts import AttributeFacts
from omvald.features.spec import BucketTables
from omvald.model.inputs import ModelInputs, model_inputs
from omvald.scoring.bucket import score_bucket
from omvald.scoring.export_fit import model_contractual
from omvald.scoring.plan import ScoringModels, plan_scoring, population_fit
from omvald.scoring.select import parse_explain_policy
from omvald.scoring.stage import read_and_validate

CFG = config_from_dict({"features": {"n_buckets": 1, "horizon_days": 90}})
IDS = [f"C{k}" for k in range(1, 7)]
CHURN_DATES = {"C1": "2024-06-30", "C2": "2024-12-31"}


class LinearModel:
    def __init__(self, features: list[str]) -> None:
        self.feature_names_ = features

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.full(len(X), 0.2)
        return np.column_stack([1 - p, p])


def models(inputs: ModelInputs | None, features: tuple[str, ...] = ("monthly_revenue", "tenure_months")):
    model = LinearModel(list(features))
    return ScoringModels(model, model, "test models", inputs)


CONTRACTUAL = ModelInputs(contractual=True, consent=True)
WITHOUT_CONTRACTS = ModelInputs(contractual=False, consent=True)


def export(folder, *, churn_dates: bool = True, opt_in: bool = True, billing: bool = True):
    folder.mkdir()
    customers = pd.DataFrame({"customer_id": IDS, "signup_date": "2023-06-01"})
    if churn_dates:
        customers["churn_date"] = [CHURN_DATES.get(c, "") for c in IDS]
    if opt_in:
        customers["marketing_opt_in"] = True
    customers.to_csv(folder / "customers.csv", index=False)
    months = pd.date_range("2024-01-31", "2024-12-31", freq="ME").strftime("%Y-%m-%d")
    rows = [(c, m, 50.0) for c in IDS for m in months] if billing else []
    pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"]).to_csv(folder / "billing.csv", index=False)
    (folder / "touchpoints.csv").write_text("customer_id,timestamp,channel,event\n")
    return read_and_validate(CFG, folder, None)


def plan(validated, scoring_models, source="export"):
    tables, meta, warnings = validated
    population = population_fit(CFG, meta, tables["billing"], None, scoring_models)
    return plan_scoring(
        CFG, parse_explain_policy("none"), meta, AttributeFacts.of_customers(tables["customers"]), as_of=None,
        source=source, warnings=warnings, population=population, models=scoring_models,
    )  # fmt: skip


def scored_ids(validated, scoring_models) -> list[str]:
    settled = plan(validated, scoring_models)
    result = score_bucket(BucketTables(**validated[0]), settled, scoring_models)
    return sorted(result.scores["customer_id"])


def test_customers_who_churned_on_or_before_the_as_of_date_are_never_scored(tmp_path):
    validated = export(tmp_path / "export")
    assert str(validated[1]["data_end"])[:10] == "2024-12-31"
    assert scored_ids(validated, models(CONTRACTUAL)) == ["C3", "C4", "C5", "C6"]


def test_a_model_without_contracts_scores_an_export_with_churn_dates_by_its_own_definition(tmp_path):
    # Its definition is "an invoice in the lookback window": C1 and C2 have one, yet they have left.
    validated = export(tmp_path / "export")
    settled = plan(validated, models(WITHOUT_CONTRACTS))
    assert settled.meta["contractual"] is False
    assert scored_ids(validated, models(WITHOUT_CONTRACTS)) == ["C3", "C4", "C5", "C6"]
    warning = next(w for w in settled.warnings if "business without contracts" in w)
    assert "churn_date is on or before the as-of date are left out" in warning


def test_a_contractual_model_refuses_an_export_without_churn_dates(tmp_path):
    validated = export(tmp_path / "export", churn_dates=False)
    with pytest.raises(ModelError, match="no churn_date column") as err:
        plan(validated, models(CONTRACTUAL), source="exports/2026-11")
    assert "exports/2026-11" in str(err.value) and "with contracts" in str(err.value)
    # a model without a record that reads no purchase-history feature counts as contractual too
    with pytest.raises(ModelError, match="no churn_date column"):
        plan(validated, models(None))


def test_a_model_without_a_record_is_read_from_its_features():
    assert model_contractual(models(None), CFG.features) is True
    assert model_contractual(models(None, ("monthly_revenue", "btyd_p_alive")), CFG.features) is False
    assert model_contractual(models(None, ("days_since_last_purchase",)), CFG.features) is False


def test_missing_columns_are_named_with_the_features_built_from_them(tmp_path):
    validated = export(tmp_path / "export")
    recorded = ModelInputs(
        contractual=True, consent=True, requires={"usage_mean_3m": ["billing.customer_id", "billing.usage"]}
    )
    needs = models(recorded, ("monthly_revenue", "usage_mean_3m", "attr_region"))
    with pytest.raises(ModelError) as err:
        plan(validated, needs)
    message = str(err.value)
    assert "read 2 feature(s) this export cannot give" in message
    assert "- no column billing.usage: usage_mean_3m" in message
    assert "- no column customers.region: attr_region" in message


def test_an_export_without_invoices_warns_that_revenue_at_risk_is_zero_for_everyone(tmp_path):
    validated = export(tmp_path / "export", billing=False)
    settled = plan(validated, models(CONTRACTUAL))
    warning = next(w for w in settled.warnings if w.startswith("billing: no rows"))
    assert "revenue at risk are 0 for every customer" in warning
    assert "the models' 1 billing feature(s) read as 'no invoices'" in warning  # monthly_revenue


def test_an_export_without_consent_warns_that_nobody_is_contactable(tmp_path):
    validated = export(tmp_path / "export", opt_in=False)
    (warning,) = [w for w in plan(validated, models(CONTRACTUAL)).warnings if "marketing_opt_in" in w]
    assert warning == (
        "customers: no marketing_opt_in column: nobody is contactable (contactable is false on every row); "
        "the training export had it"
    )
    settled = plan(validated, models(None))
    result = score_bucket(BucketTables(**validated[0]), settled, models(None))
    assert not result.scores["contactable"].any()


def test_the_record_holds_the_business_kind_consent_and_the_columns_of_each_feature():
    meta = {
        "contractual": True,
        "horizon_days": 92,
        "columns": {"customers": ["customer_id", "signup_date", "churn_date", "marketing_opt_in"]},
        "rows": {"customers": 10, "billing": 120, "touchpoints": 0},
    }
    registry = [
        {"name": "price_gap_pct", "requires": ["billing.list_price", "billing.amount"]},
        {"name": "tenure_months", "requires": ["customers.signup_date"]},
    ]
    record = model_inputs(meta, registry, ["tenure_months", "price_gap_pct"])
    assert record == ModelInputs(
        contractual=True,
        consent=True,
        requires={
            "tenure_months": ["customers.signup_date"],
            "price_gap_pct": ["billing.amount", "billing.list_price"],
        },
        table_rows={"billing": 120, "touchpoints": 0},
        horizon_days=92,
    )
    assert record.columns() == ["billing.amount", "billing.list_price", "customers.signup_date"]
    assert ModelInputs.from_json(record.as_json()) == record
