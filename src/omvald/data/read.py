"""Find and read the three contract tables in a folder (CSV or Parquet).

CSV is read with every column as text, so a date that cannot be parsed is
caught by the validator with its raw value and line number instead of
silently becoming a missing value. Columns that repeat a few values many
times (ids, dates, channels) are read dictionary-encoded (pandas
``category``), which keeps 40M-row tables small and lets the validator parse
each distinct value once. Personal-data columns are never loaded.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from omvald.data.contract import REQUIRED, TABLES, column_kind
from omvald.errors import DataContractError

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = (".csv", ".csv.gz", ".parquet", ".pq")
# Kinds whose distinct values are few compared with the rows: read dictionary-encoded.
DICTIONARY_KINDS = frozenset({"id", "date", "lower", "string"})
ROW_GROUP_SIZE = 100_000


def find_tables(raw_dir: str | Path) -> dict[str, Path | None]:
    """Map each table name to its file in ``raw_dir`` (``None`` when absent).

    A table is ``<name>.csv``, ``<name>.csv.gz``, ``<name>.parquet`` or a
    folder ``<name>.parquet`` of part files; names are matched case-insensitively.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataContractError("customers", None, f"input folder {raw_dir} does not exist", path=str(raw_dir))
    found: dict[str, Path | None] = {}
    entries = {p.name.lower(): p for p in raw_dir.iterdir()}
    for table in TABLES:
        hits = [entries[table + ext] for ext in EXTENSIONS if table + ext in entries]
        if len(hits) > 1:
            names = ", ".join(p.name for p in hits)
            raise DataContractError(
                table, None, f"more than one file for the table ({names}); keep one", path=str(raw_dir)
            )
        found[table] = hits[0] if hits else None
    return found


def is_csv(path: str | Path | None) -> bool:
    return path is not None and Path(path).name.lower().endswith((".csv", ".csv.gz"))


def is_personal(column: str, personal_columns: tuple[str, ...] | list[str]) -> bool:
    return column.strip().lower() in {p.lower() for p in personal_columns}


def read_table(path: str | Path, table: str, personal_columns: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Read one contract table; personal columns are skipped, not loaded and dropped."""
    path = Path(path)
    if is_csv(path):
        return _read_csv(path, table, personal_columns)
    return _read_parquet(path, table, personal_columns)


def read_tables(raw_dir: str | Path, personal_columns: tuple[str, ...] | list[str] = ()) -> tuple[dict, dict]:
    """Read every table found in ``raw_dir``: ``({table: DataFrame | None}, {table: path | None})``."""
    paths = find_tables(raw_dir)
    frames = {t: (read_table(p, t, personal_columns) if p is not None else None) for t, p in paths.items()}
    return frames, {t: (str(p) if p is not None else None) for t, p in paths.items()}


def csv_header(path: Path) -> tuple[list[str], str]:
    """Column names of a CSV file (``.gz`` too) and its delimiter, from the first line only; ``([], ",")`` if empty."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        line = fh.readline()
    if not line.strip():
        return [], ","
    # Spreadsheet exports in many locales separate with ';' (the decimal comma takes ',').
    delimiter = max((",", ";", "\t", "|"), key=line.count)
    names = next(csv.reader([line], delimiter=delimiter))
    return [n.strip() for n in names], delimiter


def _read_csv(path: Path, table: str, personal_columns) -> pd.DataFrame:
    names, delimiter = csv_header(path)
    if not names:  # an empty file: a table without rows or columns
        return pd.DataFrame()
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataContractError(
            table, ", ".join(dup), "column name appears more than once in the header", path=str(path)
        )
    keep = [n for n in names if not is_personal(n, personal_columns)]
    dictionary = pa.dictionary(pa.int32(), pa.string())
    types = {n: dictionary if column_kind(table, n) in DICTIONARY_KINDS else pa.string() for n in keep}
    if table == "customers":  # one row per customer: no repeated values worth encoding
        types = dict.fromkeys(keep, pa.string())
    try:
        data = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=64 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=keep,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:  # ragged rows, bad quoting, not UTF-8
        raise DataContractError(table, None, f"cannot be read as CSV: {exc}", path=str(path)) from exc
    return data.to_pandas()


def _read_parquet(path: Path, table: str, personal_columns) -> pd.DataFrame:
    try:
        schema = pq.ParquetDataset(path).schema
        keep = [n for n in schema.names if not is_personal(n, personal_columns) and not n.startswith("__index")]
        dictionary = [
            n for n in keep if column_kind(table, n) in DICTIONARY_KINDS and pa.types.is_string(schema.field(n).type)
        ]
        data = pq.read_table(path, columns=keep, read_dictionary=dictionary if table != "customers" else None)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataContractError(table, None, f"cannot be read as Parquet: {exc}", path=str(path)) from exc
    # Parquet dates (date32) would become Python objects in pandas; read them as datetimes.
    for i, field in enumerate(data.schema):
        if pa.types.is_date(field.type):
            data = data.set_column(i, field.name, data.column(i).cast(pa.timestamp("us")))
    return data.to_pandas(ignore_metadata=True)


def empty_table(table: str) -> pd.DataFrame:
    """A table with the required columns and no rows (a missing billing or touchpoints file)."""
    return pd.DataFrame({c: pd.Series(dtype="str") for c in REQUIRED[table]})


def write_interim(tables: dict[str, pd.DataFrame], meta: dict, out_dir: str | Path) -> None:
    """Write the validated tables and ``meta.json`` into ``out_dir`` as one atomic step.

    Row groups of ~100k rows: the tables are sorted by ``hash_slot``, so a
    bucket's rows are a few row groups that readers find by min/max statistics.
    """
    import json

    from omvald.io import atomic_path

    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for table, df in tables.items():
            data = pa.Table.from_pandas(df, preserve_index=False)
            pq.write_table(data, tmp / f"{table}.parquet", row_group_size=ROW_GROUP_SIZE)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def read_interim(interim_dir: str | Path, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one validated table back (dates come back as ``datetime64[us]``, ids as ``str``)."""
    return pd.read_parquet(Path(interim_dir) / f"{table}.parquet", columns=columns)
