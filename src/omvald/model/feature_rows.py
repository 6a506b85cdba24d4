"""The feature table read in parts: chosen rows and columns of ``training.parquet``, batch by batch.

At a million customers the feature table (one row per customer and as-of
date, ~190 float columns) is larger than a machine's memory. The model
stages hold only its keys and labels (a few columns, :func:`read_keys`) and
reach the features through :class:`FeatureRows`: rows picked by their
position in the file, read one row group at a time. An estimator takes a
``FeatureRows`` wherever it takes a DataFrame of features
(:class:`omvald.model.estimators.LGBMChurnModel` builds LightGBM's dataset
from it in batches, :class:`MatrixSequence`; predictions go batch by
batch, :func:`per_batch`), so a training window is never in memory at once.

The file's row groups hold one as-of date each (``features/merge.py``), so
a window of dates is a run of row groups and nothing else is read.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW = "_row"  # a row's position in training.parquet
SEQUENCE_BATCH_ROWS = 16_384  # rows LightGBM pushes into its dataset at once


class FeatureFile:
    """``training.parquet`` opened once: its row groups, read by row position and column."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.parquet = pq.ParquetFile(self.path)
        sizes = [self.parquet.metadata.row_group(i).num_rows for i in range(self.parquet.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.columns = list(self.parquet.schema_arrow.names)

    @property
    def n_rows(self) -> int:
        return int(self.starts[-1])

    def read(self, rows: np.ndarray, columns: list[str]) -> Iterator[pd.DataFrame]:
        """The ``columns`` of the rows at positions ``rows`` (ascending), one frame per row group, indexed by position.

        Frames are typed as ``pd.read_parquet`` types the whole file.
        """
        for group, local in self.groups(rows):
            table = self.parquet.read_row_group(group, columns=columns).take(pa.array(local))
            frame = table.to_pandas()
            frame.index = pd.Index(local + self.starts[group])
            yield frame

    def groups(self, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """``(row group, positions within it)`` of the ascending positions ``rows``."""
        group_of = np.searchsorted(self.starts, rows, side="right") - 1
        bounds = np.flatnonzero(np.diff(group_of)) + 1
        for part in np.split(np.arange(len(rows)), bounds):
            if len(part):
                group = int(group_of[part[0]])
                yield group, rows[part] - self.starts[group]


def read_keys(
    path: Path, columns: list[str], customer_filter: Callable[[pd.Series], np.ndarray] | None = None
) -> pd.DataFrame:
    """The ``columns`` of every row (or of the customers ``customer_filter`` keeps), with ``_row`` = the position.

    ``as_of`` is read as ``datetime64``: a Python date per row would cost ~50 bytes each.
    """
    table = pq.read_table(path, columns=columns)
    if "as_of" in table.column_names and pa.types.is_date(table.schema.field("as_of").type):
        i = table.column_names.index("as_of")
        table = table.set_column(i, "as_of", pc.cast(table.column("as_of"), pa.timestamp("ms")))
    frame = table.to_pandas()
    frame[ROW] = np.arange(len(frame), dtype=np.int64)
    if customer_filter is not None:
        frame = frame.loc[customer_filter(frame["customer_id"])].reset_index(drop=True)
    return frame


class FeatureRows:
    """Chosen rows and columns of a :class:`FeatureFile`, read only when asked: a DataFrame stand-in for estimators.

    Supports what the estimators use of a frame: ``columns``, ``len``,
    ``rows[column]`` (one column, read), ``rows[list]`` (fewer columns),
    ``rows.loc[mask]`` (fewer rows), :meth:`batches` and :meth:`head`.
    """

    def __init__(self, file: FeatureFile, rows: np.ndarray, columns: Sequence[str]) -> None:
        self.file = file
        self.rows = np.asarray(rows, dtype=np.int64)
        self.columns = list(columns)
        if len(self.rows) > 1 and not bool(np.all(self.rows[1:] > self.rows[:-1])):
            raise ValueError("FeatureRows: row positions must be unique and ascending")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def index(self) -> pd.Index:
        return pd.Index(self.rows)

    def __getitem__(self, key: str | list[str]) -> Any:
        if isinstance(key, str):
            parts = [f[key] for f in self.file.read(self.rows, [key])]
            return pd.concat(parts) if parts else pd.Series(dtype="float64", name=key)
        return FeatureRows(self.file, self.rows, key)

    @property
    def loc(self) -> _Rows:
        return _Rows(self)

    def batches(self) -> Iterator[pd.DataFrame]:
        """The rows as frames of one row group each (empty: nothing)."""
        yield from self.file.read(self.rows, self.columns)

    def head(self, n: int) -> pd.DataFrame:
        return FeatureRows(self.file, self.rows[:n], self.columns).to_frame()

    def to_frame(self) -> pd.DataFrame:
        """The rows in memory (for small selections: a sample, an example)."""
        parts = list(self.batches())
        if not parts:
            return pd.DataFrame(columns=self.columns)
        return pd.concat(parts)


class _Rows:
    def __init__(self, rows: FeatureRows) -> None:
        self.of = rows

    def __getitem__(self, mask: Any) -> FeatureRows:
        mask = np.asarray(mask, dtype=bool)
        return FeatureRows(self.of.file, self.of.rows[mask], self.of.columns)


def per_batch(X: pd.DataFrame | FeatureRows, fn: Callable[[pd.DataFrame], np.ndarray]) -> np.ndarray:
    """``fn(X)``, batch by batch when ``X`` is a :class:`FeatureRows` (the results stacked in row order)."""
    if isinstance(X, pd.DataFrame):
        return fn(X)
    parts = [fn(batch) for batch in X.batches()]
    if parts:
        return np.concatenate(parts)
    return fn(pd.DataFrame({c: pd.Series(dtype="float64") for c in X.columns}))


class MatrixSequence(lgb.Sequence):
    """The rows of a :class:`FeatureRows` as the float64 matrix ``to_matrix`` makes of each batch, for LightGBM.

    LightGBM reads a sample of rows one by one (ascending) to find its bins,
    then pushes the rows in slices of :attr:`batch_size`: one row group is
    kept converted at a time, so the file is read twice and memory holds one
    row group.
    """

    batch_size = SEQUENCE_BATCH_ROWS

    def __init__(self, rows: FeatureRows, to_matrix: Callable[[pd.DataFrame], np.ndarray]) -> None:
        self.rows = rows
        self.to_matrix = to_matrix
        self.chunks = [local for _, local in rows.file.groups(rows.rows)]
        self.starts = np.concatenate([[0], np.cumsum([len(c) for c in self.chunks])]).astype(np.int64)
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _chunk(self, i: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != i:
            rows = self.rows.rows[self.starts[i] : self.starts[i + 1]]
            frame = next(self.rows.file.read(rows, self.rows.columns))
            self._cached = (i, np.ascontiguousarray(self.to_matrix(frame), dtype=np.float64))
        return self._cached[1]

    def __getitem__(self, idx: int | slice) -> np.ndarray:
        if isinstance(idx, slice):
            start, stop, _ = idx.indices(len(self))
            parts, at = [], start
            while at < stop:
                i = bisect.bisect_right(self.starts, at) - 1
                end = min(stop, int(self.starts[i + 1]))
                parts.append(self._chunk(i)[at - self.starts[i] : end - self.starts[i]])
                at = end
            return np.concatenate(parts) if len(parts) != 1 else parts[0]
        i = bisect.bisect_right(self.starts, idx) - 1
        return self._chunk(i)[idx - self.starts[i]]
