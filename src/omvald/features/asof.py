"""As-of dates and the population spine: which customers are scored at which date.

Definitions (docs: DATA_CONTRACT "Definitions the pipeline implements"):

- as-of dates are month ends, from ``as_of_first`` to the scoring date
  (``as_of_last`` if set, else ``data_end``, which need not be a month end);
- population at ``t``: contractual -- ``signup_date <= t`` and (``churn_date``
  empty or ``> t``); non-contractual -- at least one invoice in
  ``(t - lookback_days, t]``.

Every feature family runs SQL on an in-memory DuckDB connection made by
:func:`connect`, over the frames of one bucket of customers.
"""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from omvald.config import FeatureConfig
from omvald.features.spec import BucketTables

# One thread: a parallel sum adds in a different order on every run, so features
# changed in their last bits between two runs on the same data (2,912 cells of the
# default 20k training table with 2 threads; none with 1). Parallelism comes from
# bucket workers instead; a second DuckDB thread saved nothing measurable (200k
# customers, 8 buckets, one worker: 71-78 s with 2 threads, 75-82 s with 1).
DUCKDB_THREADS = 1
# columns that hold calendar days in the interim tables and the spine
DATE_COLUMNS = frozenset({"as_of", "signup_date", "churn_date", "invoice_date", "due_date", "paid_date", "date"})


def month_end(day: dt.date) -> dt.date:
    """Last day of the month of ``day``."""
    first_next = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first_next - dt.timedelta(days=1)


def month_ends_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """All month ends ``m`` with ``first <= m <= last``."""
    out: list[dt.date] = []
    day = month_end(first)
    while day <= last:
        out.append(day)
        day = month_end(day + dt.timedelta(days=1))
    return out


def scoring_date(cfg: FeatureConfig, data_end: dt.date) -> dt.date:
    """The as-of date of the scoring table: ``as_of_last`` if set, else the end of data."""
    return cfg.as_of_last or data_end


def as_of_dates(cfg: FeatureConfig, data_start: dt.date, data_end: dt.date) -> list[dt.date]:
    """Monthly as-of dates from ``as_of_first`` to the scoring date, oldest first.

    ``as_of_first`` defaults to the first month end with a full lookback
    (``>= data_start + lookback_days``), or, when that leaves nothing before
    the scoring date, the first month end after ``data_start``. The scoring
    date itself (``as_of_last`` or ``data_end``) is always the last date even
    when it is not a month end, so the scoring table describes "today".
    """
    last = scoring_date(cfg, data_end)
    first = cfg.as_of_first
    if first is None:
        first = month_end(data_start + dt.timedelta(days=cfg.lookback_days - 1))
        if first > last:
            first = month_end(data_start)
    if first > last:
        return [last]
    return sorted({first, last, *month_ends_between(first, last)})


def labelled_dates(dates: list[dt.date], horizon_days: int, data_end: dt.date) -> list[dt.date]:
    """As-of dates whose whole horizon ``(t, t+H]`` lies inside the data."""
    return [t for t in dates if t + dt.timedelta(days=horizon_days) <= data_end]


def connect(tables: BucketTables | None = None, spine: pd.DataFrame | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB connection with the bucket's frames registered; close it when done.

    Views: ``customers``, ``billing``, ``touchpoints`` and ``spine`` (temporary,
    private to this connection). ``spine`` has an extra column ``spine_row``,
    the row's position in ``spine``: families ``ORDER BY spine_row`` so their
    output lines up with the spine without a join. The frames are scanned in
    place, never modified.
    """
    con = _database().cursor()
    if tables is not None:
        register_dated(con, "customers", tables.customers)
        register_dated(con, "billing", tables.billing)
        register_dated(con, "touchpoints", tables.touchpoints)
    if spine is not None:
        keyed = pd.DataFrame({"customer_id": spine["customer_id"].to_numpy(), "as_of": spine["as_of"].to_numpy()})
        keyed["spine_row"] = np.arange(len(spine), dtype=np.int64)
        register_dated(con, "spine", keyed)
    return con


def fetch_frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """The rows of query ``sql`` as ``con.execute(sql, params).df()`` gives them, column for column, but faster.

    ``.df()`` makes a Python string of every text value and pandas then
    packs them back into Arrow: most of the time of reading a bucket
    (10 of 13 CPU seconds for a 25k-customer bucket). Here text, floats and
    plain timestamps go through Arrow as they are; every other column
    (dates, integers and booleans that may hold nulls, decimals, ...) still
    goes through DuckDB's own conversion, so dtypes and values are the same.
    """
    table = con.sql(sql, params=params).to_arrow_table()
    if len(set(table.column_names)) != table.num_columns:  # repeated names do not fit a dict
        return duckdb.from_arrow(table).df()
    fast = [i for i in range(table.num_columns) if _same_through_arrow(table.column(i))]
    if len(fast) == table.num_columns:
        return table.to_pandas(use_threads=False)
    names = table.column_names
    parts = {names[i]: table.column(i).to_pandas() for i in fast}
    rest = [i for i in range(table.num_columns) if i not in set(fast)]
    converted = duckdb.from_arrow(table.select(rest)).df() if rest else None
    return pd.DataFrame({name: parts[name] if name in parts else converted[name] for name in names}, copy=False)


def with_spine_ids(frame: pd.DataFrame, spine: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per spine row, in spine order) with the spine's ``customer_id`` inserted first.

    The SQL families leave the id out of their result: DuckDB would build
    every id string again as Arrow text, only to repeat the spine's column
    (a quarter of the billing query's CPU, a third of the label query's, at
    200k customers).
    """
    frame.insert(0, "customer_id", spine["customer_id"].array)
    return frame


def _same_through_arrow(column: pa.ChunkedArray) -> bool:
    """Whether Arrow's ``to_pandas`` gives what DuckDB's ``.df()`` gives for this column."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return kind.unit == "us" and kind.tz is None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.null_count < len(column)  # .df() gives text that is all null as object
    return pa.types.is_float64(kind)


def register_dated(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Register ``frame`` as view ``name`` with its date columns typed DATE.

    pandas holds dates as ``datetime.date`` objects or ``datetime64``; DuckDB
    would read the latter as TIMESTAMP, and ``date - date`` must give days.
    """
    con.register(f"_frame_{name}", frame)
    dated = [c for c in frame.columns if c in DATE_COLUMNS]
    replace = ", ".join(f'CAST("{c}" AS DATE) AS "{c}"' for c in dated)
    select = f"* REPLACE ({replace})" if replace else "*"
    con.execute(f'CREATE TEMP VIEW "{name}" AS SELECT {select} FROM "_frame_{name}"')


_DATABASE: tuple[int, duckdb.DuckDBPyConnection] | None = None


def fresh_database() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB instance, single-threaded (see ``DUCKDB_THREADS``); close it when done."""
    con = duckdb.connect()
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    con.execute("SET enable_progress_bar = false")
    return con


def release_database() -> None:
    """Close this process's DuckDB instance, handing its memory back (a new one opens on next use)."""
    global _DATABASE
    if _DATABASE is not None and _DATABASE[0] == os.getpid():
        _DATABASE[1].close()
    _DATABASE = None


def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB instance per process; each :func:`connect` is a cursor on it.

    Opening an instance costs ~60 ms, a cursor microseconds; a bucket runs a
    handful of queries. Recreated after a fork (Spark / multiprocessing workers).
    """
    global _DATABASE
    if _DATABASE is None or _DATABASE[0] != os.getpid():
        _DATABASE = (os.getpid(), fresh_database())
    return _DATABASE[1]


def population_sql(contractual: bool, churn_dates: bool = False) -> str:
    """SQL selecting ``(customer_id, as_of)`` of the population from views ``customers``/``billing``/``dates``.

    Parameter ``$lookback`` (days) is used by the non-contractual rule.
    ``churn_dates``: the customers table has ``churn_date`` although the
    business is scored without contracts (a model trained so scores an
    export that has it): a customer who churned on or before ``t`` is
    still left out, as in the contractual rule.
    """
    if contractual:
        return """
            SELECT c.customer_id, d.as_of
            FROM customers c JOIN dates d
              ON c.signup_date <= d.as_of AND (c.churn_date IS NULL OR c.churn_date > d.as_of)
        """
    # window is (t - lookback, t]: an invoice dated t is known at t
    active = """
        SELECT DISTINCT b.customer_id, d.as_of
        FROM billing b JOIN dates d
          ON b.invoice_date > d.as_of - CAST($lookback AS INTEGER) AND b.invoice_date <= d.as_of
    """
    if not churn_dates:
        return active
    return f"""
        SELECT a.customer_id, a.as_of
        FROM ({active}) a JOIN customers c ON c.customer_id = a.customer_id
        WHERE c.churn_date IS NULL OR c.churn_date > a.as_of
    """


def population_spine(tables: BucketTables, dates: list[dt.date], cfg: FeatureConfig, contractual: bool) -> pd.DataFrame:
    """Customers in the population at each as-of date: DataFrame(customer_id, as_of), sorted.

    ``as_of`` holds ``datetime.date`` values, like the ``dates`` given.
    """
    con = connect(tables)
    con.register("dates", pd.DataFrame({"as_of": pd.Series(dates, dtype=object)}))
    params = {} if contractual else {"lookback": cfg.lookback_days}
    sql = population_sql(contractual, "churn_date" in tables.customers.columns)
    spine = fetch_frame(con, f"SELECT customer_id, as_of FROM ({sql}) ORDER BY as_of, customer_id", params or None)
    con.close()
    spine["as_of"] = to_date_objects(spine["as_of"])
    return spine


def to_date_objects(values: pd.Series) -> pd.Series:
    """A date-like Series as ``datetime.date`` objects (what ``pd.read_parquet`` gives for date32)."""
    if values.dtype == object:
        return values
    as_dt = pd.to_datetime(values)
    uniques, codes = np.unique(as_dt.to_numpy(dtype="datetime64[D]"), return_inverse=True)
    lookup = np.array([dt.date.fromisoformat(str(u)) for u in uniques], dtype=object)
    return pd.Series(lookup[codes] if len(values) else [], index=values.index, dtype=object, name=values.name)
