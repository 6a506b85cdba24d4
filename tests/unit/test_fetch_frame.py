"""``asof.fetch_frame`` gives exactly what DuckDB's ``.df()`` gives: same columns, dtypes and values.

Feature families and the bucket reader read query results through it; if a
dtype moved (a nullable integer becoming float, a date becoming milliseconds,
all-null text becoming ``str``), features computed from it could change.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from omvald.features.asof import fetch_frame

ROWS = """
    SELECT * FROM (VALUES
        (1::BIGINT, NULL::BIGINT, TRUE, NULL::BOOLEAN, DATE '2024-01-01', NULL::DATE,
         TIMESTAMP '2024-01-01 10:00', 'a', NULL::VARCHAR, 1.5::DOUBLE, NULL::DOUBLE, 3::INTEGER,
         2::SMALLINT, 1.25::DECIMAL(10, 2), 'nan'::DOUBLE, TIMESTAMPTZ '2024-01-01 10:00+01', 1.5::FLOAT),
        (2, 5, FALSE, TRUE, DATE '2024-01-02', DATE '2024-02-02',
         NULL, NULL, 'b', NULL, 2.0, NULL,
         3, NULL, -0.0, NULL, NULL),
        (3, NULL, TRUE, FALSE, DATE '2024-01-03', NULL,
         TIMESTAMP '2024-03-01 00:00:00.123456', 'Malmö', NULL, -1e300, 0.1, 7,
         4, 0.01, 2.0, NULL, 2.5)
    ) t(id, id_null, flag, flag_null, day, day_null, ts, text, text_null, x, x_null, n32, n16, dec, x_nan, tstz, x32)
"""


@pytest.fixture()
def con():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE rows AS {ROWS}")
    yield con
    con.close()


QUERIES = [
    ("every type", "SELECT * FROM rows", None),
    ("only text, floats and timestamps", "SELECT text, x, ts, x_nan FROM rows", None),
    ("no rows", "SELECT * FROM rows WHERE id > 10", None),
    ("text that is all null", "SELECT text_null, x FROM rows WHERE id = 1", None),
    ("text null in the rows left", "SELECT text, x FROM rows WHERE id >= $low", {"low": 2}),
    ("a name twice", "SELECT text, text, x FROM rows", None),
    ("ordered with a parameter", "SELECT day, text, id FROM rows WHERE id <= $high ORDER BY id DESC", {"high": 3}),
]


@pytest.mark.parametrize(("sql", "params"), [q[1:] for q in QUERIES], ids=[q[0] for q in QUERIES])
def test_same_frame_as_duckdb_df(con, sql, params):
    expected = con.execute(sql, params).df()
    got = fetch_frame(con, sql, params)
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_all_null_text_stays_object_as_duckdb_gives_it(con):
    got = fetch_frame(con, "SELECT text_null FROM rows WHERE id = 1")
    assert got["text_null"].dtype == object
    assert got["text_null"].isna().all()


def test_text_reaches_pandas_as_str_with_nan_for_null(con):
    got = fetch_frame(con, "SELECT text FROM rows ORDER BY id")
    assert str(got["text"].dtype) == "str"
    assert got["text"].iloc[0] == "a" and pd.isna(got["text"].iloc[1]) and got["text"].iloc[2] == "Malmö"
