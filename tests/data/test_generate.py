"""The synthetic business behaves like a subscription company, with numbers.

One 2,500-customer business (36 months) is generated per module; the
mechanism tests measure it the way an analyst would, from the contract
tables, and use the ground truth only for the latent type.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from omvald.cli import app
from omvald.config import Config, GenerateConfig
from omvald.data.generate import generate_business, run_generate
from omvald.errors import ConfigError
from omvald.io import MARKER

SMALL = GenerateConfig(n_customers=2_500, chunk_size=1_000)
H = pd.Timedelta(days=90)


def _dates(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if col.endswith("_date") or col == "phase_out_start":
            out[col] = pd.to_datetime(out[col])
    return out


@pytest.fixture(scope="module")
def biz() -> dict[str, pd.DataFrame]:
    tables = {name: _dates(df) for name, df in generate_business(SMALL, seed=11).items()}
    tables["invoices"] = tables["billing"][tables["billing"]["amount"] > 0]
    return tables


@pytest.fixture(scope="module")
def latent(biz) -> pd.Series:
    return biz["truth"].set_index("customer_id")["latent_type"]


def _population(customers: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    alive = (customers["signup_date"] <= t) & (customers["churn_date"].isna() | (customers["churn_date"] > t))
    return customers[alive]


# --- determinism and files ---------------------------------------------------------------------


def _run(tmp: Path, seed: int, fmt: str = "parquet") -> dict[str, bytes]:
    cfg = Config(seed=seed, generate=dataclasses.replace(SMALL, n_customers=1_200, chunk_size=500))
    run_generate(cfg, tmp / "out", tmp / "truth.parquet", fmt)
    return {p.name: p.read_bytes() for p in sorted([*(tmp / "out").iterdir(), tmp / "truth.parquet"])}


def test_same_seed_writes_byte_identical_files(tmp_path):
    first, second = _run(tmp_path / "a", seed=5), _run(tmp_path / "b", seed=5)
    assert sorted(first) == [MARKER, "billing.parquet", "customers.parquet", "touchpoints.parquet", "truth.parquet"]
    assert first == second


def test_different_seed_gives_different_business(tmp_path):
    first, second = _run(tmp_path / "a", seed=5), _run(tmp_path / "b", seed=6)
    assert all(first[name] != second[name] for name in first if name != MARKER)


def test_csv_format_writes_iso_dates_and_empty_churn_for_customers_alive(tmp_path):
    _run(tmp_path, seed=5, fmt="csv")
    customers = pd.read_csv(tmp_path / "out" / "customers.csv")
    assert customers["signup_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert 0 < customers["churn_date"].isna().mean() < 1


def test_cli_writes_folder_and_truth_and_prints_summary(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 3\ngenerate:\n  n_customers: 300\n  months: 12\n")
    result = CliRunner().invoke(
        app, ["generate", str(tmp_path / "syn"), "--truth", str(tmp_path / "gt.parquet"), "--params", str(params)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "syn").iterdir()} == {
        MARKER,
        "customers.parquet",
        "billing.parquet",
        "touchpoints.parquet",
    }
    assert pq.read_table(tmp_path / "gt.parquet").num_rows == 300
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_unknown_contract_name_is_a_config_error():
    with pytest.raises(ConfigError, match="contract_shares"):
        generate_business(dataclasses.replace(SMALL, n_customers=10, contract_shares={"weekly": 1.0}), seed=1)


# --- data contract ---------------------------------------------------------------------------------


def test_tables_have_contract_columns_and_types(tmp_path):
    _run(tmp_path, seed=5)
    schema = {
        name: pq.read_schema(tmp_path / "out" / f"{name}.parquet") for name in ("customers", "billing", "touchpoints")
    }
    customers = schema["customers"]
    assert customers.names[:3] == ["customer_id", "signup_date", "churn_date"]
    assert {"contract_type", "plan_tier", "region", "payment_method", "marketing_opt_in", "name", "email"} <= set(
        customers.names
    )
    assert customers.field("signup_date").type == pa.date32() and customers.field("churn_date").type == pa.date32()
    assert customers.field("marketing_opt_in").type == pa.bool_()
    billing = schema["billing"]
    assert billing.names == [
        "customer_id",
        "invoice_date",
        "amount",
        "list_price",
        "due_date",
        "paid_date",
        "plan",
        "products",
        "usage",
    ]
    assert {billing.field(c).type for c in ("invoice_date", "due_date", "paid_date")} == {pa.date32()}
    assert billing.field("products").type == pa.int64() and billing.field("amount").type == pa.float64()
    touch = schema["touchpoints"]
    assert touch.names == ["customer_id", "timestamp", "channel", "event", "direction", "value"]
    assert pa.types.is_timestamp(touch.field("timestamp").type)
    assert all(s.field("customer_id").type == pa.string() for s in schema.values())


def test_customers_are_unique_and_static_attributes_have_expected_mix(biz):
    c = biz["customers"]
    assert c["customer_id"].is_unique and c["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert set(c["contract_type"]) == {"monthly", "12m", "24m"}
    assert set(c["plan_tier"]) == {"basic", "standard", "premium"}
    assert "autopay" in set(c["payment_method"])
    assert 0.55 < c["marketing_opt_in"].mean() < 0.65
    assert 0.25 < (c["signup_date"] < pd.Timestamp("2023-01-01")).mean() < 0.45  # initial base


def test_no_rows_after_churn_and_churn_after_signup(biz):
    c = biz["customers"].set_index("customer_id")
    churned = c["churn_date"].notna()
    assert (c.loc[churned, "churn_date"] > c.loc[churned, "signup_date"]).all()
    last_invoice = biz["billing"].groupby("customer_id")["invoice_date"].max()
    assert (last_invoice.reindex(c.index[churned]) <= c.loc[churned, "churn_date"]).all()
    last_touch = biz["touchpoints"].groupby("customer_id")["timestamp"].max().dt.normalize()
    assert (
        last_touch.reindex(c.index[churned]).dropna() <= c.loc[churned, "churn_date"].reindex(last_touch.index).dropna()
    ).all()
    first_invoice = biz["invoices"].groupby("customer_id")["invoice_date"].min()
    assert (first_invoice >= c["signup_date"].reindex(first_invoice.index)).all()


def test_truth_matches_customers_and_names_known_drivers(biz):
    truth, c = biz["truth"], biz["customers"]
    assert truth["customer_id"].tolist() == c["customer_id"].tolist()
    pd.testing.assert_series_equal(truth["churn_date"], c["churn_date"], check_names=False)
    drivers = {"price_shock", "loyalty_gap", "complaint", "satisfaction", "binding_end", "phase_out", "baseline"}
    assert set(truth["churn_driver"].dropna()) == drivers
    assert truth["churn_driver"].isna().equals(truth["churn_date"].isna())
    both = truth.dropna(subset=["churn_date", "phase_out_start"])
    assert (both["phase_out_start"] < both["churn_date"]).all()


def test_invoices_have_due_dates_14_to_30_days_and_credit_notes_are_negative(biz):
    inv = biz["invoices"]
    assert (inv["due_date"] - inv["invoice_date"]).dt.days.between(14, 30).all()
    credit = biz["billing"][biz["billing"]["amount"] < 0]
    assert 0 < len(credit) < 0.02 * len(inv)


def test_autopay_is_rarely_late_and_invoice_payers_more_often(biz):
    inv = biz["invoices"].merge(biz["customers"][["customer_id", "payment_method"]], on="customer_id")
    late = (inv["paid_date"] > inv["due_date"]).groupby(inv["payment_method"]).mean()
    assert late["autopay"] < 0.02 < late["invoice"]


# --- mechanisms ------------------------------------------------------------------------------------


def test_passive_customers_seek_contact_far_less_than_active(biz, latent):
    inbound = biz["touchpoints"].query("direction == 'inbound'")
    per_month = (
        inbound.groupby(inbound["customer_id"].map(latent)).size()
        / biz["invoices"].groupby(biz["invoices"]["customer_id"].map(latent)).size()
    )
    assert per_month["passive"] < 0.2
    assert per_month["active"] > 2.0
    assert per_month["passive"] < per_month["active"] / 5


def test_latent_type_is_identifiable_from_90_days_of_touchpoints(biz, latent):
    t = pd.Timestamp("2025-06-30")
    pop = _population(biz["customers"], t)["customer_id"]
    tp = biz["touchpoints"]
    window = tp[
        (tp["direction"] == "inbound") & (tp["timestamp"] > t - H) & (tp["timestamp"] < t + pd.Timedelta(days=1))
    ]
    looks_active = window.groupby("customer_id").size().reindex(pop, fill_value=0) >= 2
    agree = np.where(looks_active, "active", "passive") == latent.reindex(pop).to_numpy()
    assert agree.mean() >= 0.85


def test_large_price_increase_triples_churn_in_next_three_months(biz):
    inv = biz["invoices"].sort_values(["customer_id", "invoice_date"])
    prev = inv.groupby("customer_id")[["amount", "plan", "products"]].shift()
    same_offer = (inv["plan"] == prev["plan"]) & (inv["products"] == prev["products"])
    change = inv["amount"] / prev["amount"] - 1
    churn = inv["customer_id"].map(biz["customers"].set_index("customer_id")["churn_date"])
    churn_3m = (churn > inv["invoice_date"]) & (churn <= inv["invoice_date"] + H)
    observed = inv["invoice_date"] <= pd.Timestamp("2025-09-30")
    shocked = churn_3m[same_offer & (change >= 0.08) & observed]
    steady = churn_3m[same_offer & (change.abs() < 1e-9) & observed]
    assert len(shocked) > 200
    assert shocked.mean() / steady.mean() > 1.5


def test_falling_amount_precedes_a_share_of_churns(biz):
    inv = biz["invoices"].sort_values(["customer_id", "invoice_date"])
    churners = biz["customers"].dropna(subset=["churn_date"])["customer_id"]
    last5 = inv[inv["customer_id"].isin(churners)].groupby("customer_id")["amount"].agg(list)
    last5 = last5[last5.map(len) >= 4].map(lambda a: a[-5:])
    fell = last5.map(lambda a: a[-1] <= 0.8 * max(a))
    assert len(fell) > 300
    assert fell.mean() >= 0.2


def test_loyalty_gap_grows_with_tenure(biz):
    inv = biz["invoices"].merge(biz["customers"][["customer_id", "signup_date"]], on="customer_id")
    years = ((inv["invoice_date"] - inv["signup_date"]).dt.days // 365).clip(upper=5)
    gap = (inv["amount"] / inv["list_price"]).groupby(years).mean()
    assert gap.is_monotonic_increasing
    assert gap[0] == pytest.approx(1.0, abs=0.01)
    assert gap[4] - gap[0] > 0.1


def test_churn_and_phase_out_labels_have_a_few_percent_positives(biz):
    c, bill = biz["customers"], biz["billing"]
    churn_rate = c["churn_date"].notna().sum() / len(biz["invoices"])
    assert 0.01 <= churn_rate <= 0.02  # per customer-month
    t = pd.Timestamp("2024-06-30")
    pop = _population(c, t).set_index("customer_id")
    churn = (pop["churn_date"] > t) & (pop["churn_date"] <= t + H)
    billed = bill[bill["customer_id"].isin(pop.index)]
    before = billed[billed["invoice_date"].between(t - H, t, inclusive="right")].groupby("customer_id")["amount"].sum()
    after = billed[billed["invoice_date"].between(t, t + H, inclusive="right")].groupby("customer_id")["amount"].sum()
    drop = after.reindex(pop.index, fill_value=0) <= 0.7 * before.reindex(pop.index, fill_value=0)
    phase_out = ~churn & drop & (before.reindex(pop.index, fill_value=0) > 0)
    assert 0.025 <= churn.mean() <= 0.07
    assert 0.01 <= phase_out.mean() <= 0.06


def test_passive_churn_is_driven_by_price_shocks_active_by_experience(biz):
    truth = biz["truth"].dropna(subset=["churn_driver"])
    share = pd.crosstab(truth["latent_type"], truth["churn_driver"], normalize="index")
    assert share.loc["passive", "price_shock"] > 0.3
    experience = ["satisfaction", "complaint"]
    assert share.loc["active", experience].sum() > 2 * share.loc["passive", experience].sum()
