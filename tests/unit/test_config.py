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


def test_dates_read_the_same_quoted_or_not(tmp_path):
    # the README's example is unquoted: YAML gives a date; quoted it is a string; DVC may write either
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  data_end: 2026-10-31\nfeatures:\n  as_of_first: '2025-01-31'\n  as_of_last: 2026-06-30\n")
    cfg = load_config(path)
    assert cfg.data.data_end == dt.date(2026, 10, 31)
    assert (cfg.features.as_of_first, cfg.features.as_of_last) == (dt.date(2025, 1, 31), dt.date(2026, 6, 30))
    assert config_from_dict({"data": {"data_end": dt.datetime(2026, 10, 31)}}).data.data_end == dt.date(2026, 10, 31)
    with pytest.raises(ConfigError, match="data.data_end"):
        config_from_dict({"data": {"data_end": dt.datetime(2026, 10, 31, 12, 30)}})


def test_a_renamed_parameter_says_its_new_name():
    with pytest.raises(ConfigError, match="snapshot_test_share was renamed; write it as train.customer_holdout_share"):
        config_from_dict({"train": {"snapshot_test_share": 0.25}})
