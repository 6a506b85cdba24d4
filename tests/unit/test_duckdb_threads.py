"""Feature SQL runs on one DuckDB thread: with more, parallel sums add in a run-dependent order.

Measured before this rule: two builds of the default 20k business with 2
threads differed in the last bits of 2,912 cells (amount and usage means
and trends); with 1 thread, none. DuckDB splits work by row groups of
~122k rows, so the small tables of unit tests never show it; the setting
itself is what these tests pin.
"""

from __future__ import annotations

import pytest

from omvald.features import asof


def _threads(con) -> int:
    return int(con.execute("SELECT current_setting('threads')").fetchone()[0])


def test_bucket_connections_run_one_thread():
    con = asof.connect()
    try:
        assert _threads(con) == 1
    finally:
        con.close()


def test_fresh_databases_run_one_thread():
    with asof.fresh_database() as con:
        assert _threads(con) == 1


@pytest.mark.slow  # 2M rows, 4 times
def test_a_grouped_sum_over_many_row_groups_repeats_bit_for_bit():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    values = pd.DataFrame({"g": rng.integers(0, 3, 2_000_000), "x": rng.random(2_000_000) * 1e3})
    runs = set()
    for _ in range(4):
        with asof.fresh_database() as con:
            con.register("v", values)
            runs.add(tuple(r[0] for r in con.execute("SELECT sum(x) FROM v GROUP BY g ORDER BY g").fetchall()))
    assert len(runs) == 1
