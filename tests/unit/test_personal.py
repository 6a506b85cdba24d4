"""Personal data found by content: attributes that identify or contact a person are dropped, categories stay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omvald.config import DataConfig
from omvald.data.personal import looks_like_national_id, looks_like_phone, personal_columns, personal_reason
from omvald.data.validate import validate_tables
from omvald.explain.reasons import NOT_SHOWN, format_value, reason_sentence
from omvald.features.spec import FeatureSpec

CONTRACT = {"customer_id", "signup_date", "churn_date", "marketing_opt_in"}


def luhn_digit(nine: str) -> str:
    """The tenth digit of a Swedish personnummer (Luhn over YYMMDDNNN)."""
    total = sum(d - 9 if d > 9 else d for d in (int(c) * (2 - i % 2) for i, c in enumerate(nine)))
    return str((10 - total % 10) % 10)


def personnummer(i: int) -> str:
    nine = f"{60 + i % 40:02d}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return f"19{nine[:6]}-{nine[6:]}{luhn_digit(nine)}"


def customers(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "signup_date": "2024-01-01",
            "ref_a": [f"kund{i}@example.org" for i in range(n)],
            "ref_b": [f"070-{i % 1000:03d} {i % 100:02d} {i % 97:02d}" for i in range(n)],
            "ref_c": [personnummer(i) for i in range(n)],
            "kundnummer2": [f"K{i * 7919 % 100000:05d}" for i in range(n)],
            "region": np.array(["north", "south", "east", "west"])[np.arange(n) % 4],
            "monthly_fee": [f"{19 + i * 0.37:.2f}" for i in range(n)],
            "mobile": np.array(["yes", "no"])[np.arange(n) % 2],
        }
    )


def test_identifiers_and_contact_details_are_found_under_any_name():
    found = personal_columns(customers(200), CONTRACT)
    assert found == {
        "ref_a": "it holds e-mail addresses",
        "ref_b": "100% of its values look like phone numbers",
        "ref_c": "100% of its values look like national identity numbers",
        "kundnummer2": "it identifies customers: 200 distinct values among 200 customers",
    }


def test_a_small_table_keeps_its_categories_even_when_every_value_differs():
    small = pd.DataFrame({"city": [f"town {i}" for i in range(20)], "region": ["north", "south"] * 10})
    assert personal_columns(small, set()) == {}


def test_a_usual_personal_column_name_is_dropped_even_when_the_values_look_harmless():
    assert personal_reason("Förnamn", pd.Series(["Anna", "Erik"] * 40)) == "its name is a usual name for personal data"
    assert personal_reason("E-Mail", pd.Series(["a@example.org"])) == "it holds e-mail addresses"


@pytest.mark.parametrize(
    ("value", "is_id"),
    [
        ("198112189876", True),  # Swedish, 12 digits
        ("811218-9876", True),  # Swedish, 10 digits with dash
        ("811218-9875", False),  # wrong Luhn digit
        ("811278-9873", True),  # samordningsnummer: day + 60
        ("15076500565", True),  # Norwegian fødselsnummer
        ("15076500564", False),  # wrong check digit
        ("010203-1234", True),  # Danish CPR
        ("131052-308T", True),  # Finnish HETU
        ("131052-308U", False),  # wrong check character
        ("5566778899", False),  # a Swedish organisation number: month 67
        ("20240131", False),  # a date
    ],
)
def test_nordic_identity_numbers_are_recognised_with_their_check_digits(value, is_id):
    assert looks_like_national_id(pd.Series([value])).iloc[0] == is_id


@pytest.mark.parametrize(
    ("value", "is_phone"),
    [
        ("070-123 45 67", True),
        ("+46701234567", True),
        ("0046 70 123 45 67", True),
        ("20 12 34 56", True),
        ("2023-01-01", False),
        ("01234", False),
        ("0001234567", False),  # a zero-padded code
        ("12m", False),
    ],
)
def test_phone_numbers_are_recognised_in_their_usual_spellings(value, is_phone):
    assert looks_like_phone(pd.Series([value])).iloc[0] == is_phone


def test_validate_drops_personal_attributes_and_names_them_without_their_values():
    raw = {"customers": customers(200), "billing": None, "touchpoints": None}
    tables, meta, warnings = validate_tables(raw, DataConfig())
    kept = [c for c in tables["customers"].columns if c not in ("hash_slot",)]
    assert kept == ["customer_id", "signup_date", "region", "monthly_fee", "mobile"]
    assert set(meta["personal_data_dropped"]["customers"]) == {"ref_a", "ref_b", "ref_c", "kundnummer2"}
    text = " ".join(warnings) + repr(meta)
    assert "column 'ref_a' dropped as personal data (it holds e-mail addresses)" in text
    for planted in ("kund0@example.org", "070-000", personnummer(0), "K00000"):
        assert planted not in text


def test_customer_ids_that_are_identity_numbers_are_kept_with_a_warning():
    raw = {"customers": customers(60).assign(customer_id=[personnummer(i) for i in range(60)])}
    tables, _, warnings = validate_tables({**raw, "billing": None, "touchpoints": None}, DataConfig())
    assert len(tables["customers"]) == 60
    assert any("customer_id values look like national identity numbers" in w for w in warnings)


def attribute(name: str, levels: frozenset[str] | None = None) -> FeatureSpec:
    spec = FeatureSpec(f"attr_{name}", "attributes", f"customer attribute '{name}'", "category", "categorical")
    if levels is not None:
        object.__setattr__(spec, "levels", levels)
    return spec


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("north", "customer attribute 'x': north"),
        ("anna@example.org", f"customer attribute 'x' {NOT_SHOWN}"),
        ("070-123 45 67", f"customer attribute 'x' {NOT_SHOWN}"),
        ("19811218-9876", f"customer attribute 'x' {NOT_SHOWN}"),
        ("K123456", f"customer attribute 'x' {NOT_SHOWN}"),  # a code, not a level
        ("called on Monday about the invoice and the new router", f"customer attribute 'x' {NOT_SHOWN}"),
    ],
)
def test_reason_sentences_never_write_contact_details_or_codes(value, sentence):
    assert reason_sentence(attribute("x"), value) == sentence
    assert format_value(value) == (value if sentence.endswith("north") else NOT_SHOWN)


def test_a_spec_that_lists_its_levels_shows_only_those():
    spec = attribute("segment", levels=frozenset({"gold", "silver"}))
    assert reason_sentence(spec, "gold") == "customer attribute 'segment': gold"
    assert reason_sentence(spec, "bronze") == f"customer attribute 'segment' {NOT_SHOWN}"
