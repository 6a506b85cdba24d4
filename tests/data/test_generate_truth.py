"""The true probabilities: on the features' population, calibrated against the realised labels, exact where
the mechanism allows; and asking for them changes nothing else.

The labels are computed by the features stage's own SQL (``omvald.features.labels``) on the generated
tables, so "calibrated" means: among customer-dates the generator gave probability ``p``, a share ``p``
got the label the pipeline trains on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from omvald.config import Config, FeatureConfig, GenerateConfig
from omvald.data import generate_purchases as gp
from omvald.data.generate import generate_business, run_generate
from omvald.data.generate_oracle import calibration_bins, oracle_auc, targets
from omvald.data.generate_purchase_steps import Mechanisms, SeasonalClock
from omvald.data.generate_truth_purchases import declining_buy_chance, purchase_probabilities
from omvald.features.asof import population_spine
from omvald.features.labels import labels
from omvald.features.spec import BucketTables

FEATURES = FeatureConfig(horizon_days=92, phase_out_drop=0.3, lookback_days=365)


def _content_hash(tables: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in ("customers", "billing", "touchpoints", "truth"):
        frame = tables[name]
        digest.update(name.encode() + ",".join(frame.columns).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def test_default_subscription_business_is_unchanged_by_the_purchase_businesses_and_the_truth():
    # Hash of the four tables taken on the code before generate.business and the true probabilities existed
    # (commit d168d0d). The subscription simulation must draw exactly the same numbers.
    before = "4c387ff184e4c0d2eba62162dbf8854b0095085b4ec10a1a0e3e823827e0c620"
    cfg = GenerateConfig(n_customers=600, months=14, chunk_size=1000)
    assert _content_hash(generate_business(cfg, seed=5)) == before
    assert _content_hash(generate_business(cfg, seed=5, features=FEATURES)) == before


@pytest.mark.parametrize("business", ["subscription", "purchases"])
def test_asking_for_the_probabilities_changes_no_other_file(tmp_path, business):
    cfg = Config(seed=4, generate=GenerateConfig(n_customers=700, months=14, chunk_size=300, business=business))
    run_generate(cfg, tmp_path / "a", tmp_path / "a_truth.parquet")
    run_generate(cfg, tmp_path / "b", tmp_path / "b_truth.parquet", probabilities_path=tmp_path / "p.parquet")
    for name in ("customers", "billing", "touchpoints"):
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == (tmp_path / "b" / f"{name}.parquet").read_bytes()
    assert (tmp_path / "a_truth.parquet").read_bytes() == (tmp_path / "b_truth.parquet").read_bytes()
    probabilities = pq.read_table(tmp_path / "p.parquet")
    assert probabilities.column_names == [
        "customer_id",
        "as_of",
        "alive_true",
        "p_churn_true",
        "p_phase_out_true",
        "p_phase_out_if_stays_true",
        "driver_true",
    ]
    assert probabilities.num_rows > 700


def _labelled(business: str, n: int, seed: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """A business with its true probabilities, and every labelled month-end row with the pipeline's labels."""
    biz = generate_business(GenerateConfig(n_customers=n, chunk_size=n, business=business), seed, FEATURES)
    months = 36 if business == "subscription" else 12
    data_end = (pd.Timestamp("2023-01-01") + pd.DateOffset(months=months) - pd.Timedelta(days=1)).date()
    tables = BucketTables(biz["customers"], biz["billing"], biz["touchpoints"])
    truth = biz["probabilities"]
    found = labels(tables, truth[["customer_id", "as_of"]], FEATURES, data_end, business == "subscription", False)
    rows = found.dropna(subset=["churn"]).assign(as_of=lambda f: pd.to_datetime(f["as_of"]))
    return biz, rows


@pytest.fixture(scope="module", params=["subscription", "purchases", "purchases_btyd"])
def labelled(request):
    n = 3_000 if request.param == "subscription" else 8_000
    return request.param, *_labelled(request.param, n, seed=23)


def test_truth_rows_are_the_population_the_features_stage_scores(labelled):
    business, biz, _ = labelled
    truth = biz["probabilities"]
    dates = sorted(truth["as_of"].unique())
    tables = BucketTables(biz["customers"], biz["billing"], biz["touchpoints"])
    spine = population_spine(tables, dates, FEATURES, contractual=business == "subscription")
    assert len(dates) == (36 if business == "subscription" else 12)
    assert all((d + dt.timedelta(days=1)).day == 1 for d in dates)  # month ends
    assert set(zip(spine["customer_id"], spine["as_of"], strict=True)) == set(
        zip(truth["customer_id"], truth["as_of"], strict=True)
    )


def _check_calibrated(y: pd.Series, p: pd.Series, bins: int = 10) -> None:
    table = calibration_bins(y.to_numpy(), p.to_numpy(), bins)
    se = np.sqrt(table["mean_p"].clip(0.01, 0.99) * (1 - table["mean_p"].clip(0.01, 0.99)) / table["n"])
    gap = (table["mean_p"] - table["observed"]).abs()
    assert (gap <= 3 * se + 0.01).all(), table.assign(gap=gap, allowed=3 * se + 0.01)


def test_true_probabilities_are_calibrated_against_the_realised_labels(labelled):
    _, biz, rows = labelled
    truth = biz["probabilities"].assign(as_of=lambda f: pd.to_datetime(f["as_of"]))
    joined = rows.merge(truth, on=["customer_id", "as_of"], validate="one_to_one")
    assert len(joined) == len(rows)
    y = targets(joined)
    _check_calibrated(y["churn"], joined["p_churn_true"])
    _check_calibrated(y["phase_out"], joined["p_phase_out_true"])
    stays = y["phase_out_if_stays"].notna()
    _check_calibrated(y.loc[stays, "phase_out_if_stays"], joined.loc[stays, "p_phase_out_if_stays_true"])


def test_oracle_ranks_far_better_than_chance_and_reports_label_rates(labelled):
    business, biz, rows = labelled
    result = oracle_auc(biz["probabilities"], rows)
    assert result["n_rows"] == len(rows)
    assert result["churn_rate"] == pytest.approx(rows["churn"].astype(float).mean())
    # measured at 3k/8k customers, seed 23: subscription 0.80 / 0.91, purchases 0.91-0.92 / 0.95-0.96
    assert result["churn"]["roc_auc"] > 0.75
    assert result["phase_out"]["roc_auc"] > 0.85


def test_a_gone_customer_churns_for_sure_and_cannot_phase_out(labelled):
    business, biz, _ = labelled
    truth = biz["probabilities"]
    gone = truth[~truth["alive_true"]]
    if business == "subscription":
        assert gone.empty  # the population is the customers who have not churned
        return
    assert len(gone) > 100
    assert (gone["p_churn_true"] == 1.0).all() and (gone["p_phase_out_true"] == 0.0).all()
    assert gone["p_phase_out_if_stays_true"].isna().all()
    assert set(gone["driver_true"]) <= {"baseline", "decline", "price_rise"}


def test_an_active_customer_of_the_pure_shop_misses_the_horizon_with_exp_minus_rate_times_horizon():
    biz = generate_business(GenerateConfig(n_customers=400, business="purchases_btyd"), seed=8, features=FEATURES)
    truth = biz["probabilities"].merge(biz["truth"][["customer_id", "purchases_per_month"]], on="customer_id")
    active = truth[truth["alive_true"]]
    # no seasonality: P(no purchase in 92 days) = exp(-lambda_per_day * 92)
    expected = np.exp(-active["purchases_per_month"] / (365.25 / 12) * 92)
    np.testing.assert_allclose(active["p_churn_true"], expected, rtol=1e-9)


def test_declining_buy_chance_matches_the_closed_form_without_seasonality():
    clock = SeasonalClock.build(19_000, 19_500, amplitude=0.0, peak_month=12)
    # rate r = 0.02 a day, leaving hazard mu = 0.01 a day, 92 days:
    # P(buy first) = r / (r + mu) * (1 - exp(-(r + mu) * 92)) = 2/3 * (1 - exp(-2.76)) = 0.62447
    chance = declining_buy_chance(np.array([0.02, 0.0]), 0.01, 19_100, 92, clock)
    np.testing.assert_allclose(chance, [2 / 3 * (1 - np.exp(-2.76)), 0.0], rtol=1e-12)
    assert chance[0] == pytest.approx(0.62447, abs=1e-5)


def test_seasonal_clock_inverse_undoes_the_integral():
    clock = SeasonalClock.build(18_000, 19_000, amplitude=0.5, peak_month=12)
    u = np.linspace(18_000.0, 18_999.5, 2_001)
    np.testing.assert_allclose(clock.inverse(clock.integral(u)), u, atol=1e-9)
    # one year of a rate peaking in December integrates to one year: the mean of s is 1
    assert clock.integral(np.array([18_000.0 + 365.2425]))[0] == pytest.approx(365.2425, rel=2e-3)


def test_monte_carlo_error_of_the_phase_out_probability_is_as_documented():
    cfg = GenerateConfig(n_customers=3_000, business="purchases")
    cal = gp.purchase_calendar(cfg)
    mech = Mechanisms.of(cfg, cal)
    clock = gp.season_clock(cfg, cal, mech)
    rng = np.random.default_rng([5, 0])
    buyers = gp.draw_buyers(cfg, cal, mech, rng, 0, 3_000)
    hist = gp.simulate_purchases(cfg, cal, buyers, mech, clock, rng)
    first, second = (
        purchase_probabilities(cfg, cal, buyers, mech, clock, hist, FEATURES, np.random.default_rng(s)) for s in (1, 2)
    )
    p1, p2 = np.concatenate(first.p_phase_out), np.concatenate(second.p_phase_out)
    np.testing.assert_array_equal(np.concatenate(first.p_churn), np.concatenate(second.p_churn))  # exact, no draws
    mean = (p1 + p2) / 2
    drawn = (mean > 0.05) & (mean < 0.95)
    z = (p1 - p2)[drawn] / np.sqrt(2 * mean[drawn] * (1 - mean[drawn]) / cfg.purchases.oracle_draws)
    assert drawn.sum() > 300
    assert 0.85 < z.std() < 1.15  # the binomial standard error sqrt(p (1 - p) / draws)


def test_same_seed_gives_the_same_probabilities():
    cfg = dataclasses.replace(GenerateConfig(n_customers=500, business="purchases"))
    first = generate_business(cfg, seed=3, features=FEATURES)["probabilities"]
    second = generate_business(cfg, seed=3, features=FEATURES)["probabilities"]
    pd.testing.assert_frame_equal(first, second)
