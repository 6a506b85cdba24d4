"""Bad input stops ``omvald validate`` with a message naming table, column and example rows.

Each bad-input test writes a tiny CSV folder, runs the command and checks the
message, the exit code and that neither the interim folder nor the profile
was written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from omvald.cli import app
from omvald.config import Config, DataConfig
from omvald.data.read import read_tables
from omvald.data.validate import run_validate, validate_tables
from omvald.errors import DataContractError

CUSTOMERS = "customer_id,signup_date,churn_date,marketing_opt_in,email,region\n" + "\n".join(
    [
        "C1,2023-01-01,,yes,ann@example.com,north",
        "C2,2023-01-15,2023-06-10,0,bo@example.com,south",
        "C3,2023-02-01,,,cy@example.com,north",
    ]
)
BILLING = "customer_id,invoice_date,amount\nC1,2023-01-31,100\nC1,2023-02-28,100\nC2,2023-01-31,50\nC3,2023-02-28,20"
TOUCHPOINTS = "customer_id,timestamp,channel,event,direction\nC1,2023-03-01T10:00:00+02:00,Email,Opened,Inbound"


def write_folder(root: Path, **tables: str | None) -> Path:
    """A raw folder with the three default tables; pass ``billing=None`` to leave a file out."""
    raw = root / "raw"
    raw.mkdir()
    contents = {"customers": CUSTOMERS, "billing": BILLING, "touchpoints": TOUCHPOINTS} | tables
    for name, text in contents.items():
        if text is not None:
            (raw / f"{name}.csv").write_text(text + "\n")
    return raw


def run_cli(root: Path, raw: Path, *extra: str):
    params = root / "params.yaml"
    params.write_text("data:\n  personal_columns: [email, name]\n")
    args = [
        "validate",
        str(raw),
        str(root / "interim"),
        "--profile",
        str(root / "profile.json"),
        "--params",
        str(params),
    ]
    return CliRunner().invoke(app, [*args, *extra])


def assert_rejected(root: Path, result, *needles: str) -> None:
    assert result.exit_code == DataContractError.exit_code, result.output
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in:\n{result.output}"
    assert not (root / "interim").exists()
    assert not (root / "profile.json").exists()


BAD_INPUTS = [
    pytest.param(
        {"billing": "customer_id,amount\nC1,100"},
        ["table 'billing'", "column 'invoice_date'", "missing required column"],
        id="missing-required-column",
    ),
    pytest.param(
        {"customers": None},
        ["table 'customers'", "no customers file"],
        id="missing-customers-file",
    ),
    pytest.param(
        {"customers": CUSTOMERS + "\nC2,2023-03-01,,,dup@example.com,east"},
        ["table 'customers'", "column 'customer_id'", "duplicate customer ids", "line 3: customer_id='C2'"],
        id="duplicate-customer-id",
    ),
    pytest.param(
        {"billing": BILLING + "\nC9,2023-03-31,10"},
        ["table 'billing'", "column 'customer_id'", "not in the customers table", "line 6: customer_id='C9'"],
        id="unknown-customer-in-billing",
    ),
    pytest.param(
        {"touchpoints": TOUCHPOINTS + "\nC7,2023-03-02,sms,sent,outbound"},
        ["table 'touchpoints'", "column 'customer_id'", "not in the customers table", "line 3: customer_id='C7'"],
        id="unknown-customer-in-touchpoints",
    ),
    pytest.param(
        {"billing": BILLING + "\nC1,31/03/2023,10"},
        ["table 'billing'", "column 'invoice_date'", "cannot be read as a date", "invoice_date='31/03/2023'"],
        id="unparsable-date",
    ),
    pytest.param(
        {"touchpoints": TOUCHPOINTS + "\nC2,yesterday,sms,sent,outbound"},
        ["table 'touchpoints'", "column 'timestamp'", "line 3", "timestamp='yesterday'"],
        id="unparsable-timestamp",
    ),
    pytest.param(
        {"billing": BILLING + '\nC1,2023-03-31,"1,5"'},
        ["table 'billing'", "column 'amount'", "cannot be read as a number", "amount='1,5'"],
        id="non-numeric-amount",
    ),
    pytest.param(
        {"touchpoints": "customer_id,timestamp,channel,event,value\nC1,2023-03-01,survey,nps,ten"},
        ["table 'touchpoints'", "column 'value'", "line 2", "value='ten'"],
        id="non-numeric-value",
    ),
    pytest.param(
        {"customers": CUSTOMERS + "\nC4,2023-05-01,2023-04-01,,d@example.com,east"},
        ["table 'customers'", "column 'churn_date'", "before signup_date", "line 5: customer_id='C4'"],
        id="churn-before-signup",
    ),
    pytest.param(
        {"touchpoints": TOUCHPOINTS + "\nC2,2023-03-02,sms,sent,sideways"},
        ["table 'touchpoints'", "column 'direction'", "inbound", "line 3: customer_id='C2'"],
        id="bad-direction",
    ),
    pytest.param(
        {"billing": BILLING + "\nC1,,10"},
        ["table 'billing'", "column 'invoice_date'", "empty values in a required column", "line 6"],
        id="empty-required-value",
    ),
]


@pytest.mark.parametrize(("tables", "needles"), BAD_INPUTS)
def test_bad_input_is_rejected_and_nothing_is_written(tmp_path, tables, needles):
    raw = write_folder(tmp_path, **tables)
    assert_rejected(tmp_path, run_cli(tmp_path, raw), *needles)


def test_scoring_file_with_dates_after_the_as_of_date_is_rejected(tmp_path):
    raw = write_folder(tmp_path)
    result = run_cli(tmp_path, raw, "--as-of", "2023-01-20")
    assert_rejected(
        tmp_path,
        result,
        "table 'customers'",
        "column 'signup_date'",
        "future of the as-of date",
        "line 4: customer_id='C3'",
    )


def test_as_of_error_names_a_billing_row(tmp_path):
    customers = "customer_id,signup_date\nC1,2023-01-01\nC2,2023-01-15\nC3,2023-02-01"
    raw = write_folder(tmp_path, customers=customers)
    with pytest.raises(DataContractError) as err:
        run_validate(Config(), raw, tmp_path / "interim", tmp_path / "profile.json", as_of=dt.date(2023, 2, 27))
    assert (err.value.table, err.value.column) == ("billing", "invoice_date")
    assert any("invoice_date=" in e and "2023-02-28" in e for e in err.value.examples)
    assert not (tmp_path / "interim").exists() and not (tmp_path / "profile.json").exists()


def test_missing_billing_and_header_only_touchpoints_are_empty_tables(tmp_path):
    raw = write_folder(tmp_path, billing=None, touchpoints="customer_id,timestamp,channel,event")
    result = run_cli(tmp_path, raw)
    assert result.exit_code == 0, result.output
    billing = pd.read_parquet(tmp_path / "interim" / "billing.parquet")
    touchpoints = pd.read_parquet(tmp_path / "interim" / "touchpoints.parquet")
    assert len(billing) == 0 and list(billing.columns) == ["customer_id", "invoice_date", "amount", "hash_slot"]
    assert len(touchpoints) == 0 and "date" in touchpoints.columns
    assert "billing: no file" in result.output and "touchpoints: empty" in result.output


def test_personal_columns_are_dropped_and_never_shown(tmp_path):
    raw = write_folder(tmp_path, customers=CUSTOMERS.replace("email", "EMail", 1))
    result = run_cli(tmp_path, raw)
    assert result.exit_code == 0, result.output
    customers = pd.read_parquet(tmp_path / "interim" / "customers.parquet")
    assert not {"email", "EMail"} & set(customers.columns)
    assert "example.com" not in result.output
    assert "example.com" not in (tmp_path / "interim" / "meta.json").read_text()


def test_interim_types_follow_the_architecture(tmp_path):
    raw = write_folder(tmp_path, billing=BILLING + "\nC1,2023-02-28,100")  # one exact duplicate row
    profile = run_validate(Config(), raw, tmp_path / "interim", tmp_path / "profile.json")
    customers = pd.read_parquet(tmp_path / "interim" / "customers.parquet")
    touchpoints = pd.read_parquet(tmp_path / "interim" / "touchpoints.parquet")
    billing = pd.read_parquet(tmp_path / "interim" / "billing.parquet")
    by_id = customers.set_index("customer_id")
    assert by_id["marketing_opt_in"].to_dict() == {"C1": True, "C2": False, "C3": False}
    assert by_id.loc["C2", "churn_date"] == pd.Timestamp("2023-06-10")
    assert customers["signup_date"].dtype == "datetime64[us]" and customers["hash_slot"].dtype == "int16"
    assert touchpoints.loc[0, "timestamp"] == pd.Timestamp("2023-03-01 10:00")  # offset dropped, wall time kept
    assert touchpoints.loc[0, ["channel", "event", "direction"]].tolist() == ["email", "opened", "inbound"]
    assert touchpoints.loc[0, "date"] == pd.Timestamp("2023-03-01")
    assert len(billing) == 4 and profile["tables"]["billing"]["duplicates_dropped"] == 1
    assert billing[["hash_slot", "customer_id", "invoice_date"]].equals(
        billing.sort_values(["hash_slot", "customer_id", "invoice_date"])[["hash_slot", "customer_id", "invoice_date"]]
    )


def test_non_contractual_input_has_no_churn_date(tmp_path):
    raw = write_folder(tmp_path, customers="customer_id,signup_date\nC1,2023-01-01\nC2,2023-01-15\nC3,2023-02-01")
    profile = run_validate(Config(), raw, tmp_path / "interim", tmp_path / "profile.json")
    customers = pd.read_parquet(tmp_path / "interim" / "customers.parquet")
    assert "churn_date" not in customers.columns and "marketing_opt_in" not in customers.columns
    assert profile["contractual"] is False and profile["churn_definition"].startswith("non-contractual")


def test_csv_and_parquet_inputs_give_identical_interim_tables(tmp_path):
    raw_csv = write_folder(tmp_path)
    frames, _ = read_tables(raw_csv, ("email",))
    raw_pq = tmp_path / "raw_parquet"
    raw_pq.mkdir()
    typed = {
        "customers": pd.read_csv(
            raw_csv / "customers.csv", parse_dates=["signup_date", "churn_date"], dtype={"customer_id": str}
        ),
        "billing": pd.read_csv(raw_csv / "billing.csv", parse_dates=["invoice_date"]),
        "touchpoints": pd.read_csv(raw_csv / "touchpoints.csv"),
    }
    typed["customers"]["marketing_opt_in"] = typed["customers"]["marketing_opt_in"].map({"yes": True, "0": False})
    for name, df in typed.items():
        df.to_parquet(raw_pq / f"{name}.parquet", index=False)
    from_csv, meta_csv, _ = validate_tables(frames, DataConfig(personal_columns=("email",)))
    from_pq, meta_pq, _ = validate_tables(read_tables(raw_pq, ("email",))[0], DataConfig(personal_columns=("email",)))
    assert meta_csv == meta_pq
    for name in from_csv:
        pd.testing.assert_frame_equal(from_csv[name], from_pq[name])


def test_semicolon_csv_and_numeric_ids_are_read(tmp_path):
    raw = write_folder(
        tmp_path,
        customers="customer_id;signup_date\n007;2023-01-01",
        billing="customer_id;invoice_date;amount\n007;2023-01-31;9.5",
        touchpoints=None,
    )
    tables, _, _ = validate_tables(read_tables(raw)[0], DataConfig())
    assert tables["customers"]["customer_id"].tolist() == ["007"]  # leading zeros are part of the id
    assert tables["billing"]["amount"].tolist() == [9.5]
