"""The synthetic business as its export would have looked on an earlier day.

``omvald generate --export-date D`` writes what a company's export taken at
the end of day ``D`` holds: customers who had signed up by then, invoices
and touchpoints dated up to ``D``, a churn date only if it had happened, a
paid date only if the payment had come in. The same params and seed give
the same business, so two exports of it (``--export-date`` a month apart,
or one before and one after a ``generate.shift``) are what a model is
trained on and later scores, and what ``omvald monitor`` reads outcomes
from. The ground truth and true probabilities stay whole (they are never
read by the pipeline).
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc


def export_as_of(tables: dict[str, pa.Table], date: dt.date) -> dict[str, pa.Table]:
    """``customers``, ``billing`` and ``touchpoints`` as exported at the end of ``date`` (other keys unchanged)."""
    day = pa.scalar(date, pa.date32())
    out = dict(tables)
    customers = tables["customers"]
    customers = customers.filter(pc.less_equal(customers["signup_date"], day))
    out["customers"] = _null_after(customers, "churn_date", day)
    billing = tables["billing"]
    billing = billing.filter(pc.less_equal(billing["invoice_date"], day))
    out["billing"] = _null_after(billing, "paid_date", day)
    touchpoints = tables["touchpoints"]
    if touchpoints.num_rows:
        next_day = pa.scalar(dt.datetime.combine(date + dt.timedelta(days=1), dt.time()), touchpoints["timestamp"].type)
        out["touchpoints"] = touchpoints.filter(pc.less(touchpoints["timestamp"], next_day))
    return out


def _null_after(table: pa.Table, column: str, day: pa.Scalar) -> pa.Table:
    """``column``'s dates after ``day`` set to null (not known yet at the export); absent column: unchanged."""
    if column not in table.column_names:
        return table
    values = table[column]
    later = pc.fill_null(pc.greater(values, day), False)
    kept = pc.if_else(later, pa.scalar(None, values.type), values)
    return table.set_column(table.column_names.index(column), column, kept)
