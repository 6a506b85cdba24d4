"""Labels, population, as-of dates and the features stage, on tiny hand-made businesses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omvald.buckets import hash_slot
from omvald.config import Config, FeatureConfig
from omvald.errors import ConfigError
from omvald.features.asof import as_of_dates, population_spine
from omvald.features.build import build_features
from omvald.features.labels import labels
from omvald.features.spec import BucketTables
from omvald.features.stage import bucket_count, run_features

D = dt.date
H90 = FeatureConfig(horizon_days=90, phase_out_drop=0.3, lookback_days=365)


def no_touchpoints() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="str"),
            "timestamp": pd.Series([], dtype="datetime64[us]"),
            "date": pd.Series([], dtype="datetime64[us]"),
            "channel": pd.Series([], dtype="str"),
            "event": pd.Series([], dtype="str"),
        }
    )


def business(customers: dict, billing: dict, touchpoints: pd.DataFrame | None = None) -> BucketTables:
    bill = pd.DataFrame(billing) if billing else pd.DataFrame({"customer_id": [], "invoice_date": [], "amount": []})
    if not billing:
        bill = bill.astype({"customer_id": "str", "invoice_date": "datetime64[us]", "amount": "float64"})
    return BucketTables(pd.DataFrame(customers), bill, no_touchpoints() if touchpoints is None else touchpoints)


def label_at(t: BucketTables, day: dt.date, data_end: dt.date, contractual: bool, billing_empty: bool = False):
    spine = pd.DataFrame(
        {"customer_id": t.customers["customer_id"], "as_of": pd.Series([day] * len(t.customers), dtype=object)}
    )
    return labels(t, spine, H90, data_end, contractual, billing_empty).set_index("customer_id")


CONTRACTUAL = {
    "customer_id": ["stays", "leaves", "leaves_on_horizon", "leaves_later"],
    "signup_date": [D(2023, 1, 1)] * 4,
    "churn_date": [None, D(2024, 2, 15), D(2024, 3, 31), D(2024, 4, 1)],
}


def test_contractual_churn_is_a_churn_date_within_the_horizon():
    out = label_at(business(CONTRACTUAL, {}), D(2024, 1, 1), D(2024, 12, 31), contractual=True)
    # horizon (2024-01-01, 2024-03-31]
    assert out["churn"].to_dict() == {"stays": 0, "leaves": 1, "leaves_on_horizon": 1, "leaves_later": 0}


def test_contractual_population_is_signed_up_and_not_yet_churned():
    customers = {
        "customer_id": ["old", "new", "gone", "gone_today"],
        "signup_date": [D(2023, 1, 1), D(2024, 2, 1), D(2023, 1, 1), D(2023, 1, 1)],
        "churn_date": [None, None, D(2023, 12, 1), D(2024, 1, 31)],
    }
    spine = population_spine(business(customers, {}), [D(2024, 1, 31), D(2024, 2, 29)], H90, contractual=True)
    assert list(zip(spine["customer_id"], spine["as_of"], strict=True)) == [
        ("old", D(2024, 1, 31)),
        ("new", D(2024, 2, 29)),
        ("old", D(2024, 2, 29)),
    ]


NON_CONTRACTUAL_BILLING = {
    "customer_id": ["buys_again", "buys_again", "stops", "lapsed"],
    "invoice_date": [D(2023, 12, 10), D(2024, 2, 1), D(2023, 12, 20), D(2022, 12, 1)],
    "amount": [50.0, 50.0, 80.0, 10.0],
}
NON_CONTRACTUAL_CUSTOMERS = {
    "customer_id": ["buys_again", "stops", "lapsed"],
    "signup_date": [D(2022, 1, 1)] * 3,
}


def test_non_contractual_population_needs_an_invoice_in_the_lookback_and_churn_is_no_invoice_in_horizon():
    t = business(NON_CONTRACTUAL_CUSTOMERS, NON_CONTRACTUAL_BILLING)
    spine = population_spine(t, [D(2023, 12, 31)], H90, contractual=False)
    assert list(spine["customer_id"]) == ["buys_again", "stops"]  # 'lapsed' bought > 365 days ago
    out = label_at(t, D(2023, 12, 31), D(2024, 12, 31), contractual=False).loc[["buys_again", "stops"]]
    assert out["churn"].tolist() == [0, 1]
    assert out["next_revenue"].tolist() == [50.0, 0.0]


def test_phase_out_is_billing_falling_by_the_drop_among_customers_who_stay():
    customers = {
        "customer_id": ["shrinks", "steady", "churns", "new"],
        "signup_date": [D(2023, 1, 1)] * 4,
        "churn_date": [None, None, D(2024, 2, 1), None],
    }
    billing = {
        "customer_id": ["shrinks"] * 2 + ["steady"] * 2 + ["churns"] * 2 + ["new"],
        "invoice_date": [D(2023, 12, 1), D(2024, 1, 15)] * 3 + [D(2024, 2, 1)],
        "amount": [100.0, 70.0, 100.0, 71.0, 100.0, 10.0, 30.0],
    }
    out = label_at(business(customers, billing), D(2023, 12, 31), D(2024, 12, 31), contractual=True)
    # 70 <= 0.7 x 100 is a phase-out, 71 is not; churners have no phase-out label;
    # nothing billed before t -> not a phase-out.
    assert out.loc["shrinks", "phase_out"] == 1.0
    assert out.loc["steady", "phase_out"] == 0.0
    assert np.isnan(out.loc["churns", "phase_out"]) and out.loc["churns", "churn"] == 1
    assert out.loc["new", "phase_out"] == 0.0


def test_labels_are_missing_when_the_horizon_is_not_observed_and_phase_out_without_billing():
    t = business(CONTRACTUAL, {})
    out = label_at(t, D(2024, 1, 1), D(2024, 3, 30), contractual=True)
    assert out["churn"].isna().all() and out["phase_out"].isna().all()
    out = label_at(t, D(2024, 1, 1), D(2024, 3, 31), contractual=True, billing_empty=True)
    assert out["churn"].notna().all() and out["phase_out"].isna().all()


def test_as_of_dates_are_month_ends_after_a_full_lookback_then_the_end_of_data():
    assert as_of_dates(H90, D(2023, 1, 1), D(2024, 3, 15)) == [
        D(2023, 12, 31),
        D(2024, 1, 31),
        D(2024, 2, 29),
        D(2024, 3, 15),
    ]
    short = as_of_dates(H90, D(2024, 1, 10), D(2024, 4, 30))  # less than a lookback of data
    assert short == [D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31), D(2024, 4, 30)]
    single = dataclasses.replace(H90, as_of_first=D(2024, 1, 31), as_of_last=D(2024, 1, 31))
    assert as_of_dates(single, D(2023, 1, 1), D(2024, 6, 30)) == [D(2024, 1, 31)]


# ------------------------------------------------------------------ the features stage


def write_interim(folder: Path, t: BucketTables, data_start: dt.date, data_end: dt.date) -> Path:
    """A validated-looking interim folder: tables sorted by hash_slot, small row groups, meta.json."""
    folder.mkdir(parents=True, exist_ok=True)
    date_col = {"customers": "signup_date", "billing": "invoice_date", "touchpoints": "timestamp"}
    rows, columns = {}, {}
    for name in ("customers", "billing", "touchpoints"):
        frame = getattr(t, name).copy()
        for col in ("signup_date", "churn_date", "invoice_date", "due_date", "paid_date", "date"):
            if col in frame.columns:
                frame[col] = pd.to_datetime(frame[col]).astype("datetime64[s]")
        frame["hash_slot"] = hash_slot(frame["customer_id"]).astype("int16")
        frame = frame.sort_values(["hash_slot", "customer_id", date_col[name]], ignore_index=True)
        frame.to_parquet(folder / f"{name}.parquet", index=False, row_group_size=3)
        rows[name] = len(frame)
        columns[name] = [c for c in frame.columns if c != "hash_slot"]
    meta = {
        "data_start": data_start.isoformat(),
        "data_end": data_end.isoformat(),
        "contractual": "churn_date" in t.customers.columns,
        "columns": columns,
        "n_slots": 1024,
        "rows": rows,
        "duplicates_dropped": {},
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def small_business(n: int = 40) -> BucketTables:
    rng = np.random.default_rng(7)
    ids = [f"c{i:03d}" for i in range(n)]
    signup = [D(2023, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 200, n)]
    churn = [D(2023, 9, 1) + dt.timedelta(days=int(d)) if rng.random() < 0.4 else None for d in rng.integers(0, 400, n)]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": signup,
            "churn_date": churn,
            "region": rng.choice(["n", "s"], n),
            "contract": rng.choice(["12m", "monthly"], n),
        }
    )
    rows = []
    for cid, s, c in zip(ids, signup, churn, strict=True):
        day = s
        price = 100.0
        while day <= (c or D(2024, 9, 30)):
            price *= 1.1 if rng.random() < 0.1 else 1.0
            paid = day + dt.timedelta(days=int(rng.integers(5, 40)))
            rows.append(
                (cid, day, round(price, 2), 100.0, day + dt.timedelta(days=14), paid, rng.choice(["a", "b"]), 1.0)
            )
            day = (pd.Timestamp(day) + pd.DateOffset(months=1)).date()
    billing = pd.DataFrame(
        rows,
        columns=["customer_id", "invoice_date", "amount", "list_price", "due_date", "paid_date", "plan", "products"],
    )
    tp = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, 200),
            "timestamp": pd.to_datetime("2023-06-01") + pd.to_timedelta(rng.integers(0, 480, 200), unit="D"),
            "channel": rng.choice(["email", "phone", "carrier_pigeon"], 200),
            "event": rng.choice(["opened", "contact", "sent", "teleport"], 200),
            "direction": rng.choice(["inbound", "outbound"], 200),
        }
    )
    tp["date"] = tp["timestamp"].dt.normalize()
    return BucketTables(customers, billing, tp)


def settings(**features) -> Config:
    base = {"horizon_days": 90, "n_buckets": 1, **features}
    return Config(features=dataclasses.replace(FeatureConfig(), **base))


@pytest.mark.parametrize(
    ("customers", "dates", "expected"),
    [
        (20_000, 25, 8),  # the default business: features.n_buckets
        (96_000, 25, 8),  # 2.4M rows: 8 buckets of 300,000 exactly
        (96_001, 25, 9),
        (1_000_000, 25, 84),  # 25M rows / 300,000 = 83.3 -> 84 (8 buckets peaked at 17 GB)
        (1_000_000, 12, 40),
        (10**9, 12, 1024),  # never more buckets than hash slots
        (0, 12, 8),
    ],
)
def test_buckets_grow_when_one_would_hold_more_than_bucket_rows(customers, dates, expected):
    assert bucket_count(FeatureConfig(n_buckets=8, bucket_rows=300_000), customers, dates) == expected


def test_a_bucket_row_cap_below_one_is_refused(tmp_path):
    interim = write_interim(tmp_path / "interim", small_business(), D(2023, 1, 1), D(2024, 9, 30))
    with pytest.raises(ConfigError, match="bucket_rows"):
        run_features(settings(bucket_rows=0), interim, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.pipeline  # the features stage twice, with worker processes: seconds
def test_one_bucket_and_many_buckets_in_two_workers_give_identical_tables(tmp_path):
    interim = write_interim(tmp_path / "interim", small_business(), D(2023, 1, 1), D(2024, 9, 30))
    one = run_features(settings(n_buckets=1), interim, tmp_path / "one")
    # 2 buckets asked, but a cap of 20 customer x date rows per bucket makes the stage use more
    many = run_features(settings(n_buckets=2, bucket_rows=20, workers=2), interim, tmp_path / "many")
    assert not (tmp_path / "many" / "_parts").exists()
    assert one["n_buckets"] == 1 and many["n_buckets"] >= 16
    for name in ("training.parquet", "scoring.parquet"):
        a, b = pd.read_parquet(tmp_path / "one" / name), pd.read_parquet(tmp_path / "many" / name)
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b)
    assert one["n_rows"] == many["n_rows"]
    training = pd.read_parquet(tmp_path / "one" / "training.parquet")
    assert training["churn"].dtype == "int8" and set(training["churn"]) == {0, 1}
    assert list(training.sort_values(["as_of", "customer_id"]).index) == list(training.index)
    assert one["labelled_dates"][-1] == "2024-06-30" and one["scoring_date"] == "2024-09-30"
    scoring = pd.read_parquet(tmp_path / "one" / "scoring.parquet")
    assert set(scoring["as_of"]) == {D(2024, 9, 30)} and "churn" not in scoring.columns
    registry = {r["name"]: r for r in json.loads((tmp_path / "one" / "registry.json").read_text())}
    assert registry["price_shock_pct_3m"]["available"] and registry["binding_months_left"]["available"]
    assert not registry["usage_mean_3m"]["available"]
    assert "billing.usage" in registry["usage_mean_3m"]["missing_reason"]
    assert one["families_missing"]["usage"].startswith("input has no column")
    assert {"attr_region", "attr_contract", "segment", "tenure_months", "monthly_revenue"} <= set(training.columns)


def test_single_as_of_date_gives_one_snapshot(tmp_path):
    interim = write_interim(tmp_path / "interim", small_business(), D(2023, 1, 1), D(2024, 9, 30))
    cfg = settings(as_of_first=D(2024, 3, 31), as_of_last=D(2024, 3, 31))
    meta = run_features(cfg, interim, tmp_path / "out")
    assert meta["as_of_dates"] == meta["labelled_dates"] == ["2024-03-31"]
    training = pd.read_parquet(tmp_path / "out" / "training.parquet")
    scoring = pd.read_parquet(tmp_path / "out" / "scoring.parquet")
    assert len(training) == len(scoring) > 0


def test_empty_touchpoints_and_empty_billing_still_build(tmp_path):
    t = small_business()
    no_billing = BucketTables(
        t.customers, t.billing.iloc[:0][["customer_id", "invoice_date", "amount"]], no_touchpoints()
    )
    interim = write_interim(tmp_path / "interim", no_billing, D(2023, 1, 1), D(2024, 9, 30))
    meta = run_features(settings(), interim, tmp_path / "out")
    training = pd.read_parquet(tmp_path / "out" / "training.parquet")
    assert training["phase_out"].isna().all() and training["churn"].notna().all()
    assert "billing_core" in meta["families_missing"] and "price_shock_pct_3m" not in training.columns
    assert set(training["segment"]) == {"passive"}


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"phase_out_drop": 1.2}, "phase_out_drop"),
        ({"horizon_days": 400}, "horizon_days"),
        ({"as_of_last": D(2025, 1, 31)}, "as_of_last"),
        ({"as_of_first": D(2024, 8, 31), "as_of_last": D(2024, 8, 31)}, "horizon"),
        ({"as_of_first": D(2023, 3, 31), "as_of_last": D(2023, 4, 30), "horizon_days": 30}, "no customer churns"),
    ],
)
def test_bad_settings_raise_config_error_and_write_nothing(tmp_path, features, message):
    interim = write_interim(tmp_path / "interim", small_business(), D(2023, 1, 1), D(2024, 9, 30))
    with pytest.raises(ConfigError, match=message):
        run_features(settings(**features), interim, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["interim"]


def test_unknown_channels_and_customers_without_touchpoints_or_invoices_are_scored():
    t = small_business()
    extra = pd.DataFrame(
        {
            "customer_id": ["quiet"],
            "signup_date": [D(2023, 1, 1)],
            "churn_date": [None],
            "region": ["n"],
            "contract": ["12m"],
        }
    )
    t = BucketTables(pd.concat([t.customers, extra], ignore_index=True), t.billing, t.touchpoints)
    meta = {"data_end": "2024-09-30", "contractual": True, "rows": {"billing": len(t.billing), "touchpoints": 200}}
    out = build_features(t, [D(2024, 3, 31)], H90, meta)
    quiet = out.set_index("customer_id").loc["quiet"]
    assert quiet["monthly_revenue"] == 0.0 and quiet["segment"] == "passive" and quiet["churn"] == 0


@pytest.mark.parametrize(
    ("horizon_days", "months"), [(14, 0), (31, 1), (61, 1), (62, 2), (90, 2), (92, 3), (184, 6), (366, 12)]
)
def test_phase_out_windows_are_the_whole_months_that_always_fit_in_the_horizon(horizon_days, months):
    from omvald.features.labels import phase_out_months

    assert phase_out_months(horizon_days) == months


@pytest.mark.parametrize("invoice_day", [1, 2, 15, 28, 30])
def test_a_steady_monthly_bill_is_never_a_phase_out_whatever_the_invoice_day(invoice_day):
    # 90-day windows would hold 2 invoices before t and 3 after (or the reverse)
    # depending on the month and the invoice day: a phantom 33% drop.
    starts = pd.date_range("2023-01-01", "2025-12-31", freq="MS")
    days = [min(m + pd.Timedelta(days=invoice_day - 1), m + pd.offsets.MonthEnd(0)) for m in starts]  # 30 -> Feb 28
    customers = {"customer_id": ["steady"], "signup_date": [D(2022, 1, 1)], "churn_date": [None]}
    billing = {
        "customer_id": ["steady"] * len(days),
        "invoice_date": [d.date() for d in days],
        "amount": [50.0] * len(days),
    }
    t = business(customers, billing)
    cfg = FeatureConfig(horizon_days=92, phase_out_drop=0.3, lookback_days=365)
    for as_of in pd.date_range("2023-06-30", "2025-09-30", freq="ME").date:
        spine = pd.DataFrame({"customer_id": ["steady"], "as_of": pd.Series([as_of], dtype=object)})
        out = labels(t, spine, cfg, D(2025, 12, 31), contractual=True, billing_empty=False)
        assert out["phase_out"].tolist() == [0.0], as_of


@pytest.mark.parametrize("horizon_days", [15, 30])
def test_a_horizon_shorter_than_a_whole_month_gives_no_phase_out_label_but_keeps_churn_and_revenue(horizon_days):
    # Monthly bills of 50 on the 10th; as-of 2025-06-30. A 15- or 30-day window holds one bill or none,
    # so comparing raw windows would call the steady customer a phase-out; there is no whole month in it.
    days = [D(2025, m, 10) for m in range(1, 10)]
    customers = {"customer_id": ["steady", "leaves"], "signup_date": [D(2024, 1, 1)] * 2,
                 "churn_date": [None, D(2025, 7, 5)]}  # fmt: skip
    billing = {"customer_id": ["steady"] * 9 + ["leaves"] * 6, "invoice_date": days + days[:6], "amount": [50.0] * 15}
    t = business(customers, billing)
    cfg = FeatureConfig(horizon_days=horizon_days, phase_out_drop=0.3, lookback_days=365)
    spine = pd.DataFrame({"customer_id": ["steady", "leaves"], "as_of": pd.Series([D(2025, 6, 30)] * 2, dtype=object)})
    out = labels(t, spine, cfg, D(2025, 9, 30), contractual=True, billing_empty=False).set_index("customer_id")
    assert out["churn"].to_dict() == {"steady": 0, "leaves": 1}
    assert out["phase_out"].isna().all()
    assert out.loc["steady", "next_revenue"] == 50.0  # the bill of 2025-07-10 lies in (t, t + H]
