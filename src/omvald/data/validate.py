"""Raw contract tables -> validated interim tables (pure: DataFrames in, DataFrames out).

:func:`validate_tables` is what ``omvald validate`` and scoring both call. It
raises :class:`~omvald.errors.DataContractError` on the first violation of
the contract (naming table, column and example rows with their file line)
and returns warnings for data that is legal but suspicious. All checks are
vectorised: a 40M-row billing table costs seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omvald.buckets import N_SLOTS, hash_slot
from omvald.config import Config, DataConfig
from omvald.data import contract as C
from omvald.data.dates import exclude_outside_bulk
from omvald.data.personal import PATTERN_SHARE, SAMPLE_ROWS, looks_like_national_id, personal_columns
from omvald.data.profile import Profile
from omvald.data.read import empty_table, is_csv, is_personal
from omvald.errors import DataContractError
from omvald.io import atomic_path, check_outputs, write_json

log = logging.getLogger(__name__)

MIN_CHURNERS = 50  # fewer churners than this: a churn model has little to learn from
LAPSED_DAYS = 90  # non-contractual: no invoice in the last 90 days counts as churned for the warning
MISSING_MONTH_SHARE = 0.5  # a month with < 50% of the median monthly invoice count looks incomplete


def validate_tables(
    raw: dict[str, pd.DataFrame | None],
    cfg: DataConfig,
    as_of: dt.date | None = None,
    paths: dict[str, str | None] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], list[str]]:
    """Check the raw tables against the contract and return ``(tables, meta, warnings)``.

    ``raw`` maps ``customers``/``billing``/``touchpoints`` to frames as read
    (text or typed columns; ``None`` = file absent). ``as_of`` (scoring): any
    event date after it is an error. ``paths`` only names files in messages.
    ``tables`` follow docs/architecture.md "Interim tables"; ``meta`` is the
    content of ``meta.json``.
    """
    if raw.get("customers") is None:
        raise DataContractError("customers", None, "no customers file (customers.csv or customers.parquet)")
    raw, personal, personal_warnings = drop_personal_columns(raw)
    out, dropped, extra_dropped, warnings = validate_rows(raw, cfg, as_of, paths)
    # A date the user gives (data.data_end, --as-of) fixes the end; otherwise the bulk of the data does.
    cut_end = as_of is None and cfg.data_end is None
    out, excluded, date_warnings = exclude_outside_bulk(out, cut_end, (paths or {}).get("customers"))
    for message in date_warnings:
        log.warning(message)
    meta = data_meta(out, cfg, as_of, dropped, extra_dropped)
    meta["personal_data_dropped"] = personal
    meta["dates_excluded"] = excluded
    warnings = personal_warnings + warnings + date_warnings + _data_warnings(out, meta)
    return out, meta, warnings


def drop_personal_columns(
    raw: dict[str, pd.DataFrame | None],
) -> tuple[dict[str, pd.DataFrame | None], dict[str, dict[str, str]], list[str]]:
    """Drop customer attributes that hold personal data by content (:mod:`omvald.data.personal`).

    Returns ``(raw, {"customers": {column: reason}}, warnings)``; the
    warnings name columns and reasons, never values. Customer ids that look
    like national identity numbers are kept (they key every output) with a warning.
    """
    customers = raw.get("customers")
    if customers is None:
        return raw, {}, []
    contract = {*C.REQUIRED["customers"], *C.OPTIONAL["customers"]}
    found = personal_columns(customers, contract)
    warnings = [
        f"customers: column '{column}' dropped as personal data ({reason}); list it in data.personal_columns "
        "to skip it on read"
        for column, reason in found.items()
    ]
    if "customer_id" in customers:
        ids = customers["customer_id"].dropna().astype("str")
        share = float(looks_like_national_id(ids.iloc[:: max(1, len(ids) // SAMPLE_ROWS)]).mean()) if len(ids) else 0
        if share >= PATTERN_SHARE:
            warnings.append(
                f"customers: {share:.0%} of the customer_id values look like national identity numbers; they are "
                "kept because they key every output (features, scores), so use a pseudonymous customer key instead"
            )
    for message in warnings:
        log.warning(message)
    if not found:
        return raw, {}, warnings
    return {**raw, "customers": customers.drop(columns=list(found))}, {"customers": found}, warnings


def validate_rows(
    raw: dict[str, pd.DataFrame | None],
    cfg: DataConfig,
    as_of: dt.date | None = None,
    paths: dict[str, str | None] | None = None,
    *,
    whole: bool = True,
    no_customers: bool = False,
) -> tuple[dict[str, pd.DataFrame], dict[str, int], dict[str, list[str]], list[str]]:
    """The checks of :func:`validate_tables` that look at rows: ``(tables, duplicates dropped, columns dropped,
    warnings)``.

    Every check looks at one customer's rows at a time, so it can run on one
    bucket of customers (``whole=False``: a bucket may then have no customers,
    its raw rows are indexed by their row number in the file, and nothing is
    logged, as the caller speaks for the whole table). ``no_customers``: the
    whole customers table has no rows, so every bucket reports it where the
    whole table would. The checks run in a fixed order and a failure carries
    ``step`` (its number in that order) and ``sorted_rows`` (examples in
    slot order, not file order): see :class:`_Steps`.
    """
    paths = paths or {}
    steps = _Steps()
    frames: dict[str, pd.DataFrame] = {}
    absent = absent_tables(raw)
    for table in C.TABLES:
        df = raw.get(table)
        if table in absent:
            df = empty_table(table)
        personal = [c for c in df.columns if is_personal(str(c), cfg.personal_columns)]
        if personal and whole:
            log.info("%s: dropped personal column(s) %s", table, ", ".join(personal))
        # a bucket's rows keep their labels: the row numbers in the file that examples show
        frames[table] = df.drop(columns=personal).reset_index(drop=True) if whole else df.drop(columns=personal)

    clean, dropped, extra_dropped = {}, {}, {}
    for table in C.TABLES:
        df, path = frames[table], paths.get(table)
        with steps.check():
            C.check_schema(C.raw_schema(table), df, table, path, _describer(df, path))
        extra = [c for c in df.columns if C.column_kind(table, c) is None]
        if extra and not C.EXTRA_COLUMNS_ALLOWED[table]:
            extra_dropped[table] = [str(c) for c in extra]
        clean[table] = _parse(table, df, path, steps)
        clean[table], dropped[table] = _drop_exact_duplicates(clean[table])

    customers = clean["customers"]
    with steps.check():
        if customers.empty and (whole or no_customers):
            raise DataContractError("customers", None, "the table has no rows", path=paths.get("customers"))
    for column in customers.columns:
        if isinstance(customers[column].dtype, pd.CategoricalDtype) or customers[column].dtype == object:
            customers[column] = C.to_str(customers[column])
    with steps.check():
        C.check_schema(C.clean_schema("customers", list(customers.columns)), customers, "customers",
                       paths.get("customers"), _describer(frames["customers"], paths.get("customers")))  # fmt: skip
    customers["hash_slot"] = hash_slot(customers["customer_id"])
    customers = customers.sort_values(["hash_slot", "customer_id"], kind="stable")
    ids = pd.Index(customers["customer_id"])

    out = {"customers": customers}
    for table in ("billing", "touchpoints"):
        # pop: the unsorted table is freed as soon as its sorted copy exists (memory peak)
        with steps.check():
            out[table] = _attach_customers(table, clean.pop(table), customers, ids, frames[table], paths.get(table))
    if as_of is not None:
        for table in C.TABLES:
            _check_not_after(table, out[table], as_of, frames[table], paths.get(table), steps)
    for table in C.TABLES:
        df = out[table]
        for column in df.columns:
            if isinstance(df[column].dtype, pd.CategoricalDtype):
                df[column] = C.to_str(df[column])
        df["hash_slot"] = df["hash_slot"].astype(np.int16)
        df = df[C.clean_columns(table, list(df.columns))]
        if table != "customers":
            # the rows are in slot order here, so are pandera's examples
            with steps.check(sorted_rows=True):
                C.check_schema(C.clean_schema(table, list(df.columns)), df, table, paths.get(table),
                               _describer(frames[table], paths.get(table)))  # fmt: skip
        out[table] = df.reset_index(drop=True)
    warnings = row_warnings(absent, extra_dropped, dropped)
    for message in warnings if whole else ():
        log.warning(message)
    return out, dropped, extra_dropped, warnings


def absent_tables(raw: dict[str, pd.DataFrame | None]) -> dict[str, str]:
    """Tables read as empty: ``{table: "file"}`` without a file, ``{table: "columns"}`` for a file without columns."""
    return {
        table: "file" if df is None else "columns"
        for table in C.TABLES
        if (df := raw.get(table)) is None or (df.shape[1] == 0 and table != "customers")
    }


def row_warnings(absent: dict[str, str], extra_dropped: dict[str, list[str]], dropped: dict[str, int]) -> list[str]:
    """The warnings of :func:`validate_rows`: absent tables, columns not in the contract, duplicates dropped.

    From counts, so the Spark engine gives the same text from its buckets' sums.
    """
    messages = [f"{table}: no {what}; treated as an empty table" for table, what in absent.items()]
    for table in C.TABLES:
        if extra_dropped.get(table):
            messages.append(f"{table}: column(s) not in the contract dropped: {', '.join(extra_dropped[table])}")
        if dropped.get(table):
            messages.append(f"{table}: {dropped[table]} exact duplicate row(s) dropped")
    return messages


class _Steps:
    """Numbers the checks of one validation in the order they run.

    The columns alone decide which checks run, so every bucket of customers
    runs the same numbered checks. A failure is tagged with its number
    (``err.step``): of two buckets' failures, the one with the lower number
    is the one the whole table reports first, which is how the Spark engine
    merges the buckets' errors into the local engine's message.
    """

    def __init__(self) -> None:
        self.n = 0

    @contextmanager
    def check(self, *, sorted_rows: bool = False) -> Iterator[None]:
        self.n += 1
        try:
            yield
        except DataContractError as err:
            err.step, err.sorted_rows = self.n, sorted_rows  # type: ignore[attr-defined]
            raise


def example_label(example: str) -> int:
    """The index label of an example row rendered by :func:`_describer` (``line 7: ...`` -> 5)."""
    where, number = example.split(":", 1)[0].split()
    return int(number) - (2 if where == "line" else 1)


def _describer(raw: pd.DataFrame, path: str | None):
    """Render rows of the raw table by index label: ``line 7: invoice_date='31/03/2024', ...``."""

    def describe(labels: list, columns: list[str]) -> list[str]:
        rows = []
        for label in list(labels)[:5]:
            where = f"line {int(label) + 2}" if is_csv(path) else f"row {int(label) + 1}"
            cells = ", ".join(f"{c}={_fmt(raw.at[label, c])}" for c in columns if c in raw.columns)
            rows.append(f"{where}: {cells}")
        return rows

    return describe


def _fmt(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "<empty>"
    return repr(value) if isinstance(value, str) else str(value)


def _fail(table, column, problem, mask: pd.Series, raw, path, show: list[str]) -> None:
    labels = mask.index[mask.to_numpy()]
    columns = list(dict.fromkeys(["customer_id", *show]))
    raise DataContractError(
        table, column, f"{problem} ({len(labels)} row(s))", _describer(raw, path)(labels, columns), path
    )


def _parse(table: str, raw: pd.DataFrame, path: str | None, steps: _Steps) -> pd.DataFrame:
    """Read every column by its contract kind; unreadable values and empty required cells are errors."""
    out = {}
    for column in raw.columns:
        with steps.check():
            parsed = _parse_column(table, column, raw, path)
        if parsed is not None:
            out[column] = parsed
    df = pd.DataFrame(out, index=raw.index)
    for column in C.REQUIRED[table]:
        with steps.check():
            empty = df[column].isna()
            if empty.any():
                _fail(table, column, "empty values in a required column", empty, raw, path, [column])
    if table == "touchpoints":
        df["date"] = df["timestamp"].dt.floor("D")
    return df


def _parse_column(table: str, column: str, raw: pd.DataFrame, path: str | None) -> pd.Series | None:
    """One raw column read by its contract kind (``None``: an extra column the table does not keep)."""
    kind, s = C.column_kind(table, column), raw[column]
    if kind == "id":
        return C.parse_id(s)
    if kind in ("string", "lower"):
        return C.parse_text(s, lower=kind == "lower")
    if kind is None:
        return C.parse_static(s)[0] if C.EXTRA_COLUMNS_ALLOWED[table] else None
    if kind in ("date", "timestamp"):
        parsed, bad = C.parse_datetime(s, date_only=kind == "date")
        what = "a date (YYYY-MM-DD)" if kind == "date" else "a date or date-time (ISO 8601)"
    elif kind == "number":
        parsed, bad = C.parse_number(s)
        what = "a number (decimal point, no thousands separator)"
    else:  # bool
        parsed, bad = C.parse_bool(s)
        what = "true/false (also 1/0, yes/no)"
    if bad.any():
        _fail(table, column, f"values that cannot be read as {what}", bad, raw, path, [column])
    return parsed


def _drop_exact_duplicates(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop rows identical in every column (keeping the first); hash first so 40M rows stay cheap."""
    if len(df) < 2:
        return df, 0
    hashes = pd.util.hash_pandas_object(df, index=False).to_numpy()
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated) == 0:
        return df, 0
    # pandas' isin hashes the few repeated values; np.isin would sort all rows again
    # (10x slower on 30M rows).
    candidates = np.flatnonzero(pd.Series(hashes).isin(repeated).to_numpy())
    duplicate = np.zeros(len(df), dtype=bool)
    duplicate[candidates] = df.iloc[candidates].duplicated(keep="first").to_numpy()
    if not duplicate.any():
        return df, 0
    return df.iloc[np.flatnonzero(~duplicate)], int(duplicate.sum())


def _attach_customers(table, df, customers, ids: pd.Index, raw, path) -> pd.DataFrame:
    """Check every row's customer exists; add ``hash_slot`` and sort by slot, customer, date."""
    codes, values = C.codes_and_values(df["customer_id"])
    position = np.append(ids.get_indexer(pd.Index(values, dtype="str")), -1)[codes]
    unknown = position < 0
    if unknown.any():
        n_ids = pd.unique(codes[unknown]).size
        _fail(table, "customer_id", f"customer ids not in the customers table ({n_ids} distinct id(s))",
              pd.Series(unknown, index=df.index), raw, path, [C.ROW_DATE[table] or ""])  # fmt: skip
    day = df[C.ROW_DATE[table]].to_numpy().astype("datetime64[D]").astype(np.int64)
    order = _sort_order(position, day)
    df = df.take(order)
    position = position[order]
    df["customer_id"] = pd.Series(customers["customer_id"].array.take(position), index=df.index)
    df["hash_slot"] = customers["hash_slot"].to_numpy()[position]
    return df


def _sort_order(rank: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Stable order by (rank, day). Packs both and the row number into one uint64 when they fit:
    ``np.sort`` on integers is several times faster than ``argsort``/``lexsort`` on 40M rows."""
    n = len(rank)
    if n == 0:
        return np.arange(0)
    day = day - day.min()
    idx_bits, day_bits, rank_bits = (max(1, int(v).bit_length()) for v in (n - 1, day.max(), rank.max()))
    if idx_bits + day_bits + rank_bits > 64:
        return np.lexsort((day, rank))
    key = (rank.astype(np.uint64) << np.uint64(day_bits + idx_bits)) | (day.astype(np.uint64) << np.uint64(idx_bits))
    key |= np.arange(n, dtype=np.uint64)
    return (np.sort(key) & np.uint64((1 << idx_bits) - 1)).astype(np.int64)


def _check_not_after(table, df, as_of: dt.date, raw, path, steps: _Steps) -> None:
    limit = pd.Timestamp(as_of) + pd.Timedelta(days=1)  # a timestamp during the as-of day is known at t
    for column in C.AS_OF_BOUNDED[table]:
        if column in df.columns:
            with steps.check():
                future = df[column] >= limit
                if future.any():
                    _fail(table, column, f"dates in the future of the as-of date {as_of.isoformat()}",
                          future.sort_index(), raw, path, [column])  # fmt: skip


def _event_dates(tables: dict[str, pd.DataFrame]) -> list[pd.Series]:
    return [tables[t][c] for t in C.TABLES for c in C.AS_OF_BOUNDED[t] if c in tables[t] and len(tables[t])]


def data_meta(tables, cfg: DataConfig, as_of, dropped, extra_dropped) -> dict[str, Any]:
    """The content of ``meta.json`` for validated ``tables`` (only their date columns and length are read)."""
    dates = [s for s in _event_dates(tables) if s.notna().any()]
    # The data starts with the first recorded activity (invoice or touchpoint):
    # signups reach back years before an export's first row, and as-of dates
    # before the first invoice would see no history at all.
    activity = [
        tables[t][c] for t, c in (("billing", "invoice_date"), ("touchpoints", "date"))
        if c in tables[t] and tables[t][c].notna().any()
    ]  # fmt: skip
    start = min(s.min() for s in (activity or dates)).date()
    latest = max(s.max() for s in dates).date()
    data_end = as_of or cfg.data_end or latest
    return {
        "data_start": start.isoformat(),
        "data_end": data_end.isoformat(),
        "latest_date": latest.isoformat(),
        "as_of": as_of.isoformat() if as_of else None,
        "contractual": "churn_date" in tables["customers"].columns,
        "columns": {t: list(df.columns) for t, df in tables.items()},
        "n_slots": N_SLOTS,
        "rows": {t: len(df) for t, df in tables.items()},
        "duplicates_dropped": dropped,
        "columns_dropped": extra_dropped,
    }


def _data_warnings(tables: dict[str, pd.DataFrame], meta: dict[str, Any]) -> list[str]:
    warnings = data_warnings(warning_facts(tables), meta)
    for message in warnings:
        log.warning(message)
    return warnings


def warning_facts(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The counts :func:`data_warnings` needs; the facts of two sets of customers add up (:func:`add_warning_facts`)."""
    customers, billing = tables["customers"], tables["billing"]
    last = billing.groupby("customer_id", sort=False)["invoice_date"].max()
    months = pd.Series(billing["invoice_date"].to_numpy().astype("datetime64[M]"))
    return {
        "customers": len(customers),
        "churn_dates": int(customers["churn_date"].notna().sum()) if "churn_date" in customers else 0,
        "last_invoice_days": {f"{d:%Y-%m-%d}": int(n) for d, n in last.value_counts().items()},
        "invoice_months": {f"{m:%Y-%m}": int(n) for m, n in months.value_counts().items()},
        "touchpoints": len(tables["touchpoints"]),
    }


def add_warning_facts(facts: list[dict[str, Any]]) -> dict[str, Any]:
    """The :func:`warning_facts` of the union of disjoint sets of customers (e.g. buckets)."""
    total: dict[str, Any] = {"customers": 0, "churn_dates": 0, "touchpoints": 0}
    total |= {"last_invoice_days": {}, "invoice_months": {}}
    for f in facts:
        for key in ("customers", "churn_dates", "touchpoints"):
            total[key] += f[key]
        for key in ("last_invoice_days", "invoice_months"):
            for k, n in f[key].items():
                total[key][k] = total[key].get(k, 0) + n
    return total


def data_warnings(facts: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """Legal but suspicious data: few churners, thin billing months, no touchpoints."""
    warnings: list[str] = []
    data_end = pd.Timestamp(meta["data_end"])
    if meta["contractual"]:
        churners = facts["churn_dates"]
    else:
        lapsed_before = data_end - pd.Timedelta(days=LAPSED_DAYS)
        churners = sum(n for day, n in facts["last_invoice_days"].items() if pd.Timestamp(day) < lapsed_before)
    n_customers = facts["customers"]
    if churners < MIN_CHURNERS or churners < 0.01 * n_customers:
        warnings.append(f"few churners: {churners} of {n_customers} customers; labels will be noisy")
    if facts["invoice_months"]:
        counts = pd.Series(facts["invoice_months"]).rename(index=lambda m: pd.Timestamp(f"{m}-01")).sort_index()
        full = pd.period_range(counts.index.min(), counts.index.max(), freq="M").to_timestamp()
        counts = counts.reindex(full, fill_value=0)
        if not data_end.is_month_end:
            counts = counts[counts.index < data_end.to_period("M").to_timestamp()]
        low = counts[counts < MISSING_MONTH_SHARE * counts.median()]
        if len(low):
            shown = ", ".join(f"{m:%Y-%m} ({n})" for m, n in low.head(6).items())
            warnings.append(f"billing: {len(low)} month(s) with under half the median monthly invoice count "
                            f"({int(counts.median())}): {shown}")  # fmt: skip
    if facts["touchpoints"] == 0:
        warnings.append("touchpoints: empty; touchpoint features (engagement, complaints, NPS) will be absent")
    return warnings


# --- stage function: the only disk access of the validate stage -------------------------


def run_validate(
    cfg: Config,
    raw_dir: str | Path,
    out_dir: str | Path,
    profile_path: str | Path | None = "reports/profile.json",
    as_of: dt.date | None = None,
    n_buckets: int | None = None,
) -> Profile:
    """Read ``raw_dir``, validate, write ``out_dir`` (interim tables + meta.json) and the profile.

    Validated bucket by bucket (:mod:`omvald.data.validate_buckets`): memory
    follows a bucket of customers, not the whole input; ``n_buckets`` (default:
    from the input's size) does not change the output. Nothing is written unless every check
    passes; each output appears atomically. Outputs that would replace something omvald did not
    write, or overlap the input, are refused before any work.
    """
    from omvald.data.validate_buckets import validate_folder

    outputs = {out_dir: "dir"} | ({profile_path: "file"} if profile_path is not None else {})
    check_outputs(outputs, inputs=[raw_dir])
    days = (cfg.features.horizon_days, cfg.features.lookback_days)
    with atomic_path(out_dir, stage="validate") as tmp:
        result = validate_folder(raw_dir, cfg.data, tmp, tmp.parent / "_buckets", as_of, profile_days=days,
                                 n_buckets=n_buckets)  # fmt: skip
        shutil.rmtree(tmp.parent / "_buckets", ignore_errors=True)
    assert result.profile is not None
    if profile_path is not None:
        write_json(result.profile, profile_path)
    rows = result.meta["rows"]
    log.info("validated %s -> %s (%s)", raw_dir, out_dir, ", ".join(f"{t}: {n:,} rows" for t, n in rows.items()))
    return result.profile
