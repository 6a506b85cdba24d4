"""Validation bucket by bucket: the whole table's error and attribute kinds, from each bucket's own.

Every check of :func:`omvald.data.validate.validate_rows` looks at one
customer's rows, so a table validated one bucket of customers at a time
fails exactly where the whole table would. Both engines that validate by
bucket (``omvald validate`` out of core, :mod:`omvald.data.validate_buckets`;
Spark, :mod:`omvald.spark.validate`) merge the buckets here:

- errors: the checks run in a fixed order and each failure carries its
  number (``step``). The lowest step over all buckets is what the whole table
  reports first; the row and id counts of the buckets that failed there add
  up, and the first five examples are kept (file order, or slot order for the
  checks that run on sorted rows), so the message is the whole table's word
  for word;
- attribute kinds: :func:`omvald.data.contract.parse_static` makes a text
  column numeric when every value is a number; one bucket's values can all
  be numbers while another's are not, so the kind decided on the whole
  table is given back to each bucket.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from omvald.data import contract as C
from omvald.data.validate import example_label
from omvald.errors import DataContractError

COUNT = re.compile(r"\((\d+) ")  # "(12 row(s))", "(3 distinct id(s))", "(2 id(s) repeated)"


def error_record(err: DataContractError, bucket: int) -> dict[str, Any]:
    """One bucket's failure as plain data (what :func:`merge_errors` takes)."""
    return {
        "bucket": bucket,
        "step": getattr(err, "step", 0),
        "sorted_rows": getattr(err, "sorted_rows", False),
        "table": err.table,
        "column": err.column,
        "problem": err.problem,
        "examples": err.examples,
        "path": err.path,
    }


def merge_errors(errors: list[dict[str, Any]], relabel=None) -> DataContractError:
    """The error the whole table gives, from the buckets' first errors (:func:`error_record`; see the module docstring).

    ``relabel(table, label)`` turns a task's row label into the file's row
    number (CSV files, whose tasks only know an order).
    """
    step = min(e["step"] for e in errors)
    at_step = sorted((e for e in errors if e["step"] == step), key=lambda e: e["bucket"])
    lead = at_step[0]
    same = [e for e in at_step if (e["table"], e["column"], COUNT.sub("(", e["problem"])) == (
        lead["table"], lead["column"], COUNT.sub("(", lead["problem"]))]  # fmt: skip
    counts = np.sum([[int(n) for n in COUNT.findall(e["problem"])] for e in same], axis=0).astype(int)
    numbers = iter(counts.tolist())
    problem = COUNT.sub(lambda m: f"({next(numbers)} ", lead["problem"])
    keyed = []
    for e in same:
        for i, text in enumerate(e["examples"]):
            # "line 7: ..." / "row 6: ...": a file row (refusals of dates name the customer instead)
            labelled = text.split(":", 1)[0].split(" ", 1)[0] in ("line", "row") and ":" in text
            label = example_label(text) if labelled else 0
            if relabel is not None and labelled:
                new = relabel(e["table"], label)
                if new != label:
                    where, rest = text.split(":", 1)
                    text = f"{where.split()[0]} {int(new) + 2}:{rest}"
                    label = new
            keyed.append(((e["bucket"], i) if lead["sorted_rows"] else (label, 0), text))
    examples = [text for _, text in sorted(keyed, key=lambda k: k[0])[:5]]
    return DataContractError(lead["table"], lead["column"], problem, examples, lead["path"])


def with_attribute_kinds(customers: pd.DataFrame, raw: pd.DataFrame | None, kinds: dict[str, str]) -> pd.DataFrame:
    """Give every attribute column the kind decided on the whole table (a bucket may have decided otherwise).

    The text is re-read from the raw column as ``parse_static`` reads text.
    """
    out = customers
    for column, kind in kinds.items():
        s = customers[column]
        if kind == "number" and s.dtype.kind not in "iuf":  # this bucket: no value at all
            out = out.assign(**{column: C.parse_number(s)[0]})
        elif kind == "string" and s.dtype.kind in "iuf" and raw is not None:
            text = C.to_str(C.parse_text(raw[column], lower=False))
            by_id = pd.Series(text.to_numpy(), index=C.to_str(C.parse_id(raw["customer_id"])).to_numpy())
            by_id = by_id[~by_id.index.duplicated()]
            out = out.assign(**{column: pd.Series(by_id.reindex(customers["customer_id"]).to_numpy(), dtype="str")})
    return out
