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
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from omvald.data.contract import REQUIRED, TABLES, column_kind
from omvald.data.encoding import SAVE_AS, UTF8, fallback_encoding, sniff_encoding
from omvald.data.personal import normalized_name
from omvald.errors import DataContractError

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = (".csv", ".csv.gz", ".parquet", ".pq")
# Kinds whose distinct values are few compared with the rows: read dictionary-encoded.
DICTIONARY_KINDS = frozenset({"id", "date", "lower", "string"})
ROW_GROUP_SIZE = 100_000
DECIMAL_COMMA = r"[+-]?\d+(,\d+)?"


def find_tables(raw_dir: str | Path) -> dict[str, Path | None]:
    """Map each table name to its file in ``raw_dir`` (``None`` when absent).

    A table is ``<name>.csv``, ``<name>.csv.gz``, ``<name>.parquet`` or a
    folder ``<name>.parquet`` of part files; names are matched case-insensitively.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        what = "is a file, not a folder" if raw_dir.exists() else "does not exist"
        raise DataContractError("customers", None, f"input folder {raw_dir} {what}", path=str(raw_dir))
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
        if hits and hits[0].is_dir() and not hits[0].name.lower().endswith((".parquet", ".pq")):
            raise DataContractError(
                table,
                None,
                "is a folder, not a file (only a .parquet table may be a folder of parts)",
                path=str(hits[0]),
            )
        if hits and not hits[0].exists():
            raise DataContractError(table, None, "is a link to a file that does not exist", path=str(hits[0]))
    return found


def is_csv(path: str | Path | None) -> bool:
    return path is not None and Path(path).name.lower().endswith((".csv", ".csv.gz"))


def is_personal(column: str, personal_columns: tuple[str, ...] | list[str]) -> bool:
    """Whether ``column`` is listed in ``data.personal_columns``, ignoring case and punctuation (E-Mail = email)."""
    return normalized_name(column) in {normalized_name(p) for p in personal_columns}


def read_table(path: str | Path, table: str, personal_columns: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Read one contract table; personal columns are skipped, not loaded and dropped."""
    path = Path(path)
    try:
        if is_csv(path):
            return _read_csv(path, table, personal_columns)
        return _read_parquet(path, table, personal_columns)
    except (OSError, EOFError) as exc:  # permissions, a truncated .gz, a file that vanished
        raise DataContractError(table, None, f"cannot be read: {exc}", path=str(path)) from None


def read_tables(raw_dir: str | Path, personal_columns: tuple[str, ...] | list[str] = ()) -> tuple[dict, dict]:
    """Read every table found in ``raw_dir``: ``({table: DataFrame | None}, {table: path | None})``."""
    paths = find_tables(raw_dir)
    frames = {t: (read_table(p, t, personal_columns) if p is not None else None) for t, p in paths.items()}
    return frames, {t: (str(p) if p is not None else None) for t, p in paths.items()}


def csv_header(path: Path, encoding: str = UTF8) -> tuple[list[str], str]:
    """Column names of a CSV file (``.gz`` too) and its delimiter (the most frequent of ``, ; tab |`` in the
    first line); ``([], ",")`` if empty."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    text_encoding = "utf-8-sig" if encoding == UTF8 else encoding
    # errors="replace": only the header is read here; the reader judges the rest of the file
    with opener(path, "rt", encoding=text_encoding, errors="replace", newline="") as fh:
        line = fh.readline()
    if not line.strip():
        return [], ","
    # Spreadsheet exports in many locales separate with ';' (the decimal comma takes ',').
    delimiter = max((",", ";", "\t", "|"), key=line.count)
    names = next(csv.reader([line], delimiter=delimiter))
    return [n.strip() for n in names], delimiter


@dataclass(frozen=True)
class CsvLayout:
    """How a contract CSV is read: its header, delimiter and encoding, the columns kept and their Arrow types."""

    names: list[str]
    delimiter: str
    encoding: str
    keep: list[str]
    types: dict[str, pa.DataType]


def csv_layout(path: Path, table: str, personal_columns) -> CsvLayout:
    """The header of ``path`` read and judged (duplicate names refused, personal columns dropped) for both readers."""
    encoding = sniff_encoding(path, table)
    names, delimiter = csv_header(path, encoding)
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
    return CsvLayout(names, delimiter, encoding, keep, types)


def _read_csv(path: Path, table: str, personal_columns) -> pd.DataFrame:
    layout = csv_layout(path, table, personal_columns)
    names, delimiter, encoding = layout.names, layout.delimiter, layout.encoding
    if not names:  # an empty file: a table without rows or columns
        return pd.DataFrame()
    read = functools.partial(_arrow_csv, path, names, delimiter, layout.types, layout.keep)
    try:
        try:
            data, ragged = read(encoding)
        except pa.ArrowInvalid as exc:
            if encoding != UTF8 or "invalid UTF8" not in str(exc):
                raise
            encoding = fallback_encoding(path, table)
            data, ragged = read(encoding)
    except pa.ArrowInvalid as exc:
        raise DataContractError(table, None, f"cannot be read as CSV: {exc}", path=str(path)) from None
    except UnicodeDecodeError as exc:  # a byte Windows-1252 does not define: not text in either encoding
        raise DataContractError(
            table, None, f"is neither UTF-8 nor Windows-1252 text ({exc.reason}); {SAVE_AS}", path=str(path)
        ) from None
    if ragged:
        _, rows = read(encoding, use_threads=False)  # single-threaded, the reader knows the line numbers
        examples = [f"line {r.number}: {r.actual_columns} fields" for r in rows if r is not None]
        raise DataContractError(
            table,
            None,
            f"rows with a different number of fields than the header's {len(names)} ({len(ragged)} row(s)); "
            f"a '{delimiter}' inside a value needs quotes, and a quote opened must be closed",
            examples,
            path=str(path),
        )
    _check_quotes_closed(data, table, path, delimiter, len(names))
    frame = data.to_pandas()
    if delimiter == ";":
        frame = _decimal_commas(frame, table, path)
    return frame


def _check_quotes_closed(data: pa.Table, table: str, path: Path, delimiter: str, n_fields: int) -> None:
    """Refuse a value that swallowed whole rows: a quote opened and never closed reads the rest of the file
    as one value (a line break, then as many delimiters as a row has)."""
    swallowed = "\n" + f"[^\n]*{re.escape(delimiter)}" * max(n_fields - 1, 1)
    for name, column in zip(data.column_names, data.columns, strict=True):
        offset = 0
        for chunk in column.chunks:  # chunk by chunk: no copy of a 40M-row column
            values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
            # cheap test first: most columns hold no line break at all
            if pc.any(pc.match_substring(values, "\n")).as_py():
                hits = pc.match_substring_regex(values, swallowed)
                if pc.any(hits).as_py():
                    dictionary = pa.types.is_dictionary(chunk.type)
                    where = "" if dictionary else f"line {offset + pc.index(hits, True).as_py() + 2}: "
                    raise DataContractError(
                        table,
                        name,
                        f'{where}a quote (") opened and never closed takes the rows after it into one value; '
                        "close or remove it",
                        path=str(path),
                    )
            offset += len(chunk)


def _arrow_csv(path, names, delimiter, types, keep, encoding, use_threads=True) -> tuple[pa.Table, list]:
    """Read with Arrow: ``(table, ragged)``, the rows whose field count differs from the header's skipped.

    ``ragged`` holds the first five such rows and then one ``None`` per further row (a count).
    """
    ragged: list[pacsv.InvalidRow | None] = []

    def skip(row: pacsv.InvalidRow) -> str:
        ragged.append(row if len(ragged) < 5 else None)
        return "skip"

    data = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=1, block_size=64 << 20, encoding=encoding, use_threads=use_threads
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=skip),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=keep,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    return data, ragged


def _decimal_commas(frame: pd.DataFrame, table: str, path: Path) -> pd.DataFrame:
    """In a ';'-separated file (a spreadsheet in a decimal-comma locale), read ``49,50`` as 49.50.

    Only number columns of the contract whose values hold commas and no point
    anywhere, and customer attributes whose every value is a decimal-comma number.
    """
    changed = []
    for column in frame.columns:
        kind = column_kind(table, column)
        if kind not in ("number", None) or isinstance(frame[column].dtype, pd.CategoricalDtype):
            continue
        text = frame[column].dropna().astype("str").str.strip()
        has_comma = text.str.contains(",", regex=False)
        if not has_comma.any() or text.str.contains(".", regex=False).any():
            continue
        if kind is None and not text.str.fullmatch(DECIMAL_COMMA).all():
            continue
        frame[column] = frame[column].str.replace(",", ".", regex=False)
        changed.append(str(column))
    if changed:
        log.info("%s: ';'-separated with decimal commas in %s: 49,50 read as 49.50", path, ", ".join(changed))
    return frame


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

    with atomic_path(out_dir, stage="validate") as tmp:
        tmp.mkdir(parents=True)
        for table, df in tables.items():
            data = pa.Table.from_pandas(df, preserve_index=False)
            pq.write_table(data, tmp / f"{table}.parquet", row_group_size=ROW_GROUP_SIZE)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def read_interim(interim_dir: str | Path, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one validated table back (dates come back as ``datetime64[us]``, ids as ``str``)."""
    return pd.read_parquet(Path(interim_dir) / f"{table}.parquet", columns=columns)
