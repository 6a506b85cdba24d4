"""One contract file read batch by batch, typed as :mod:`omvald.data.read` types the whole file.

``omvald validate`` (:mod:`omvald.data.validate_buckets`) never holds a whole
table: it streams each file once, in Arrow batches of a few MB, and files
every row under its customer's bucket. This module is the streaming half of
:mod:`omvald.data.read`, with the same checks and messages:

- CSV: encoding sniffed, a body that is not UTF-8 read again as Windows-1252
  (or refused when mixed), every column text, low-cardinality kinds
  dictionary-encoded, rows with the wrong number of fields and quotes never
  closed refused with their line numbers, decimal commas in ';'-separated
  files (decided over the whole file, applied per bucket: :func:`decimal_commas`);
- Parquet (a file or a folder of parts): the file's types, dates as
  datetimes, personal columns never loaded.

Each batch carries ``_row``, the row's number in the file (0 = the first
data row), which error examples turn into line numbers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from omvald.data.contract import column_kind
from omvald.data.encoding import SAVE_AS, UTF8, fallback_encoding
from omvald.data.read import DECIMAL_COMMA, DICTIONARY_KINDS, csv_layout, is_csv, is_personal
from omvald.errors import DataContractError

log = logging.getLogger(__name__)

ROW = "_row"
# As the whole-file reader (read.py): a quote left open across a block boundary confuses Arrow's
# chunker, so blocks of the same size give the same message for files up to this size.
CSV_BLOCK_BYTES = 64 << 20
PARQUET_BATCH_ROWS = 200_000


@dataclass(frozen=True)
class TableFile:
    """One contract file as the stream reads it: ``columns`` are the kept ones (no personal columns), in file order.

    ``schema``: the Arrow types each batch has (``_row`` not included).
    """

    table: str
    path: Path
    columns: list[str]
    schema: pa.Schema
    csv: bool
    names: tuple[str, ...] = ()  # CSV: every header name
    delimiter: str = ","
    encoding: str = UTF8

    @property
    def has_ids(self) -> bool:
        return "customer_id" in self.columns


def open_table(path: Path, table: str, personal_columns: tuple[str, ...] | list[str]) -> TableFile:
    """Header (CSV) or footer (Parquet) of ``path``: the refusals of :func:`omvald.data.read.read_table` that need no rows."""
    try:
        if is_csv(path):
            return _open_csv(path, table, personal_columns)
        return _open_parquet(path, table, personal_columns)
    except (OSError, EOFError) as exc:
        raise DataContractError(table, None, f"cannot be read: {exc}", path=str(path)) from None


def _open_csv(path: Path, table: str, personal_columns) -> TableFile:
    layout = csv_layout(path, table, personal_columns)
    schema = pa.schema([pa.field(n, layout.types[n]) for n in layout.keep])
    return TableFile(table, path, layout.keep, schema, True, tuple(layout.names), layout.delimiter, layout.encoding)


def _open_parquet(path: Path, table: str, personal_columns) -> TableFile:
    try:
        schema = pq.ParquetDataset(path).schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataContractError(table, None, f"cannot be read as Parquet: {exc}", path=str(path)) from exc
    keep = [n for n in schema.names if not is_personal(n, personal_columns) and not n.startswith("__index")]
    fields = []
    for name in keep:
        kind, type_ = column_kind(table, name), schema.field(name).type
        if pa.types.is_date(type_):  # as omvald.data.read: Parquet dates become datetimes
            type_ = pa.timestamp("us")
        elif table != "customers" and kind in DICTIONARY_KINDS and pa.types.is_string(type_):
            type_ = pa.dictionary(pa.int32(), pa.string())
        fields.append(pa.field(name, type_))
    return TableFile(table, path, keep, pa.schema(fields), False)


def stream(f: TableFile, on_restart: Callable[[], None] | None = None) -> Iterator[pa.Table]:
    """The rows of ``f`` in file order, in batches typed as ``f.schema`` plus ``_row`` (int64).

    A CSV body that turns out not to be UTF-8 is read again from the start
    in the fallback encoding: ``on_restart()`` is called first, so a consumer
    can drop what it kept of the first attempt. The whole-file refusals of
    :mod:`omvald.data.read` (ragged rows, a quote never closed) are raised
    after the last batch, in the order the whole-file reader raises them.
    """
    if not f.columns:  # an empty CSV file: no rows, no columns
        return
    if not f.csv:
        yield from _parquet_batches(f)
        return
    try:
        yield from _csv_batches(f, f.encoding, may_retry=True)
    except _NotUtf8:
        if on_restart is not None:
            on_restart()
        yield from _csv_batches(f, fallback_encoding(f.path, f.table), may_retry=False)


class _NotUtf8(Exception):
    pass


def _csv_reader(f: TableFile, encoding: str, ragged: list, use_threads: bool = True) -> pacsv.CSVStreamingReader:
    def skip(row: pacsv.InvalidRow) -> str:
        ragged.append(row if len(ragged) < 5 else None)
        return "skip"

    return pacsv.open_csv(
        f.path,
        read_options=pacsv.ReadOptions(
            column_names=list(f.names),
            skip_rows=1,
            block_size=CSV_BLOCK_BYTES,
            encoding=encoding,
            use_threads=use_threads,
        ),
        parse_options=pacsv.ParseOptions(delimiter=f.delimiter, invalid_row_handler=skip),
        convert_options=pacsv.ConvertOptions(
            column_types={field.name: field.type for field in f.schema},
            include_columns=f.columns,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _csv_batches(f: TableFile, encoding: str, may_retry: bool) -> Iterator[pa.Table]:
    ragged: list[pacsv.InvalidRow | None] = []
    quotes = _QuoteCheck(f)
    offset = 0
    try:
        try:
            reader = _csv_reader(f, encoding, ragged)
            for batch in reader:
                data = pa.Table.from_batches([batch])
                quotes.add(data, offset)
                yield data.append_column(ROW, pa.array(np.arange(offset, offset + len(data), dtype=np.int64)))
                offset += len(data)
        except pa.ArrowInvalid as exc:
            if may_retry and encoding == UTF8 and "invalid UTF8" in str(exc):
                raise _NotUtf8 from None
            raise
    except pa.ArrowInvalid as exc:
        raise DataContractError(f.table, None, f"cannot be read as CSV: {exc}", path=str(f.path)) from None
    except UnicodeDecodeError as exc:  # a byte Windows-1252 does not define: not text in either encoding
        raise DataContractError(
            f.table, None, f"is neither UTF-8 nor Windows-1252 text ({exc.reason}); {SAVE_AS}", path=str(f.path)
        ) from None
    if ragged:
        rows: list[pacsv.InvalidRow | None] = []
        for _ in _csv_reader(f, encoding, rows, use_threads=False):  # single-threaded: the line numbers are known
            pass
        examples = [f"line {r.number}: {r.actual_columns} fields" for r in rows if r is not None]
        raise DataContractError(
            f.table,
            None,
            f"rows with a different number of fields than the header's {len(f.names)} ({len(ragged)} row(s)); "
            f"a '{f.delimiter}' inside a value needs quotes, and a quote opened must be closed",
            examples,
            path=str(f.path),
        )
    quotes.raise_first()


@dataclass
class _QuoteCheck:
    """:func:`omvald.data.read._check_quotes_closed` over batches: the first column (in file order) with a hit."""

    f: TableFile
    hits: dict[str, str] = field(default_factory=dict)

    def add(self, data: pa.Table, offset: int) -> None:
        swallowed = "\n" + f"[^\n]*{re.escape(self.f.delimiter)}" * max(len(self.f.names) - 1, 1)
        for name, column in zip(data.column_names, data.columns, strict=True):
            if name in self.hits:
                continue
            at = offset
            for chunk in column.chunks:
                values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
                if pc.any(pc.match_substring(values, "\n")).as_py():
                    found = pc.match_substring_regex(values, swallowed)
                    if pc.any(found).as_py():
                        dictionary = pa.types.is_dictionary(chunk.type)
                        self.hits[name] = "" if dictionary else f"line {at + pc.index(found, True).as_py() + 2}: "
                        break
                at += len(chunk)

    def raise_first(self) -> None:
        for name in self.f.columns:
            if name in self.hits:
                raise DataContractError(
                    self.f.table,
                    name,
                    f'{self.hits[name]}a quote (") opened and never closed takes the rows after it into one value; '
                    "close or remove it",
                    path=str(self.f.path),
                )


def _parquet_batches(f: TableFile) -> Iterator[pa.Table]:
    parts = pq.ParquetDataset(f.path).files if f.path.is_dir() else [f.path]
    offset = 0
    try:
        for part in parts:
            source = pq.ParquetFile(part)
            present = [n for n in f.columns if n in source.schema_arrow.names]
            for batch in source.iter_batches(PARQUET_BATCH_ROWS, columns=present):
                data = _conform(pa.Table.from_batches([batch]), f.schema)
                yield data.append_column(ROW, pa.array(np.arange(offset, offset + len(data), dtype=np.int64)))
                offset += len(data)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataContractError(f.table, None, f"cannot be read as Parquet: {exc}", path=str(f.path)) from exc


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """A Parquet batch with the columns and types of ``schema`` (dates as datetimes, ids and dates as dictionaries)."""
    columns = []
    for field_ in schema:
        if field_.name not in data.column_names:
            columns.append(pa.nulls(len(data), field_.type))
            continue
        column = data.column(field_.name)
        if pa.types.is_dictionary(field_.type) and not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column.cast(pa.string()))
        columns.append(column.cast(field_.type) if column.type != field_.type else column)
    return pa.table(columns, schema=schema)


def to_frame(data: pa.Table) -> pd.DataFrame:
    """Rows of one bucket (Arrow, with ``_row``) as the pandas frame the whole-file reader gives, indexed by ``_row``."""
    index = data.column(ROW).to_numpy()
    if len(index) > 1 and not bool(np.all(index[1:] > index[:-1])):  # filed in file order already, as a rule
        order = np.argsort(index, kind="stable")
        data, index = data.take(pa.array(order)), index[order]
    frame = data.drop_columns([ROW]).to_pandas(ignore_metadata=True)
    frame.index = pd.Index(index)
    return frame


# --- decimal commas: decided on the whole file, applied to each bucket ------------------------------


@dataclass
class CommaFacts:
    """What :func:`omvald.data.read._decimal_commas` looks at in each text column of a ';' file, summed over batches."""

    comma: dict[str, bool] = field(default_factory=dict)  # a value holds ','
    point: dict[str, bool] = field(default_factory=dict)  # a value holds '.'
    all_decimal: dict[str, bool] = field(default_factory=dict)  # every value is a decimal-comma number

    def add(self, f: TableFile, data: pa.Table) -> None:
        if not f.csv or f.delimiter != ";":
            return
        for column in _comma_candidates(f):
            text = data.column(column).drop_null().to_pandas().astype("str").str.strip()
            self.comma[column] = self.comma.get(column, False) or bool(text.str.contains(",", regex=False).any())
            self.point[column] = self.point.get(column, False) or bool(text.str.contains(".", regex=False).any())
            every = bool(text.str.fullmatch(DECIMAL_COMMA).all())
            self.all_decimal[column] = self.all_decimal.get(column, True) and every

    def columns(self, f: TableFile) -> list[str]:
        """The columns whose commas are decimal points (the whole-file reader's rule)."""
        out = []
        for column in self.comma:
            if not self.comma[column] or self.point[column]:
                continue
            if column_kind(f.table, column) is None and not self.all_decimal[column]:
                continue
            out.append(column)
        if out:
            log.info("%s: ';'-separated with decimal commas in %s: 49,50 read as 49.50", f.path, ", ".join(out))
        return out


def _comma_candidates(f: TableFile) -> list[str]:
    return [
        n
        for n in f.columns
        if column_kind(f.table, n) in ("number", None) and not pa.types.is_dictionary(f.schema.field(n).type)
    ]


def decimal_commas(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``49,50`` read as ``49.50`` in ``columns`` (decided by :class:`CommaFacts` on the whole file)."""
    for column in columns:
        if column in frame.columns:
            frame[column] = frame[column].str.replace(",", ".", regex=False)
    return frame
