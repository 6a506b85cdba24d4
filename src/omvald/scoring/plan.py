"""What a scoring run settles once, before the first bucket: the models and the scoring plan.

Scoring is one core driven by two engines. Each engine reads and validates
the input its own way (the local stage in memory, :mod:`omvald.spark.scoring`
bucket by bucket on Spark) and learns the same facts about the *whole*
input. From them :func:`plan_scoring` builds one :class:`ScoringPlan`; every
bucket is then scored by :func:`omvald.scoring.bucket.score_bucket` and the
results are merged and written by :mod:`omvald.scoring.finish`, on both
engines, so their outputs are identical.

Where additions go:

- facts about the whole input that every bucket must agree on (attribute
  kinds, the binding column, and population parameters fitted once per
  as-of date before the buckets, e.g. a BG/NBD fit): into the feature meta,
  built by :func:`whole_input_facts` alone; the engines compute their
  inputs from the whole input and pass them to :func:`plan_scoring`;
- checks that the input fits the models: in :func:`plan_scoring` (through
  :mod:`omvald.scoring.export_fit`), before any bucket is built;
- which models are scored: :func:`load_scoring_models`, the one place that
  calls the model loaders.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from omvald.config import Config, FeatureConfig
from omvald.data.contract import OPTIONAL
from omvald.errors import ConfigError, ModelError
from omvald.features.facts import AttributeFacts, attribute_meta
from omvald.features.registry import registry_entries
from omvald.features.spec import FeatureSpec
from omvald.io import read_json
from omvald.model.inputs import ModelInputs
from omvald.model.reference import REFERENCE_FILE, Reference
from omvald.scoring import export_fit
from omvald.scoring.select import ExplainPolicy
from omvald.scoring.value_tiers import check_shares

log = logging.getLogger(__name__)

MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
# Optional tables: with no rows in the whole input they still get every optional column (empty).
FILLABLE_TABLES = ("billing", "touchpoints")
EMPTY_COLUMN_DTYPES = {"date": "datetime64[us]", "timestamp": "datetime64[us]", "number": "float64", "bool": "bool"}


# --- models -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringModels:
    """The two estimators of a run, loaded once; ``phase_out`` is None when training skipped it.

    ``source`` says where they came from (the models folder or the
    ``models:/`` URI) for the summary. ``inputs``: what the exports they
    score must hold (``models/inputs.json``; None for models trained
    before it existed). ``reference`` is the training reference drift
    compares with (:mod:`omvald.model.reference`), or None with the reason
    in ``reference_missing``.
    """

    churn: Any
    phase_out: Any | None
    source: str
    inputs: ModelInputs | None = None
    reference: Reference | None = None
    reference_missing: str | None = None

    @property
    def columns(self) -> list[str]:
        """Every feature either model reads, churn model's order first."""
        trained = [m for m in (self.churn, self.phase_out) if m is not None]
        return list(dict.fromkeys(c for m in trained for c in m.feature_names_))


def load_scoring_models(models_dir: Path, model_uri: str | None, tracking_uri: str | None) -> ScoringModels:
    """The churn and phase-out estimators, from ``models_dir`` or from the MLflow registry.

    ``model_uri`` is ``models:/omvald-churn@<alias>``; the phase-out model
    comes from ``omvald-phase-out@<alias>`` (same alias), so a champion is
    always scored with its own phase-out partner. ``tracking_uri`` (from
    :func:`omvald.config.resolve_tracking_uri`) is needed with
    ``model_uri`` only.
    """
    if model_uri is None:
        from omvald.model.artifacts import load_model_file, model_path, skipped_targets
        from omvald.model.inputs import read_model_inputs

        skipped = skipped_targets(models_dir)
        models = []
        for target in ("churn", "phase_out"):
            path = model_path(models_dir, target)
            if target in skipped and target != "churn":
                log.warning("score: no %s model (%s); p_%s stays empty", target, skipped[target], target)
                models.append(None)
                continue
            if not path.exists():
                raise ModelError(f"{path}: model not found; run `omvald train` or pass --models-dir / --model-uri.")
            models.append(load_model_file(path))
        reference, missing = _reference(models_dir / REFERENCE_FILE)
        return ScoringModels(models[0], models[1], str(models_dir), read_model_inputs(models_dir), reference, missing)
    from omvald.errors import TrackingError
    from omvald.model.tracking import REGISTERED_NAMES, connect, load_pyfunc, missing_alias_message

    match = MODELS_URI.match(model_uri)
    if not match or match["name"] != REGISTERED_NAMES["churn"]:
        raise ConfigError(
            f"--model-uri {model_uri!r}: expected models:/{REGISTERED_NAMES['churn']}@<alias> "
            "(e.g. @champion); the phase-out model is taken from the same alias"
        )
    if tracking_uri is None:
        raise ConfigError("--model-uri needs an MLflow tracking URI (mlflow.tracking_uri or MLFLOW_TRACKING_URI)")
    connect(tracking_uri, must_exist=True)
    missing = missing_alias_message(tracking_uri, REGISTERED_NAMES["churn"], match["alias"])
    if missing is not None:
        raise ModelError(f"--model-uri {model_uri}: {missing}")
    models, inputs, reference = [], None, None
    for target in ("churn", "phase_out"):
        uri = uri_of(target, match["alias"])
        try:
            pyfunc = load_pyfunc(uri, tracking_uri)
        except TrackingError:
            raise
        except Exception as exc:  # MLflow raises several types for a missing model/alias/artifact
            raise ModelError(f"cannot load {uri} from {tracking_uri}: {exc}") from exc
        # The pyfunc wrapper only returns probabilities; reason codes need the estimator inside.
        inner = pyfunc.unwrap_python_model()
        models.append(inner.model)
        record = getattr(inner, "inputs", None)
        if target == "churn" and record is not None:
            inputs = ModelInputs.from_json(record)
        if target == "churn":
            reference = getattr(inner, "reference", None)
    if reference is None:
        return ScoringModels(
            models[0], models[1], model_uri, inputs, None,
            f"{uri_of('churn', match['alias'])} has no training reference (registered before drift existed): "
            "drift is not measured; retrain to get one",
        )  # fmt: skip
    parsed = _parsed(reference, f"{uri_of('churn', match['alias'])} (reference)")
    return ScoringModels(models[0], models[1], model_uri, inputs, parsed)


def uri_of(target: str, alias: str) -> str:
    """The registry URI of ``target``'s model under ``alias``."""
    from omvald.model.tracking import REGISTERED_NAMES

    return f"models:/{REGISTERED_NAMES[target]}@{alias}"


def _reference(path: Path) -> tuple[Reference | None, str | None]:
    """The training reference beside the models, or None and why not."""
    if not path.exists():
        return None, f"{path} not found (models trained before drift existed): drift is not measured; retrain"
    return _parsed(read_json(path), str(path)), None


def _parsed(data: Any, where: str) -> Reference:
    try:
        return Reference.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{where}: not a training reference this omvald can read ({exc}); retrain the models") from exc


# --- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringPlan:
    """Everything every bucket of a scoring run shares, settled before the first one (no models, no data).

    ``meta`` is the feature meta that :func:`omvald.features.build.build_features`
    takes (see :func:`whole_input_facts`); ``specs`` describe features in
    reason sentences; ``empty_tables`` have no rows in the whole input, so
    every bucket gives them all optional columns; ``source`` is the input
    folder (messages, summary); ``warnings`` are the input's data warnings.
    ``value_months`` is the value lookback and ``value_tiers`` the A/B
    revenue shares (:mod:`omvald.scoring.value_tiers`); ``drift_warn`` /
    ``drift_alert`` the PSI thresholds (``score.drift_*``).
    """

    as_of: dt.date
    policy: ExplainPolicy
    features: FeatureConfig
    risk_tiers: dict[str, float]
    meta: dict[str, Any]
    specs: dict[str, FeatureSpec]
    empty_tables: tuple[str, ...]
    n_buckets: int
    source: str
    warnings: tuple[str, ...] = ()
    value_months: int = 12
    value_tiers: dict[str, float] = field(default_factory=lambda: {"A": 0.8, "B": 0.15})
    drift_warn: float = 0.1
    drift_alert: float = 0.25

    @property
    def tier_order(self) -> list[str]:
        """Tier names, highest risk first, then ``low``."""
        return [*sorted(self.risk_tiers, key=lambda t: -float(self.risk_tiers[t])), "low"]


def scoring_buckets(cfg: Config) -> int:
    """Buckets a scoring run walks: ``score.chunk_buckets``, else ``features.n_buckets``."""
    return cfg.score.chunk_buckets or cfg.features.n_buckets


class CheckedInput(Protocol):
    """What an engine learned about the whole validated input (local :class:`ScoringInput`, Spark ``Validated``)."""

    meta: dict[str, Any]
    warnings: list[str]

    def attribute_facts(self) -> AttributeFacts: ...


def plan_for_input(
    cfg: Config,
    policy: ExplainPolicy,
    checked: CheckedInput,
    *,
    as_of: dt.date | None,
    source: str,
    population: dict[str, Any] | None,
    models: ScoringModels,
) -> ScoringPlan:
    """:func:`plan_scoring` from an engine's checked input: its meta, whole-input attribute facts and warnings."""
    return plan_scoring(
        cfg,
        policy,
        checked.meta,
        checked.attribute_facts(),
        as_of=as_of,
        source=source,
        warnings=checked.warnings,
        population=population,
        models=models,
    )


def plan_scoring(
    cfg: Config,
    policy: ExplainPolicy,
    meta: dict[str, Any],
    attributes: AttributeFacts,
    *,
    as_of: dt.date | None,
    source: str,
    warnings: Sequence[str] = (),
    population: dict[str, Any] | None = None,
    models: ScoringModels | None = None,
) -> ScoringPlan:
    """The plan of a run from the validated input's ``meta`` (interim ``meta.json`` content) and whole-input facts.

    ``as_of`` defaults to the input's ``data_end``. ``attributes`` come from
    the whole customers table, however the engine read it. ``population``:
    parameters fitted on the whole input at the as-of date (the BG/NBD fit,
    ``{"btyd": ...}``, see :func:`population_fit`). ``models``: the export
    is checked against them (:mod:`omvald.scoring.export_fit`): raises
    :class:`ModelError` when it does not fit, and adds warnings where the
    scores still mean what they say. Without them only the export is judged.
    """
    check_shares(cfg.score.value_tiers)
    if cfg.score.value_lookback_months < 1:
        raise ConfigError(f"score.value_lookback_months: must be >= 1, got {cfg.score.value_lookback_months}")
    empty = tuple(t for t in FILLABLE_TABLES if int(meta.get("rows", {}).get(t, 1)) == 0)
    feature_meta = whole_input_facts(meta, attributes, empty, population)
    if models is not None:
        feature_meta["contractual"] = export_fit.scored_definition(meta, models, cfg.features, source)
    entries = registry_entries(cfg.features, feature_meta)
    if models is not None:
        problem = export_fit.missing_features_problem(models, entries, feature_meta["columns"], source)
        if problem is not None:
            raise ModelError(problem)
    fit_warnings = export_fit.export_warnings(meta, models, entries, cfg.features, feature_meta["contractual"])
    for message in fit_warnings:
        log.warning("%s", message)
    return ScoringPlan(
        as_of=as_of or _as_date(meta["data_end"]),
        policy=policy,
        features=cfg.features,
        risk_tiers=dict(cfg.score.risk_tiers),
        meta=feature_meta,
        specs={e.spec.name: e.spec for e in entries},
        empty_tables=empty,
        n_buckets=scoring_buckets(cfg),
        source=source,
        warnings=tuple(str(w) for w in [*warnings, *fit_warnings]),
        value_months=cfg.score.value_lookback_months,
        value_tiers=dict(cfg.score.value_tiers),
        drift_warn=cfg.score.drift_warn,
        drift_alert=cfg.score.drift_alert,
    )


def whole_input_facts(
    meta: dict[str, Any],
    attributes: AttributeFacts,
    empty_tables: Sequence[str],
    population: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The feature meta every bucket is built with: the input's meta plus the facts decided on the whole input.

    - ``columns``: a table without rows gets every optional contract column
      (a header-only export often has just the required ones; with no rows,
      absent and empty mean the same);
    - ``attribute_kinds``, ``binding_column``: :func:`omvald.features.facts.attribute_meta`;
    - the row counts are left out: which features exist follows the columns,
      not the rows (an empty touchpoints table means "nobody had a
      touchpoint", counts of 0, not "no touchpoint data"; the registry drops
      a family whose table has no rows, which is right for training only).

    Population parameters fitted once per as-of date before the buckets go
    here too, from inputs the engines compute on the whole input.
    """
    out = {k: v for k, v in meta.items() if k != "rows"}
    columns = {t: list(c) for t, c in meta.get("columns", {}).items()}
    for table in empty_tables:
        have = columns.get(table, [])
        columns[table] = [*have, *empty_table_columns(table, have)]
    out["columns"] = columns
    out.update(attribute_meta(attributes))
    out.update(population or {})
    return out


def population_fit(
    cfg: Config,
    meta: dict[str, Any],
    billing: pd.DataFrame,
    as_of: dt.date | None,
    models: ScoringModels | None = None,
) -> dict[str, Any]:
    """Population parameters at the scoring date, fitted once on the whole input's ``billing``.

    A business without contracts gets the BG/NBD fit (``{"btyd": ...}``,
    :mod:`omvald.features.btyd_fit`) on its stable sample of customers, as
    the features stage fits it at each as-of date: every bucket then uses the
    same parameters. A contractual business has none (``{}``). With
    ``models``, the business is scored as the models were trained
    (:func:`omvald.scoring.export_fit.model_contractual`; an export that
    cannot be scored so is refused by :func:`plan_scoring`).
    """
    if scored_contractual(cfg, meta, models):
        return {}
    from omvald.features import btyd_fit

    return {"btyd": btyd_fit.fit_frame(billing, [as_of or _as_date(meta["data_end"])], cfg.features)}


def scored_contractual(cfg: Config, meta: dict[str, Any], models: ScoringModels | None) -> bool:
    """Whether the run scores by the contractual definition: the models' (:func:`export_fit.model_contractual`),
    else the input's."""
    if models is not None:
        return export_fit.model_contractual(models, cfg.features)
    return bool(meta.get("contractual", True))


def empty_table_columns(table: str, have: Sequence[str]) -> dict[str, str]:
    """The optional contract columns of ``table`` missing from ``have``, with the dtype an empty one gets."""
    return {c: EMPTY_COLUMN_DTYPES.get(kind, "str") for c, kind in OPTIONAL[table].items() if c not in have}


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
