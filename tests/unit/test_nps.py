"""NPS with its adjusted-Wald interval, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from omvald.reports.nps import monthly_nps, nps_summary, plot_monthly_nps


def test_nps_interval_matches_hand_computation():
    # 6 promoters, 2 passives, 2 detractors: NPS = 60% - 20% = 40.
    # Adjusted Wald: n~ = 13, p~P = 6.75 / 13 = 0.519231, p~D = 2.75 / 13 = 0.211538,
    # centre = 0.307692, Var = (0.519231 + 0.211538 - 0.307692^2) / 13 = 0.636095 / 13 = 0.048930,
    # half width = 1.959964 * sqrt(0.048930) = 1.959964 * 0.221202 = 0.433548
    # -> low = 100 * (0.307692 - 0.433548) = -12.586, high = 100 * (0.307692 + 0.433548) = 74.124
    s = nps_summary([10, 9, 9, 10, 9, 9, 7, 8, 3, 6])
    assert s["nps"] == 40.0
    assert (s["n"], s["promoters"], s["passives"], s["detractors"]) == (10, 6, 2, 2)
    assert s["low"] == pytest.approx(-12.586, abs=1e-3)
    assert s["high"] == pytest.approx(74.124, abs=1e-3)


def test_interval_narrows_with_more_answers_same_proportions():
    small = nps_summary([10] * 6 + [7] * 2 + [0] * 2)
    large = nps_summary([10] * 600 + [7] * 200 + [0] * 200)
    assert small["nps"] == large["nps"] == 40.0
    assert (large["high"] - large["low"]) < (small["high"] - small["low"]) / 5
    # n = 1000: the pseudo-answers barely matter; half width ~ 1.96 * sqrt((0.8 - 0.16) / 1000) = 4.96 points.
    assert large["high"] - large["low"] == pytest.approx(2 * 4.96, abs=0.1)


def test_all_promoters_single_answer_stays_sensible():
    # n~ = 4, p~P = 1.75 / 4 = 0.4375, p~D = 0.75 / 4 = 0.1875, centre = 0.25,
    # Var = (0.625 - 0.0625) / 4 = 0.140625, half width = 1.959964 * 0.375 = 0.734987
    # -> [-48.50, 98.50]: one answer says little (plain Wald would give [100, 100]).
    s = nps_summary([10])
    assert s["nps"] == 100.0
    assert s["low"] == pytest.approx(-48.499, abs=1e-3)
    assert s["high"] == pytest.approx(98.499, abs=1e-3)


def test_no_answers_gives_nan():
    s = nps_summary([np.nan])
    assert s["n"] == 0 and math.isnan(s["nps"]) and math.isnan(s["low"])


def touchpoints() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "a", "b", "c"],
            "date": pd.to_datetime(
                ["2024-01-05", "2024-01-20", "2024-01-31", "2024-02-01", "2024-02-02", "2024-02-03"]
            ).date,
            "timestamp": pd.to_datetime(
                ["2024-01-05", "2024-01-20", "2024-01-31", "2024-02-01", "2024-02-02", "2024-02-03"]
            ),
            "channel": "email",
            "event": ["nps", "nps", "survey", "nps", "opened", "nps"],
            "value": [10.0, 3.0, 9.0, 8.0, np.nan, 2.0],
        }
    )


def test_monthly_nps_overall_and_by_segment():
    segments = pd.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["active", "passive", "active"]})
    out = monthly_nps(touchpoints(), segments)
    assert list(out.columns) == ["month", "segment", "n", "nps", "low", "high"]
    jan = out[out["month"] == pd.Timestamp("2024-01-01")].set_index("segment")
    assert list(jan.index) == ["all", "active", "passive"]
    assert jan.loc["all", "n"] == 3 and jan.loc["all", "nps"] == pytest.approx(100 / 3)  # 2 promoters, 1 detractor
    assert jan.loc["active", "nps"] == 100.0 and jan.loc["passive", "nps"] == -100.0
    feb = out[out["month"] == pd.Timestamp("2024-02-01")].set_index("segment")
    assert feb.loc["all", "n"] == 2 and feb.loc["all", "nps"] == -50.0  # a passive 8 and a detractor 2
    assert "passive" not in feb.index  # b's only February row is an open, not an answer


def test_monthly_nps_without_segments_and_without_value_column():
    assert set(monthly_nps(touchpoints())["segment"]) == {"all"}
    assert monthly_nps(touchpoints().drop(columns="value")).empty


def test_plot_writes_png(tmp_path):
    path = tmp_path / "nps.png"
    plot_monthly_nps(monthly_nps(touchpoints()), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
