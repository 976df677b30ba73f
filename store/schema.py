"""Table schemas: the only place the stored columns are defined.

Every table the collector writes is described here as a `pa.Schema`. Writers cast to it, the
catalog builds empty views from it, and tests compare against it. Times are UTC nanoseconds,
ids are lowercase hex, structured values (attributes, messages) are JSON text so DuckDB's
`->>` operators work on them.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

SCHEMA_VERSION = 1

_TS = pa.timestamp("ns", tz="UTC")

SPANS_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),  # NULL for a root span
        ("trace_state", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),  # internal | server | client | producer | consumer | unspecified
        ("start_time", _TS),
        ("end_time", _TS),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),  # unset | ok | error
        ("status_message", pa.string()),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("project", pa.string()),
        # Promoted from attributes because tasks and llm_calls inherit them from ancestors.
        ("prompt_name", pa.string()),
        ("prompt_version", pa.string()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("genai_kind", pa.string()),  # llm | tool | agent | chain | retriever | ... (NULL: plain span)
        ("resource_attributes", pa.string()),  # JSON object
        ("attributes", pa.string()),  # JSON object
        ("events", pa.string()),  # JSON array of {time, name, attributes}
        ("links", pa.string()),  # JSON array of {trace_id, span_id, attributes}
        ("received_at", _TS),
    ]
)

# The output's quality: a refusal verdict with the rule that fired, hedging, what came back and
# whether it was what the request asked for. NULL on calls without an output (embeddings).
QUALITY_FIELDS = [
    ("refused", pa.bool_()),  # any refusal layer fired (provider field, finish reason, lexical rule)
    ("refusal_rule", pa.string()),  # which: provider:refusal_field | finish_reason:content_filter | en.cannot_assist@1
    ("hedging_rule", pa.string()),  # a weaker signal: en.hedge.not_sure@1, ... (NULL on refusals)
    ("output_format", pa.string()),  # what came back: json | markdown | text | tool_calls | empty
    ("output_signature", pa.string()),  # structure, e.g. json:{a:str,b:[{c:num}]}, md:h2>ul, text:m
    ("output_keys", pa.list_(pa.string())),  # JSON key paths of a json output (b[].c)
    ("output_length", pa.int64()),  # characters of output text
    ("validation_status", pa.string()),  # pass | fail | NULL when no structure was asked for or reported
    ("validation_error", pa.string()),
]

LLM_CALLS_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("start_time", _TS),
        ("end_time", _TS),
        ("duration_ms", pa.float64()),
        ("service_name", pa.string()),
        ("project", pa.string()),
        ("scope_name", pa.string()),
        ("span_name", pa.string()),
        ("convention", pa.string()),  # otel_genai | openllmetry | openinference
        ("provider", pa.string()),
        ("operation", pa.string()),  # chat | text_completion | embeddings | responses | ...
        ("request_model", pa.string()),
        ("response_model", pa.string()),
        ("response_id", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cached_input_tokens", pa.int64()),
        ("cache_creation_input_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("cost_usd", pa.float64()),  # NULL when unpriced, never 0 for "unknown"
        ("cost_source", pa.string()),  # reported | table | override | unpriced
        ("price_model", pa.string()),  # the price entry that matched
        # Messages in the OTel GenAI shape: [{"role", "parts": [{"type", "content"|...}], "finish_reason"?}]
        ("input_messages", pa.string()),
        ("output_messages", pa.string()),
        ("output_text", pa.string()),
        ("tool_calls", pa.string()),  # JSON array of {id, name, arguments}
        ("tool_definitions", pa.string()),  # JSON array
        ("refusal", pa.string()),  # provider-signalled refusal text (OpenAI message.refusal)
        ("finish_reasons", pa.list_(pa.string())),
        ("request_params", pa.string()),  # JSON object: temperature, max_tokens, top_p, ...
        ("output_type", pa.string()),  # what the request asked for: text | json | ... (gen_ai.output.type)
        # Quality signals (store.quality), computed at ingest; see QUALITY_FIELDS.
        *QUALITY_FIELDS,
        ("status", pa.string()),  # ok | error
        ("status_message", pa.string()),
        ("error_type", pa.string()),
        ("is_streaming", pa.bool_()),
        ("time_to_first_token_ms", pa.float64()),
        ("prompt_name", pa.string()),
        ("prompt_version", pa.string()),
        ("prompt_template", pa.string()),
        ("prompt_variables", pa.string()),  # JSON object
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("mapping", pa.string()),  # mapped | unmapped
        ("unmapped_fields", pa.list_(pa.string())),  # what could not be read, e.g. ["input_tokens"]
        ("received_at", _TS),
    ]
)

LOGS_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),  # hash of the record's content: a retried export dedupes on it
        ("time", _TS),  # the record's time, else its observed time, else when it arrived
        ("observed_time", _TS),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("severity_number", pa.int32()),
        ("severity_text", pa.string()),
        ("event_name", pa.string()),
        ("body", pa.string()),  # JSON value
        ("attributes", pa.string()),  # JSON object
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("project", pa.string()),
        ("resource_attributes", pa.string()),
        ("received_at", _TS),
    ]
)

# One row per message carried by a GenAI log event; the llm_calls view folds them into the call
# they belong to (by trace_id, span_id), whichever of span and events arrived first.
LLM_MESSAGES_SCHEMA = pa.schema(
    [
        ("time", _TS),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("direction", pa.string()),  # input | output
        ("position", pa.int64()),  # order within the call: arrival order for inputs, choice index for outputs
        ("message", pa.string()),  # one message, OTel GenAI shape (JSON)
        ("text", pa.string()),  # its text parts, concatenated
        ("tool_calls", pa.string()),  # JSON array of {id, name, arguments}
        ("refusal", pa.string()),
        ("finish_reason", pa.string()),
        ("event_name", pa.string()),
        # Quality of an output message (see QUALITY_FIELDS): the llm_calls view uses them for a call
        # whose span carried no content. json_error: why the text is not JSON (NULL when it is).
        ("refusal_rule", pa.string()),
        ("hedging_rule", pa.string()),
        ("output_format", pa.string()),
        ("output_signature", pa.string()),
        ("output_keys", pa.list_(pa.string())),
        ("output_length", pa.int64()),
        ("json_error", pa.string()),
        ("received_at", _TS),
    ]
)

METRICS_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),  # hash of metric identity, series attributes and times
        ("time", _TS),
        ("start_time", _TS),
        ("name", pa.string()),
        ("description", pa.string()),
        ("unit", pa.string()),
        ("type", pa.string()),  # gauge | sum | histogram | exponential_histogram | summary
        ("temporality", pa.string()),  # delta | cumulative | NULL
        ("is_monotonic", pa.bool_()),
        ("attributes", pa.string()),  # JSON object
        ("value", pa.float64()),  # gauge and sum points
        ("count", pa.int64()),  # histogram and summary points
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("bucket_counts", pa.list_(pa.int64())),
        ("explicit_bounds", pa.list_(pa.float64())),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("project", pa.string()),
        ("resource_attributes", pa.string()),
        ("received_at", _TS),
    ]
)

# Task verdicts that arrive apart from the trace: user feedback, a downstream check, an evaluator.
OUTCOMES_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("time", _TS),  # when the verdict was given; the latest one per trace wins
        ("trace_id", pa.string()),
        ("outcome", pa.string()),  # success | failure, or an evaluator's label mapped by [outcomes] values
        ("score", pa.float64()),
        ("comment", pa.string()),
        ("source", pa.string()),  # cli | http | otlp:<event or evaluation name> | ...
        ("received_at", _TS),
        # The project of the API key that sent it: it then judges only a trace of that project. NULL (the CLI,
        # the dashboards, auth off): it judges the trace whatever its project.
        ("project", pa.string()),
    ]
)

# Prompt versions pushed with `vigil prompt push`. A version is immutable: the first one stored wins.
PROMPTS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("version", pa.string()),
        ("template", pa.string()),  # text with {variables}
        ("role", pa.string()),  # the message the template renders: user | system
        ("system_prompt", pa.string()),  # replaces the call's system message; NULL keeps it
        ("model", pa.string()),  # NULL keeps the call's model
        ("params", pa.string()),  # JSON object of request parameters (temperature, max_tokens, ...)
        ("created_at", _TS),
        ("received_at", _TS),
    ]
)

# A saved sample of LLM calls: a snapshot of what a replay needs, so a set still replays after
# retention removed the calls, and travels in a bundle.
REPLAY_SETS_SCHEMA = pa.schema(
    [
        ("set_id", pa.string()),
        ("position", pa.int64()),
        ("stratum", pa.string()),
        ("spec", pa.string()),  # JSON: the filters, size, seed and strategy that drew the set
        ("created_at", _TS),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("call_start_time", _TS),
        ("service_name", pa.string()),
        ("provider", pa.string()),
        ("request_model", pa.string()),
        ("response_model", pa.string()),
        ("prompt_name", pa.string()),
        ("prompt_version", pa.string()),
        ("prompt_template", pa.string()),
        ("prompt_variables", pa.string()),
        ("input_messages", pa.string()),
        ("request_params", pa.string()),
        ("tool_definitions", pa.string()),
        ("output_text", pa.string()),
        ("tool_calls", pa.string()),
        ("finish_reasons", pa.list_(pa.string())),
        ("refusal", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("duration_ms", pa.float64()),
        ("status", pa.string()),
        ("received_at", _TS),
    ]
)

# One row per state change of a replay run (started, then finished); the latest `updated_at` wins.
REPLAY_RUNS_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("run_id", pa.string()),
        ("created_at", _TS),
        ("updated_at", _TS),
        ("set_id", pa.string()),
        ("prompt_name", pa.string()),
        ("prompt_version", pa.string()),  # the candidate version
        ("model", pa.string()),  # NULL: each call's own model
        ("provider", pa.string()),
        ("base_url", pa.string()),
        ("settings", pa.string()),  # JSON: concurrency, retries, max_tokens, ... (what a resume reuses)
        ("status", pa.string()),  # running | completed | budget_exhausted | interrupted | failed
        ("cases_total", pa.int64()),
        ("cases_ok", pa.int64()),
        ("cases_error", pa.int64()),
        ("cases_skipped", pa.int64()),
        ("budget_usd", pa.float64()),
        ("budget_tokens", pa.int64()),
        ("spent_usd", pa.float64()),
        ("spent_tokens", pa.int64()),
        ("summary", pa.string()),  # JSON: replay.compare.summarize_pairs, rates with confidence intervals
        ("verdict", pa.string()),  # pass | regress | incomplete, under the [replay] gate defaults
        ("message", pa.string()),
        ("received_at", _TS),
    ]
)

# One row per replayed call: the candidate's answer beside the original and how they compare.
REPLAY_RESULTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("position", pa.int64()),
        ("finished_at", _TS),
        ("status", pa.string()),  # ok | error
        ("error_type", pa.string()),
        ("error", pa.string()),
        ("attempts", pa.int64()),
        ("request", pa.string()),  # JSON: what was sent (model, messages, params, tools)
        ("model", pa.string()),
        ("response_model", pa.string()),
        ("old_prompt_version", pa.string()),
        ("new_prompt_version", pa.string()),
        ("old_output", pa.string()),
        ("new_output", pa.string()),
        ("new_tool_calls", pa.string()),
        ("new_finish_reasons", pa.list_(pa.string())),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("charged_usd", pa.float64()),  # what the budget counted for this call, every attempt included
        ("charged_tokens", pa.int64()),
        ("old_cost_usd", pa.float64()),
        ("new_cost_usd", pa.float64()),
        ("old_latency_ms", pa.float64()),
        ("new_latency_ms", pa.float64()),
        ("old_signature", pa.string()),
        ("new_signature", pa.string()),
        ("signature_kept", pa.bool_()),
        ("old_refusal_rule", pa.string()),
        ("new_refusal_rule", pa.string()),
        ("refusal_gained", pa.bool_()),
        ("refusal_lost", pa.bool_()),
        ("old_validation", pa.string()),  # pass | fail | NULL when nothing was asked
        ("new_validation", pa.string()),
        ("new_validation_error", pa.string()),
        ("length_ratio", pa.float64()),
        ("similarity", pa.float64()),
        ("cost_delta_usd", pa.float64()),
        ("latency_delta_ms", pa.float64()),
        ("received_at", _TS),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "spans": SPANS_SCHEMA,
    "llm_calls": LLM_CALLS_SCHEMA,
    "logs": LOGS_SCHEMA,
    "llm_messages": LLM_MESSAGES_SCHEMA,
    "metrics": METRICS_SCHEMA,
    "outcomes": OUTCOMES_SCHEMA,
    "prompts": PROMPTS_SCHEMA,
    "replay_sets": REPLAY_SETS_SCHEMA,
    "replay_runs": REPLAY_RUNS_SCHEMA,
    "replay_results": REPLAY_RESULTS_SCHEMA,
}
# What makes a row unique. Exporters retry, the WAL is replayed after a crash and compaction
# briefly leaves merged and original files side by side, so views keep one row per key.
ROW_KEYS = {
    "spans": ("trace_id", "span_id"),
    "llm_calls": ("trace_id", "span_id"),
    "llm_messages": ("trace_id", "span_id", "direction", "position", "time"),
    "logs": ("record_id",),
    "metrics": ("record_id",),
    "outcomes": ("record_id",),
    "prompts": ("name", "version"),
    "replay_sets": ("set_id", "trace_id", "span_id"),
    "replay_runs": ("record_id",),
    "replay_results": ("run_id", "trace_id", "span_id"),
}
# The time column each table is partitioned by (date=YYYY-MM-DD folders).
PARTITION_TIME = {
    "spans": "start_time",
    "llm_calls": "start_time",
    "logs": "time",
    "llm_messages": "time",
    "metrics": "time",
    "outcomes": "time",
    "prompts": "created_at",
    "replay_sets": "created_at",
    "replay_runs": "created_at",
    "replay_results": "finished_at",
}


def content_id(*parts: object) -> str:
    """A short stable row key for rows that have no id of their own (logs, metric points, verdicts)."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x1f")
    return digest.hexdigest()
