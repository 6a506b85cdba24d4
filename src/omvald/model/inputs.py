"""What a trained model expects of the exports it scores, recorded at training and checked before scoring.

A model learned from one kind of export: a business with contracts or
without (``churn_date`` present or not), certain tables and columns, and
consent (``marketing_opt_in``) or not. An export that differs can make
scores silently wrong: without ``churn_date`` a contractual model would
score customers who have already left. So the train stage writes
``models/inputs.json`` (:class:`ModelInputs`) and logs it with every
registered model; :mod:`omvald.scoring.fit` compares each export with it
before any bucket is scored (docs/data-contract.md, "Scoring: the export
must fit the model").

Models written before this file existed have no record: scoring then reads
the business kind from the model's own features.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omvald.io import read_json

INPUTS_FILE = "inputs.json"
CONSENT_COLUMN = "marketing_opt_in"


@dataclass(frozen=True)
class ModelInputs:
    """The export a model was trained on, as far as scoring needs to know it.

    ``contractual``: the training export had ``churn_date`` (churn = a
    churn date within the horizon; else churn = no purchase within it).
    ``consent``: it had ``marketing_opt_in``. ``requires``: for each
    feature the model reads, the input columns it is built from, as
    ``"table.column"``. ``table_rows``: rows of ``billing`` and
    ``touchpoints`` in the training data (an empty table at scoring then
    reads as "no invoices" or "no contact" for everyone).
    """

    contractual: bool
    consent: bool
    requires: dict[str, list[str]] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)
    horizon_days: int | None = None

    def columns(self) -> list[str]:
        """Every ``"table.column"`` some feature needs, sorted."""
        return sorted({c for cols in self.requires.values() for c in cols})

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> ModelInputs:
        return cls(
            contractual=bool(record["contractual"]),
            consent=bool(record["consent"]),
            requires={k: list(v) for k, v in record.get("requires", {}).items()},
            table_rows={k: int(v) for k, v in record.get("table_rows", {}).items()},
            horizon_days=record.get("horizon_days"),
        )


def model_inputs(
    meta: Mapping[str, Any], registry: Iterable[Mapping[str, Any]], features: Iterable[str]
) -> ModelInputs:
    """The record of a model trained on ``features`` of the feature tables described by ``meta``.

    ``meta`` is ``data/features/meta.json`` (``contractual``, ``columns``,
    ``rows``, ``horizon_days``); ``registry`` is ``registry.json`` (each
    feature's ``requires``).
    """
    needs = {f["name"]: sorted(f.get("requires", [])) for f in registry}
    columns = meta.get("columns", {})
    rows = meta.get("rows", {})
    contractual = meta.get("contractual", "churn_date" in columns.get("customers", []))
    return ModelInputs(
        contractual=bool(contractual),
        consent=CONSENT_COLUMN in columns.get("customers", []),
        requires={name: needs[name] for name in features if name in needs},
        table_rows={t: int(rows[t]) for t in ("billing", "touchpoints") if t in rows},
        horizon_days=meta.get("horizon_days"),
    )


def read_model_inputs(models_dir: Path) -> ModelInputs | None:
    """``models_dir/inputs.json``, or None for models trained before it existed."""
    path = Path(models_dir) / INPUTS_FILE
    return ModelInputs.from_json(read_json(path)) if path.exists() else None
