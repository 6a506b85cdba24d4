"""Reading the files real exports come as: Excel's encodings and separators, and files that are not tables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from omvald.config import DataConfig
from omvald.data.read import find_tables, read_tables
from omvald.data.validate import validate_tables
from omvald.errors import DataContractError

CUSTOMERS = "customer_id;signup_date;Län\nC1;2023-01-01;Skåne\nC2;2023-01-15;Västra Götaland\nC3;2023-02-01;Örebro\n"
BILLING = "customer_id;invoice_date;amount\nC1;2023-01-31;49,50\nC2;2023-01-31;100\nC3;2023-02-28;-12,25\n"


def write_export(root: Path, encoding: str, customers: str = CUSTOMERS, billing: str = BILLING) -> Path:
    raw = root / "raw"
    raw.mkdir()
    (raw / "customers.csv").write_bytes(customers.encode(encoding))
    (raw / "billing.csv").write_bytes(billing.encode(encoding))
    return raw


def validated(raw: Path):
    frames, paths = read_tables(raw)
    tables, _, _ = validate_tables(frames, DataConfig(), paths=paths)
    return tables


def test_windows_1252_export_is_read_with_its_nordic_letters_and_a_warning(tmp_path, caplog):
    raw = write_export(tmp_path, "cp1252")
    with caplog.at_level(logging.WARNING):
        tables = validated(raw)
    assert tables["customers"].set_index("customer_id")["Län"].to_dict() == {
        "C1": "Skåne",
        "C2": "Västra Götaland",
        "C3": "Örebro",
    }
    warned = [r.getMessage() for r in caplog.records if "Windows-1252" in r.getMessage()]
    assert any("customers.csv" in m and "line 1" in m for m in warned)  # the header holds "Län"


def test_non_utf8_byte_deep_in_the_file_is_found_and_named_by_line(tmp_path, caplog):
    customers = "customer_id,signup_date,region\n" + "".join(f"C{i},2023-01-01,north\n" for i in range(2000))
    customers += "C9999,2023-01-01,Malmö\n"  # line 2002
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "customers.csv").write_bytes(customers.encode("cp1252"))
    with caplog.at_level(logging.WARNING):
        tables = validated(raw)
    assert tables["customers"].set_index("customer_id").at["C9999", "region"] == "Malmö"
    assert any("line 2002" in r.getMessage() for r in caplog.records)


def test_utf8_with_byte_order_mark_semicolons_and_decimal_commas(tmp_path):
    raw = write_export(tmp_path, "utf-8-sig")
    tables = validated(raw)
    amounts = tables["billing"].set_index("customer_id")["amount"].to_dict()
    assert amounts == {"C1": 49.5, "C2": 100.0, "C3": -12.25}
    assert tables["customers"].set_index("customer_id").at["C2", "Län"] == "Västra Götaland"


def test_utf16_text_from_excel_is_read(tmp_path):
    billing = BILLING.replace(";", "\t").replace(",", ".")  # decimal commas are read in ';' files only
    raw = write_export(tmp_path, "utf-16", CUSTOMERS.replace(";", "\t"), billing)
    tables = validated(raw)
    assert tables["customers"].set_index("customer_id").at["C3", "Län"] == "Örebro"


def test_file_mixing_utf8_and_windows_1252_is_refused_with_the_line(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    text = "customer_id,signup_date,region\nC1,2023-01-01,Skåne\n".encode() + "C2,2023-01-01,Malmö\n".encode("cp1252")
    (raw / "customers.csv").write_bytes(text)
    with pytest.raises(DataContractError, match=r"mixes UTF-8 with another encoding \(line 3"):
        read_tables(raw)


def test_excel_workbook_saved_under_a_csv_name_is_named(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "customers.csv").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(DataContractError, match="Excel workbook") as err:
        read_tables(raw)
    assert "customers.csv" in str(err.value)


def test_a_folder_in_place_of_a_table_file_is_named(tmp_path):
    raw = write_export(tmp_path, "utf-8")
    (raw / "touchpoints.csv").mkdir()
    with pytest.raises(DataContractError, match="is a folder, not a file") as err:
        find_tables(raw)
    assert "touchpoints.csv" in str(err.value)


def test_rows_with_too_many_fields_are_named_by_line_without_their_content(tmp_path):
    billing = "customer_id,invoice_date,amount\nC1,2023-01-31,49\nC2,2023-01-31,1,5\nC3,2023-02-28,12\nC3,x\n"
    raw = write_export(tmp_path, "utf-8", CUSTOMERS.replace(";", ","), billing)
    with pytest.raises(DataContractError) as err:
        read_tables(raw)
    message = str(err.value)
    assert "billing.csv" in message and "(2 row(s))" in message
    assert "line 3: 4 fields" in message and "line 5: 2 fields" in message
    assert "1,5" not in message  # values are not echoed


def test_decimal_commas_are_not_guessed_in_comma_separated_files(tmp_path):
    billing = 'customer_id,invoice_date,amount\nC1,2023-01-31,"49,50"\n'
    raw = write_export(tmp_path, "utf-8", CUSTOMERS.replace(";", ","), billing)
    with pytest.raises(DataContractError, match="cannot be read as a number"):
        validated(raw)


def test_a_quote_never_closed_is_named_instead_of_swallowing_the_rows_after_it(tmp_path):
    customers = 'customer_id,signup_date,note\nC1,2023-01-01,ok\nC2,2023-01-15,"called\nC3,2023-02-01,x\n'
    raw = write_export(tmp_path, "utf-8", customers, BILLING.replace(";", ",").replace("49,50", "49.5"))
    with pytest.raises(DataContractError, match=r"column 'note'\): line 3: a quote \(\"\) opened and never closed"):
        read_tables(raw)


def test_a_quoted_line_break_inside_a_value_is_kept(tmp_path):
    customers = 'customer_id,signup_date,note\nC1,2023-01-01,"line one\nline two, more"\nC2,2023-01-15,x\n'
    raw = write_export(tmp_path, "utf-8", customers, "customer_id,invoice_date,amount\nC1,2023-01-31,1\n")
    frames, _ = read_tables(raw)
    assert frames["customers"]["note"].tolist() == ["line one\nline two, more", "x"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"customer_id,region\nC1,north\n", "utf8"),
        ("customer_id,region\nC1,north\n".encode("utf-16"), "utf-16"),
        ("customer_id,Län\nC1,Skåne\n".encode("cp1252"), "cp1252"),  # the header is not UTF-8
        ("customer_id,region\nC1,north\nC2,€5 Malmö\n".encode("cp1252"), "cp1252"),  # only line 3 is not
    ],
)
def test_the_whole_file_encoding_is_decided_before_reading_as_the_reader_ends_up_reading_it(
    tmp_path, content, expected
):
    """For readers that cannot fall back half-way through a file (the Spark engine)."""
    from omvald.data.encoding import whole_file_encoding

    (tmp_path / "customers.csv").write_bytes(content)
    assert whole_file_encoding(tmp_path / "customers.csv", "customers") == expected


def test_a_byte_windows_1252_leaves_undefined_is_refused_up_front_as_the_reader_refuses_it(tmp_path):
    from omvald.data.encoding import whole_file_encoding

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "customers.csv").write_bytes(b"customer_id,signup_date,region\nC1,2023-01-01,Malm\xf6\x81\n")
    with pytest.raises(DataContractError, match="neither UTF-8 nor Windows-1252") as whole:
        whole_file_encoding(raw / "customers.csv", "customers")
    with pytest.raises(DataContractError) as reader:
        read_tables(raw)
    assert str(whole.value) == str(reader.value)


def test_text_read_as_iso_8859_1_becomes_what_windows_1252_reads():
    from omvald.data.encoding import latin1_to_cp1252

    raw = "Pris: 5 € — “Skåne” ™".encode("cp1252")
    assert latin1_to_cp1252(raw.decode("latin-1")) == raw.decode("cp1252")


@pytest.mark.parametrize("chunk", [3, 7, 64, 1 << 24])
def test_the_first_line_that_is_not_utf8_is_found_whatever_the_scan_chunk(tmp_path, monkeypatch, chunk):
    """Chunks of plain ASCII are skipped fast; a UTF-8 letter split between two chunks is still UTF-8."""
    from omvald.data import encoding

    monkeypatch.setattr(encoding, "SCAN_CHUNK", chunk)
    utf8 = "customer_id,region\nC1,north\nC2,Skåne\nC3,south\n".encode()
    latin = utf8 + "C4,Malmö\nC5,east\n".encode("latin-1")
    (tmp_path / "utf8.csv").write_bytes(utf8)
    (tmp_path / "mixed.csv").write_bytes(latin)
    (tmp_path / "latin.csv").write_bytes(latin.replace("å".encode(), "å".encode("latin-1")))
    assert encoding.first_non_utf8_line(tmp_path / "utf8.csv") == (None, False)
    assert encoding.first_non_utf8_line(tmp_path / "mixed.csv") == (5, True)
    assert encoding.first_non_utf8_line(tmp_path / "latin.csv") == (3, False)
