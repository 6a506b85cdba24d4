"""Customer attributes: tenure, binding period and the static columns of ``customers``.

Static attributes are every customers column except the keys and dates the
pipeline itself interprets; strings become categorical ``attr_<column>``
features (kept as strings here so every bucket writes the same schema; the
model turns them into categories), numbers and booleans numeric.

A binding (lock-in) period is read from a string column whose values look
like ``12m``, ``24 months``, ``monthly``; the column is chosen once for the
whole business (:func:`detect_binding_column`) so every bucket agrees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from omvald.config import FeatureConfig
from omvald.features.asof import connect, fetch_frame, with_spine_ids
from omvald.features.spec import BucketTables, FeatureSpec

NOT_ATTRIBUTES = ("customer_id", "signup_date", "churn_date", "marketing_opt_in", "hash_slot")
DAYS_PER_MONTH = 30.4375
_TERM = re.compile(r"^\s*(\d{1,3})\s*(m|mo|mon|mons|month|months|mån|månad|månader)\s*$", re.IGNORECASE)
_NO_TERM = {"monthly", "month-to-month", "rolling", "none", "no binding", "ingen", "löpande", "0", "0m"}
BINDING_MIN_SHARE = 0.9  # share of distinct values that must read as a term


def binding_months(value: object) -> float | None:
    """Months of binding a contract value stands for (``"24m"`` -> 24, ``"monthly"`` -> 0), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text in _NO_TERM:
        return 0.0
    match = _TERM.match(text)
    return float(match.group(1)) if match else None


def detect_binding_column(distinct_values: dict[str, Iterable[object]]) -> str | None:
    """The string column whose distinct values read as binding terms, or None.

    ``distinct_values`` maps candidate column -> its distinct non-null values
    over the whole business. A column qualifies when at least 90% of its
    values parse and at least one term is longer than zero months.
    """
    for column in sorted(distinct_values):
        values = [v for v in distinct_values[column] if isinstance(v, str)]
        if not values:
            continue
        terms = [binding_months(v) for v in values]
        parsed = [t for t in terms if t is not None]
        if len(parsed) >= BINDING_MIN_SHARE * len(values) and any(t > 0 for t in parsed):
            return column
    return None


def attribute_columns(columns: dict[str, list[str]]) -> list[str]:
    """Customers columns that are static attributes (in input order)."""
    return [c for c in columns.get("customers", []) if c not in NOT_ATTRIBUTES]


def static_feature_specs(
    cfg: FeatureConfig,
    columns: dict[str, list[str]],
    kinds: dict[str, str] | None = None,
    binding_column: str | None = None,
) -> list[FeatureSpec]:
    """Tenure, binding and one ``attr_<col>`` per attribute column.

    ``kinds`` maps attribute column -> "numeric" | "categorical" (from the
    interim schema; unknown columns count as categorical).
    """
    kinds = kinds or {}
    specs = [
        FeatureSpec(
            "tenure_months",
            "tenure",
            "months since signup",
            "months",
            requires=(("customers", "signup_date"),),
            driver="tenure",
        )
    ]
    binding_req = (("customers", binding_column or "<a contract term column>"),)
    specs += [
        FeatureSpec(
            "binding_months_left",
            "binding",
            "months left of the binding period",
            "months",
            requires=binding_req,
            driver="binding",
        ),
        FeatureSpec(
            "months_since_binding_end",
            "binding",
            "months since the binding period ended",
            "months",
            requires=binding_req,
            driver="binding",
        ),
    ]
    for col in attribute_columns(columns):
        kind = kinds.get(col, "categorical")
        unit = "category" if kind == "categorical" else "value"
        specs.append(
            FeatureSpec(f"attr_{col}", "attributes", f"customer attribute '{col}'", unit, kind, (("customers", col),))
        )
    return specs


def attribute_kinds(customers: pd.DataFrame) -> dict[str, str]:
    """ "numeric" for number/boolean attribute columns, "categorical" otherwise."""
    return {
        col: "numeric"
        if pd.api.types.is_numeric_dtype(customers[col]) or pd.api.types.is_bool_dtype(customers[col])
        else "categorical"
        for col in customers.columns
        if col not in NOT_ATTRIBUTES
    }


def static_features(
    tables: BucketTables, spine: pd.DataFrame, cfg: FeatureConfig, binding_column: str | None = None
) -> pd.DataFrame:
    """Tenure, binding and attribute features for each spine row (customer_id, as_of), in spine order.

    ``tenure_months`` and the binding features are in months (days / 30.4375);
    the binding period is assumed to start at signup. Categorical attributes
    are strings, numeric ones float64.
    """
    customers = tables.customers
    kinds = attribute_kinds(customers)
    con = connect(tables, spine)
    select = [f"(sp.as_of - c.signup_date) / {DAYS_PER_MONTH} AS tenure_months"]
    join = ""
    if binding_column is not None:
        terms = pd.DataFrame({"term": pd.Series(customers[binding_column].dropna().unique(), dtype=object)})
        terms["months"] = pd.Series([binding_months(v) for v in terms["term"]], dtype="float64")
        terms["term"] = terms["term"].astype(str)
        con.register("terms", terms)
        # the binding period runs `months` calendar months from signup
        end = "CAST(c.signup_date + to_months(CAST(tm.months AS INTEGER)) AS DATE)"
        select += [
            f"greatest({end} - sp.as_of, 0) / {DAYS_PER_MONTH} AS binding_months_left",
            f"greatest(sp.as_of - {end}, 0) / {DAYS_PER_MONTH} AS months_since_binding_end",
        ]
        join = f"LEFT JOIN terms tm ON tm.term = CAST(c.{_quote(binding_column)} AS VARCHAR)"
    select += [f"c.{_quote(col)} AS {_quote('attr_' + col)}" for col in kinds]
    out = fetch_frame(
        con,
        f"""
        SELECT sp.as_of, {", ".join(select)}
        FROM spine sp LEFT JOIN customers c ON c.customer_id = sp.customer_id {join}
        ORDER BY sp.spine_row
        """,
    )
    con.close()
    with_spine_ids(out, spine)
    for col, kind in kinds.items():
        name = f"attr_{col}"
        out[name] = out[name].astype("float64") if kind == "numeric" else out[name].astype("str")
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
