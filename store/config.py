"""The single typed configuration: defaults < TOML file < environment variables.

`load_config(path, env)` returns a frozen `Config`. Environment variables are named
`VIGIL_<SECTION>_<KEY>` (e.g. `VIGIL_COLLECTOR_GRPC_LISTEN=127.0.0.1:4317`), and the TOML file
has one table per section. Unknown keys are an error, so a typo never goes unnoticed.
Nothing else in vigil reads `os.environ` for settings.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ENV_PREFIX = "VIGIL"
_TYPE_NAMES = {int: "whole number", float: "number", bool: "boolean (true/false)", str: "string"}


class ConfigError(ValueError):
    """A setting is wrong; the message says which and what to do."""


@dataclass(frozen=True)
class CollectorConfig:
    # OTLP/gRPC listen address; loopback by default so nothing is exposed by accident.
    grpc_listen: str = "127.0.0.1:4317"
    # OTLP/HTTP listen address; also serves /healthz, /readyz and /metrics.
    http_listen: str = "127.0.0.1:4318"
    # Largest accepted request, like the OTel Collector's max_recv_msg_size_mib.
    max_message_mib: int = 16
    # Undecoded request bytes allowed in memory before Export answers RESOURCE_EXHAUSTED.
    max_queue_mib: int = 16
    # How often buffered rows are written to Parquet (and become queryable).
    flush_interval_s: float = 1.0
    # Rows per table that trigger an early flush.
    flush_max_rows: int = 50_000
    # Decoded rows (Arrow MiB, all tables): an early flush starts at three quarters of it; while a
    # failing flush keeps this much in memory, Export answers RESOURCE_EXHAUSTED.
    flush_max_mib: int = 24
    # fsync the write-ahead log before acknowledging; off only for benchmarks.
    wal_fsync: bool = True
    # WAL segment size before rotation.
    wal_segment_mib: int = 64
    # gRPC handler threads.
    workers: int = 8
    # Processes that decode and normalize requests, so ingest uses every core (0: in the collector itself).
    decode_workers: int = 2
    # Interval of the self-metrics log line (0 disables it).
    metrics_log_interval_s: float = 30.0
    log_level: str = "INFO"
    # PEM certificate chain and private key: both set turns on TLS for the gRPC and HTTP listeners.
    tls_cert_file: str = ""
    tls_key_file: str = ""


@dataclass(frozen=True)
class StoreConfig:
    # Root folder of the Parquet store and the write-ahead log.
    data_dir: str = "vigil-data"
    # Seconds between compaction rounds in the collector (0 turns background compaction off).
    compaction_interval_s: float = 60.0
    # Small files a date partition must hold before they are merged into one.
    compaction_min_files: int = 8
    # Seconds a replaced file stays on disk so queries that listed it can finish.
    compaction_grace_s: float = 300.0
    # Where the tables live: "" keeps them as plain Parquet under data_dir; "s3://bucket/prefix" (or
    # "file:///path") makes each table a Delta Lake table there, which several collectors can append to at once.
    # data_dir stays local either way: it holds the write-ahead log and the collector's state.
    uri: str = ""
    # S3-compatible endpoint, e.g. http://127.0.0.1:9000 (MinIO); "" = AWS itself or AWS_ENDPOINT_URL.
    s3_endpoint_url: str = ""
    # Bucket region; "" = AWS_REGION / AWS_DEFAULT_REGION. Credentials come only from the AWS_* env vars.
    s3_region: str = ""
    # Allow plain http to the endpoint (a loopback MinIO or moto); never needed for AWS.
    s3_allow_http: bool = False
    # After compaction, materialize per-date task and call rollups of sealed dates (store.rollups): faster queries.
    rollups: bool = True


@dataclass(frozen=True)
class PricingConfig:
    # TOML file of your own prices (self-hosted, fine-tuned or negotiated), winning over the bundled
    # table; "" for none. Format: sample_data/prices.example.toml. Read at start-up and by `vigil reprice`.
    overrides_file: str = ""


@dataclass(frozen=True)
class OutcomesConfig:
    # Root-span attributes read for a task's outcome, first present wins.
    attribute_keys: tuple[str, ...] = (
        "task.outcome",
        "vigil.outcome",
        "gen_ai.task.outcome",
        "outcome",
        "task.status",
        "task.success",
    )
    # Values (case-insensitive) that mean success / failure; anything else falls through to the status.
    success_values: tuple[str, ...] = (
        "success",
        "succeeded",
        "successful",
        "ok",
        "pass",
        "passed",
        "true",
        "completed",
    )
    failure_values: tuple[str, ...] = ("failure", "failed", "fail", "error", "errored", "false", "timeout", "aborted")
    # Spans whose name matches this glob are tasks too (e.g. "agent.*"); empty: only root spans.
    task_span_pattern: str = ""


@dataclass(frozen=True)
class BudgetsConfig:
    # Cost ceiling in USD for one task, by service name and by task (root span) name.
    per_service_usd: dict[str, float] = field(default_factory=dict)
    per_task_name_usd: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayConfig:
    # Model calls in flight at once during `vigil replay run`.
    concurrency: int = 4
    # Retries of one call after a retryable error (429, 5xx, timeout, connection); never after another 4xx.
    max_retries: int = 4
    # Exponential backoff with full jitter: wait up to base * 2^attempt seconds, at most backoff_max_s.
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    # Seconds one model call may take before it counts as a (retryable) timeout.
    timeout_s: float = 60.0
    # Hard ceilings of one run: its calls' worst-case cost is reserved before each call and never crosses them.
    budget_usd: float = 1.0
    budget_tokens: int = 200_000
    # max_tokens sent when neither the original call nor the prompt version sets one (bounds each call's cost).
    default_max_tokens: int = 1024
    # OTLP/gRPC endpoint the replay's own model calls are traced to ("" = OTEL_EXPORTER_OTLP_ENDPOINT or none).
    otlp_endpoint: str = ""
    # Gate defaults (`vigil replay gate` flags and rules files override them): the largest allowed rise of the
    # refusal rate (absolute), the smallest share of answers keeping their structure, the largest relative cost
    # rise, and the largest share of calls that may end in an error.
    max_refusal_increase: float = 0.02
    min_structure_match: float = 0.95
    max_cost_increase: float = 0.10
    max_error_rate: float = 0.0


@dataclass(frozen=True)
class QualityConfig:
    # Lexical refusal rule sets applied at ingest, "<language>@<version>" (see store/quality/rules_en.py).
    refusal_rule_sets: tuple[str, ...] = ("en@1",)
    # Refusal or hedging rule ids to switch off, e.g. ["en.only_scope@1"] for a bot whose answers start that way.
    disabled_rules: tuple[str, ...] = ()
    # Compute the weaker hedging signal ("I'm not sure", "it depends") into llm_calls.hedging_rule.
    hedging: bool = True


@dataclass(frozen=True)
class DriftConfig:
    # Calls each side of a comparison needs before anything is called drift (below: insufficient_data).
    min_samples: int = 50
    # Jensen-Shannon distance (sqrt of the divergence in bits, 0..1) of output signatures from which a group drifts.
    js_threshold: float = 0.2
    # PSI of output lengths (doubling buckets) from which a group's length distribution has shifted.
    length_psi_threshold: float = 0.25
    # Default windows of `vigil drift`: ages before now, "FROM..TO" or just "FROM" (until now).
    baseline: str = "7d..1d"
    current: str = "1d"


@dataclass(frozen=True)
class AlertingConfig:
    # Webhook POSTed with the results of every firing rule that names none of its own ("" for none).
    webhook_url: str = ""
    # Seconds to wait for a webhook to answer, and extra attempts after a failed one.
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 2
    # Samples (calls or tasks) a group needs in the window before a rule judges it; a rule's min_samples wins.
    min_samples: int = 20


@dataclass(frozen=True)
class AlertRule:
    """One `[[alerts]]` table: fire when `metric` over the last `window` is above/below `threshold`."""

    name: str
    metric: str
    threshold: float
    comparison: str = "above"
    window: str = "1h"
    group_by: str = "all"
    min_samples: int = 0  # 0: [alerting] min_samples (drift metrics: [drift] min_samples)
    webhook: str = ""
    baseline: str = "7d"  # drift metrics only: the span before the window that it is compared with

    REQUIRED = ("name", "metric", "threshold")


@dataclass(frozen=True)
class AuthConfig:
    # Require a project API key (`vigil keys create`) on every OTLP Export and POST /v1/outcomes.
    enabled: bool = False
    # Where the hashed keys live; "" means <data_dir>/keys.json.
    keys_file: str = ""
    # Start even without auth on a non-loopback address (anyone who can reach it can write).
    allow_unauthenticated: bool = False
    # Dashboards login: "none", or "oidc" (Streamlit st.login; needs [auth] in .streamlit/secrets.toml).
    dashboards: str = "none"


@dataclass(frozen=True)
class RedactionConfig:
    # Redact secrets and personal data before anything is written (WAL included).
    enabled: bool = True
    # Built-in rules to switch off, by name (see README "Redaction").
    disabled_rules: tuple[str, ...] = ()
    # Extra rules as "name=regex" (Python syntax); the whole match is replaced.
    custom_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetentionConfig:
    # Days of data kept, for every table and project; 0 keeps everything forever.
    default_days: float = 0.0
    # Days per table (e.g. { spans = 30 }), winning over default_days.
    tables: dict[str, float] = field(default_factory=dict)
    # Days per project, all tables (e.g. { acme = 7 }), winning over tables.
    projects: dict[str, float] = field(default_factory=dict)
    # Days for one project's table, "project:table" (e.g. { "acme:llm_calls" = 90 }), winning over all.
    project_tables: dict[str, float] = field(default_factory=dict)
    # Seconds between retention runs in the collector (0: only `vigil retention apply`); Delta: `vigil compact --every`.
    interval_s: float = 86400.0


@dataclass(frozen=True)
class Config:
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    outcomes: OutcomesConfig = field(default_factory=OutcomesConfig)
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    alerts: tuple[AlertRule, ...] = ()  # [[alerts]] in the TOML file only (a list of tables has no env form)
    auth: AuthConfig = field(default_factory=AuthConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    def validate(self) -> Config:
        parse_listen(self.collector.grpc_listen, "collector.grpc_listen")
        parse_listen(self.collector.http_listen, "collector.http_listen")
        positive = ("max_message_mib", "max_queue_mib", "flush_max_rows", "flush_max_mib", "wal_segment_mib", "workers")
        for name in positive:
            if getattr(self.collector, name) <= 0:
                raise ConfigError(f"collector.{name} must be a positive number")
        if self.collector.decode_workers < 0:
            raise ConfigError("collector.decode_workers must be 0 or more")
        if self.store.compaction_min_files < 2:
            raise ConfigError("store.compaction_min_files must be at least 2")
        if self.store.uri and not self.store.uri.startswith(("s3://", "s3a://", "file://")):
            raise ConfigError(
                f"store.uri={self.store.uri!r}: use s3://BUCKET/PREFIX (or file:///PATH for Delta tables on a local "
                'disk), or "" for plain Parquet under store.data_dir'
            )
        if self.store.compaction_interval_s < 0 or self.store.compaction_grace_s < 0:
            raise ConfigError("store.compaction_interval_s and store.compaction_grace_s must be >= 0")
        if self.collector.flush_interval_s <= 0:
            raise ConfigError("collector.flush_interval_s must be > 0 (seconds between Parquet flushes)")
        if self.collector.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("collector.log_level must be one of DEBUG, INFO, WARNING, ERROR")
        if self.replay.concurrency <= 0 or self.replay.max_retries < 0 or self.replay.default_max_tokens <= 0:
            raise ConfigError("replay.concurrency and replay.default_max_tokens must be > 0, replay.max_retries >= 0")
        if self.replay.budget_usd < 0 or self.replay.budget_tokens < 0:
            raise ConfigError("replay.budget_usd and replay.budget_tokens must be >= 0")
        _validate_quality(self.quality)
        if self.drift.min_samples < 1 or self.alerting.min_samples < 1:
            raise ConfigError("drift.min_samples and alerting.min_samples must be at least 1")
        if self.alerting.webhook_timeout_s <= 0 or self.alerting.webhook_retries < 0:
            raise ConfigError("alerting.webhook_timeout_s must be > 0 and alerting.webhook_retries >= 0")
        parse_range(self.drift.baseline, "drift.baseline")
        parse_range(self.drift.current, "drift.current")
        _validate_rules(self.alerts)
        if bool(self.collector.tls_cert_file) != bool(self.collector.tls_key_file):
            raise ConfigError("collector.tls_cert_file and collector.tls_key_file go together: set both or neither")
        if self.auth.dashboards not in ("none", "oidc"):
            raise ConfigError('auth.dashboards must be "none" or "oidc"')
        self._validate_retention()
        return self

    def _validate_retention(self) -> None:
        from store.schema import TABLES  # schema imports nothing of ours; kept local to keep config first

        retention = self.retention
        limits = {"retention.default_days": retention.default_days, "retention.interval_s": retention.interval_s}
        for name in ("tables", "projects", "project_tables"):
            limits |= {f"retention.{name}.{key}": days for key, days in getattr(retention, name).items()}
        for setting, value in limits.items():
            if value < 0:
                raise ConfigError(f"{setting} must be >= 0 (0 keeps data forever)")
        tables = [*retention.tables, *(key.rpartition(":")[2] for key in retention.project_tables)]
        for key in retention.project_tables:
            if ":" not in key:
                raise ConfigError(f'retention.project_tables key {key!r} must be "project:table"')
        for table in tables:
            if table not in TABLES:
                raise ConfigError(f"retention: unknown table {table!r}; tables are {', '.join(TABLES)}")


def _validate_quality(quality: QualityConfig) -> None:
    if quality == QualityConfig():  # the defaults compile (tests.test_config): a query need not import the rule tables
        return
    from store.quality.refusal import compile_rules  # lazily: the rule tables cost every process ~40 ms to import

    try:
        compile_rules(quality.refusal_rule_sets, quality.disabled_rules, quality.hedging)
    except ValueError as exc:
        raise ConfigError(f"[quality] {exc}") from None


def _validate_rules(rules: tuple[AlertRule, ...]) -> None:
    from store.alerts import DIMENSIONS, METRICS  # lazily: store.alerts imports this module

    names = [rule.name for rule in rules]
    for rule in rules:
        where = f"[[alerts]] {rule.name!r}"
        if names.count(rule.name) > 1:
            raise ConfigError(f"{where}: two rules have this name; give each rule its own")
        if rule.metric not in METRICS:
            raise ConfigError(f"{where}: unknown metric {rule.metric!r}; known: {', '.join(METRICS)}")
        if rule.comparison not in ("above", "below"):
            raise ConfigError(f"{where}: comparison must be 'above' or 'below', got {rule.comparison!r}")
        if rule.group_by not in DIMENSIONS:
            raise ConfigError(f"{where}: cannot group by {rule.group_by!r}; use one of {', '.join(DIMENSIONS)}")
        if rule.min_samples < 0:
            raise ConfigError(f"{where}: min_samples must be 0 (the default) or more")
        parse_duration(rule.window, f"{where} window")
        parse_duration(rule.baseline, f"{where} baseline")


_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(value: object) -> timedelta | None:
    """'30m', '12h', '7d', '2w' → timedelta; None for anything else (the CLI then tries a date)."""
    if isinstance(value, str) and value[:-1].isdigit() and value[-1:] in _UNITS and int(value[:-1]) > 0:
        return timedelta(**{_UNITS[value[-1]]: int(value[:-1])})
    return None


def parse_duration(value: str, setting: str) -> timedelta:
    """'30m', '12h', '7d', '2w' → timedelta; anything else is an error naming `setting`."""
    age = parse_age(value)
    if age is None:
        raise ConfigError(f"{setting} {value!r}: use a duration like 30m, 12h, 7d or 2w")
    return age


def parse_range(value: str, setting: str) -> tuple[timedelta, timedelta]:
    """'7d..1d' (from 7 days ago to 1 day ago) or '1d' (the last day) → (start age, end age)."""
    start, _, end = value.partition("..")
    older, newer = parse_duration(start, setting), parse_duration(end, setting) if end else timedelta(0)
    if newer >= older:
        raise ConfigError(f"{setting} {value!r}: the start must be older than the end, as in 7d..1d")
    return older, newer


def parse_listen(value: str, setting: str = "listen address") -> tuple[str, int]:
    """'host:port' or '[v6]:port' → (host, port); port 0 asks the OS for a free one."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{setting}={value!r}: expected HOST:PORT, for example 127.0.0.1:4317")
    return host.strip("[]"), int(port)


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Defaults, then the TOML file, then `VIGIL_*` env vars, then explicit overrides (CLI flags)."""
    sections: dict[str, dict[str, Any]] = {f.name: {} for f in dataclasses.fields(Config) if f.name != "alerts"}
    rules: list[Any] = []
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; pass an existing --config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        rules = data.pop("alerts", [])
        for section, values in data.items():
            if section not in sections or not isinstance(values, dict):
                raise ConfigError(f"{path}: unknown section [{section}]; known: {', '.join(sections)}, [[alerts]]")
            sections[section].update(values)
    if any(key.startswith(f"{ENV_PREFIX}_ALERTS_") for key in env):
        raise ConfigError(f"alert rules are set only as [[alerts]] in the config file, not as {ENV_PREFIX}_ALERTS_*")
    for section in sections:
        prefix = f"{ENV_PREFIX}_{section.upper()}_"
        for key, value in env.items():
            if key.startswith(prefix):
                sections[section][key[len(prefix) :].lower()] = value
    for section, values in (overrides or {}).items():
        sections[section].update({k: v for k, v in values.items() if v is not None})
    built = {name: _build_section(_default(name), name, values) for name, values in sections.items()}
    return Config(**built, alerts=_build_rules(rules, path)).validate()


def _default(section: str) -> Any:
    return next(f for f in dataclasses.fields(Config) if f.name == section).default_factory()  # type: ignore[misc]


def _build_rules(rules: Any, path: str | Path | None) -> tuple[AlertRule, ...]:
    """`[[alerts]]` tables → AlertRule, with the same key and type checks as a section."""
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError(f"{path}: alerts must be a list of tables, written [[alerts]]")
    built = []
    for number, rule in enumerate(rules, 1):
        where = f"[[alerts]] #{number} ({rule.get('name', 'no name')})"
        missing = [key for key in AlertRule.REQUIRED if key not in rule]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}; every rule needs name, metric and threshold")
        template = AlertRule(name="", metric="", threshold=0.0)
        built.append(_build_section(template, where, rule))
    return tuple(built)


def _build_section(default: Any, name: str, values: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(default)}
    converted = {}
    for key, raw in values.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {name}.{key}; known: {', '.join(fields)}")
        converted[key] = _convert(raw, type(getattr(default, key)), f"{name}.{key}")
    return dataclasses.replace(default, **converted)


def _convert(raw: Any, kind: type, setting: str) -> Any:
    if kind is tuple:  # a list of strings; from the environment, comma-separated
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{setting} must be a list of strings, got {raw!r}")
        return tuple(i.strip() for i in items if i.strip())
    if kind is dict:  # name → amount; from the environment, "a=1.5,b=2"
        if isinstance(raw, str):
            pairs = [item.partition("=") for item in raw.split(",") if item.strip()]
            raw = {name.strip(): value for name, _, value in pairs}
        try:
            return {str(name): float(value) for name, value in raw.items()}
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(f"{setting} must be a table of name = amount, got {raw!r}") from None
    if not isinstance(raw, str) or kind is str:
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
            raise ConfigError(f"{setting} must be a {_TYPE_NAMES[kind]}, got {raw!r}")
        return raw
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{setting} must be a {_TYPE_NAMES[kind]}, got {raw!r}") from None
