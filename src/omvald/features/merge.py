"""Merge per-bucket part files into one table sorted by ``as_of, customer_id``, in bounded memory.

Each part holds one bucket's rows sorted by ``as_of, customer_id`` (the
order :func:`omvald.features.build.build_features` returns). For one as-of
date, every part's rows are a sorted run, so the merged date is a k-way merge
of those runs: the merge order is computed from the keys alone, then the
rows are streamed from each part in small batches and written in chunks.
The live data is one chunk plus one batch per part (smaller batches when
there are many parts: ``BATCH_BUDGET_ROWS``), whatever the
number of customers; holding a whole date of 1M customers (about 190 float
columns) takes ~1.3 GB, and sorting it twice that. Measured at 1M customers
x 12 dates in 40 parts, the merging process peaks at 2.15 GB (3.33 GB with
8,192-row batches from every part; ``benchmarks/README.md``).

A part whose rows for a date are not sorted (e.g. written by an engine that
does not keep the order) is read whole for that date and sorted first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY = "customer_id"
CHUNK_ROWS = 50_000  # rows per written chunk
BATCH_ROWS = 8_192  # rows read from a part at a time ...
# ... at most: all parts' batches together hold about this many rows. 40 parts of 1M customers in 8,192-row batches
# peaked at 3.33 GB in the merge, in 3,276-row batches at 2.12 GB (same output bytes, 64 -> 59 s).
BATCH_BUDGET_ROWS = 131_072
PART_ROW_GROUP_ROWS = 10_000  # row groups of the temporary parts (smaller: slower merge, no less memory)
OUTPUT_ROW_GROUP_ROWS = 100_000


def _part_write_options(schema: pa.Schema) -> dict:
    """Parquet options of the temporary parts: cheap to write, as cheap to read back.

    Dictionaries of float columns rarely pay (most features take many values)
    and min/max statistics of every column are never read: the merge prunes
    row groups on ``as_of`` alone. LZ4 keeps plain floats small. Writing a
    bucket part of 224k rows x 194 columns took 0.87 s of CPU with the
    defaults, 0.52 s so (reading it back: the same); the part is ~1.6 times
    larger (32 MB instead of 20 MB).
    """
    coded = [f.name for f in schema if not pa.types.is_floating(f.type)]
    return {"compression": "lz4", "use_dictionary": coded, "write_statistics": ["as_of"]}


def write_part(table: pa.Table, path: Path) -> None:
    """Write one bucket's rows (sorted by ``as_of, customer_id``) as a part file.

    No row group holds two as-of dates, so the merge of one date decodes only
    that date's rows: with a few thousand customers a whole part fits in one
    row group, and reading it once per date (~80 dates) took seconds.
    """
    days = table.column("as_of").to_numpy()
    starts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist(), table.num_rows]
    with pq.ParquetWriter(path, table.schema, **_part_write_options(table.schema)) as writer:
        for start, end in zip(starts[:-1], starts[1:], strict=True):
            writer.write_table(table.slice(start, end - start), row_group_size=PART_ROW_GROUP_ROWS)


def merge_parts(files: list[Path], target: Path, schema: pa.Schema, dates: list[dt.date], labelled_only: bool) -> int:
    """Rows of ``files`` for ``dates`` (only those with a ``churn`` label if ``labelled_only``) -> ``target``.

    The output is sorted by ``as_of, customer_id`` and has ``schema``;
    returns the number of rows written.
    """
    parts = [_Part(path) for path in files]
    chunks = (chunk for day in sorted(dates) for chunk in _merge_day(parts, schema, day, labelled_only))
    with pq.ParquetWriter(target, schema) as writer:
        return _write_behind(chunks, lambda chunk: writer.write_table(chunk, row_group_size=OUTPUT_ROW_GROUP_ROWS))


def _write_behind(chunks: Iterator[pa.Table], write: Callable[[pa.Table], None]) -> int:
    """``write`` each chunk, in order, on a second thread while the next one is merged; returns the rows written.

    Encoding the output took about 45% of a merge, and the merge runs after
    the bucket workers have finished, with a core idle: Arrow reads, takes
    and writes without holding the GIL, so the two overlap. The file is the
    same, byte for byte; one more chunk is alive at a time.
    """
    n = 0
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future | None = None
        for chunk in chunks:
            if pending is not None:
                pending.result()
            pending = writer.submit(write, chunk)
            n += chunk.num_rows
        if pending is not None:
            pending.result()
    return n


def _merge_day(parts: list[_Part], schema: pa.Schema, day: dt.date, labelled_only: bool) -> Iterator[pa.Table]:
    batch_rows = min(BATCH_ROWS, max(1_024, BATCH_BUDGET_ROWS // len(parts)))
    runs = [_Run(part, schema, day, labelled_only, batch_rows) for part in parts]
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


class _Part:
    """One part file, opened once per merge: its row groups' ``as_of`` ranges pick those of a date.

    Opening a dataset and a scanner per part and date cost ~15 ms each; at
    small sizes (tests, a few thousand customers over ~80 dates) that was
    seconds of a features run.
    """

    def __init__(self, path: Path) -> None:
        self.file = pq.ParquetFile(path)
        meta = self.file.metadata
        column = meta.schema.to_arrow_schema().get_field_index("as_of")
        self._ranges: list[tuple[dt.date, dt.date] | None] = []
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(column).statistics
            has_range = stats is not None and stats.has_min_max
            self._ranges.append((stats.min, stats.max) if has_range else None)

    def row_groups(self, day: dt.date) -> list[int]:
        """Row groups that may hold rows of ``day`` (all, where a row group has no statistics)."""
        return [i for i, r in enumerate(self._ranges) if r is None or r[0] <= day <= r[1]]


class _Run:
    """One part's rows for one date, in key order, handed out front to back."""

    def __init__(self, part: _Part, schema: pa.Schema, day: dt.date, labelled_only: bool, batch_rows: int) -> None:
        self._batch_rows = batch_rows
        self._part = part
        self._schema = schema
        self._day = pa.scalar(day, pa.date32())
        self._labelled_only = labelled_only
        self._groups = part.row_groups(day)
        self._batches: Iterator[pa.RecordBatch] | None = None
        self._buffer: pa.Table | None = None
        key_columns = [KEY, "as_of"] + (["churn"] if labelled_only else [])
        keyed = self._rows(part.file.read_row_groups(self._groups, columns=key_columns, use_threads=False))
        self.keys = keyed.column(KEY).combine_chunks()
        self.n_rows = len(self.keys)
        if self.n_rows > 1 and not pc.all(pc.less(self.keys[:-1], self.keys[1:])).as_py():
            whole = self._rows(part.file.read_row_groups(self._groups, columns=schema.names, use_threads=False))
            whole = whole.take(pc.sort_indices(whole.column(KEY)))
            self.keys = whole.column(KEY).combine_chunks()
            self._buffer = self._cast(whole)
            self._batches = iter(())

    def take(self, n: int) -> pa.Table:
        """The next ``n`` rows."""
        if self._batches is None:
            # One batch at a time, in file order, no threads: memory stays at about one batch per part.
            self._batches = self._part.file.iter_batches(
                batch_size=self._batch_rows, row_groups=self._groups, columns=self._schema.names, use_threads=False
            )
            self._buffer = self._schema.empty_table()
        assert self._buffer is not None
        while self._buffer.num_rows < n:
            rows = self._rows(pa.Table.from_batches([next(self._batches)]))
            self._buffer = pa.concat_tables([self._buffer, self._cast(rows)])
        head, self._buffer = self._buffer.slice(0, n), self._buffer.slice(n)
        return head

    def _rows(self, table: pa.Table) -> pa.Table:
        """The rows of this run's date (with a label if ``labelled_only``)."""
        mask = pc.equal(table.column("as_of"), self._day)
        if self._labelled_only:
            mask = pc.and_(mask, pc.is_valid(table.column("churn")))
        return table.filter(mask)

    def _cast(self, table: pa.Table) -> pa.Table:
        return table if table.schema == self._schema else table.cast(self._schema)
