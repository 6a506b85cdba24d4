"""Every feature names the business reason (driver) it speaks for; features of one reason share it."""

from __future__ import annotations

from omvald.config import FeatureConfig
from omvald.features.registry import feature_drivers, registry_entries

FULL_META = {
    "columns": {
        "customers": ["customer_id", "signup_date", "contract", "region"],
        "billing": ["customer_id", "invoice_date", "amount", "list_price", "due_date", "paid_date", "plan", "products"],
        "touchpoints": ["customer_id", "timestamp", "date", "channel", "event", "direction", "value"],
    },
    "binding_column": "contract",
}


def _drivers(cfg: FeatureConfig) -> dict[str, str]:
    return {e.spec.name: e.record()["driver"] for e in registry_entries(cfg, FULL_META)}


def test_the_price_change_features_and_the_reaction_to_a_rise_share_the_price_change_driver():
    drivers = _drivers(FeatureConfig())
    price = {name for name, driver in drivers.items() if driver == "price_change"}
    assert price == {
        "price_shock_pct_3m",
        "price_shock_amount_3m",
        "price_shock_pct_12m",
        "price_increases_12m",
        "price_increase_max_pct_12m",
        "contacts_after_price_increase_90d",
    }


def test_complaint_counts_of_every_channel_and_window_are_one_complaint_driver():
    drivers = _drivers(FeatureConfig())
    complaint = {name for name, driver in drivers.items() if driver == "complaint"}
    assert complaint == {name for name in drivers if name.startswith("tp_") and "_complaint_" in name}
    assert {"tp_phone_complaint_90d", "tp_complaint_30d", "tp_complaint_180d"} <= complaint
    assert drivers["tp_chat_downgrade_request_90d"] == drivers["downgrades_12m"] == "downsizing"
    assert drivers["binding_months_left"] == drivers["months_since_binding_end"] == "binding"
    assert drivers["days_since_last_inbound"] == drivers["tp_inbound_90d"] == "service_contact"
    assert drivers["nps_last"] == "satisfaction"


def test_attributes_and_unknown_events_are_drivers_of_their_own():
    drivers = _drivers(FeatureConfig(events=("visit",)))
    assert drivers["attr_region"] == "attr_region"
    assert drivers["tp_visit_30d"] == drivers["tp_store_visit_90d"] == "visit_events"
    assert all(drivers.values())


def test_a_registry_written_without_drivers_makes_each_feature_its_own_driver():
    registry = [{"name": "price_shock_pct_3m", "family": "billing_core"}, {"name": "a", "driver": "price_change"}]
    assert feature_drivers(registry) == {"price_shock_pct_3m": "price_shock_pct_3m", "a": "price_change"}
