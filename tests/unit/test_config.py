import datetime as dt

import pytest

from omvald.config import Config, config_from_dict, load_config
from omvald.errors import ConfigError


def test_project_params_yaml_loads_into_typed_config():
    cfg = load_config("params.yaml")
    assert isinstance(cfg, Config)
    assert cfg.features.horizon_days > 0
    assert cfg.train.churn.num_leaves >= 2
    assert "features.horizon_days" in cfg.flat()


def test_dates_and_nested_sections_are_coerced():
    cfg = config_from_dict({"data": {"data_end": "2025-06-30"}, "features": {"active_rule": {"window_days": 60}}})
    assert cfg.data.data_end == dt.date(2025, 6, 30)
    assert cfg.features.active_rule.window_days == 60
    assert cfg.features.active_rule.min_active_events == 2  # default kept


def test_unknown_key_is_an_error_that_names_it():
    with pytest.raises(ConfigError, match=r"features: unknown parameter\(s\) horizon"):
        config_from_dict({"features": {"horizon": 90}})


def test_unparsable_value_names_the_key():
    with pytest.raises(ConfigError, match=r"features.horizon_days"):
        config_from_dict({"features": {"horizon_days": "ninety"}})


def test_missing_params_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "params.yaml")
