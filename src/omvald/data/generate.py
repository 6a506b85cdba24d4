"""The synthetic subscription business behind ``omvald generate``.

A telecom/broadband-like company: customers sign up over the months (plus an
initial base that already exists at the start), pay monthly invoices with
yearly price increases for existing customers while list prices for new
customers stay nearly flat (a loyalty gap that grows with tenure), and
interact over e-mail, app/web, phone and chat. About ``passive_share`` of
them are *passive*: they only receive (invoices, e-mails) and are inert
until a price shock; active ones log in, open e-mails, answer NPS surveys
and react to complaints and falling satisfaction. Customers churn or first
*phase out* (downgrade, drop products, use less) and often churn later.

``generate.business`` picks the business: ``subscription`` (this one, the
default), or the purchase-only ``purchases`` / ``purchases_btyd``
(:mod:`omvald.data.generate_purchases`). Asked for, each also writes every
customer's true churn and phase-out probabilities at each month end
(:mod:`omvald.data.generate_truth`).

Layers: :func:`generate_chunk` (pure: config + seed -> Arrow tables for one
chunk of customers), :func:`generate_business` (all chunks as DataFrames, for
tests and notebooks) and :func:`run_generate` (streams chunks to files
atomically). Same params and seed -> byte-identical files; each chunk draws
from its own generator seeded by ``(seed, chunk index)``, so the output also
depends on ``chunk_size``. The true probabilities draw nothing from it (their
Monte Carlo has its own stream), so asking for them changes no other file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from omvald.config import Config, FeatureConfig, GenerateConfig
from omvald.data import generate_truth_purchases, generate_truth_subscription
from omvald.data.generate_customers import (
    Calendar,
    Customers,
    customer_ids,
    customers_table,
    draw_customers,
    plan_order,
)
from omvald.data.generate_export import export_as_of
from omvald.data.generate_purchase_steps import Mechanisms
from omvald.data.generate_purchases import (
    PURCHASE_BUSINESSES,
    check_purchase_config,
    draw_buyers,
    purchase_calendar,
    purchase_tables,
    season_clock,
    simulate_purchases,
)
from omvald.data.generate_sim import (
    CHANNELS,
    CHURN_DRIVERS,
    DIRECTIONS,
    EVENTS,
    PHASE_OUT_DRIVERS,
    SimResult,
    simulate,
)
from omvald.errors import ConfigError
from omvald.io import atomic_path

TABLES = ("customers", "billing", "touchpoints")
_OUTAGE_STREAM = 1_000_003  # generator id for regional outages, shared by all chunks
_ORACLE_STREAM = 1_000_033  # generator id (with the chunk) of the true probabilities' Monte Carlo
_SHIFT_STREAM = 1_000_037  # generator id (with the chunk) of what only generate.shift draws


@dataclass(frozen=True)
class ChunkTables:
    """One chunk of customers: the three contract tables, the ground truth and, if asked, the true probabilities."""

    customers: pa.Table
    billing: pa.Table
    touchpoints: pa.Table
    truth: pa.Table
    probabilities: pa.Table | None = None


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype("datetime64[D]"), pa.date32(), mask=days < 0)


def _labels(codes: np.ndarray, names: list[str]) -> pa.Array:
    valid = codes >= 0
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array(np.where(valid, codes, 0).astype(np.int32), mask=~valid), pa.array(names, pa.string())
    )
    return dictionary.cast(pa.string())


def _check(cfg: GenerateConfig) -> None:
    if cfg.n_customers < 1 or cfg.months < 2 or cfg.chunk_size < 1:
        raise ConfigError("generate: n_customers and chunk_size must be >= 1 and months >= 2")
    if not 0.0 <= cfg.passive_share <= 1.0:
        raise ConfigError(f"generate.passive_share: must be in [0, 1], got {cfg.passive_share}")
    if not 0.0 <= cfg.price_increase_min <= cfg.price_increase_max:
        raise ConfigError("generate: need 0 <= price_increase_min <= price_increase_max")
    check_purchase_config(cfg)
    shift = cfg.shift
    if shift.month is not None:
        if cfg.business in PURCHASE_BUSINESSES:
            raise ConfigError("generate.shift: the shift is part of the subscription business; set shift.month: null")
        if not 0 < shift.month < cfg.months:
            raise ConfigError(
                f"generate.shift.month: {shift.month} must be between 1 and months - 1 ({cfg.months - 1})"
            )
    if shift.billing_change <= -1 or not 0 <= shift.new_channel_share <= 1 or shift.competitor_churn < 0:
        raise ConfigError(
            "generate.shift: billing_change must be above -1, new_channel_share in [0, 1] and competitor_churn >= 0"
        )


def n_chunks(cfg: GenerateConfig) -> int:
    return -(-cfg.n_customers // cfg.chunk_size)


def generate_chunk(cfg: GenerateConfig, seed: int, chunk: int, features: FeatureConfig | None = None) -> ChunkTables:
    """Simulate customers ``chunk * chunk_size ...`` and return their tables, sorted by customer and date.

    With ``features`` (horizon, phase-out drop, lookback) also their true probabilities at each month end.
    """
    _check(cfg)
    if cfg.business in PURCHASE_BUSINESSES:
        return _purchase_chunk(cfg, seed, chunk, features)
    cal = Calendar.from_config(cfg)
    outages = (
        np.random.default_rng([seed, _OUTAGE_STREAM]).random((len(cfg.region_shares), cal.months)) < cfg.outage_rate
    )
    rng = np.random.default_rng([seed, chunk])
    first = chunk * cfg.chunk_size
    n = min(cfg.chunk_size, cfg.n_customers - first)
    cust = draw_customers(cfg, cal, rng, first, n)
    shift_rng = np.random.default_rng([seed, chunk, _SHIFT_STREAM])
    sim = simulate(cfg, cal, cust, outages, rng, record=features is not None, shift_rng=shift_rng)
    ids = customer_ids(first, n, width=max(7, len(str(cfg.n_customers))))
    billing, touchpoints, truth = subscription_tables(cfg, cust, sim, ids)
    probabilities = None
    if features is not None:
        rows = generate_truth_subscription.subscription_probabilities(cfg, cal, cust, sim, features)
        probabilities = rows.table(ids, generate_truth_subscription.DRIVERS)
    customers = customers_table(cfg, cust, ids, churn_dates(sim), rng)
    return ChunkTables(customers, billing, touchpoints, truth, probabilities)


def churn_dates(sim: SimResult) -> np.ndarray:
    """The customers' churn dates (``NaT`` = still a customer at the end of data)."""
    churn_date = sim.churn_day.astype("datetime64[D]")
    churn_date[sim.churn_day < 0] = np.datetime64("NaT")
    return churn_date


def subscription_tables(
    cfg: GenerateConfig, cust: Customers, sim: SimResult, ids: pa.Array
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The ``billing`` and ``touchpoints`` tables and the ground truth of a simulated chunk, sorted by customer."""
    b = sim.billing
    order = np.lexsort((b["date"], b["cust"]))
    billing = pa.table(
        {
            "customer_id": ids.take(pa.array(b["cust"][order])),
            "invoice_date": _dates(b["date"][order]),
            "amount": pa.array(b["amount"][order], pa.float64()),
            "list_price": pa.array(b["list_price"][order], pa.float64(), from_pandas=True),
            "due_date": _dates(b["due"][order]),
            "paid_date": _dates(b["paid"][order]),
            "plan": _labels(b["plan"][order], plan_order(cfg)),
            "products": pa.array(b["products"][order], pa.int64()),
            "usage": pa.array(b["usage"][order], pa.float64()),
        }
    )
    t = sim.touchpoints
    order = np.lexsort((t["stamp"], t["cust"]))
    touchpoints = pa.table(
        {
            "customer_id": ids.take(pa.array(t["cust"][order])),
            "timestamp": pa.array(t["stamp"][order].astype("datetime64[s]"), pa.timestamp("s")),
            "channel": _labels(t["channel"][order], CHANNELS),
            "event": _labels(t["event"][order], EVENTS),
            "direction": _labels(t["direction"][order], DIRECTIONS),
            "value": pa.array(t["value"][order], pa.float64(), from_pandas=True),
        }
    )
    truth = pa.table(
        {
            "customer_id": ids,
            "latent_type": _labels(cust.passive.astype(np.int8), ["active", "passive"]),
            "churn_date": _dates(sim.churn_day),
            "churn_driver": _labels(sim.churn_driver, CHURN_DRIVERS),
            "phase_out_start": _dates(sim.phase_out_day),
            "phase_out_driver": _labels(sim.phase_out_driver, PHASE_OUT_DRIVERS),
        }
    )
    return billing, touchpoints, truth


def _purchase_chunk(cfg: GenerateConfig, seed: int, chunk: int, features: FeatureConfig | None) -> ChunkTables:
    cal = purchase_calendar(cfg)
    mech = Mechanisms.of(cfg, cal)
    clock = season_clock(cfg, cal, mech)
    rng = np.random.default_rng([seed, chunk])
    first = chunk * cfg.chunk_size
    buyers = draw_buyers(cfg, cal, mech, rng, first, min(cfg.chunk_size, cfg.n_customers - first))
    hist = simulate_purchases(cfg, cal, buyers, mech, clock, rng)
    tables = purchase_tables(cfg, cal, buyers, mech, hist)
    probabilities = None
    if features is not None:
        oracle_rng = np.random.default_rng([seed, chunk, _ORACLE_STREAM])
        rows = generate_truth_purchases.purchase_probabilities(
            cfg, cal, buyers, mech, clock, hist, features, oracle_rng
        )
        probabilities = rows.table(tables["customers"]["customer_id"], generate_truth_purchases.DRIVERS)
    return ChunkTables(**tables, probabilities=probabilities)


def iter_chunks(cfg: GenerateConfig, seed: int, features: FeatureConfig | None = None) -> Iterator[ChunkTables]:
    """All chunks in customer order."""
    for chunk in range(n_chunks(cfg)):
        yield generate_chunk(cfg, seed, chunk, features)


def generate_business(cfg: GenerateConfig, seed: int, features: FeatureConfig | None = None) -> dict[str, pd.DataFrame]:
    """The whole business in memory: ``customers``, ``billing``, ``touchpoints`` and ``truth`` DataFrames.

    With ``features`` also ``probabilities``, the true probabilities at each month end
    (:mod:`omvald.data.generate_truth`). Meant for tests and notebooks (small
    ``n_customers``); the CLI streams with :func:`run_generate`.
    """
    chunks = list(iter_chunks(cfg, seed, features))
    names = (*TABLES, "truth", *(("probabilities",) if features is not None else ()))
    return {name: pa.concat_tables([getattr(c, name) for c in chunks]).to_pandas() for name in names}


class TableSink:
    """Streams chunks of one table into a Parquet or CSV file."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt, self.writer = path, fmt, None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            if self.fmt == "csv":
                self.writer = pacsv.CSVWriter(self.path, table.schema)
            else:
                self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def run_generate(
    cfg: Config,
    out_dir: Path,
    truth_path: Path,
    fmt: str = "parquet",
    on_chunk: Callable[[int, int], None] | None = None,
    probabilities_path: Path | None = None,
    export_date: dt.date | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/{customers,billing,touchpoints}.<fmt>`` and the ground truth, atomically.

    The folder is built in a temporary directory and renamed onto ``out_dir``
    only when complete; the truth file (Parquet or CSV by its extension) is
    written the same way, and so is ``probabilities_path`` when given: the
    true probabilities at each month end, for ``cfg.features`` (horizon,
    phase-out drop, lookback). ``export_date``: write the contract tables as
    exported at the end of that day (:mod:`omvald.data.generate_export`; the
    truth files stay whole). ``on_chunk(done, total)`` reports progress.
    Returns a summary (:func:`subscription_summary` or :func:`purchase_summary`).
    """
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format: use parquet or csv, got {fmt!r}")
    gen = cfg.generate
    features = cfg.features if probabilities_path is not None else None
    total = n_chunks(gen)
    tally = _PurchaseTally() if gen.business in PURCHASE_BUSINESSES else _SubscriptionTally()
    with contextlib.ExitStack() as stack:
        tmp_dir = stack.enter_context(atomic_path(out_dir, stage="generate"))
        tmp_dir.mkdir()
        sinks = {name: TableSink(tmp_dir / f"{name}.{fmt}", fmt) for name in TABLES}
        sinks["truth"] = TableSink(stack.enter_context(atomic_path(truth_path)), _format_of(truth_path))
        if probabilities_path is not None:
            tmp_probabilities = stack.enter_context(atomic_path(probabilities_path))
            sinks["probabilities"] = TableSink(tmp_probabilities, _format_of(probabilities_path))
        with contextlib.ExitStack() as writers:
            for sink in sinks.values():
                writers.callback(sink.close)
            for done, chunk in enumerate(iter_chunks(gen, cfg.seed, features), start=1):
                if export_date is not None:
                    exported = export_as_of({name: getattr(chunk, name) for name in TABLES}, export_date)
                    chunk = dataclasses.replace(chunk, **exported)
                for name, sink in sinks.items():
                    sink.write(getattr(chunk, name))
                tally.add(chunk)
                if on_chunk is not None:
                    on_chunk(done, total)
    shift = {"shift_month": gen.shift.month} if gen.shift.month is not None else {}
    exported = {"export_date": export_date.isoformat()} if export_date is not None else {}
    return {"business": gen.business, **tally.summary(), **shift, **exported}


def _format_of(path: Path) -> str:
    return "csv" if Path(path).suffix.lower() == ".csv" else "parquet"


class _SubscriptionTally:
    """Counts of customers, invoices, touchpoints, churn, passive and phase-out; the monthly churn rate."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(
            ("customers", "invoices", "credit_notes", "touchpoints", "churned", "passive", "phase_out"), 0
        )

    def add(self, chunk: ChunkTables) -> None:
        amount = chunk.billing["amount"].to_numpy()
        truth = chunk.truth.to_pandas()
        self.counts["customers"] += chunk.customers.num_rows
        self.counts["invoices"] += int((amount >= 0).sum())
        self.counts["credit_notes"] += int((amount < 0).sum())
        self.counts["touchpoints"] += chunk.touchpoints.num_rows
        self.counts["churned"] += int(truth["churn_date"].notna().sum())
        self.counts["passive"] += int((truth["latent_type"] == "passive").sum())
        self.counts["phase_out"] += int(truth["phase_out_start"].notna().sum())

    def summary(self) -> dict[str, Any]:
        counts = self.counts
        n = max(counts["customers"], 1)
        return {
            **counts,
            "churn_share": counts["churned"] / n,
            "passive_share": counts["passive"] / n,
            "phase_out_share": counts["phase_out"] / n,
            "monthly_churn_rate": counts["churned"] / max(counts["invoices"], 1),  # churns per live customer-month
        }


class _PurchaseTally:
    """Counts of customers, purchases, buyers in the export, few-times buyers, leavers and their drivers."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("customers", "invoices", "buyers", "buyers_1_to_3", "left", "declined"), 0)
        self.drivers: dict[str, int] = {}

    def add(self, chunk: ChunkTables) -> None:
        per_buyer = chunk.billing["customer_id"].value_counts().field("counts").to_numpy()
        truth = chunk.truth.to_pandas()
        self.counts["customers"] += chunk.customers.num_rows
        self.counts["invoices"] += chunk.billing.num_rows
        self.counts["buyers"] += len(per_buyer)
        self.counts["buyers_1_to_3"] += int((per_buyer <= 3).sum())
        self.counts["left"] += int(truth["leave_date"].notna().sum())
        self.counts["declined"] += int(truth["decline_start"].notna().sum())
        for driver, count in truth["leave_driver"].value_counts().items():
            self.drivers[driver] = self.drivers.get(driver, 0) + int(count)

    def summary(self) -> dict[str, Any]:
        counts = self.counts
        return {
            **counts,
            "purchases_per_buyer": counts["invoices"] / max(counts["buyers"], 1),
            "few_purchases_share": counts["buyers_1_to_3"] / max(counts["buyers"], 1),
            "left_share": counts["left"] / max(counts["customers"], 1),
            "leave_drivers": dict(sorted(self.drivers.items())),
        }
