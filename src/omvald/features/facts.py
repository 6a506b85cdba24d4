"""Facts about the whole input that every bucket must agree on, decided once before the buckets.

A bucket sees only its own customers. Whatever depends on all of them is
decided here, from the whole input, and reaches every bucket through the
feature meta that :func:`omvald.features.build.build_features` takes:

- ``attribute_kinds``: whether each customer attribute is numeric or
  categorical (one bucket's values could all look like numbers);
- ``binding_column``: the categorical attribute whose values read as
  contract terms (``12m``, ``monthly``).

Each engine reads the whole input its own way into :class:`AttributeFacts`
(a pandas frame: :meth:`AttributeFacts.of_customers`; the features stage:
DuckDB over the interim file; Spark: the per-bucket validation summaries),
and :func:`attribute_meta` decides, so the features stage and both scoring
engines decide alike. Population parameters fitted once per as-of date
before the buckets (e.g. a BG/NBD fit) are facts of the same kind: plain
JSON in the feature meta, fitted by the features stage's plan
(:func:`omvald.features.stage.plan_features`) and by the scoring plan
(:func:`omvald.scoring.plan.whole_input_facts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from omvald.features.static import attribute_kinds, detect_binding_column

# A contract-term column has a handful of values; one with more distinct values is not a binding column.
DISTINCT_CAP = 200


@dataclass(frozen=True)
class AttributeFacts:
    """The customer attributes over the whole customers table.

    ``kinds``: attribute column -> ``"numeric"`` | ``"categorical"``, in
    table order. ``distinct``: categorical column -> its distinct non-null
    values, or ``None`` when it has more than :data:`DISTINCT_CAP`.
    """

    kinds: dict[str, str]
    distinct: dict[str, list[Any] | None]

    @classmethod
    def of_customers(cls, customers: pd.DataFrame) -> AttributeFacts:
        """The facts of a customers frame held whole in memory (or of one bucket, as a fallback)."""
        kinds = attribute_kinds(customers)
        distinct: dict[str, list[Any] | None] = {}
        for column, kind in kinds.items():
            if kind == "categorical":
                values = customers[column].dropna().unique()
                distinct[column] = list(values) if len(values) <= DISTINCT_CAP else None
        return cls(kinds, distinct)


def attribute_meta(facts: AttributeFacts) -> dict[str, Any]:
    """``{"attribute_kinds", "binding_column"}`` for the feature meta, decided from the whole table's facts."""
    candidates = {c: values for c, values in facts.distinct.items() if values is not None}
    return {"attribute_kinds": dict(facts.kinds), "binding_column": detect_binding_column(candidates)}
