"""Touchpoint features on tiny hand-made tables with the expected numbers written out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omvald.config import FeatureConfig
from omvald.features.spec import BucketTables
from omvald.features.touchpoints import touchpoint_feature_specs, touchpoint_features

CFG = FeatureConfig(
    channels=("email", "phone", "web"), events=("sent", "opened", "clicked", "contact", "complaint", "nps")
)
T = "2024-03-31"
TP_COLUMNS = ["customer_id", "timestamp", "date", "channel", "event", "direction", "value", "hash_slot"]
BILLING_COLUMNS = ["customer_id", "invoice_date", "amount", "hash_slot"]


def touchpoints(rows: list[tuple]) -> pd.DataFrame:
    """rows: (customer_id, date, channel, event, direction, value)."""
    df = pd.DataFrame(rows, columns=["customer_id", "date", "channel", "event", "direction", "value"])
    df["timestamp"] = pd.to_datetime(df["date"]) + pd.Timedelta(hours=12)
    df["date"] = pd.to_datetime(df["date"]).dt.date
    df["value"] = df["value"].astype("float64")
    df["hash_slot"] = np.int16(0)
    return df[TP_COLUMNS]


def billing(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"])
    df["invoice_date"] = pd.to_datetime(df["invoice_date"]).dt.date
    df["amount"] = df["amount"].astype("float64")
    df["hash_slot"] = np.int16(0)
    return df


def spine(*customers: str, as_of: str = T) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(customers), "as_of": pd.to_datetime([as_of] * len(customers))})


def build(tp: pd.DataFrame, ids=("a",), bill: pd.DataFrame | None = None, cfg: FeatureConfig = CFG) -> pd.DataFrame:
    tables = BucketTables(customers=pd.DataFrame(), billing=billing([]) if bill is None else bill, touchpoints=tp)
    return touchpoint_features(tables, spine(*ids), cfg).set_index("customer_id")


def test_channel_event_counts_pivot_with_unseen_channel_to_other():
    tp = touchpoints(
        [
            ("a", "2024-03-02", "email", "opened", "inbound", None),
            ("a", "2024-03-02", "email", "opened", "inbound", None),
            ("a", "2024-03-03", "fax", "sent", "outbound", None),  # unseen channel -> other
            ("a", "2024-03-04", "phone", "telepathy", None, None),  # unseen event -> other
        ]
    )
    f = build(tp).loc["a"]
    assert f["tp_email_opened_90d"] == 2.0
    assert f["tp_other_sent_90d"] == 1.0
    assert f["tp_phone_other_90d"] == 1.0
    assert f["tp_opened_30d"] == 2.0
    assert f["tp_sent_180d"] == 1.0
    assert f["tp_other_30d"] == 1.0
    assert f["tp_email_sent_90d"] == 0.0


def test_windows_are_half_open_rows_after_t_ignored_row_at_t_counted():
    tp = touchpoints(
        [
            ("a", "2024-03-31", "phone", "contact", "inbound", None),  # exactly t: counted
            ("a", "2024-04-01", "phone", "contact", "inbound", None),  # after t: ignored
            ("a", "2024-03-01", "phone", "contact", "inbound", None),  # t - 30 days: outside (t-30, t]
            ("a", "2023-10-03", "phone", "contact", "inbound", None),  # t - 180 days: outside
        ]
    )
    f = build(tp).loc["a"]
    assert f["tp_contact_30d"] == 1.0
    assert f["tp_contact_90d"] == 2.0
    assert f["tp_contact_180d"] == 2.0
    assert f["tp_inbound_30d"] == 1.0
    assert f["days_since_last_inbound"] == 0.0


def test_email_open_and_click_rates():
    rows = [("a", f"2024-03-0{d}", "email", "sent", "outbound", None) for d in range(1, 5)]
    rows += [("a", "2024-03-05", "email", "opened", None, None)] * 2
    rows += [("a", "2024-03-06", "email", "clicked", None, None)]
    rows += [("a", "2024-03-06", "sms", "sent", "outbound", None)]  # not an e-mail
    f = build(touchpoints(rows), ids=("a",)).loc["a"]
    assert f["email_open_rate_90d"] == 0.5
    assert f["email_click_rate_90d"] == 0.25
    assert f["email_open_rate_180d"] == 0.5


def test_customer_without_touchpoints_has_zero_counts_and_nan_rates():
    tp = touchpoints([("a", "2024-03-01", "phone", "contact", "inbound", 4.0)])
    f = build(tp, ids=("a", "nobody")).loc["nobody"]
    assert f["tp_phone_contact_90d"] == 0.0
    assert f["tp_inbound_180d"] == 0.0
    assert np.isnan(f["days_since_last_inbound"])
    assert np.isnan(f["email_open_rate_90d"])
    assert np.isnan(f["nps_last"])
    assert pd.isna(f["nps_category_last"])


def test_empty_touchpoints_frame_gives_one_row_per_spine_row():
    out = build(touchpoints([]), ids=("a", "b"))
    assert list(out.index) == ["a", "b"]
    assert (out["tp_inbound_90d"] == 0.0).all()
    assert out["days_since_last_inbound"].isna().all()
    assert out.select_dtypes("number").dtypes.eq("float64").all()


def test_without_direction_and_value_inbound_is_inferred_and_nps_left_out():
    tp = touchpoints(
        [
            ("a", "2024-03-10", "phone", "contact", None, None),
            ("a", "2024-03-11", "phone", "complaint", None, None),
            ("a", "2024-03-12", "email", "opened", None, None),  # customer action but not a contact
            ("a", "2024-03-13", "email", "sent", None, None),
        ]
    ).drop(columns=["direction", "value"])
    columns = {"touchpoints": list(tp.columns), "billing": BILLING_COLUMNS}
    names = {s.name for s in touchpoint_feature_specs(CFG, columns)}
    assert "nps_last" not in names and "tp_inbound_90d" in names
    f = build(tp).loc["a"]
    assert f["tp_inbound_90d"] == 2.0
    assert f["days_since_last_inbound"] == 20.0  # last contact is the complaint on 2024-03-11
    assert "nps_last" not in f.index


def test_outbound_contact_is_not_inbound():
    tp = touchpoints([("a", "2024-03-10", "phone", "contact", "outbound", None)])
    assert build(tp).loc["a", "tp_inbound_90d"] == 0.0


def test_complaints_90_and_180_days():
    tp = touchpoints(
        [
            (
                "a",
                "2024-03-10",
                "chat",
                "complaint",
                "inbound",
                None,
            ),  # chat not in vocabulary: still counted per event
            ("a", "2023-12-01", "phone", "complaint", "inbound", None),  # 121 days before t
        ]
    )
    f = build(tp).loc["a"]
    assert f["tp_complaint_90d"] == 1.0
    assert f["tp_complaint_180d"] == 2.0
    assert f["tp_other_complaint_90d"] == 1.0


def test_contacts_after_price_increase():
    bill = billing([("a", "2024-01-01", 100.0), ("a", "2024-02-01", 100.0), ("a", "2024-03-01", 118.0)])
    tp = touchpoints(
        [
            ("a", "2024-03-05", "phone", "contact", "inbound", None),  # 4 days after the rise: counted
            ("a", "2024-03-31", "phone", "complaint", "inbound", None),  # 30 days after: counted
            ("a", "2024-02-10", "phone", "contact", "inbound", None),  # after a flat invoice: not counted
            ("a", "2024-03-06", "email", "opened", None, None),  # not a contact
        ]
    )
    assert build(tp, bill=bill).loc["a", "contacts_after_price_increase_90d"] == 2.0
    # The rise happens after t = 2024-02-29: nothing counted at that date.
    tables = BucketTables(pd.DataFrame(), bill, tp)
    early = touchpoint_features(tables, spine("a", as_of="2024-02-29"), CFG)
    assert early.loc[0, "contacts_after_price_increase_90d"] == 0.0


def test_price_feature_needs_billing_columns():
    columns = {"touchpoints": TP_COLUMNS, "billing": []}
    assert "contacts_after_price_increase_90d" not in {s.name for s in touchpoint_feature_specs(CFG, columns)}


def test_nps_last_mean_trend_and_category():
    tp = touchpoints(
        [
            ("a", "2023-03-31", "email", "nps", None, 0.0),  # exactly 12 months before: outside the window
            ("a", "2023-06-01", "email", "nps", None, 4.0),
            ("a", "2023-12-01", "web", "survey", None, 8.0),  # survey with a 0-10 value counts
            ("a", "2024-03-31", "email", "nps", None, 9.0),  # at t: counted, the last answer
            ("a", "2024-04-01", "email", "nps", None, 1.0),  # after t: ignored
            ("a", "2024-02-01", "web", "survey", None, 42.0),  # not on the 0-10 scale
            ("b", "2024-01-15", "email", "nps", None, 7.0),
        ]
    )
    f = build(tp, ids=("a", "b"))
    assert f.loc["a", "nps_last"] == 9.0
    assert f.loc["a", "nps_mean_12m"] == 7.0  # (4 + 8 + 9) / 3
    assert f.loc["a", "nps_trend_12m"] == 3.0  # 9 - (4 + 8) / 2
    assert f.loc["a", "nps_category_last"] == "promoter"
    assert f.loc["b", "nps_category_last"] == "passive"
    assert np.isnan(f.loc["b", "nps_trend_12m"])  # one answer: no trend
    assert isinstance(f["nps_category_last"].dtype, pd.CategoricalDtype)


def test_output_columns_match_specs_and_one_row_per_spine_row():
    tp = touchpoints([("a", "2024-03-15", "phone", "contact", "inbound", 4.0)])
    sp = pd.concat([spine("a", "b", as_of="2024-02-29"), spine("a", "b")], ignore_index=True)
    tables = BucketTables(pd.DataFrame(), billing([]), tp)
    out = touchpoint_features(tables, sp, CFG)
    specs = touchpoint_feature_specs(CFG, {"touchpoints": TP_COLUMNS, "billing": BILLING_COLUMNS})
    assert list(out.columns) == ["customer_id", "as_of", *(s.name for s in specs)]
    assert out["tp_inbound_30d"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert len({s.name for s in specs}) == len(specs)


@pytest.mark.parametrize("missing", ["channel", "event"])
def test_no_specs_without_required_columns(missing):
    cols = [c for c in TP_COLUMNS if c != missing]
    assert touchpoint_feature_specs(CFG, {"touchpoints": cols, "billing": BILLING_COLUMNS}) == []


def test_default_vocabulary_when_config_is_empty():
    names = {s.name for s in touchpoint_feature_specs(FeatureConfig(), {"touchpoints": TP_COLUMNS})}
    assert {"tp_sms_clicked_90d", "tp_other_other_90d", "tp_downgrade_request_30d"} <= names


def test_window_counts_pair_each_touchpoint_with_the_as_of_dates_whose_window_holds_it():
    """Ages 0, 29, 30, 89, 90, 179 and 180 days at the last date; customer 1 is in the spine at the last date only."""
    from omvald.features.touchpoints import _window_counts

    t1, t2 = pd.Timestamp("2024-02-29"), pd.Timestamp("2024-03-31")
    ages = [0, 29, 30, 89, 90, 179, 180]
    rows = pd.DataFrame(
        {
            "cust": [0] * len(ages) + [1, 1],
            "date": [t2 - pd.Timedelta(days=a) for a in ages] + [t1, t2 + pd.Timedelta(days=1)],
            "k": list(range(len(ages))) + [7, 8],
        }
    )
    keys = pd.DataFrame({"row_id": [0, 1, 2], "cust": [0, 0, 1], "as_of": [t1.date(), t2.date(), t2.date()]})
    got = pd.DataFrame(_window_counts(rows, keys, (30, 90, 180))).sort_values(["row_id", "k"])
    # at t2 (row 1): ages 0..179 count in the long window; < 30 short, < 90 middle.
    at_t2 = got[got["row_id"] == 1]
    assert at_t2["k"].tolist() == [0, 1, 2, 3, 4, 5]
    assert at_t2["n_short"].tolist() == [1, 1, 0, 0, 0, 0]
    assert at_t2["n_mid"].tolist() == [1, 1, 1, 1, 0, 0]
    # at t1 (row 0), 31 days earlier, every age is 31 days less and rows dated after t1 do not count
    at_t1 = got[got["row_id"] == 0]
    assert at_t1["k"].tolist() == [3, 4, 5, 6]  # 58, 59, 148 and 149 days old at t1
    assert at_t1["n_mid"].tolist() == [1, 1, 0, 0]
    # customer 1: its row at t1 has no spine row (not in the population then); the row after t2 counts nowhere
    assert got[got["row_id"] == 2]["k"].tolist() == [7]
    assert got[got["row_id"] == 2]["n_short"].tolist() == [0]  # 31 days old at t2
    assert (got["n_long"] == 1).all()
