"""The feature registry: every feature of every family, whether this business has it, and why not.

``registry.json`` (written by the features stage) is what training uses to
pick feature columns and what reason codes use to say a feature in plain
words. A family whose input columns are absent is listed with
``available: false`` and a ``missing_reason``; it is never filled with
constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from omvald.config import FeatureConfig
from omvald.features import btyd, purchases
from omvald.features.billing import billing_feature_specs
from omvald.features.segments import segment_feature_specs
from omvald.features.spec import FeatureSpec
from omvald.features.static import static_feature_specs
from omvald.features.touchpoints import touchpoint_feature_specs

BILLING_FAMILIES = ("billing_core", "price_gap", "payment", "plan", "products", "usage")


@dataclass(frozen=True)
class RegistryEntry:
    """A feature and whether this business's data can produce it."""

    spec: FeatureSpec
    available: bool
    missing_reason: str | None = None

    def record(self) -> dict[str, Any]:
        """The registry.json row: name, family, description, unit, kind, driver, requires, available, missing_reason.

        ``requires``: the input columns the feature is built from, as ``"table.column"``.
        """
        spec = asdict(self.spec)
        spec["requires"] = [f"{table}.{column}" for table, column in self.spec.requires]
        spec["driver"] = self.spec.driver or self.spec.name
        return {**spec, "available": self.available, "missing_reason": self.missing_reason}


def all_specs(cfg: FeatureConfig, meta: dict[str, Any]) -> list[FeatureSpec]:
    """Specs of every family, available or not, in a stable order."""
    columns = meta.get("columns", {})
    specs = billing_feature_specs(cfg, columns)
    specs += static_feature_specs(
        cfg, columns, kinds=meta.get("attribute_kinds"), binding_column=meta.get("binding_column")
    )
    specs += touchpoint_feature_specs(cfg, columns)
    specs += segment_feature_specs(cfg, columns)
    specs += purchases.purchase_feature_specs(cfg)
    specs += btyd.btyd_feature_specs(cfg)
    return specs


def registry_entries(cfg: FeatureConfig, meta: dict[str, Any]) -> list[RegistryEntry]:
    """Every feature with its availability for the business described by ``meta`` (interim meta.json)."""
    entries = []
    for spec in all_specs(cfg, meta):
        reason = missing_reason(spec, meta)
        entries.append(RegistryEntry(spec, reason is None, reason))
    return entries


def registry_for(cfg: FeatureConfig, meta: dict[str, Any]) -> list[FeatureSpec]:
    """The features this business has (the columns of the feature tables), in registry order."""
    return [e.spec for e in registry_entries(cfg, meta) if e.available]


def missing_reason(spec: FeatureSpec, meta: dict[str, Any]) -> str | None:
    """Why ``spec`` cannot be computed from this data, or None when it can."""
    columns = meta.get("columns", {})
    rows = meta.get("rows", {})
    if spec.family in (purchases.FAMILY, btyd.FAMILY) and is_contractual(meta):
        return purchases.CONTRACTUAL_REASON
    if spec.family == "binding" and not meta.get("binding_column"):
        return "no customers column holds contract terms such as '12m' or '24 months'"
    absent = [f"{table}.{col}" for table, col in spec.requires if col not in columns.get(table, [])]
    if absent:
        return f"input has no column {', '.join(absent)}"
    tables = {table for table, _ in spec.requires}
    empty = sorted(t for t in tables if t in rows and rows[t] == 0)
    if empty:
        return f"table {', '.join(empty)} has no rows"
    if spec.family == btyd.FAMILY:
        return _population_fit_problem(meta.get("btyd"))
    return None


def is_contractual(meta: dict[str, Any]) -> bool:
    """Whether the business has contracts (``meta["contractual"]``, else: its customers table has ``churn_date``)."""
    if "contractual" in meta:
        return bool(meta["contractual"])
    return "churn_date" in meta.get("columns", {}).get("customers", [])


def _population_fit_problem(record: dict[str, Any] | None) -> str | None:
    """Why the BG/NBD population fit (``meta["btyd"]``) cannot give features, or None when it can."""
    if record is None:
        return "the BG/NBD model was not fitted (no population fit in the feature meta)"
    return record.get("unavailable") or (None if record.get("params") else "the BG/NBD model has no fitted date")


def families(entries: list[RegistryEntry]) -> tuple[list[str], dict[str, str]]:
    """(families used, {family: reason} for families with no available feature)."""
    used: dict[str, None] = {}
    reasons: dict[str, str] = {}
    for e in entries:
        if e.available:
            used[e.spec.family] = None
        elif e.spec.family not in reasons:
            reasons[e.spec.family] = e.missing_reason or "unavailable"
    missing = {f: r for f, r in reasons.items() if f not in used}
    return list(used), missing


def feature_drivers(registry: list[dict[str, Any]]) -> dict[str, str]:
    """``{feature: driver}`` from a loaded registry.json; a feature without one (older files) is its own driver."""
    return {f["name"]: f.get("driver") or f["name"] for f in registry}


def describe(name: str, registry: list[dict[str, Any]] | list[RegistryEntry] | None = None) -> str:
    """Plain words for a feature ("last invoice vs invoice about 3 months earlier (%)").

    ``registry`` is the loaded registry.json (or entries); without it the
    built-in descriptions are used. Unknown names come back unchanged.
    """
    if registry is None:
        registry = registry_entries(FeatureConfig(), {"columns": {}, "binding_column": "contract"})
    for item in registry:
        record = item.record() if isinstance(item, RegistryEntry) else item
        if record["name"] == name:
            unit = record.get("unit")
            return (
                f"{record['description']} ({unit})"
                if unit and unit not in ("category", "flag")
                else record["description"]
            )
    return name
