"""Reason codes in plain words: a driver feature and its value -> one sentence.

The wording comes from the feature registry (``description`` and ``unit`` of
each :class:`~omvald.features.spec.FeatureSpec`), so a new feature gets a
readable reason without touching this module. A few well-known features
read better with their own phrasing ("paid 23 days late" rather than
"days late: 23 days"); those live in :data:`TEMPLATES`, keyed by feature
name, and fall back to the generic unit rule if the feature is renamed.

A category's level is written only when it reads as a category
(:func:`shows_level`): never text that looks like an e-mail address, a
phone or identity number, a code with a long run of digits, or free text.
Validation already drops attributes that hold personal data; this is the
second line, because a reason sentence goes to the CRM team's score file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from omvald.data.personal import looks_personal_value


class SpecLike(Protocol):
    name: str
    description: str
    unit: str
    kind: str


# A category level longer than this, or with this many digits in a row, is free text or a code, not a level.
MAX_LEVEL_CHARS = 40
LONG_DIGIT_RUN = re.compile(r"\d{5}")
NOT_SHOWN = "(value not shown)"

# Units whose numbers read fine without the unit word after them.
BARE_UNITS = {"usage", "score 0-10", "number", "ratio", "value"}

# Per-feature phrasing. Fields: {n} the number formatted for the unit,
# {abs} its absolute value, {dir} "up"/"down",
# {more_less} "more"/"less", {days}/{months} pluralised.
TEMPLATES: dict[str, str] = {
    "price_shock_pct_3m": "invoice {dir} {abs}% in the last 3 months",
    "price_shock_pct_12m": "invoice {dir} {abs}% in the last 12 months",
    "price_increase_max_pct_12m": "price raised {abs}% at once in the last 12 months",
    "amount_trend_6m": "billed {dir} {abs}% in the last 3 months vs the 3 months before",
    "usage_trend_6m": "usage {dir} {abs}% in the last 3 months vs the 3 months before",
    "loyalty_gap_pct": "pays {abs}% {more_less} than a new customer for the same offer",
    "days_late_max_180d": "paid {days} late",
    "days_late_mean_180d": "paid {days} late on average, last 180 days",
    "days_since_last_inbound": "no contact with us for {days}",
    "days_since_last_invoice": "no invoice for {days}",
    "tenure_months": "customer for {months}",
    "binding_months_left": "{months} left of the binding period",
    "months_since_binding_end": "binding period ended {months} ago",
}


# Drivers (registry ``driver``) in the words a CRM team uses; they open a reason sentence.
DRIVER_LABELS: dict[str, str] = {
    "price_change": "price rise",
    "loyalty_gap": "pays more than new customers",
    "complaint": "complaints",
    "satisfaction": "satisfaction",
    "service_contact": "contacts with customer service",
    "binding": "binding period",
    "downsizing": "declining use",
    "payment": "payments",
    "engagement": "engagement",
    "outreach": "messages from us",
    "spend": "spend",
    "tenure": "tenure",
    "other_events": "other contacts",
    "recency": "time since the last purchase",
    "purchase_frequency": "purchase frequency",
    "btyd": "buying pattern",
}


def reason_sentence(spec: SpecLike, value: Any) -> str:
    """One plain-word sentence for a driver: ``spec`` from the registry, ``value`` the feature value.

    Numbers are rounded for reading (the exact value is in the ``*_value``
    output column); a missing value reads "no data".
    """
    desc = spec.description or spec.name.replace("_", " ")
    if _is_missing(value):
        return f"{desc}: no data"
    unit = (spec.unit or "").lower()
    if spec.kind == "categorical" or unit == "category" or isinstance(value, str):
        return f"{desc}: {value}" if shows_level(value, spec) else f"{desc} {NOT_SHOWN}"
    v = float(value)
    template = getattr(spec, "reason", None) or TEMPLATES.get(spec.name)
    if template:
        return template.format(
            n=_number(v, unit),
            abs=_number(abs(v), unit),
            dir="up" if v >= 0 else "down",
            more_less="more" if v >= 0 else "less",
            days=_plural(abs(v), "day"),
            months=_plural(abs(v), "month"),
        )
    if unit == "%":
        if round(v) == 0:
            return f"{desc}: unchanged"
        return f"{desc}: {'up' if v > 0 else 'down'} {_number(abs(v), unit)}%"
    if unit == "share":
        return f"{desc}: {_number(100 * v, '%')}%"
    if unit == "flag":
        return f"{desc}: {'yes' if v >= 0.5 else 'no'}"
    if unit in ("days", "day"):
        return f"{desc}: {_plural(v, 'day')}"
    if unit in ("months", "month"):
        return f"{desc}: {_plural(v, 'month')}"
    if unit == "money":
        return f"{desc}: {_number(v, unit)}"
    if unit == "count":
        return f"{desc}: {_number(v, unit)}"
    suffix = f" {spec.unit}" if spec.unit and unit not in BARE_UNITS else ""
    return f"{desc}: {_number(v, unit)}{suffix}"


def driver_sentence(driver: str, spec: SpecLike, value: Any) -> str:
    """A driver's reason: its plain-word label, then the strongest feature's sentence.

    "price rise: invoice up 18% in the last 3 months". A driver without a
    label in :data:`DRIVER_LABELS` (a feature that is its own driver, such as
    a customer attribute) reads as the feature's sentence alone.
    """
    label = DRIVER_LABELS.get(driver)
    sentence = reason_sentence(spec, value)
    return f"{label}: {sentence}" if label else sentence


def feature_driver(name: str, specs: Mapping[str, SpecLike]) -> str:
    """The driver (business reason) of feature ``name``: the spec's ``driver``, else the feature itself."""
    return getattr(specs.get(name), "driver", "") or name


def reason_columns(
    drivers: pd.DataFrame, specs: Mapping[str, SpecLike], prefix: str, k: int = 3
) -> dict[str, pd.Series]:
    """Sentences for the ``{prefix}driver_i`` (driver), ``_feature`` and ``_value_raw`` columns of ``drivers``.

    Returns ``{prefix}reason_1..k`` as string Series (missing where there is
    no driver): :func:`driver_sentence` of the driver's strongest feature.
    Unknown feature names fall back to the name in words.
    """
    out: dict[str, pd.Series] = {}
    for i in range(1, k + 1):
        driver = drivers[f"{prefix}driver_{i}"].to_numpy(dtype=object)
        names = drivers[f"{prefix}driver_{i}_feature"].to_numpy(dtype=object)
        values = drivers[f"{prefix}driver_{i}_value_raw"].to_numpy(dtype=object)
        sentences = [
            None if _is_missing(name) else driver_sentence(d, specs.get(name) or fallback_spec(name), value)
            for d, name, value in zip(driver, names, values, strict=True)
        ]
        out[f"{prefix}reason_{i}"] = pd.Series(sentences, index=drivers.index, dtype="str")
    return out


def shows_level(value: Any, spec: SpecLike | None = None) -> bool:
    """Whether a category level may be written out: a level of ``spec.levels`` when the spec
    lists them, else short text that is no e-mail address, phone or identity number or long digit code."""
    text = str(value)
    levels = getattr(spec, "levels", None)
    if levels is not None:
        return text in levels
    return len(text) <= MAX_LEVEL_CHARS and not LONG_DIGIT_RUN.search(text) and not looks_personal_value(text)


def format_value(value: Any) -> str | None:
    """The exact driver value as text: one column holds numbers and categories alike (levels as by :func:`shows_level`)."""
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value if shows_level(value) else NOT_SHOWN
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


class _FallbackSpec:
    def __init__(self, name: str) -> None:
        self.name, self.description, self.unit, self.kind = name, name.replace("_", " "), "", "numeric"


def fallback_spec(name: str) -> SpecLike:
    """A spec for a feature the registry does not describe: its name in words, no unit."""
    return _FallbackSpec(str(name))


def _number(v: float, unit: str) -> str:
    if unit == "money":
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"
    if unit in ("%", "count", "days", "day", "months", "month") or abs(v) >= 100:
        return f"{v:,.0f}" if abs(v - round(v)) < 0.05 or abs(v) >= 10 else f"{v:.1f}"
    return f"{v:.3g}"


def _plural(v: float, word: str) -> str:
    n = _number(v, "count")
    return f"{n} {word}" if n in ("1", "-1") else f"{n} {word}s"


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)
