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


def test_ages_mean_the_same_in_config_and_on_the_command_line() -> None:
    """[[alerts]] window / [drift] ranges (parse_duration, parse_range) and CLI --since/--now (parse_when)."""
    from datetime import UTC, datetime, timedelta

    from store.config import parse_duration, parse_range
    from vigil.options import parse_when

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for age, delta in {"30m": timedelta(minutes=30), "12h": timedelta(hours=12), "7d": timedelta(days=7)}.items():
        assert parse_duration(age, "x") == delta and parse_when(age, now, "--since") == now - delta
    assert parse_when("2w", now, "--since") == now - parse_duration("2w", "x") == now - timedelta(weeks=2)
    assert parse_range("7d..1d", "x") == (timedelta(days=7), timedelta(days=1))
    assert parse_when("2026-11-01", now, "--since") == datetime(2026, 11, 1, tzinfo=UTC)
    for bad in ("0d", "7x", "d"):
        with pytest.raises(ConfigError, match="use a duration like"):
            parse_duration(bad, "x")
        with pytest.raises(ConfigError, match=f"--since '{bad}': use an age like 7d"):
            parse_when(bad, now, "--since")


def test_the_default_quality_rules_compile_and_bad_ones_still_fail(tmp_path: Path) -> None:
    """load_config skips compiling the default rules (a query then never imports the rule tables): they must compile."""
    from store.config import QualityConfig
    from store.quality.refusal import compile_rules

    defaults = QualityConfig()
    assert compile_rules(defaults.refusal_rule_sets, defaults.disabled_rules, defaults.hedging)
    path = tmp_path / "vigil.toml"
    path.write_text('[quality]\ndisabled_rules = ["en.no_such_rule@1"]\n')
    with pytest.raises(ConfigError, match=r"\[quality\]"):
        load_config(path, env={})
