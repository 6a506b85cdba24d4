"""Facts about whole columns of the customers file, gathered batch by batch: personal data and attribute kinds.

What :func:`omvald.data.validate.drop_personal_columns` and
:func:`omvald.data.contract.parse_static` decide from a whole customers
column, decided here from two streamed reads of the file, never holding it:

1. counts: how many values each attribute column gives (the evenly spaced
   sample of the phone and id patterns depends on it), whether a float
   column holds only whole numbers (it then reads as ``"123"``), and how many
   ids are given;
2. facts: :class:`omvald.data.personal.ColumnFacts` per attribute (the same
   decision, :func:`omvald.data.personal.reason_from_facts`), the national-id
   share of the ids' sample, and per attribute what ``parse_static`` looks
   at (any value, any value that is not a number, any leading zero).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from omvald.data import contract as C
from omvald.data.personal import (
    PATTERN_SHARE,
    ColumnFacts,
    column_facts,
    looks_like_national_id,
    reason_from_facts,
    sample_positions,
    whole_numbers,
)
from omvald.data.raw_buckets import RawBuckets
from omvald.data.raw_stream import decimal_commas, stream, to_frame

log = logging.getLogger(__name__)


@dataclass
class CustomerScan:
    """The decisions about whole customer columns: ``personal`` ``{column: reason}``, ``kinds`` of the kept
    attributes (``number`` | ``string`` | ``bool``, as ``parse_static`` decides) and the ``warnings``."""

    personal: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def scan_customers(raw: RawBuckets) -> CustomerScan:
    """Read the customers file twice (counts, then facts) and decide as the whole-table functions do."""
    f = raw.files.get("customers")
    if f is None or not f.columns:
        return CustomerScan()
    contract = {*C.REQUIRED["customers"], *C.OPTIONAL["customers"]}
    attributes = [c for c in f.columns if c not in contract]
    widened, commas = raw.widened.get("customers", {}), raw.comma_columns.get("customers", [])

    def frames():
        for data in stream(f):
            frame = to_frame(data)
            for column, dtype in widened.items():
                frame[column] = frame[column].astype(dtype)
            yield decimal_commas(frame, commas)

    n_text = dict.fromkeys(attributes, 0)
    whole = dict.fromkeys(attributes, True)
    floats = dict.fromkeys(attributes, False)
    n_ids = 0
    for frame in frames():
        for column in attributes:
            values = frame[column]
            floats[column] = values.dtype.kind == "f"
            given = values.dropna()
            whole[column] = whole[column] and (given.empty or whole_numbers(given))
            n_text[column] += _text_count(values)
        if "customer_id" in frame:
            n_ids += int(frame["customer_id"].notna().sum())

    facts = {c: ColumnFacts() for c in attributes}
    static = {c: _StaticFacts() for c in attributes}
    seen = dict.fromkeys(attributes, 0)
    id_hits, id_sampled, ids_seen = 0, 0, 0
    for frame in frames():
        for column in attributes:
            values = frame[column]
            n = _text_count(values)
            sample = sample_positions(seen[column], n, n_text[column])
            flag = whole[column] and floats[column] and n_text[column] > 0
            facts[column] = facts[column].add(column_facts(values, flag, sample))
            seen[column] += n
            static[column].add(values)
        if "customer_id" in frame:
            ids = frame["customer_id"].dropna().astype("str")
            taken = ids.iloc[sample_positions(ids_seen, len(ids), n_ids)]
            id_hits += int(looks_like_national_id(taken).sum())
            id_sampled += len(taken)
            ids_seen += len(ids)

    scan = CustomerScan()
    for column in attributes:
        reason = reason_from_facts(str(column), facts[column])
        if reason is not None:
            scan.personal[str(column)] = reason
    scan.warnings = [
        f"customers: column '{column}' dropped as personal data ({reason}); list it in data.personal_columns "
        "to skip it on read"
        for column, reason in scan.personal.items()
    ]
    share = id_hits / id_sampled if id_sampled else 0
    if share >= PATTERN_SHARE:
        scan.warnings.append(
            f"customers: {share:.0%} of the customer_id values look like national identity numbers; they are "
            "kept because they key every output (features, scores), so use a pseudonymous customer key instead"
        )
    scan.kinds = {c: static[c].kind() for c in attributes if c not in scan.personal}
    return scan


def _text_count(values: pd.Series) -> int:
    """How many values read as non-empty text (:func:`omvald.data.personal._as_text`; a float never reads empty)."""
    given = values.dropna()
    if given.dtype.kind in "biuf":
        return len(given)
    text = given.astype("str").str.strip()
    return int((text != "").sum())


@dataclass
class _StaticFacts:
    """What :func:`omvald.data.contract.parse_static` decides a column's kind by, over batches."""

    dtype_kind: str = ""
    any_given: bool = False
    any_bad: bool = False
    leading_zero: bool = False

    def add(self, s: pd.Series) -> None:
        if s.dtype.kind in "biuf":  # parse_static: numbers (booleans too) are numbers
            self.dtype_kind = "number"
            return
        # the rule looks only at which values occur: judge each distinct value once
        text = C.to_str(C.parse_text(pd.Series(s.dropna().unique()), lower=False))
        _, bad = C.parse_number(text)
        self.any_given = self.any_given or bool(text.notna().any())
        self.any_bad = self.any_bad or bool(np.asarray(bad).any())
        self.leading_zero = self.leading_zero or bool(text.str.match(r"^[+-]?0\d").fillna(False).any())

    def kind(self) -> str:
        if self.dtype_kind:
            return self.dtype_kind
        return "number" if self.any_given and not self.any_bad and not self.leading_zero else "string"
