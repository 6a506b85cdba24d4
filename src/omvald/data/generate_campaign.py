"""The synthetic business runs a campaign: ``omvald generate OUT --campaign retention_list.csv``.

Given a retention list of ``omvald plan`` scored on the synthetic
(subscription) business, the same business goes on for ``campaign.months``
after the list's as-of date ``t`` and is written as a *newer export*:

- up to ``t`` nothing changes: every chunk replays the same draws, so the
  newer export cut at the original end of data is the original export
  (rows, values and order; a payment made after that end is empty there and
  filled in here, and so is a churn or a downgrade request that the original
  end cut off);
- from the first billing cycle after ``t`` the simulation draws from its own
  stream (``campaign.seed``), and a **contacted** customer's monthly churn
  hazard is multiplied by ``1 - churn_hazard_cut[action][segment]``
  (control customers, unlisted ones, and actions or segments the table does
  not name: no change). The planted effect acts on churn only.

The ground truth of the newer export adds, per listed customer: the group,
action and segment, the planted ``churn_hazard_cut``, and the true
probability of churning in ``(t, t + features.horizon_days]`` without and
with the effect (``p_churn_untreated_true``, ``p_churn_treated_true``; from
the hazards the simulation applied, as the true probabilities of
:mod:`omvald.data.generate_truth_subscription`; empty when ``t`` is not a
month end). Their difference, averaged over a group's contacted customers,
is the effect ``omvald effect`` should find.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from omvald.config import CampaignConfig, Config, FeatureConfig, GenerateConfig
from omvald.data.generate_customers import Calendar, Customers, customer_ids, customers_table, draw_customers
from omvald.data.generate_sim import SimResult, Simulation, _days
from omvald.data.generate_truth import as_of_windows
from omvald.data.generate_truth_subscription import probabilities_at
from omvald.data.retention_list import read_retention_list
from omvald.errors import ConfigError, DataContractError

OUTAGE_STREAM = 1_000_003  # omvald.data.generate's: the original months' outages
SHIFT_STREAM = 1_000_037  # omvald.data.generate's: what only generate.shift draws (with the chunk)
CAMPAIGN_STREAM = 1_000_061  # generator id of the campaign months (with the chunk and campaign.seed)
LIST_COLUMNS = ("customer_id", "as_of", "group", "action", "segment")


@dataclass(frozen=True)
class CampaignList:
    """The listed customers (``customer_id``, ``group``, ``action``, ``segment``) and their as-of date."""

    as_of: dt.date
    customers: pd.DataFrame


def read_campaign_list(path: Path) -> CampaignList:
    """A retention list (CSV or Parquet) with :data:`LIST_COLUMNS`; a :class:`DataContractError` otherwise."""
    path = Path(path)
    frame, as_of = read_retention_list(path, "--campaign", LIST_COLUMNS)
    frame = frame[["customer_id", "group", "action", "segment"]].astype("str")
    return CampaignList(as_of, frame.drop_duplicates("customer_id").reset_index(drop=True))


def first_campaign_cycle(cfg: GenerateConfig, as_of: dt.date) -> int:
    """The billing cycle the campaign starts in: the first month that begins after ``as_of``."""
    start = cfg.start_date.replace(day=1)
    month = (as_of.year - start.year) * 12 + as_of.month - start.month
    if as_of < start or month >= cfg.months:
        last = Calendar.from_config(cfg).end.astype("datetime64[D]").item() - dt.timedelta(days=1)
        raise ConfigError(
            f"--campaign: the list's as-of date {as_of} is outside the synthetic business ({start} .. {last}); "
            "score and plan on the export this generator writes with these params"
        )
    return month + 1


@dataclass
class CampaignBase:
    """One chunk's world up to the campaign's first cycle, ready to continue (several times, for benchmarks)."""

    cfg: GenerateConfig
    cal: Calendar  # the long calendar: the original months and the campaign's
    cust: Customers
    ids: pa.Array
    sim: Simulation
    start: int  # first campaign cycle
    customers: pa.Table  # the original export's customers table (names and all), churn dates replaced later
    seed: int
    chunk: int


def campaign_base(cfg: GenerateConfig, campaign: CampaignConfig, seed: int, chunk: int, as_of: dt.date) -> CampaignBase:
    """Replay chunk ``chunk`` of the business (:func:`omvald.data.generate.generate_chunk`'s draws) up to ``as_of``."""
    if cfg.business != "subscription":
        raise ConfigError(
            f"--campaign: only the subscription business runs a campaign (generate.business is {cfg.business})"
        )
    if campaign.months < 1:
        raise ConfigError(f"campaign.months: must be >= 1, got {campaign.months}")
    start = first_campaign_cycle(cfg, as_of)
    short = Calendar.from_config(cfg)
    total = max(cfg.months, start + campaign.months)
    cal = Calendar.from_config(dataclasses.replace(cfg, months=total))
    regions = len(cfg.region_shares)
    outages = np.random.default_rng([seed, OUTAGE_STREAM]).random((regions, cfg.months)) < cfg.outage_rate
    extra = np.random.default_rng([seed, OUTAGE_STREAM, CAMPAIGN_STREAM]).random((regions, total - cfg.months))
    outages = np.concatenate([outages, extra < cfg.outage_rate], axis=1)
    rng = np.random.default_rng([seed, chunk])
    first = chunk * cfg.chunk_size
    n = min(cfg.chunk_size, cfg.n_customers - first)
    cust = draw_customers(cfg, short, rng, first, n)
    shift_rng = np.random.default_rng([seed, chunk, SHIFT_STREAM])  # a shifted business replays as generated
    sim = Simulation(cfg, cal, cust, outages, rng, record=True, end=int(_days(short.end)), shift_rng=shift_rng)
    sim.run(range(start))
    ids = customer_ids(first, n, width=max(7, len(str(cfg.n_customers))))
    if start == cfg.months:  # the original run ends here: its next draws are the customers' names
        placeholder = np.full(n, np.datetime64("NaT"), "datetime64[D]")
        customers = customers_table(cfg, cust, ids, placeholder, copy.deepcopy(rng))
    else:
        from omvald.data.generate import generate_chunk

        customers = generate_chunk(cfg, seed, chunk).customers
    return CampaignBase(cfg, cal, cust, ids, sim, start, customers, seed, chunk)


def hazard_cuts(base: CampaignBase, listed: pd.DataFrame, campaign: CampaignConfig) -> np.ndarray:
    """The planted cut of each chunk customer's churn hazard (0 for control, unlisted and unnamed actions)."""
    cuts = np.zeros(len(base.cust))
    index = {cid: i for i, cid in enumerate(base.ids.to_pylist())}
    for cid, group, action, segment in listed[["customer_id", "group", "action", "segment"]].itertuples(index=False):
        cut = campaign.churn_hazard_cut.get(action, {}).get(segment, 0.0) if group == "contact" else 0.0
        if not 0.0 <= cut <= 1.0:
            raise ConfigError(f"campaign.churn_hazard_cut.{action}.{segment}: a share in [0, 1], got {cut}")
        cuts[index[cid]] = cut
    return cuts


def run_campaign(
    base: CampaignBase, listed: pd.DataFrame, as_of: dt.date, campaign: CampaignConfig, features: FeatureConfig | None
) -> tuple[SimResult, pa.Table, pa.Table]:
    """Continue ``base`` with the campaign: ``(simulation result, customers table, campaign truth)`` of the chunk.

    ``listed`` holds the list's rows of this chunk's customers. ``features``
    (horizon) gives the true churn probabilities with and without the effect.
    """
    cuts = hazard_cuts(base, listed, campaign)
    sim = base.sim.fork()
    sim.extend(int(_days(base.cal.end)), np.random.default_rng([base.seed, base.chunk, CAMPAIGN_STREAM, campaign.seed]))
    sim.run(range(base.start, base.cal.months), churn_factor=1.0 - cuts)
    result = sim.result()
    churn = result.churn_day.astype("datetime64[D]")
    churn[result.churn_day < 0] = np.datetime64("NaT")
    customers = base.customers.set_column(
        base.customers.schema.get_field_index("churn_date"),
        "churn_date",
        pa.array(churn, pa.date32(), mask=np.isnat(churn)),
    )
    return result, customers, campaign_truth(base, result, listed, cuts, as_of, features)


def campaign_truth(
    base: CampaignBase,
    result: SimResult,
    listed: pd.DataFrame,
    cuts: np.ndarray,
    as_of: dt.date,
    features: FeatureConfig | None,
) -> pa.Table:
    """Per chunk customer: campaign group, action, segment, planted cut and the true churn probabilities."""
    n = len(base.cust)
    index = {cid: i for i, cid in enumerate(base.ids.to_pylist())}
    rows = np.array([index[c] for c in listed["customer_id"]], dtype=np.int64)
    columns = {
        name: np.full(n, None, dtype=object) for name in ("campaign_group", "campaign_action", "campaign_segment")
    }
    for name, col in (("campaign_group", "group"), ("campaign_action", "action"), ("campaign_segment", "segment")):
        columns[name][rows] = listed[col].to_numpy(dtype=object)
    untreated, treated = np.full(n, np.nan), np.full(n, np.nan)
    window = (
        next((w for w in as_of_windows(base.cal, features) if w.t == _days(np.datetime64(as_of))), None)
        if features
        else None
    )
    if window is not None and len(rows):
        p_stay, _ = probabilities_at(base.cfg, base.cal, base.cust, result, features, window, rows)
        untreated[rows] = 1.0 - p_stay
        scaled = _scaled_paths(result, 1.0 - cuts, base.start)
        p_stay_treated, _ = probabilities_at(base.cfg, base.cal, base.cust, scaled, features, window, rows)
        treated[rows] = 1.0 - p_stay_treated
    listed_mask = np.zeros(n, bool)
    listed_mask[rows] = True
    return pa.table(
        {
            **{name: pa.array(values, pa.string()) for name, values in columns.items()},
            "churn_hazard_cut": pa.array(np.where(listed_mask, cuts, np.nan), pa.float64(), from_pandas=True),
            "p_churn_untreated_true": pa.array(np.clip(untreated, 0, 1), pa.float64(), from_pandas=True),
            "p_churn_treated_true": pa.array(np.clip(treated, 0, 1), pa.float64(), from_pandas=True),
        }
    )


def _scaled_paths(result: SimResult, factor: np.ndarray, start: int) -> SimResult:
    """``result`` with the churn hazards of cycles from ``start`` on multiplied by ``factor`` (per customer)."""
    paths = copy.copy(result.paths)
    for name in ("churn_rest", "phase_out_churn"):
        values = getattr(paths, name).copy()
        values[start:] *= factor[None, :]
        setattr(paths, name, values)
    return dataclasses.replace(result, paths=paths)


def customer_chunks(cfg: GenerateConfig, ids: pd.Series, path: Path) -> np.ndarray:
    """The chunk of each listed id (``C0000123`` is customer 123); a :class:`DataContractError` for unknown ids."""
    text = ids.astype("str").reset_index(drop=True)
    number = pd.to_numeric(text.str.extract(r"^C(\d+)$")[0], errors="coerce")
    width = max(7, len(str(cfg.n_customers)))
    written = pd.Series([f"C{int(k):0{width}d}" if k == k else "" for k in number], dtype="str")
    unknown = number.isna() | (number < 1) | (number > cfg.n_customers) | (written != text)
    if unknown.any():
        raise DataContractError(
            "retention list", "customer_id", "not a customer of the synthetic business these params generate",
            text[unknown], str(path),
        )  # fmt: skip
    return ((number.to_numpy(dtype=np.int64) - 1) // cfg.chunk_size).astype(np.int64)


def write_campaign_export(
    cfg: Config,
    list_path: Path,
    out_dir: Path,
    truth_path: Path,
    fmt: str = "parquet",
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the newer export (``out_dir``) and its ground truth (``truth_path``) of the list's campaign, atomically.

    Returns counts: customers, listed, contacted, and churned after the
    list's as-of date per group.
    """
    from omvald.data.generate import TABLES, TableSink, n_chunks, subscription_tables
    from omvald.io import atomic_path

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format: use parquet or csv, got {fmt!r}")
    gen = cfg.generate
    campaign = read_campaign_list(list_path)
    chunk_of = customer_chunks(gen, campaign.customers["customer_id"], list_path)
    total = n_chunks(gen)
    t = int(_days(np.datetime64(campaign.as_of)))
    counts = {"customers": 0, "listed": len(campaign.customers), "contacted": 0, "churned_after_as_of": {}}
    with contextlib.ExitStack() as stack:
        tmp_dir = stack.enter_context(atomic_path(out_dir))
        tmp_dir.mkdir()
        sinks = {name: TableSink(tmp_dir / f"{name}.{fmt}", fmt) for name in TABLES}
        truth_fmt = "csv" if Path(truth_path).suffix.lower() == ".csv" else "parquet"
        sinks["truth"] = TableSink(stack.enter_context(atomic_path(truth_path)), truth_fmt)
        with contextlib.ExitStack() as writers:
            for sink in sinks.values():
                writers.callback(sink.close)
            for chunk in range(total):
                base = campaign_base(gen, cfg.campaign, cfg.seed, chunk, campaign.as_of)
                listed = campaign.customers[chunk_of == chunk]
                result, customers, extra = run_campaign(base, listed, campaign.as_of, cfg.campaign, cfg.features)
                billing, touchpoints, truth = subscription_tables(gen, base.cust, result, base.ids)
                for name, table in (("customers", customers), ("billing", billing), ("touchpoints", touchpoints)):
                    sinks[name].write(table)
                for column in extra.column_names:
                    truth = truth.append_column(column, extra[column])
                sinks["truth"].write(truth)
                counts["customers"] += customers.num_rows
                counts["contacted"] += int((listed["group"] == "contact").sum())
                left = (result.churn_day > t) & np.isin(base.ids.to_numpy(zero_copy_only=False), listed["customer_id"])
                group = pd.Series(listed.set_index("customer_id")["group"]).reindex(
                    base.ids.to_numpy(zero_copy_only=False)[left]
                )
                for name, k in group.value_counts().items():
                    counts["churned_after_as_of"][str(name)] = counts["churned_after_as_of"].get(str(name), 0) + int(k)
                if on_chunk is not None:
                    on_chunk(chunk + 1, total)
    return {"as_of": campaign.as_of.isoformat(), "months": cfg.campaign.months, **counts}
