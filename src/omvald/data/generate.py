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

Layers: :func:`generate_chunk` (pure: config + seed -> Arrow tables for one
chunk of customers), :func:`generate_business` (all chunks as DataFrames, for
tests and notebooks) and :func:`run_generate` (streams chunks to files
atomically). Same params and seed -> byte-identical files; each chunk draws
from its own generator seeded by ``(seed, chunk index)``, so the output also
depends on ``chunk_size``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from omvald.config import Config, GenerateConfig
from omvald.data.generate_customers import Calendar, customer_ids, customers_table, draw_customers, plan_order
from omvald.data.generate_sim import CHANNELS, CHURN_DRIVERS, DIRECTIONS, EVENTS, PHASE_OUT_DRIVERS, simulate
from omvald.errors import ConfigError
from omvald.io import atomic_path

TABLES = ("customers", "billing", "touchpoints")
_OUTAGE_STREAM = 1_000_003  # generator id for regional outages, shared by all chunks


@dataclass(frozen=True)
class ChunkTables:
    """One chunk of customers: the three contract tables and the ground truth."""

    customers: pa.Table
    billing: pa.Table
    touchpoints: pa.Table
    truth: pa.Table


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


def n_chunks(cfg: GenerateConfig) -> int:
    return -(-cfg.n_customers // cfg.chunk_size)


def generate_chunk(cfg: GenerateConfig, seed: int, chunk: int) -> ChunkTables:
    """Simulate customers ``chunk * chunk_size ...`` and return their tables, sorted by customer and date."""
    _check(cfg)
    cal = Calendar.from_config(cfg)
    outages = (
        np.random.default_rng([seed, _OUTAGE_STREAM]).random((len(cfg.region_shares), cal.months)) < cfg.outage_rate
    )
    rng = np.random.default_rng([seed, chunk])
    first = chunk * cfg.chunk_size
    n = min(cfg.chunk_size, cfg.n_customers - first)
    cust = draw_customers(cfg, cal, rng, first, n)
    sim = simulate(cfg, cal, cust, outages, rng)
    ids = customer_ids(first, n, width=max(7, len(str(cfg.n_customers))))
    churn_date = sim.churn_day.astype("datetime64[D]")
    churn_date[sim.churn_day < 0] = np.datetime64("NaT")

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
    return ChunkTables(customers_table(cfg, cust, ids, churn_date, rng), billing, touchpoints, truth)


def iter_chunks(cfg: GenerateConfig, seed: int) -> Iterator[ChunkTables]:
    """All chunks in customer order."""
    for chunk in range(n_chunks(cfg)):
        yield generate_chunk(cfg, seed, chunk)


def generate_business(cfg: GenerateConfig, seed: int) -> dict[str, pd.DataFrame]:
    """The whole business in memory: ``customers``, ``billing``, ``touchpoints`` and ``truth`` DataFrames.

    Meant for tests and notebooks (small ``n_customers``); the CLI streams with :func:`run_generate`.
    """
    chunks = list(iter_chunks(cfg, seed))
    return {name: pa.concat_tables([getattr(c, name) for c in chunks]).to_pandas() for name in (*TABLES, "truth")}


class _TableSink:
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
) -> dict[str, float]:
    """Write ``out_dir/{customers,billing,touchpoints}.<fmt>`` and the ground truth, atomically.

    The folder is built in a temporary directory and renamed onto ``out_dir``
    only when complete; the truth file (Parquet or CSV by its extension) is
    written the same way. ``on_chunk(done, total)`` reports progress.
    Returns a summary: counts of customers, invoices, touchpoints, churn and
    passive shares, and the monthly churn rate (churns per live customer-month).
    """
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format: use parquet or csv, got {fmt!r}")
    truth_fmt = "csv" if Path(truth_path).suffix.lower() == ".csv" else "parquet"
    gen = cfg.generate
    total = n_chunks(gen)
    counts = dict.fromkeys(
        ("customers", "invoices", "credit_notes", "touchpoints", "churned", "passive", "phase_out"), 0
    )
    customer_months = 0.0
    with atomic_path(out_dir) as tmp_dir, atomic_path(truth_path) as tmp_truth:
        tmp_dir.mkdir()
        sinks = {name: _TableSink(tmp_dir / f"{name}.{fmt}", fmt) for name in TABLES}
        sinks["truth"] = _TableSink(tmp_truth, truth_fmt)
        with contextlib.ExitStack() as stack:
            for sink in sinks.values():
                stack.callback(sink.close)
            for done, chunk in enumerate(iter_chunks(gen, cfg.seed), start=1):
                for name, sink in sinks.items():
                    sink.write(getattr(chunk, name))
                amount = chunk.billing["amount"].to_numpy()
                truth = chunk.truth.to_pandas()
                counts["customers"] += chunk.customers.num_rows
                counts["invoices"] += int((amount >= 0).sum())
                counts["credit_notes"] += int((amount < 0).sum())
                counts["touchpoints"] += chunk.touchpoints.num_rows
                counts["churned"] += int(truth["churn_date"].notna().sum())
                counts["passive"] += int((truth["latent_type"] == "passive").sum())
                counts["phase_out"] += int(truth["phase_out_start"].notna().sum())
                customer_months += int((amount >= 0).sum())
                if on_chunk is not None:
                    on_chunk(done, total)
    n = max(counts["customers"], 1)
    return {
        **counts,
        "churn_share": counts["churned"] / n,
        "passive_share": counts["passive"] / n,
        "phase_out_share": counts["phase_out"] / n,
        "monthly_churn_rate": counts["churned"] / max(customer_months, 1),
    }
