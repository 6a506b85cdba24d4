"""MLflow tracking and registry: the only module in omvald that calls ``mlflow``.

One parent run per pipeline execution (the train stage creates it) with a
child run per model (``churn``, ``phase_out``), and under each, one run per
trial of the LightGBM search (``churn-trial-3``: its settings as params,
validation AUC, log loss, trees and seconds as metrics; three MLflow calls a
trial, so a search stays cheap with the SQLite store). Their ids go to
``models/run.json``; evaluate, explain and report reopen the same runs with
:func:`log_to_run` to add metrics and artifacts, so one run shows the whole
pipeline. Each model is logged as a pyfunc returning calibrated
probabilities and registered as a new version with alias ``candidate``;
``omvald promote`` moves ``champion``. The pyfunc is the scoring fit (what
``omvald score`` uses); the holdout fit (the one evaluated) is an extra
artifact of the same version, ``holdout``, which promote compares, and so is
the training reference, ``reference`` (``models/reference.json``), which
drift at scoring time compares with.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import re
import subprocess
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.exceptions import MlflowException

from omvald.config import MlflowConfig, resolve_tracking_uri
from omvald.errors import ModelError, TrackingError
from omvald.io import read_json

log = logging.getLogger(__name__)

REGISTERED_NAMES = {"churn": "omvald-churn", "phase_out": "omvald-phase-out"}
OUTPUT_COLUMNS = {"churn": "p_churn", "phase_out": "p_phase_out_if_stays"}
CANDIDATE, CHAMPION = "candidate", "champion"
# MLflow retries a request 7 times with a doubling back-off by default: a server that is down
# hangs a command for minutes in silence. Ours retry twice within about a second (no back-off, up
# to 1 s of MLflow's jitter), so a stopped server fails a command within seconds even though a
# failed run still makes a few requests to close itself; a value in the environment wins.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PROBE_TIMEOUT_S = 5.0


def connect(tracking_uri: str, *, must_exist: bool = False) -> str:
    """Check, before any work, that the tracking store at ``tracking_uri`` answers; return the URI.

    For a server (``http(s)://``) this sets MLflow's retry and timeout
    defaults (:data:`HTTP_DEFAULTS`, unless set in the environment) and
    asks it for ``/health``: any HTTP answer will do, no answer within
    :data:`PROBE_TIMEOUT_S` seconds is a :class:`TrackingError` naming the
    URI. ``must_exist``: a command that only reads (scoring from the
    registry, promote) refuses a SQLite store file that does not exist
    instead of creating an empty one.
    """
    if tracking_uri.startswith(("http://", "https://")):
        import requests

        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        try:
            requests.get(tracking_uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S)
        except requests.RequestException as exc:
            raise TrackingError(
                f"the MLflow tracking server at {tracking_uri} does not answer ({_short(exc)}). Start it, or set "
                "MLFLOW_TRACKING_URI (or mlflow.tracking_uri in params.yaml) to one that runs. Nothing was written."
            ) from None
    elif must_exist and tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri[len("sqlite:///") :])
        if not path.exists():
            raise TrackingError(
                f"no MLflow store at {tracking_uri} ({path} does not exist). Run `omvald train` first (it logs and "
                "registers the models there), or set MLFLOW_TRACKING_URI to the store that holds them."
            )
    return tracking_uri


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def lost_server(exc: BaseException) -> bool:
    """Whether ``exc`` says the tracking server did not answer (not that it answered "no such run")."""
    import requests

    if isinstance(exc, requests.RequestException):
        return True
    text = str(exc)
    return isinstance(exc, MlflowException) and "API request to" in text and "failed with" in text


@contextlib.contextmanager
def talking_to(tracking_uri: str, doing: str) -> Any:
    """Turn a server that stops answering during ``doing`` into a :class:`TrackingError` naming the URI."""
    try:
        yield
    except Exception as exc:
        if not lost_server(exc):
            raise
        raise TrackingError(
            f"the MLflow tracking server at {tracking_uri} stopped answering while {doing} ({_short(exc)}). "
            "Check that it runs and retry."
        ) from None


@dataclass(frozen=True)
class TrackingContext:
    """Where and how to log; built once in the CLI (which reads the environment)."""

    tracking_uri: str
    experiment: str = "omvald"
    register_models: bool = True
    artifact_location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def context_from_env(cfg: MlflowConfig, env: Mapping[str, str], repo_dir: str | Path = ".") -> TrackingContext:
    """The tracking context of ``omvald train`` / ``promote``: :func:`omvald.config.resolve_tracking_uri`, plus tags.

    ``DVC_EXP_NAME`` (set by ``dvc exp run``) and the git commit become tags.
    """
    tags = {}
    commit = git_commit(repo_dir)
    if commit:
        tags["git_commit"] = commit
    if env.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = env["DVC_EXP_NAME"]
    return TrackingContext(
        tracking_uri=resolve_tracking_uri(cfg, env),
        experiment=cfg.experiment,
        register_models=cfg.register_models,
        tags=tags,
    )


def git_commit(repo_dir: str | Path = ".") -> str | None:
    """``git rev-parse HEAD``, or None outside a repository / before the first commit."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class OmvaldModelWrapper(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a fitted omvald estimator: a feature frame in, a 1-column frame of calibrated probabilities out."""

    def __init__(self, output_column: str = "probability") -> None:
        self.output_column = output_column

    def load_context(self, context: Any) -> None:
        self.model = joblib.load(context.artifacts["model"])
        # versions registered before the refit existed have no holdout fit: their one model was evaluated
        holdout = context.artifacts.get("holdout")
        self.holdout = joblib.load(holdout) if holdout else None
        # what the exports it scores must hold (omvald.model.inputs); None for versions registered before it
        inputs = context.artifacts.get("inputs")
        self.inputs = read_json(inputs) if inputs else None
        # versions registered before drift existed have no training reference: scoring then skips drift
        reference = context.artifacts.get("reference")
        self.reference = read_json(reference) if reference else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        p = self.model.predict_proba(model_input)[:, 1]
        return pd.DataFrame({self.output_column: p}, index=model_input.index)


@dataclass(frozen=True)
class ModelToLog:
    """One fitted model for a child run: the estimator, its saved joblib and what to record with it."""

    target: str
    model: Any
    path: Path
    example: pd.DataFrame
    holdout_path: Path | None = None
    inputs_path: Path | None = None
    reference_path: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    # search trials: {"number", "params": {...}, "metrics": {...}, "tags": {...}}, one child run each
    trials: tuple[dict[str, Any], ...] = ()


def log_training(
    ctx: TrackingContext,
    *,
    params: Mapping[str, Any],
    training_path: Path,
    training: pd.DataFrame,
    input_files: Iterable[Path],
    training_shape: tuple[int, int] | None = None,
    tags: Mapping[str, str],
    models: Iterable[ModelToLog],
) -> dict[str, Any]:
    """Create the parent run and one child run per model; return the ``run.json`` content.

    Logs every parameter, the training frame as a dataset input (digest =
    SHA-256 of the Parquet file; ``training`` may be its first rows, with the
    whole table's ``training_shape`` for the dataset's profile), ``input_files`` (feature meta, registry,
    split) as artifacts, the model as a pyfunc with signature and input
    example, and registers it with alias ``candidate``.
    """
    with talking_to(ctx.tracking_uri, "logging the training run"):
        return _log_training(ctx, params, training_path, training, input_files, training_shape, tags, models)


def _log_training(
    ctx: TrackingContext,
    params: Mapping[str, Any],
    training_path: Path,
    training: pd.DataFrame,
    input_files: Iterable[Path],
    training_shape: tuple[int, int] | None,
    tags: Mapping[str, str],
    models: Iterable[ModelToLog],
) -> dict[str, Any]:
    experiment_id = _setup(ctx)
    digest = file_digest(training_path)
    with _quiet():
        dataset = mlflow.data.from_pandas(training, source=str(training_path), name="features/training", digest=digest)
        if training_shape is not None:
            dataset = _WholeTableDataset(dataset, training_shape)
    run_tags = {**ctx.tags, **tags, "training_digest": digest}
    info: dict[str, Any] = {"tracking_uri": ctx.tracking_uri, "experiment_id": experiment_id, "runs": {}, "models": {}}
    with _quiet(), mlflow.start_run(experiment_id=experiment_id, run_name="pipeline", tags=run_tags) as parent:
        info["parent_run_id"] = parent.info.run_id
        mlflow.log_params(_params(params))
        mlflow.log_input(dataset, context="training")
        for path in input_files:
            mlflow.log_artifact(str(path), artifact_path="inputs")
        for item in models:
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=item.target,
                nested=True,
                tags={**run_tags, **item.tags, "target": item.target},
            ) as child:
                info["runs"][item.target] = child.info.run_id
                mlflow.log_params(_params({**params, **item.params}))
                if item.metrics:
                    mlflow.log_metrics(flatten_metrics(item.metrics))
                mlflow.log_input(dataset, context="training")
                info["models"][item.target] = _log_model(ctx, item)
                _log_trials(ctx.tracking_uri, experiment_id, child.info.run_id, item)
    return info


class _WholeTableDataset(PandasDataset):
    """A dataset whose schema is read from the table's first rows and whose profile counts the whole table."""

    def __init__(self, sample: PandasDataset, shape: tuple[int, int]) -> None:
        super().__init__(sample.df, sample.source, name=sample.name, digest=sample.digest)
        self._shape = shape

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": self._shape[0], "num_elements": self._shape[0] * self._shape[1]}


def _log_trials(tracking_uri: str, experiment_id: str, parent_id: str, item: ModelToLog) -> None:
    """One finished child run per search trial under ``parent_id``: create, one batch, terminate."""
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow_client(tracking_uri)
    for trial in item.trials:
        run = client.create_run(
            experiment_id,
            run_name=f"{item.target}-trial-{trial['number']}",
            tags={"mlflow.parentRunId": parent_id, "target": item.target, "search_trial": str(trial["number"])},
        )
        stamp = int(run.info.start_time or 0)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in flatten_metrics(trial.get("metrics", {})).items()],
            params=[Param(k, v) for k, v in _params(trial.get("params", {})).items()],
            tags=[RunTag(k, str(v)) for k, v in trial.get("tags", {}).items()],
        )
        client.set_terminated(run.info.run_id)


def _log_model(ctx: TrackingContext, item: ModelToLog) -> dict[str, Any]:
    column = OUTPUT_COLUMNS.get(item.target, "probability")
    example = _signature_frame(item.example)
    output = pd.DataFrame({column: item.model.predict_proba(item.example)[:, 1]})
    name = REGISTERED_NAMES.get(item.target, f"omvald-{item.target}") if ctx.register_models else None
    model_info = mlflow.pyfunc.log_model(
        name=item.target,
        python_model=OmvaldModelWrapper(column),
        artifacts={
            "model": str(item.path),
            **({"holdout": str(item.holdout_path)} if item.holdout_path else {}),
            **({"inputs": str(item.inputs_path)} if item.inputs_path else {}),
            **({"reference": str(item.reference_path)} if item.reference_path else {}),
        },
        signature=_signature(example, output),
        input_example=example.head(5),
        pip_requirements=_requirements(),
        registered_model_name=name,
    )
    out: dict[str, Any] = {"model_uri": model_info.model_uri, "model_id": model_info.model_id}
    if name:
        version = str(model_info.registered_model_version)
        mlflow_client(ctx.tracking_uri).set_registered_model_alias(name, CANDIDATE, version)
        out.update(registered_name=name, version=version)
    return out


def log_to_run(
    run_json: Path | Mapping[str, Any],
    *,
    target: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    artifacts: Iterable[Path] = (),
    artifact_path: str | None = None,
    tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Reopen the parent run (``target=None``) or a model's child run from ``run.json`` and add to it.

    ``metrics`` may be nested (flattened to ``a.b.c``; non-numbers skipped);
    ``artifacts`` are files logged under ``artifact_path``. ``tracking_uri``:
    the commands pass :func:`omvald.config.resolve_tracking_uri`'s; without one, the store
    ``run.json`` recorded the run in. Returns the run id.
    """
    info = read_json(run_json) if isinstance(run_json, Path) else dict(run_json)
    uri = tracking_uri or info["tracking_uri"]
    run_id = info["parent_run_id"] if target is None else info["runs"].get(target)
    if run_id is None:
        raise ModelError(
            f"run.json has no run for model '{target}' (known: {', '.join(info['runs'])}); rerun `omvald train`."
        )
    mlflow.set_tracking_uri(uri)
    with talking_to(uri, f"logging to run {run_id}"), _quiet(), mlflow.start_run(run_id=run_id):
        if metrics:
            flat = flatten_metrics(metrics)
            for start in range(0, len(flat), 500):
                mlflow.log_metrics(dict(list(flat.items())[start : start + 500]))
        if tags:
            mlflow.set_tags(dict(tags))
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)
    return run_id


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested dict -> ``{"a.b.c": float}``; keys made MLflow-safe (``<12`` -> ``lt12``, ``24+`` -> ``24plus``)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = prefix + _safe_key(str(key))
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}."))
        elif isinstance(value, int | float | np.number) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


# --- registry: aliases for promote --------------------------------------------------------------


def alias_version(tracking_uri: str, name: str, alias: str) -> str | None:
    """Version number behind ``name@alias``, or None when the model or alias does not exist.

    A server that does not answer is a :class:`TrackingError`, never "no such alias".
    """
    try:
        return str(mlflow_client(tracking_uri).get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if lost_server(exc):
            with talking_to(tracking_uri, f"looking up {name}@{alias}"):
                raise
        return None


def missing_alias_message(tracking_uri: str, name: str, alias: str) -> str | None:
    """None when ``models:/name@alias`` exists; else what is there instead and what to run."""
    if alias_version(tracking_uri, name, alias) is not None:
        return None
    with talking_to(tracking_uri, f"looking up {name}"):
        try:
            aliases = mlflow_client(tracking_uri).get_registered_model(name).aliases
        except MlflowException as exc:
            if lost_server(exc):
                raise
            return (
                f"no model is registered as {name} at {tracking_uri}. `omvald train` (with MLflow) registers every "
                "trained model there with the alias 'candidate'; then `omvald promote` makes one the 'champion'."
            )
    present = ", ".join(f"@{a} (version {v})" for a, v in sorted(aliases.items())) or "none"
    hint = (
        "Run `omvald promote` first: it moves 'champion' to the candidate (the first time without comparing), "
        f"or score the candidate with --model-uri models:/{name}@{CANDIDATE}."
        if alias == CHAMPION
        else "Use one of the aliases that exist."
    )
    return f"{name} has no version with the alias '{alias}' at {tracking_uri} (aliases: {present}). {hint}"


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    with talking_to(tracking_uri, f"moving {name}@{alias}"):
        mlflow_client(tracking_uri).set_registered_model_alias(name, alias, str(version))


def version_run_id(tracking_uri: str, name: str, version: str) -> str | None:
    with talking_to(tracking_uri, f"reading {name} version {version}"):
        return mlflow_client(tracking_uri).get_model_version(name, str(version)).run_id


def predict_registered(
    tracking_uri: str, name: str, alias: str, frame: pd.DataFrame, holdout: bool = False
) -> tuple[np.ndarray, str]:
    """Probabilities of ``models:/name@alias`` for ``frame``, and which fit gave them.

    ``holdout=True`` scores the version's holdout fit (the evaluated one,
    which did not see its test window) when it has one, else its model;
    the second value is ``"holdout"`` or ``"scoring"``.
    """
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        with talking_to(tracking_uri, f"loading {name}@{alias}"), _quiet():
            model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
            inner = model.unwrap_python_model()
            if holdout and getattr(inner, "holdout", None) is not None:
                return inner.holdout.predict_proba(frame)[:, 1].astype(float), "holdout"
            return model.predict(pyfunc_input(frame)).iloc[:, 0].to_numpy(dtype=float), "scoring"
    except MlflowException as exc:
        raise ModelError(f"cannot score {name}@{alias} on the current test rows: {exc.message}") from exc


def model_version(tracking_uri: str, name: str, alias_or_version: str) -> dict[str, Any]:
    """``{name, version, run_id, model_id, metrics}`` of ``name@alias`` or ``name/version``: what monitor reports to.

    ``metrics`` are the version's run metrics (evaluate logs ``test.*`` there).
    """
    client = mlflow_client(tracking_uri)
    try:
        if alias_or_version.isdigit():
            found = client.get_model_version(name, alias_or_version)
        else:
            found = client.get_model_version_by_alias(name, alias_or_version)
    except MlflowException as exc:
        raise ModelError(f"no model version {name}@{alias_or_version} in {tracking_uri}: {exc.message}") from exc
    metrics = dict(client.get_run(found.run_id).data.metrics) if found.run_id else {}
    return {
        "name": name,
        "version": str(found.version),
        "run_id": found.run_id,
        "model_id": getattr(found, "model_id", None),
        "metrics": metrics,
    }


def log_monitoring(
    tracking_uri: str,
    experiment: str,
    *,
    as_of: str,
    versions: Mapping[str, Mapping[str, Any]],
    metrics: Mapping[str, Mapping[str, Any]],
    flags: Iterable[str],
    artifact: Path | None = None,
) -> str:
    """One ``monitor <as_of>`` run: realized metrics per target, linked to its model version; returns the run id.

    ``versions``: ``{target: {name, version, model_id}}``; ``metrics``:
    ``{target: nested metrics}`` (logged as ``realized.<...>`` with the
    version's ``model_id``, so they show on the model); each version also
    gets the tags ``monitor.<as_of>.roc_auc`` and ``monitor.<as_of>.flagged``.
    """
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    flags = list(flags)
    experiment_id = _setup(TrackingContext(tracking_uri=tracking_uri, experiment=experiment))
    tags = {"omvald.stage": "monitor", "as_of": as_of, "flagged": str(bool(flags)).lower()}
    tags.update({f"model.{t}": f"{v['name']}/{v['version']}" for t, v in versions.items()})
    client = mlflow_client(tracking_uri)
    with _quiet(), mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor {as_of}", tags=tags) as run:
        for target, values in metrics.items():
            flat = flatten_metrics({"realized": {target: values}})
            model_id = (versions.get(target) or {}).get("model_id")
            for start in range(0, len(flat), 500):
                mlflow.log_metrics(dict(list(flat.items())[start : start + 500]), model_id=model_id)
        if flags:
            mlflow.set_tag("flags", " | ".join(flags)[:5000])
        if artifact is not None:
            mlflow.log_artifact(str(artifact), artifact_path="monitor")
        for target, v in versions.items():
            auc = (metrics.get(target) or {}).get("roc_auc")
            if auc is not None:
                client.set_model_version_tag(v["name"], v["version"], f"monitor.{as_of}.roc_auc", f"{auc:.4f}")
            flagged = any(f.startswith(target.replace("_", "-")) for f in flags)
            client.set_model_version_tag(v["name"], v["version"], f"monitor.{as_of}.flagged", str(flagged).lower())
        return run.info.run_id


def load_pyfunc(model_uri: str, tracking_uri: str) -> Any:
    """The pyfunc at ``model_uri``; a server that stops answering is a :class:`TrackingError`."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with talking_to(tracking_uri, f"loading {model_uri}"), _quiet():
        return mlflow.pyfunc.load_model(model_uri)


def file_digest(path: Path, length: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


# --- helpers ------------------------------------------------------------------------------------


def _setup(ctx: TrackingContext) -> str:
    mlflow.set_tracking_uri(ctx.tracking_uri)
    mlflow.set_registry_uri(ctx.tracking_uri)
    with _quiet():
        client = mlflow_client(ctx.tracking_uri)
        experiment = client.get_experiment_by_name(ctx.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(ctx.experiment, artifact_location=ctx.artifact_location)


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client on ``tracking_uri`` (tracking and registry); read-only callers use it too."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _params(params: Mapping[str, Any]) -> dict[str, str]:
    return {_safe_key(k): ("null" if v is None else str(v))[:6000] for k, v in params.items()}


def _safe_key(key: str) -> str:
    key = key.replace("<", "lt").replace(">", "gt").replace("+", "plus")
    return re.sub(r"[^\w\-./ ]", "_", key)


def pyfunc_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain strings: MLflow's schema enforcement refuses pandas ``category`` columns."""
    return _signature_frame(frame)


def _signature(example: pd.DataFrame, output: pd.DataFrame) -> Any:
    """Signature with every input column optional: a feature may be missing (NaN) for any customer."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inferred = mlflow.models.infer_signature(example, output)
    inputs = Schema([ColSpec(c.type, c.name, required=False) for c in inferred.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs)


def _signature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype("string").astype(object)
    return out


def _requirements() -> list[str]:
    # Pinned explicitly: MLflow's inference would load the model in a subprocess (slow, noisy).
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}"
        for pkg in ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy", "joblib", "pyarrow")
    ]


class _quiet:
    """Keep MLflow and alembic quiet for a block: their INFO logs, warnings, prints and progress bars.

    What they print is captured and shown at debug level (or re-logged when the block fails).
    """

    def __enter__(self) -> _quiet:
        names = [
            "mlflow",
            "alembic",
            *[n for n in logging.root.manager.loggerDict if n.startswith(("mlflow.", "alembic."))],
        ]
        self._levels = {n: logging.getLogger(n).level for n in names}
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")
        warnings.filterwarnings("ignore", message=".*dataset source can be interpreted.*")
        self._buffer = io.StringIO()
        self._redirects = [contextlib.redirect_stdout(self._buffer), contextlib.redirect_stderr(self._buffer)]
        for r in self._redirects:
            r.__enter__()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        for r in reversed(self._redirects):
            r.__exit__(None, None, None)
        self._warnings.__exit__(None, None, None)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        captured = self._buffer.getvalue().strip()
        if captured:
            log.log(logging.WARNING if exc_type else logging.DEBUG, "mlflow output:\n%s", captured)
