"""Config: precedence, clear errors, and docs that match the code."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from store.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "sample_data" / "config.example.toml"


def test_example_config_documents_every_setting_with_its_default() -> None:
    example = tomllib.loads(EXAMPLE.read_text())
    defaults = Config()
    for section in dataclasses.fields(Config):
        if section.name == "alerts":  # a list of rules, documented as commented examples (test_alerts.py)
            continue
        values = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(getattr(defaults, section.name)).items()
        }
        assert example[section.name] == values, f"[{section.name}] in config.example.toml differs from Config"
    assert load_config(EXAMPLE, env={}) == defaults


def test_every_example_key_has_a_comment() -> None:
    lines = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\w+ = ", line):
            previous = lines[number - 1]
            assert previous.startswith("#") or re.match(r"^\w+ = ", previous), f"config.example.toml:{number + 1}"


def test_precedence_defaults_file_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text('[collector]\ngrpc_listen = "127.0.0.1:5000"\nworkers = 3\nflush_interval_s = 2\n')
    env = {"VIGIL_COLLECTOR_WORKERS": "5", "VIGIL_COLLECTOR_WAL_FSYNC": "false", "UNRELATED": "x"}
    config = load_config(path, env=env, overrides={"store": {"data_dir": "/tmp/d"}, "collector": {"log_level": None}})
    assert config.collector.grpc_listen == "127.0.0.1:5000"
    assert config.collector.workers == 5
    assert config.collector.wal_fsync is False
    assert config.collector.flush_interval_s == 2.0
    assert config.collector.log_level == "INFO"
    assert config.store.data_dir == "/tmp/d"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[collector]\ngrpc_lsten = 'x'\n", {}, "unknown setting collector.grpc_lsten"),
        ("[colector]\n", {}, "unknown section [colector]"),
        ("[collector]\nworkers = 'many'\n", {}, "collector.workers must be a whole number"),
        ("", {"VIGIL_COLLECTOR_WORKERS": "many"}, "collector.workers must be a whole number"),
        ("", {"VIGIL_COLLECTOR_GRPC_LISTEN": "4317"}, "expected HOST:PORT"),
        ("", {"VIGIL_COLLECTOR_FLUSH_INTERVAL_S": "0"}, "flush_interval_s must be > 0"),
        ("not toml = = 1", {}, "is not valid TOML"),
    ],
)
def test_bad_settings_say_what_to_fix(tmp_path: Path, toml: str, env: dict, message: str) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, env=env)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})
