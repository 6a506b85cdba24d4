"""The input data contract as code: which columns each table has, and what they must hold.

``docs/data-contract.md`` says the same in words. Every contract column has a
*kind* that decides how a raw value (a CSV string, a Parquet value) is read:

- ``id``: customer key, kept as a string exactly as written (``"007"`` stays ``"007"``);
- ``date``: ISO 8601 date, stored as a date-only ``datetime64[us]``;
- ``timestamp``: ISO 8601 date or date-time; an offset (``+02:00``, ``Z``) is
  dropped keeping the local wall time, because features count days as the
  customer lived them;
- ``number``: float64; ``bool``: true/false/1/0/yes/no, empty = False;
- ``string``: text, stripped; ``lower``: text, stripped and lower-cased
  (``Email`` and ``email`` are one channel).

The pandera schemas check the *parsed* tables (types, unique ids, allowed
values, churn not before signup); :func:`check_schema` turns pandera's
failure report into a :class:`~omvald.errors.DataContractError` that names
the table, the column and example rows. pandera is imported lazily: it takes
a second to import and most commands never validate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa_arrow
import pyarrow.compute as pc

from omvald.errors import DataContractError

if TYPE_CHECKING:
    import pandera.pandas as pa

TABLES: tuple[str, ...] = ("customers", "billing", "touchpoints")

REQUIRED: dict[str, dict[str, str]] = {
    "customers": {"customer_id": "id", "signup_date": "date"},
    "billing": {"customer_id": "id", "invoice_date": "date", "amount": "number"},
    "touchpoints": {"customer_id": "id", "timestamp": "timestamp", "channel": "lower", "event": "lower"},
}
OPTIONAL: dict[str, dict[str, str]] = {
    "customers": {"churn_date": "date", "marketing_opt_in": "bool"},
    "billing": {
        "list_price": "number",
        "due_date": "date",
        "paid_date": "date",
        "plan": "string",
        "products": "number",
        "usage": "number",
    },
    "touchpoints": {"direction": "lower", "value": "number"},
}
# Only customers may carry extra (static attribute) columns; extra columns in
# billing / touchpoints are dropped with a warning.
EXTRA_COLUMNS_ALLOWED: dict[str, bool] = {"customers": True, "billing": False, "touchpoints": False}
# The date that orders a table's rows and counts them per month.
ROW_DATE: dict[str, str | None] = {"customers": "signup_date", "billing": "invoice_date", "touchpoints": "date"}
# Columns that must not lie after the as-of date of a scoring file. due_date is
# exempt: an invoice issued on or before t is legitimately due after t.
AS_OF_BOUNDED: dict[str, tuple[str, ...]] = {
    "customers": ("signup_date", "churn_date"),
    "billing": ("invoice_date", "paid_date"),
    "touchpoints": ("timestamp",),
}
DIRECTIONS: tuple[str, ...] = ("inbound", "outbound")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t", "1.0"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f", "0.0"})
# Spellings of "no value" that exports write into otherwise typed columns.
NULL_WORDS: tuple[str, ...] = ("", "na", "n/a", "nan", "nat", "null", "none")

DATE_DTYPE = "datetime64[us]"


def required_columns(table: str) -> list[str]:
    """Columns the table must have, in contract order."""
    return list(REQUIRED[table])


def optional_columns(table: str) -> list[str]:
    """Contract columns the table may have."""
    return list(OPTIONAL[table])


def column_kind(table: str, column: str) -> str | None:
    """The kind of a contract column (``None`` for a customer static attribute)."""
    return REQUIRED[table].get(column) or OPTIONAL[table].get(column)


def clean_columns(table: str, present: list[str]) -> list[str]:
    """Column order of a validated table: contract columns, then static attributes, then ``hash_slot``."""
    contract = [c for c in [*REQUIRED[table], *OPTIONAL[table]] if c in present]
    if table == "touchpoints":
        contract.insert(contract.index("timestamp") + 1, "date")
    extra = [c for c in present if c not in contract and c != "hash_slot"]
    return [*contract, *extra, "hash_slot"]


def _pandera():
    with warnings.catch_warnings():
        # pandera probes for pyspark, which warns about pandas 3 on import.
        warnings.filterwarnings("ignore", category=FutureWarning)
        import pandera.pandas as pa
    return pa


def raw_schema(table: str) -> pa.DataFrameSchema:
    """Schema of a table as read: only that the required columns are there."""
    pa = _pandera()

    columns = {c: pa.Column(None, required=True, nullable=True) for c in REQUIRED[table]}
    return pa.DataFrameSchema(columns, name=table, strict=False)


def clean_schema(table: str, present: list[str]) -> pa.DataFrameSchema:
    """Schema of a parsed table: dtypes of the present columns and the value rules."""
    pa = _pandera()

    def col(kind: str, required: bool, column: str) -> pa.Column:
        checks = []
        nullable = not required
        if kind == "id":
            nullable = False
        if column == "direction":
            checks.append(pa.Check.isin(DIRECTIONS, name="direction_values", n_failure_cases=5))
        dtype = {
            "id": "str",
            "date": DATE_DTYPE,
            "timestamp": DATE_DTYPE,
            "number": "float64",
            "bool": "bool",
            "string": "str",
            "lower": "str",
        }[kind]
        return pa.Column(dtype, checks=checks, nullable=nullable, required=required)

    columns = {c: col(k, True, c) for c, k in REQUIRED[table].items()}
    columns |= {c: col(k, False, c) for c, k in OPTIONAL[table].items() if c in present}
    frame_checks = []
    if table == "customers":
        columns["customer_id"] = pa.Column("str", unique=True, nullable=False, report_duplicates="all")
        if "churn_date" in present:
            frame_checks.append(
                pa.Check(
                    lambda df: df["churn_date"].isna() | (df["churn_date"] >= df["signup_date"]),
                    name="churn_not_before_signup",
                    n_failure_cases=5,
                )
            )
    if table == "touchpoints":
        columns["date"] = pa.Column(DATE_DTYPE, nullable=False)
    return pa.DataFrameSchema(columns, checks=frame_checks, name=table, strict=False)


# What the user reads for each pandera check; the column is named separately.
CHECK_PROBLEMS: dict[str, tuple[str | None, str]] = {
    "column_in_dataframe": (None, "missing required column(s) {cases}"),
    "field_uniqueness": (None, "duplicate customer ids: each customer must appear once"),
    "direction_values": ("direction", "direction must be 'inbound' or 'outbound' (or empty)"),
    "churn_not_before_signup": ("churn_date", "churn_date before signup_date"),
}


def check_schema(
    schema: pa.DataFrameSchema,
    df: pd.DataFrame,
    table: str,
    path: str | None,
    describe_rows: Callable[[list, list[str]], list[str]],
) -> None:
    """Validate ``df`` with ``schema``; raise the first failure as a DataContractError.

    ``describe_rows(index_labels, columns)`` renders example rows (the
    validator shows the raw values and file line numbers).
    """
    pa = _pandera()

    with warnings.catch_warnings():
        # pandera probes for pyspark, which warns about pandas 3 on import.
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            schema.validate(df, lazy=True)
        except pa.errors.SchemaErrors as exc:
            cases = exc.failure_cases
        else:
            return
    first = cases.iloc[0]
    check = str(first["check"])
    name = next((k for k in CHECK_PROBLEMS if check.startswith(k)), check)
    same = cases[cases["check"] == first["check"]]
    if name == "column_in_dataframe":
        missing = [str(c) for c in same["failure_case"]]
        raise DataContractError(
            table,
            ", ".join(missing),
            f"missing required column(s) {', '.join(missing)}; the file has: {', '.join(map(str, df.columns))}",
            path=path,
        )
    column, problem = CHECK_PROBLEMS.get(name, (None, f"failed check {check}"))
    column = column or (None if pd.isna(first["column"]) else str(first["column"]))
    if check.startswith("dtype"):
        problem = f"has type {first['failure_case']}, expected {check}"
    labels = [i for i in pd.unique(same["index"].dropna())][:5]
    shown = [c for c in ("customer_id", column, "signup_date") if c and c in df.columns]
    if name == "field_uniqueness":
        problem += f" ({same['failure_case'].nunique()} id(s) repeated)"
    raise DataContractError(table, column, problem, describe_rows(labels, list(dict.fromkeys(shown))), path)


# --- reading raw values -----------------------------------------------------------------
# Each parser takes a raw column (strings from CSV; typed values from Parquet or a
# DataFrame) and returns the parsed column plus a mask of values that were given but
# could not be read. Low-cardinality columns (dates, ids) are parsed once per
# distinct value; long columns use Arrow's vectorised casts.


def codes_and_values(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes per row (-1 = missing) and the distinct values they index; a categorical keeps its own."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(), pd.Index(s.cat.categories)
    codes, values = pd.factorize(s)
    return codes, pd.Index(values)


def _expand(codes: np.ndarray, parsed: np.ndarray, bad: np.ndarray, missing_value, index) -> tuple:
    """Map per-distinct-value results back onto the rows (code -1 = missing)."""
    parsed = np.append(parsed, np.array([missing_value], dtype=parsed.dtype))
    bad = np.append(bad, False)
    return pd.Series(parsed[codes], index=index), pd.Series(bad[codes], index=index)


def _text(values: pd.Index | pd.Series) -> pd.Series:
    """Stripped text with the null spellings turned into missing."""
    text = pd.Series(values, dtype="str").str.strip()
    return text.mask(text.str.lower().isin(NULL_WORDS))


def _parse_datetime_values(values: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.tz_localize(None).astype(DATE_DTYPE).to_numpy(), np.zeros(len(values), bool)
    if values.dtype.kind == "M":
        return values.astype(DATE_DTYPE).to_numpy(), np.zeros(len(values), bool)
    text = _text(values)
    # "2024-03-31T10:00:00+02:00" -> "2024-03-31T10:00:00": keep the local wall time.
    text = text.str.replace(r"(?:Z|[+-]\d\d:?\d\d)$", "", regex=True)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    bad = (parsed.isna() & text.notna()).to_numpy()
    return parsed.astype(DATE_DTYPE).to_numpy(), bad


def parse_datetime(s: pd.Series, *, date_only: bool) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 dates / date-times -> naive ``datetime64[us]`` (floored to the day if ``date_only``)."""
    if s.dtype.kind == "M" or isinstance(s.dtype, pd.DatetimeTZDtype):
        parsed = s.dt.tz_localize(None) if isinstance(s.dtype, pd.DatetimeTZDtype) else s
        parsed, bad = parsed.astype(DATE_DTYPE), pd.Series(False, index=s.index)
    elif not date_only and s.dtype == "str" and not isinstance(s.dtype, pd.CategoricalDtype):
        parsed, bad = _parse_timestamps_arrow(s)
    else:
        codes, values = codes_and_values(s)
        parsed, bad = _parse_datetime_values(values)
        parsed, bad = _expand(codes, parsed, bad, np.datetime64("NaT", "us"), s.index)
    if date_only:
        parsed = parsed.dt.floor("D")
    return parsed.rename(s.name), bad


def _parse_timestamps_arrow(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    arr = pc.utf8_trim_whitespace(pa_arrow.array(s.array))
    arr = pc.if_else(pc.is_in(pc.utf8_lower(arr), pa_arrow.array(NULL_WORDS)), None, arr)
    arr = pc.replace_substring_regex(arr, pattern=r"(?:Z|[+-]\d\d:?\d\d)$", replacement="")
    try:
        parsed = pc.cast(arr, pa_arrow.timestamp("us"))
    except pa_arrow.ArrowInvalid:  # something Arrow cannot read: let pandas find out which rows
        codes, values = codes_and_values(s)
        p, b = _parse_datetime_values(values)
        return _expand(codes, p, b, np.datetime64("NaT", "us"), s.index)
    values = parsed.to_numpy(zero_copy_only=False).astype(DATE_DTYPE)
    return pd.Series(values, index=s.index), pd.Series(False, index=s.index)


def parse_number(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers -> float64; text that is not a finite number is bad (``1,5`` is not ``1.5``)."""
    if s.dtype.kind in "biuf":
        out = s.astype("float64")
        return out, pd.Series(~np.isfinite(out.to_numpy()) & out.notna().to_numpy(), index=s.index)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes, values = codes_and_values(s)
        p, b = parse_number(pd.Series(values))
        return _expand(codes, p.to_numpy(), b.to_numpy(), np.nan, s.index)
    arr = pc.utf8_trim_whitespace(pa_arrow.array(s.astype("str").array))
    arr = pc.if_else(pc.is_in(pc.utf8_lower(arr), pa_arrow.array(NULL_WORDS)), None, arr)
    try:
        out = pd.Series(pc.cast(arr, pa_arrow.float64()).to_numpy(zero_copy_only=False), index=s.index)
        given = out.notna()
    except pa_arrow.ArrowInvalid:
        text = pd.Series(arr.to_numpy(zero_copy_only=False), index=s.index, dtype="str")
        out = pd.to_numeric(text, errors="coerce").astype("float64")
        given = text.notna()
    bad = given & ~np.isfinite(out.to_numpy())
    return out.rename(s.name), bad


def parse_bool(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """true/false/1/0/yes/no -> bool; empty -> False (not contactable without consent)."""
    if s.dtype == bool:
        return s, pd.Series(False, index=s.index)
    text = _text(s.astype("str")).str.lower()
    truthy, falsy = text.isin(TRUE_WORDS), text.isin(FALSE_WORDS) | text.isna()
    return truthy.astype(bool).rename(s.name), ~(truthy | falsy)


def parse_text(s: pd.Series, *, lower: bool) -> pd.Series:
    """Text, stripped (and lower-cased); empty -> missing.

    A ``category`` column stays ``category`` (its categories cleaned and merged,
    so ``Email`` and ``email`` become one); anything else becomes ``str``.
    Use :func:`to_str` for the final ``str`` column.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        clean = parse_text(pd.Series(s.cat.categories, dtype="str"), lower=lower)
        new_codes, categories = pd.factorize(clean)
        codes = np.where(codes >= 0, np.append(new_codes, -1)[codes], -1)
        return pd.Series(pd.Categorical.from_codes(codes, categories), index=s.index, name=s.name)
    text = s.astype("str").str.strip()
    text = text.mask(text == "")
    return text.str.lower() if lower else text


def to_str(s: pd.Series) -> pd.Series:
    """A text or category column as ``str`` (Arrow-backed; fast for 40M-row category columns)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return s.astype("str")
    codes = s.cat.codes.to_numpy()
    categories = pa_arrow.array(pd.Series(s.cat.categories, dtype="str").array)
    taken = categories.take(pa_arrow.array(codes, mask=codes < 0))
    return pd.Series(
        pa_arrow.chunked_array([taken], type=categories.type).to_pandas().array, index=s.index, name=s.name
    )


def parse_id(s: pd.Series) -> pd.Series:
    """Customer ids as written, stripped; numbers from Parquet become their decimal text."""
    if s.dtype.kind == "f" and s.dropna().mod(1).eq(0).all():
        s = s.astype("Int64")
    return parse_text(s, lower=False)


def parse_static(s: pd.Series) -> tuple[pd.Series, str]:
    """A customer attribute: numeric when every value is a number, else text (a category).

    A value with a leading zero ("01234") keeps the column text: codes such as
    postal codes are labels, not quantities.
    """
    if s.dtype.kind in "biuf":
        return s.astype("float64"), "number"
    if s.dtype == bool:
        return s, "bool"
    text = to_str(parse_text(s, lower=False))
    number, bad = parse_number(text)
    leading_zero = text.str.match(r"^[+-]?0\d").fillna(False).any()
    if text.notna().any() and not bad.any() and not leading_zero:
        return number, "number"
    return text, "string"
