"""Alert rules: `[[alerts]]` from the config → one `AlertResult` per rule and group.

In: a DuckDB connection from `store.catalog.connect` and a `Config` whose `alerts` are the rules.
Out: for every rule, the value of its metric over the last `window` (before `now`) per group, with
whether it fires. Every metric is a column of a named query in `store/queries` (the `METRICS` table),
so `vigil check`, the dashboards and the tests get the same numbers. A group with fewer samples than
the rule's minimum is `insufficient_data` and never fires. This module only reads: delivery
(webhooks) is `store.webhooks`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from store.config import AlertRule, Config, parse_duration
from store.queries import run


@dataclass(frozen=True)
class Metric:
    query: str  # the named query in store/queries
    column: str  # its column holding the metric's value
    samples: str  # its column counting what the value is computed from (calls or tasks)
    about: str
    drift: bool = False  # compares the window with the `baseline` before it


METRICS: dict[str, Metric] = {
    "p99_latency_ms": Metric("task_latency", "p99_ms", "tasks", "99th percentile of task (root span) duration"),
    "llm_p99_latency_ms": Metric("llm_call_rates", "p99_ms", "calls", "99th percentile of LLM call duration"),
    "error_rate": Metric("llm_call_rates", "error_rate", "calls", "share of LLM calls that failed"),
    "refusal_rate": Metric("llm_call_rates", "refusal_rate", "answered_calls", "share of answers that refused"),
    "validation_failure_rate": Metric(
        "llm_call_rates", "validation_failure_rate", "validated_calls", "share of checked outputs that failed"
    ),
    "drift_distance": Metric(
        "signature_drift", "js_distance", "current_calls", "JS distance of output signatures", drift=True
    ),
    "length_drift_psi": Metric("length_drift", "psi", "current_calls", "PSI of output lengths", drift=True),
    "cost_per_successful_task": Metric(
        "cost_per_successful_task", "cost_per_successful_task", "tasks", "cost of all tasks / successful tasks"
    ),
    "task_success_rate": Metric("cost_per_successful_task", "success_rate", "tasks", "successes / judged tasks"),
    "spend_per_day": Metric("spend_per_day", "spend_per_day_usd", "calls", "LLM spend in USD per day"),
    "tool_calls_per_task": Metric("tool_calls_per_task", "tool_calls_per_task", "tasks", "tool spans per task"),
}
# What a rule can group by (names of store.queries.GROUPS); every metric's query supports these.
DIMENSIONS = ("all", "service", "model", "prompt_version", "task")


@dataclass(frozen=True)
class AlertResult:
    rule: str
    metric: str
    group: str | None  # the group's value ('all' without group_by); None when the window had no data
    value: float | None
    threshold: float
    comparison: str  # above | below
    firing: bool
    status: str  # firing | ok | insufficient_data | no_value | no_data
    samples: int
    min_samples: int
    window: str
    since: datetime
    until: datetime

    def to_dict(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        return row | {"since": self.since.isoformat(), "until": self.until.isoformat()}


def evaluate_alerts(con: duckdb.DuckDBPyConnection, config: Config, now: datetime | None = None) -> list[AlertResult]:
    """Every rule of `config.alerts` over the window that ends at `now` (default: the current time)."""
    now = now or datetime.now(UTC)
    return [result for rule in config.alerts for result in evaluate_rule(con, rule, config, now)]


def evaluate_rule(con: duckdb.DuckDBPyConnection, rule: AlertRule, config: Config, now: datetime) -> list[AlertResult]:
    metric = METRICS[rule.metric]
    since = now - parse_duration(rule.window, f"[[alerts]] {rule.name!r} window")
    minimum = rule.min_samples or (config.drift.min_samples if metric.drift else config.alerting.min_samples)
    if metric.drift:
        baseline_since = since - parse_duration(rule.baseline, f"[[alerts]] {rule.name!r} baseline")
        params = {"baseline_since": baseline_since, "baseline_until": since, "current_since": since}
        rows = run(con, metric.query, group=rule.group_by, current_until=now, min_samples=minimum, **params)
    else:
        rows = run(con, metric.query, group=rule.group_by, since=since, until=now)
    base = {"rule": rule.name, "metric": rule.metric, "threshold": rule.threshold, "comparison": rule.comparison}
    base |= {"min_samples": minimum, "window": rule.window, "since": since, "until": now}
    results = [_judge(row, metric, rule, minimum, base) for row in rows.to_pylist()]
    return results or [AlertResult(group=None, value=None, firing=False, status="no_data", samples=0, **base)]


def _judge(row: dict[str, Any], metric: Metric, rule: AlertRule, minimum: int, base: dict) -> AlertResult:
    if metric.drift:  # the query applies the per-side minimum itself
        samples = min(row["baseline_calls"] or 0, row["current_calls"] or 0)
        enough = row["status"] != "insufficient_data"
    else:
        samples = int(row[metric.samples] or 0)
        enough = samples >= minimum
    value = row[metric.column]
    value = None if value is None else float(value)
    if samples == 0:
        status = "no_data"
    elif not enough:
        status = "insufficient_data"
    elif value is None:
        status = "no_value"  # e.g. cost per successful task with no success: nothing to compare
    else:
        crossed = value > rule.threshold if rule.comparison == "above" else value < rule.threshold
        status = "firing" if crossed else "ok"
    group = row["group"]
    return AlertResult(
        group=None if group is None else str(group),
        value=value,
        firing=status == "firing",
        status=status,
        samples=samples,
        **base,
    )
