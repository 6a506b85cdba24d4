"""``omvald validate`` by bucket gives what the whole-table validation gives, byte for byte, on every bad input.

The reference is the validation that holds every table in memory
(:func:`omvald.data.read.read_tables` + :func:`omvald.data.validate.validate_tables`
+ :func:`omvald.data.profile.build_profile` + :func:`omvald.data.read.write_interim`).
:func:`omvald.data.validate.run_validate` now streams the files into buckets
of customers (:mod:`omvald.data.validate_buckets`). For each input, both run
and must agree exactly: the same error (table, column, problem with its
counts, example rows, file), or the same interim files byte for byte and
the same profile (warnings included). Each input is validated in 1, 3 and 7
buckets, with tiny read batches (a CSV block of a few rows, Parquet batches
of 40 rows) and a phone/id sample of every few values, so that counts,
examples and whole-column facts have to be merged across buckets and
batches. The inputs: every bad input of ``tests/data/test_validate.py`` and
of the ``validate`` cases of ``tests/e2e/test_bad_input.py``, and the small
synthetic business spoiled in the ways below, in CSV and in Parquet.

Each case on the generated business validates it four ways (seconds), so
those are marked ``pipeline``: ``make test`` runs them, ``make test-fast``
only the hand-made bad inputs.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.test_validate import BAD_INPUTS, write_folder
from e2e.test_bad_input import CASES, PARAMS
from omvald.config import DataConfig, config_from_dict
from omvald.data import personal, raw_stream
from omvald.data import validate as V
from omvald.data.generate import generate_business
from omvald.data.profile import build_profile
from omvald.data.read import read_tables, write_interim
from omvald.errors import DataContractError

TABLES = ("customers", "billing", "touchpoints")
FILES = ("customers.parquet", "billing.parquet", "touchpoints.parquet", "meta.json")
BUCKETS = (1, 3, 7)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Batches and samples of a few rows, so that a small file spans many of them."""
    monkeypatch.setattr(raw_stream, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(raw_stream, "PARQUET_BATCH_ROWS", 40)
    monkeypatch.setattr(personal, "SAMPLE_ROWS", 7)
    monkeypatch.setattr(V, "SAMPLE_ROWS", 7)


def reference(raw: Path, cfg, out: Path, as_of: dt.date | None):
    """The whole-table validation: ``("error", fields)`` or ``("ok", profile)`` with the interim files in ``out``."""
    try:
        frames, paths = read_tables(raw, cfg.data.personal_columns)
        tables, meta, warnings = V.validate_tables(frames, cfg.data, as_of=as_of, paths=paths)
    except DataContractError as err:
        return "error", _fields(err)
    profile = build_profile(tables, meta, warnings, cfg.features.horizon_days, cfg.features.lookback_days)
    write_interim(tables, meta, out)
    return "ok", profile


def bucketed(raw: Path, cfg, out: Path, as_of: dt.date | None, n_buckets: int):
    try:
        profile = V.run_validate(cfg, raw, out, out.parent / f"{out.name}.json", as_of=as_of, n_buckets=n_buckets)
    except DataContractError as err:
        assert not out.exists()
        return "error", _fields(err)
    return "ok", profile


def _fields(err: DataContractError) -> tuple:
    return err.table, err.column, err.problem, tuple(err.examples), err.path, str(err)


def assert_same_as_whole_table(raw: Path, tmp_path: Path, cfg=None, as_of: dt.date | None = None) -> str:
    """Validate ``raw`` both ways in each bucket count; returns ``"ok"`` or ``"error"``."""
    cfg = cfg or config_from_dict({})
    expected = reference(raw, cfg, tmp_path / "whole", as_of)
    for n in BUCKETS:
        out = tmp_path / f"buckets-{n}"
        got = bucketed(raw, cfg, out, as_of, n)
        assert got[0] == expected[0], (n, got, expected)
        assert got[1] == expected[1], n
        if got[0] == "ok":
            for name in FILES:
                assert filecmp.cmp(tmp_path / "whole" / name, out / name, shallow=False), (n, name)
        shutil.rmtree(out, ignore_errors=True)
    return expected[0]


# --- the bad inputs of the other validate tests ----------------------------------------------------


@pytest.mark.parametrize(("tables", "needles"), BAD_INPUTS)
def test_every_bad_input_of_the_validate_tests(tmp_path, tables, needles):
    raw = write_folder(tmp_path, **tables)
    cfg = config_from_dict({"data": {"personal_columns": ["email", "name"]}})
    assert assert_same_as_whole_table(raw, tmp_path, cfg) == "error"


BAD_INPUT_CASES = [c for c in CASES if c.args[:2] == ["validate", "bad"]]


@pytest.mark.pipeline
@pytest.mark.parametrize("case", BAD_INPUT_CASES, ids=[c.name for c in BAD_INPUT_CASES])
def test_every_bad_file_of_the_bad_input_tests(tmp_path, case, monkeypatch):
    if case.name == "unclosed-quote":  # a quote open across a CSV block confuses Arrow's chunker in either reader
        monkeypatch.setattr(raw_stream, "CSV_BLOCK_BYTES", 64 << 20)
    project = tmp_path / "project"
    export(project / "export", "csv")
    case.setup(project)
    assert assert_same_as_whole_table(project / "bad", tmp_path, config_from_dict(PARAMS)) == "error"


# --- the small synthetic business, spoiled --------------------------------------------------------


def export(folder: Path, fmt: str) -> Path:
    """The 300-customer business of ``tests/e2e/test_bad_input.py`` as contract files."""
    cfg = config_from_dict(PARAMS)
    business = generate_business(cfg.generate, cfg.seed)
    folder.mkdir(parents=True)
    for name in TABLES:
        if fmt == "csv":
            business[name].to_csv(folder / f"{name}.csv", index=False)
        else:
            business[name].to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def edit(folder: Path, table: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Apply ``change`` to one table of the export (read as text from CSV, typed from Parquet)."""
    csv = folder / f"{table}.csv"
    if csv.exists():
        csv.unlink() if (df := change(pd.read_csv(csv, dtype=str, keep_default_na=False))) is None else None
        if df is not None:
            df.to_csv(csv, index=False)
        return
    path = folder / f"{table}.parquet"
    df = change(pd.read_parquet(path))
    path.unlink()
    if df is not None:
        df.to_parquet(path, index=False)


def date(df: pd.DataFrame, column: str, text: str):
    """``text`` as the column holds dates: a timestamp or a date in a typed column, else the text."""
    if pd.api.types.is_datetime64_any_dtype(df[column]):
        return pd.Timestamp(text)
    given = df[column].dropna()
    if len(given) and isinstance(given.iloc[0], dt.date):
        return pd.Timestamp(text).date()
    return text


def rows(df: pd.DataFrame, every: int = 37) -> pd.Index:
    """Rows spread over the whole table (so over the buckets)."""
    return df.index[::every]


def unknown_ids(df):
    df = df.copy()
    df.loc[rows(df), "customer_id"] = [f"GHOST{i % 4}" for i in range(len(rows(df)))]
    return df


def bad_dates(df):
    df = df.copy()
    df["invoice_date"] = df["invoice_date"].astype(str)  # Parquet: a text column of dates
    df.loc[rows(df, 101), "invoice_date"] = "31/03/2024"
    return df


def bad_amounts(df):
    df = df.copy()
    df["amount"] = df["amount"].astype(str)
    df.loc[rows(df, 53), "amount"] = "1,5"
    return df


def duplicate_customers(df):
    return pd.concat([df, df.iloc[::40].assign(signup_date=df["signup_date"].iloc[0])], ignore_index=True)


def exact_duplicates(df):
    return pd.concat([df, df.iloc[::29]], ignore_index=True)


def churn_before_signup(df):
    df = df.copy()
    df.loc[rows(df, 23), "churn_date"] = date(df, "churn_date", "2020-01-01")
    return df


def stray_dates(folder: Path) -> None:
    def far(column: str, values: list[str]):
        def change(df):
            df = df.copy()
            at = rows(df, 211)[: len(values)]
            df.loc[at, column] = [date(df, column, v) for v in values]
            return df

        return change

    edit(folder, "billing", far("invoice_date", ["1850-06-30", "2099-01-31"]))
    edit(folder, "billing", far("paid_date", ["2199-01-01", "2199-02-01", "2199-03-01"]))
    edit(folder, "touchpoints", far("timestamp", ["2099-01-01 10:00:00", "1700-01-01 00:00:00"]))


def ancient_signups(df):
    df = df.copy()
    df.loc[rows(df, 97), "signup_date"] = date(df, "signup_date", "1850-01-01")
    return df


def late_signups(df):
    df = df.copy()
    df.loc[rows(df, 89), "signup_date"] = date(df, "signup_date", "2030-01-01")
    return df


def personal_attributes(df):
    n = len(df)
    return df.assign(
        kontakt=[f"k{i}@exempel.se" for i in range(n)],
        telefon=[f"070-{i % 1000:03d} {i % 89:02d} {i % 97:02d}" for i in range(n)],
        member=[f"M{i * 7919 % 100003:06d}" for i in range(n)],
        mobile=["yes" if i % 3 else "no" for i in range(n)],
        score=[f"{i % 17}.5" for i in range(n)],
        postal=[f"{10000 + i % 50}" for i in range(n)],
        zone=[f"0{i % 9}" if i % 50 == 7 else f"{i % 9}" for i in range(n)],
    )


def id_numbers(df):
    ids = {c: f"19{50 + i % 40:02d}{1 + i % 12:02d}{1 + i % 28:02d}-{i:03d}" for i, c in enumerate(df["customer_id"])}

    def luhn(text: str) -> str:
        digits = text[2:8] + text[9:12]
        total = sum(d - 9 if d > 9 else d for d in (int(c) * (2 - i % 2) for i, c in enumerate(digits)))
        return text + str((10 - total % 10) % 10)

    return {c: luhn(v) for c, v in ids.items()}


def with_id_numbers(folder: Path) -> None:
    key = id_numbers(pd.read_csv(folder / "customers.csv", dtype=str))
    for table in TABLES:
        edit(folder, table, lambda df: df.assign(customer_id=df["customer_id"].map(key)))


def semicolons_and_decimal_commas(folder: Path) -> None:
    for table in TABLES:
        df = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)
        if table == "billing":
            df["amount"] = df["amount"].str.replace(".", ",", regex=False)
        if table == "customers":
            df["fee"] = [f"{i % 7},50" for i in range(len(df))]
        df.to_csv(folder / f"{table}.csv", index=False, sep=";")


def windows_1252(folder: Path) -> None:
    df = pd.read_csv(folder / "customers.csv", dtype=str, keep_default_na=False)
    df["ort"] = ["Malmö" if i % 3 else "Göteborg" for i in range(len(df))]
    (folder / "customers.csv").write_bytes(df.to_csv(index=False).encode("cp1252"))


SPOILED: dict[str, Callable[[Path], None]] = {
    "clean": lambda f: None,
    "unknown-ids-in-billing": lambda f: edit(f, "billing", unknown_ids),
    "unknown-ids-in-touchpoints": lambda f: edit(f, "touchpoints", unknown_ids),
    "unreadable-invoice-dates": lambda f: edit(f, "billing", bad_dates),
    "unreadable-amounts": lambda f: edit(f, "billing", bad_amounts),
    "duplicate-customer-ids": lambda f: edit(f, "customers", duplicate_customers),
    "exact-duplicate-rows": lambda f: (edit(f, "billing", exact_duplicates), edit(f, "touchpoints", exact_duplicates)),
    "churn-before-signup": lambda f: edit(f, "customers", churn_before_signup),
    "dates-outside-the-bulk": stray_dates,
    "signups-before-1900": lambda f: edit(f, "customers", ancient_signups),
    "signups-after-the-end": lambda f: edit(f, "customers", late_signups),
    "personal-attributes-and-kinds": lambda f: edit(f, "customers", personal_attributes),
    "no-contracts": lambda f: edit(f, "customers", lambda df: df.drop(columns=["churn_date"])),
    "no-billing-file": lambda f: edit(f, "billing", lambda df: None),
    "header-only-touchpoints": lambda f: edit(f, "touchpoints", lambda df: df.iloc[0:0]),
    "header-only-customers": lambda f: edit(f, "customers", lambda df: df.iloc[0:0]),
    "extra-billing-column": lambda f: edit(f, "billing", lambda df: df.assign(note="x")),
}
CSV_ONLY = {
    "customer-ids-are-identity-numbers": with_id_numbers,
    "semicolons-and-decimal-commas": semicolons_and_decimal_commas,
    "windows-1252": windows_1252,
}


@pytest.mark.pipeline
@pytest.mark.parametrize("name", [*SPOILED, *CSV_ONLY])
def test_spoiled_csv_business(tmp_path, name):
    raw = export(tmp_path / "raw", "csv")
    {**SPOILED, **CSV_ONLY}[name](raw)
    assert_same_as_whole_table(raw, tmp_path)


@pytest.mark.pipeline
@pytest.mark.parametrize("name", list(SPOILED))
def test_spoiled_parquet_business(tmp_path, name):
    raw = export(tmp_path / "raw", "parquet")
    SPOILED[name](raw)
    assert_same_as_whole_table(raw, tmp_path)


@pytest.mark.pipeline
def test_parquet_types_that_vary_by_bucket(tmp_path):
    """Whole-number floats, integer ids, and integer and boolean attributes with missing values in some buckets."""
    raw = export(tmp_path / "raw", "parquet")
    n = 300
    mask = np.arange(n) % 97 == 5

    def typed(df):
        df = df.iloc[:n].copy()
        df["tier"] = pd.array(np.where(mask, None, np.arange(n) % 4), dtype="Int64")
        df["vip"] = pd.array(np.where(mask, None, np.arange(n) % 2 == 0), dtype="boolean")
        df["seats"] = (np.arange(n) % 5).astype(float)
        return df

    edit(raw, "customers", typed)
    assert assert_same_as_whole_table(raw, tmp_path) == "ok"


@pytest.mark.pipeline
def test_scoring_cutoff_with_later_rows(tmp_path):
    raw = export(tmp_path / "raw", "csv")
    assert assert_same_as_whole_table(raw, tmp_path, as_of=dt.date(2024, 3, 31)) == "error"


@pytest.mark.pipeline
def test_given_end_of_data_keeps_later_rows(tmp_path):
    raw = export(tmp_path / "raw", "csv")
    stray_dates(raw)
    cfg = config_from_dict({"data": {"data_end": "2024-06-30"}})
    assert isinstance(cfg.data, DataConfig)
    assert_same_as_whole_table(raw, tmp_path, cfg)
