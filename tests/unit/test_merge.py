"""Merging bucket parts: the k-way merge gives exactly the sorted concatenation, in small chunks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from omvald.features import merge

DAYS = [dt.date(2024, 1, 31), dt.date(2024, 2, 29)]


def part(rng: np.random.Generator, ids: np.ndarray, shuffled: bool = False) -> pa.Table:
    mine = np.sort(rng.choice(ids, 30, replace=False))
    rows = [(c, day) for day in DAYS for c in mine]
    churn = [None if rng.random() < 0.3 else int(rng.integers(0, 2)) for _ in rows]
    table = pa.table(
        {
            "customer_id": [c for c, _ in rows],
            "as_of": pa.array([d for _, d in rows], pa.date32()),
            "x": rng.random(len(rows)),
            "churn": pa.array(churn, pa.int8()),
        }
    )
    return table.take(pa.array(rng.permutation(len(table)))) if shuffled else table


@pytest.mark.parametrize("labelled_only", [True, False])
def test_merged_parts_equal_the_sorted_concatenation_whatever_the_chunk_and_batch_sizes(
    tmp_path, monkeypatch, labelled_only
):
    # Tiny chunks and batches so that every chunk takes rows from several parts
    # and every part is read over several batches.
    monkeypatch.setattr(merge, "CHUNK_ROWS", 7)
    monkeypatch.setattr(merge, "BATCH_ROWS", 3)
    monkeypatch.setattr(merge, "PART_ROW_GROUP_ROWS", 4)
    rng = np.random.default_rng(0)
    ids = np.array([f"c{i:04d}" for i in range(200)])
    # customers are in one bucket each, so parts never share an id
    pools = np.array_split(rng.permutation(ids), 5)
    # part 3 is not sorted (as an engine that loses the order might write it)
    tables = [part(rng, pool, shuffled=(i == 3)) for i, pool in enumerate(pools)]
    for i, table in enumerate(tables):
        merge.write_part(table, tmp_path / f"bucket-{i:04d}.parquet")
    files = sorted(tmp_path.glob("bucket-*.parquet"))

    n = merge.merge_parts(files, tmp_path / "out.parquet", tables[0].schema, DAYS, labelled_only=labelled_only)

    expected = pa.concat_tables(tables)
    if labelled_only:
        expected = expected.filter(pc.is_valid(expected["churn"]))
    expected = expected.sort_by([("as_of", "ascending"), ("customer_id", "ascending")])
    out = pq.read_table(tmp_path / "out.parquet")
    assert n == out.num_rows == expected.num_rows > 100
    assert out.equals(expected)


def test_a_date_without_rows_writes_nothing_for_it(tmp_path):
    rng = np.random.default_rng(1)
    table = part(rng, np.array([f"c{i}" for i in range(40)]))
    merge.write_part(table, tmp_path / "bucket-0000.parquet")
    n = merge.merge_parts(
        [tmp_path / "bucket-0000.parquet"], tmp_path / "out.parquet", table.schema, [dt.date(2023, 1, 31)], False
    )
    assert n == 0 and pq.read_table(tmp_path / "out.parquet").num_rows == 0
