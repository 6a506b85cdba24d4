"""Merge per-bucket part files into one table sorted by ``as_of, customer_id``, in bounded memory.

Each part holds one bucket's rows sorted by ``as_of, customer_id`` (the
order :func:`omvald.features.build.build_features` returns). For one as-of
date, every part's rows are a sorted run, so the merged date is a k-way merge
of those runs: the merge order is computed from the keys alone, then the
rows are streamed from each part in small batches and written in chunks.
The live data is one chunk plus about one batch per part, whatever the
number of customers; holding a whole date of 1M customers (about 190 float
columns) takes ~1.3 GB, and sorting it twice that. Measured at 1M customers
in 32 parts, the merging process still peaks at ~2-2.6 GB: little of it is
live Arrow data (Parquet reader state and allocator caches; see
``benchmarks/README.md``).

A part whose rows for a date are not sorted (e.g. written by an engine that
does not keep the order) is read whole for that date and sorted first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

KEY = "customer_id"
CHUNK_ROWS = 50_000  # rows per written chunk
BATCH_ROWS = 8_192  # rows read from a part at a time
PART_ROW_GROUP_ROWS = 10_000  # row groups of the temporary parts (smaller: slower merge, no less memory)
OUTPUT_ROW_GROUP_ROWS = 100_000


def write_part(table: pa.Table, path: Path) -> None:
    """Write one bucket's rows (sorted by ``as_of, customer_id``) as a part file."""
    pq.write_table(table, path, row_group_size=PART_ROW_GROUP_ROWS)


def merge_parts(files: list[Path], target: Path, schema: pa.Schema, dates: list[dt.date], labelled_only: bool) -> int:
    """Rows of ``files`` for ``dates`` (only those with a ``churn`` label if ``labelled_only``) -> ``target``.

    The output is sorted by ``as_of, customer_id`` and has ``schema``;
    returns the number of rows written.
    """
    n = 0
    with pq.ParquetWriter(target, schema) as writer:
        for day in sorted(dates):
            condition = pads.field("as_of") == pa.scalar(day, pa.date32())
            if labelled_only:
                condition = condition & pads.field("churn").is_valid()
            for chunk in _merge_day(files, schema, condition):
                writer.write_table(chunk, row_group_size=OUTPUT_ROW_GROUP_ROWS)
                n += chunk.num_rows
    return n


def _merge_day(files: list[Path], schema: pa.Schema, condition: pc.Expression) -> Iterator[pa.Table]:
    runs = [_Run(path, schema, condition) for path in files]
    runs = [run for run in runs if run.n_rows]
    if not runs:
        return
    keys = pa.concat_arrays([run.keys for run in runs])
    source = np.concatenate([np.full(run.n_rows, i, dtype=np.int64) for i, run in enumerate(runs)])
    merged_source = source[pc.sort_indices(keys).to_numpy()]
    for start in range(0, len(merged_source), CHUNK_ROWS):
        chunk_source = merged_source[start : start + CHUNK_ROWS]
        counts = np.bincount(chunk_source, minlength=len(runs))
        pieces = [run.take(int(count)) for run, count in zip(runs, counts, strict=True) if count]
        stacked = pa.concat_tables(pieces)
        # Stacked rows are grouped by run, each run in order; the merged order
        # takes, for the i-th row, the next unused row of its run.
        by_run = np.argsort(chunk_source, kind="stable")
        position = np.empty(len(chunk_source), dtype=np.int64)
        position[by_run] = np.arange(len(chunk_source))
        yield stacked.take(pa.array(position))


class _Run:
    """One part's rows for one date, in key order, handed out front to back."""

    def __init__(self, path: Path, schema: pa.Schema, condition: pc.Expression) -> None:
        self._dataset = pads.dataset(str(path), format="parquet")
        self._schema = schema
        self._condition = condition
        self.keys = self._scan([KEY]).to_table().column(KEY).combine_chunks()
        self.n_rows = len(self.keys)
        self._batches: Iterator[pa.RecordBatch] | None = None
        self._buffer: pa.Table | None = None
        if self.n_rows > 1 and not pc.all(pc.less(self.keys[:-1], self.keys[1:])).as_py():
            whole = self._scan(schema.names).to_table()
            whole = whole.take(pc.sort_indices(whole.column(KEY)))
            self.keys = whole.column(KEY).combine_chunks()
            self._buffer = self._cast(whole)
            self._batches = iter(())

    def take(self, n: int) -> pa.Table:
        """The next ``n`` rows."""
        if self._batches is None:
            self._batches = iter(self._scan(self._schema.names).to_batches())
            self._buffer = self._cast(pa.Table.from_batches([], schema=self._scan_schema()))
        while self._buffer.num_rows < n:
            batch = next(self._batches)
            self._buffer = pa.concat_tables([self._buffer, self._cast(pa.Table.from_batches([batch]))])
        head, self._buffer = self._buffer.slice(0, n), self._buffer.slice(n)
        return head

    def _scan(self, columns: list[str]) -> pads.Scanner:
        # One file, no threads and no read-ahead: batches come in file order, one at a time.
        # No pre-buffering either: it would hold the raw bytes of every row group of
        # the date at once, per part (~1.3 GB for all parts at 1M customers).
        return self._dataset.scanner(
            columns=columns,
            filter=self._condition,
            batch_size=BATCH_ROWS,
            use_threads=False,
            batch_readahead=0,
            fragment_readahead=1,
            fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=False),
        )

    def _scan_schema(self) -> pa.Schema:
        return pa.schema([self._dataset.schema.field(name) for name in self._schema.names])

    def _cast(self, table: pa.Table) -> pa.Table:
        return table if table.schema == self._schema else table.cast(self._schema)
