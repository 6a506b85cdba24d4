"""Does the export fit the models? Checked once per scoring run, before the first bucket, on both engines.

A model learned from one kind of export (:class:`omvald.model.inputs.ModelInputs`,
``models/inputs.json``). Scoring an export that differs either stops with
a message, or, where the scores still mean what they say, goes on with a
warning in the log, the summary and the report (docs/data-contract.md,
"Scoring: the export must fit the model"):

- a contractual model and an export without ``churn_date``: stop. The
  export would be scored by the other churn definition (anyone with a
  recent invoice), customers who have already left among them;
- a model without contracts and an export with ``churn_date``: scored by
  the model's definition (a recent invoice), and customers whose
  ``churn_date`` is on or before the as-of date are left out (the
  population spine never takes them);
- columns the models' features are built from are missing: stop, naming
  the columns and the features in them;
- ``billing`` or ``touchpoints`` without rows: warn, saying what everyone's
  features and revenue at risk then are;
- no ``marketing_opt_in``: warn that nobody is contactable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from omvald.config import FeatureConfig
from omvald.errors import ModelError
from omvald.features import btyd, purchases
from omvald.features.registry import RegistryEntry
from omvald.model.inputs import CONSENT_COLUMN

if TYPE_CHECKING:
    from omvald.scoring.plan import ScoringModels

SHOWN_FEATURES = 4


def model_contractual(models: ScoringModels, cfg: FeatureConfig) -> bool:
    """Whether the models were trained on a business with contracts.

    From their record; a model trained before records existed is contractual
    unless it reads purchase-history or BG/NBD features, which only a
    business without contracts has.
    """
    if models.inputs is not None:
        return models.inputs.contractual
    only_without_contracts = {s.name for s in [*purchases.purchase_feature_specs(cfg), *btyd.btyd_feature_specs(cfg)]}
    return not only_without_contracts & set(models.columns)


def scored_definition(meta: Mapping[str, Any], models: ScoringModels, cfg: FeatureConfig, source: str) -> bool:
    """The churn definition the export is scored by (True: contractual): the models'.

    Raises :class:`ModelError` for a contractual model and an export
    without ``churn_date``.
    """
    model = model_contractual(models, cfg)
    if model and not meta.get("contractual", True):
        raise ModelError(
            f"{source}: the customers table has no churn_date column, but the models were trained on a business "
            f"with contracts (churn = a churn_date within {cfg.horizon_days} days). Without it, customers who have "
            "already left cannot be told from those who stay, and would be scored (and some marked contactable). "
            "Add churn_date to the export (empty for customers who have not left), or train on exports without it."
        )
    return model


def missing_features_problem(
    models: ScoringModels, entries: Sequence[RegistryEntry], columns: Mapping[str, Sequence[str]], source: str
) -> str | None:
    """Why the export cannot give features the models read, grouped by missing column; None when it can.

    ``entries`` are the export's registry entries (availability of every
    feature), ``columns`` its columns per table (empty tables already given
    their optional columns).
    """
    available = {e.spec.name for e in entries if e.available}
    missing = [name for name in models.columns if name not in available]
    if not missing:
        return None
    recorded = models.inputs.requires if models.inputs is not None else {}
    reasons = {e.spec.name: e.missing_reason for e in entries}
    have = {f"{table}.{c}" for table, cols in columns.items() for c in cols}
    causes: dict[str, list[str]] = {}
    for name in missing:
        absent = [c for c in recorded.get(name, []) if c not in have]
        if not absent and name.startswith("attr_") and name not in reasons:
            absent = [f"customers.{name[len('attr_') :]}"]
        if absent:
            cause = f"no column {', '.join(absent)}"
        else:
            cause = reasons.get(name) or "not built by this version of omvald (the models come from another one)"
        causes.setdefault(cause, []).append(name)
    lines = []
    for cause, names in causes.items():
        shown = ", ".join(names[:SHOWN_FEATURES]) + (
            f" and {len(names) - SHOWN_FEATURES} more" if len(names) > SHOWN_FEATURES else ""
        )
        lines.append(f"  - {cause}: {shown}")
    return (
        f"{source} does not fit the models: they read {len(missing)} feature(s) this export cannot give.\n"
        + "\n".join(lines)
        + "\nAdd the missing columns (with the meaning they had in the training export), or train on exports "
        "like this one."
    )


def export_warnings(
    meta: Mapping[str, Any],
    models: ScoringModels | None,
    entries: Sequence[RegistryEntry],
    cfg: FeatureConfig,
    contractual: bool,
) -> list[str]:
    """Warnings for an export that scores, but not as well as it looks (module docstring).

    ``meta`` is the export's (its ``rows``, ``columns`` and
    ``contractual``); ``contractual`` the definition it is scored by.
    """
    rows = meta.get("rows", {})
    customers = meta.get("columns", {}).get("customers", [])
    used = set(models.columns) if models is not None else set()
    reads = {e.spec.name: {t for t, _ in e.spec.requires} for e in entries}
    warnings = []
    if meta.get("contractual") and not contractual:
        warnings.append(
            "customers: the export has churn_date, but the models were trained on a business without contracts "
            f"(churn = no purchase within {cfg.horizon_days} days): scored by the models' definition (customers "
            f"with an invoice in the last {cfg.lookback_days} days); customers whose churn_date is on or before "
            "the as-of date are left out"
        )
    if int(rows.get("billing", 1)) == 0:
        n = sum("billing" in reads.get(name, ()) for name in used)
        also = f", and the models' {n} billing feature(s) read as 'no invoices'" if n else ""
        warnings.append(
            "billing: no rows (a header-only file, or no file): monthly revenue and revenue at risk are 0 for "
            f"every customer{also}; --explain top:N then cannot rank by revenue at risk (use risk:P)"
        )
    if int(rows.get("touchpoints", 1)) == 0:
        n = sum("touchpoints" in reads.get(name, ()) for name in used)
        trained = models.inputs.table_rows.get("touchpoints", 1) if models is not None and models.inputs else 1
        if n and trained:
            warnings.append(
                f"touchpoints: no rows: the models' {n} touchpoint feature(s) read as 'no contact' for every "
                "customer, unlike the training data"
            )
    if CONSENT_COLUMN not in customers:
        had = models is not None and models.inputs is not None and models.inputs.consent
        warnings.append(
            f"customers: no {CONSENT_COLUMN} column: nobody is contactable (contactable is false on every row)"
            + ("; the training export had it" if had else "")
        )
    return warnings
