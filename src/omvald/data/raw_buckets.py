"""A folder of contract files filed by customer bucket on disk, so that validation holds one bucket at a time.

:func:`file_by_bucket` streams each file once (:mod:`omvald.data.raw_stream`),
in table order, so a file that cannot be read is refused before the next is
opened, as :func:`omvald.data.read.read_tables` does. Every row goes to its
customer's bucket (the stable hash of the parsed ``customer_id``, the slots
of :mod:`omvald.buckets`), into one scratch Parquet file per table and
bucket, with its row number in the file. :meth:`RawBuckets.frames` gives one
bucket's raw frames typed as the whole-file reader types them, so
:func:`omvald.data.validate.validate_rows` sees what it would see in the
whole tables, narrowed to these customers.

How many buckets: enough that each holds about :data:`ROWS_PER_BUCKET` raw
rows (estimated from the Parquet footers or the CSV file sizes), so memory
follows the bucket, not the customer base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from omvald.buckets import bucket_of_slot, hash_slot
from omvald.data import contract as C
from omvald.data.raw_stream import ROW, CommaFacts, TableFile, decimal_commas, open_table, stream, to_frame
from omvald.data.read import find_tables

# Raw rows (all tables) per validation bucket: at ~150 bytes per row while validated (measured at 200k
# customers x 24 months: 2.3 GB for 12.5M rows whole), a bucket peaks at a few hundred MB.
ROWS_PER_BUCKET = 2_000_000
MAX_BUCKETS = 256  # one open scratch file per bucket while a table is filed
CSV_BYTES_PER_ROW = 40  # rough size of a contract row in a CSV file (a touchpoint row is ~50 bytes)
GZIP_RATIO = 5


@dataclass
class RawBuckets:
    """The raw tables of a folder filed by bucket under ``root`` (scratch files, removed by the caller)."""

    root: Path
    n_buckets: int
    files: dict[str, TableFile | None]
    rows: dict[str, int] = field(default_factory=dict)  # rows in each file
    comma_columns: dict[str, list[str]] = field(default_factory=dict)  # decimal-comma columns per table
    widened: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> dtype of the whole file's frame

    def paths(self) -> dict[str, str | None]:
        """The file of each table as messages name it."""
        return {t: (str(f.path) if f is not None else None) for t, f in self.files.items()}

    def part(self, table: str, bucket: int) -> Path:
        return self.root / f"raw-{table}-{bucket:04d}.arrows"

    def table(self, table: str, bucket: int) -> pa.Table:
        """One bucket's raw rows of ``table`` as Arrow (with ``_row``); empty with the file's columns if none."""
        f = self.files[table]
        assert f is not None
        path = self.part(table, bucket)
        if path.exists():
            return read_scratch(path)
        return f.schema.append(pa.field(ROW, pa.int64())).empty_table()

    def frame(self, table: str, bucket: int) -> pd.DataFrame | None:
        """One bucket's raw frame of ``table`` as :func:`omvald.data.read.read_table` types the whole file.

        Indexed by row number in the file; ``None`` when the table has no file.
        """
        f = self.files[table]
        if f is None:
            return None
        if not f.columns:  # an empty CSV file: no rows, no columns
            return pd.DataFrame()
        frame = to_frame(self.table(table, bucket))
        for column, dtype in self.widened.get(table, {}).items():
            frame[column] = frame[column].astype(dtype)
        return decimal_commas(frame, self.comma_columns.get(table, []))

    def frames(self, bucket: int) -> dict[str, pd.DataFrame | None]:
        """The raw frames of one bucket, one per table (what ``read_tables`` gives for the whole folder)."""
        return {t: self.frame(t, bucket) for t in C.TABLES}


def file_by_bucket(
    raw_dir: str | Path, personal_columns: tuple[str, ...] | list[str], root: Path, n_buckets: int | None = None
) -> RawBuckets:
    """Stream every contract file of ``raw_dir`` into per-bucket scratch files under ``root``.

    ``n_buckets`` defaults to :func:`bucket_count`. Raises the reader's
    :class:`~omvald.errors.DataContractError` for a file that cannot be read.
    """
    paths = find_tables(raw_dir)
    root.mkdir(parents=True, exist_ok=True)
    n = n_buckets or bucket_count([p for p in paths.values() if p is not None])
    out = RawBuckets(root, n, {})
    slots = _Slots()
    for table, path in paths.items():
        if path is None:
            out.files[table] = None
            continue
        f = open_table(path, table, personal_columns)
        out.files[table] = f
        _file_table(f, out, slots)
    return out


def bucket_count(paths: list[Path]) -> int:
    """Buckets for about :data:`ROWS_PER_BUCKET` raw rows each, between 1 and :data:`MAX_BUCKETS`."""
    rows = 0
    for path in paths:
        if path.name.lower().endswith((".csv", ".csv.gz")):
            size = path.stat().st_size * (GZIP_RATIO if path.name.lower().endswith(".gz") else 1)
            rows += size // CSV_BYTES_PER_ROW
            continue
        try:
            files = pq.ParquetDataset(path).files if path.is_dir() else [path]
            rows += sum(pq.ParquetFile(p).metadata.num_rows for p in files)
        except (pa.ArrowInvalid, OSError):  # the reader names the problem later
            continue
    return max(1, min(MAX_BUCKETS, math.ceil(rows / ROWS_PER_BUCKET)))


def _file_table(f: TableFile, out: RawBuckets, slots: _Slots) -> None:
    """Stream one file into its bucket files; record its rows, decimal-comma columns and widened dtypes."""
    writers: dict[int, ipc.RecordBatchStreamWriter] = {}
    state = {"rows": 0, "commas": CommaFacts(), "nulls": dict.fromkeys(f.columns, 0)}

    def restart() -> None:  # the file is read again in another encoding: forget the first attempt
        for bucket, writer in writers.items():
            writer.close()
            out.part(f.table, bucket).unlink()
        writers.clear()
        state.update(rows=0, commas=CommaFacts(), nulls=dict.fromkeys(f.columns, 0))

    schema = f.schema.append(pa.field(ROW, pa.int64()))
    try:
        for data in stream(f, on_restart=restart):
            state["rows"] += len(data)
            state["commas"].add(f, data)
            for name in f.columns:
                state["nulls"][name] += data.column(name).null_count
            if not f.has_ids:  # each bucket fails on the missing column; no bucket to file the rows in
                continue
            buckets = _buckets(data, out.n_buckets, slots, remember=f.table == "customers")
            order = np.argsort(buckets, kind="stable")
            sorted_buckets = buckets[order]
            data = data.take(pa.array(order))
            bounds = np.flatnonzero(np.diff(sorted_buckets)) + 1
            for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
                if hi <= lo:
                    continue
                bucket = int(sorted_buckets[lo])
                if bucket not in writers:
                    writers[bucket] = scratch_writer(out.part(f.table, bucket), schema)
                writers[bucket].write_table(data.slice(lo, hi - lo))
    finally:
        for writer in writers.values():
            writer.close()
    out.rows[f.table] = state["rows"]
    out.comma_columns[f.table] = state["commas"].columns(f)
    out.widened[f.table] = _widened(f.schema, state["nulls"])


def scratch_writer(path: Path, schema: pa.Schema) -> ipc.RecordBatchStreamWriter:
    """A scratch file: an Arrow IPC stream (cheap to append; each batch may bring its own dictionaries)."""
    return ipc.new_stream(str(path), schema, options=ipc.IpcWriteOptions(compression="lz4"))


def read_scratch(path: Path) -> pa.Table:
    """A scratch file written by :func:`scratch_writer`, whole."""
    with pa.memory_map(str(path)) as source:
        return ipc.open_stream(source).read_all()


class _Slots:
    """Hash slots of customer ids, remembered for the customers file's ids: billing and touchpoints repeat them,
    and blake2b in Python is the costly part of filing a row (~40 bytes per customer)."""

    def __init__(self) -> None:
        self.known = pd.Series(np.zeros(0, np.int16), index=pd.Index([], dtype="str"))
        self.missing = int(hash_slot(pd.Series([None], dtype="string")).iloc[0])

    def of(self, values: pd.Index) -> np.ndarray:
        slots = self.known.reindex(values).to_numpy()
        new = np.isnan(slots) if slots.dtype.kind == "f" else np.zeros(len(values), bool)
        if new.any():
            slots = slots.astype(np.float64)
            slots[new] = hash_slot(pd.Series(values[new], dtype="str")).to_numpy()
        return slots.astype(np.int16)

    def remember(self, values: pd.Index, slots: np.ndarray) -> None:
        known = pd.concat([self.known, pd.Series(slots, index=values)])
        self.known = known[~known.index.duplicated()]  # a repeated id is refused later, with its rows


def _buckets(data: pa.Table, n_buckets: int, slots: _Slots, remember: bool) -> np.ndarray:
    """Bucket of each row: the slot of its parsed customer id (a missing id: the slot of a missing value)."""
    ids = C.parse_id(data.column("customer_id").to_pandas())
    codes, values = C.codes_and_values(ids)
    values = pd.Index(values, dtype="str")
    found = slots.of(values)
    if remember:
        slots.remember(values, found)
    return bucket_of_slot(np.append(found, slots.missing)[codes], n_buckets)


def _widened(schema: pa.Schema, nulls: dict[str, int]) -> dict[str, str]:
    """Columns a bucket without their missing values would type narrower than the whole file does.

    pandas reads an integer column with a missing value as float64 and a
    boolean one as objects; a bucket without them would read int64 and bool.
    """
    out = {}
    for field_ in schema:
        if nulls.get(field_.name, 0) == 0:
            continue
        if pa.types.is_integer(field_.type):
            out[field_.name] = "float64"
        elif pa.types.is_boolean(field_.type):
            out[field_.name] = "object"
    return out
