"""The store as SQL: a DuckDB connection with views over the Parquet files.

`connect(root)` opens an in-memory DuckDB (no database file, so no lock to fight over: every
process gets its own) and defines:

- one view per table with one row per key (`store.schema.ROW_KEYS`; (trace_id, span_id) for
  spans). Exporters retry, the write-ahead log is replayed after a crash and compaction briefly
  leaves merged and original files side by side, so the files may hold a row twice; the views
  keep one. Deduping every row costs a window over the whole table, so it is only done where
  duplicates can be: files compaction wrote (`compacted-*.parquet`) hold rows unique in their
  partition (store.compaction keeps it so) and are read as they are; the fresh `part-*` files
  are deduped among themselves and a fresh row whose key is already compacted is dropped (an
  anti-join from the small fresh side). Where both copies exist the compacted one is kept.
  `<table>_raw` views show the files as they are.
- Time windows prune partitions: `store.queries.run` hands a query's `$since`/`$until` window to
  the views (`set_window`) when the query filters on it in the canonical form, and the views of
  the tables whose rows live inside their trace's time (spans, llm_calls, llm_messages) then
  read only the `date=` partitions and row groups around it (`WINDOW_SLACK_*` either side, so a
  task's calls are all there). Every view exposes the partition column `date` (UTC).
- `llm_calls` also counts a model call recorded twice once: when a framework's LLM span has a
  provider instrumentation's LLM span as its child, only the child (closest to the wire) is
  kept, and it inherits the prompt name/version the parent knew. Prompt name/version missing
  on a call are taken from the task's root span, and so is `environment`.
- `tasks`: one row per root span (an agent task) with its LLM call count, tokens and status.
  Its `environment` is the root span's `deployment.environment.name` resource attribute (the
  older `deployment.environment` when only that is set), read from the stored resource JSON, so
  files written before this column existed answer too.
- `llm_call_dimensions`: llm_calls with the task dimensions call-level queries group by; the table
  macros `llm_calls_in(since, until, prompt)` and `drift_sides(...)` (both sides of a comparison, each
  row labelled baseline or current) and the scalar macros `js_term`, `psi_term` serve the drift queries.
- `task_rows` (the per-task part of `tasks`), `llm_calls` and `llm_call_dimensions` read a date from
  its rollup (store.rollups) while the rollup matches the date's files, and compute the other dates
  from the `*_live` views (the same SQL, pinned to those dates' files); `tasks` adds the verdicts.
  `llm_call_facts` and `llm_call_own_facts` are llm_call_dimensions' rows in fewer columns, for aggregates
  (store.rollups.FACT_COLUMNS, OWN_FACT_COLUMNS).
- `logs`, `metrics`: every log record and every metric data point. GenAI log events also feed
  `llm_messages`, whose messages fill the content of the `llm_calls` row they belong to.

Columns added to `store.schema` after files were written read as NULL in those files.
Run queries through `fetch`: it lists the files once per query and pins the views to that
listing (`pin_files`), so new files show up without reconnecting and every view in a query reads
the same files; a plain `con.sql` after it reads the listing of the last `fetch` (before any,
whatever each glob finds). Only a table that had no files at all when connecting needs
`refresh(con, root)`. A query lists its files before it opens them, so one that starts just as
compaction deletes a replaced file can miss it: `fetch` retries that case with a fresh listing.
On a Delta Lake store (`[store] uri`, see store.location) the listing is a snapshot instead: before
each query `pin_files` registers every table's newest Delta version (store.delta) under the name the
views read, so the same views, the partition column `date` and every named query work unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from store import rollups, verdicts
from store.config import Config
from store.location import table_location
from store.schema import PARTITION_TIME, ROW_KEYS, TABLES
from store.writer import COMPACTED_PREFIX, table_dir

# Tables whose rows lie within their trace's time: a window on a task narrows them safely.
WINDOWED_TABLES = ("spans", "llm_calls", "llm_messages")
# How far outside a query's window the views still read: clocks of a trace's services may
# disagree a little (before), and a task's calls run on after it started (after). A task that
# ran on for longer than WINDOW_SLACK_AFTER past a closed window's end loses its late calls.
WINDOW_SLACK_BEFORE = timedelta(hours=1)
WINDOW_SLACK_AFTER = timedelta(days=1)
_LIVE = "_live"  # the views store.rollups leaves the dates without a valid rollup to
_WINDOW_VARIABLES = ("vigil_window_since", "vigil_window_since_date", "vigil_window_until", "vigil_window_until_date")

# Duplicates share their key and their partition time (they are the same record sent again), so
# the anti-join also matches on time: the compacted side is then read only in the row groups
# (sorted by time) the fresh rows fall in.
_DEDUPED = """
CREATE OR REPLACE VIEW {view} AS
WITH fresh AS (
    SELECT * FROM {source}_fresh
    QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY received_at) = 1
)
SELECT * FROM {source}_compacted
UNION ALL BY NAME
SELECT * FROM fresh f
WHERE NOT EXISTS (SELECT 1 FROM {source}_compacted c WHERE {matches})
"""

# The deployment environment of a span, from its resource (OTel semconv 1.27 renamed the key).
ENVIRONMENT = (
    "coalesce(json_extract_string({r}resource_attributes, '$.\"deployment.environment.name\"'), "
    "json_extract_string({r}resource_attributes, '$.\"deployment.environment\"'))"
)

# A call whose direct child is also an LLM call is the same call seen from a higher layer.
# Only calls missing a prompt name or version need their parent's or root's: the joins that
# fill them in are kept to those calls, and to the parents and roots that know a prompt.
# Content that arrived as GenAI log events (llm_messages) fills what the span itself lacks.
_LLM_CALLS = """
CREATE OR REPLACE VIEW llm_calls{live} AS
-- not NOT MATERIALIZED: DuckDB 2.0.1 then counts deduped rows twice
WITH calls AS (SELECT * FROM llm_calls_unique{live}),
kept AS (
    {kept}
),
prompted AS (
    SELECT trace_id, span_id, prompt_name, prompt_version FROM calls
    WHERE prompt_name IS NOT NULL OR prompt_version IS NOT NULL
),
roots AS (
    SELECT trace_id, any_value(prompt_name) AS prompt_name, any_value(prompt_version) AS prompt_version
    FROM spans{live}_scan
    WHERE parent_span_id IS NULL AND (prompt_name IS NOT NULL OR prompt_version IS NOT NULL)
    GROUP BY trace_id
),
environments AS (
    SELECT trace_id, any_value({environment}) AS environment
    FROM spans{live}_scan WHERE parent_span_id IS NULL AND {environment} IS NOT NULL GROUP BY trace_id
),
named AS (
    SELECT * FROM kept WHERE prompt_name IS NOT NULL AND prompt_version IS NOT NULL
    UNION ALL BY NAME
    SELECT c.* REPLACE (
            coalesce(c.prompt_name, p.prompt_name, r.prompt_name) AS prompt_name,
            coalesce(c.prompt_version, p.prompt_version, r.prompt_version) AS prompt_version
        )
    FROM kept c
    LEFT JOIN prompted p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    LEFT JOIN roots r ON r.trace_id = c.trace_id
    WHERE c.prompt_name IS NULL OR c.prompt_version IS NULL
),
messages AS (SELECT * FROM llm_messages{live}),
event_content AS (
    SELECT trace_id, span_id,
           '[' || string_agg(message, ',' ORDER BY time, position) FILTER (direction = 'input') || ']'
               AS input_messages,
           '[' || string_agg(message, ',' ORDER BY position, time) FILTER (direction = 'output') || ']'
               AS output_messages,
           string_agg(text, chr(10) ORDER BY position, time) FILTER (direction = 'output') AS output_text,
           '[' || string_agg(substr(tool_calls, 2, length(tool_calls) - 2), ',' ORDER BY position, time)
               FILTER (direction = 'output' AND tool_calls IS NOT NULL) || ']' AS tool_calls,
           first(refusal ORDER BY position) FILTER (refusal IS NOT NULL) AS refusal,
           list(finish_reason ORDER BY position) FILTER (direction = 'output' AND finish_reason IS NOT NULL)
               AS finish_reasons,
           -- quality of the output messages (choice 0 gives the shape), for calls whose span had no content
           first(refusal_rule ORDER BY position) FILTER (direction = 'output' AND refusal_rule IS NOT NULL)
               AS refusal_rule,
           first(hedging_rule ORDER BY position) FILTER (direction = 'output' AND hedging_rule IS NOT NULL)
               AS hedging_rule,
           first(output_format ORDER BY position, time) FILTER (direction = 'output') AS output_format,
           first(output_signature ORDER BY position, time) FILTER (direction = 'output') AS output_signature,
           first(output_keys ORDER BY position, time) FILTER (direction = 'output') AS output_keys,
           sum(output_length) FILTER (direction = 'output') AS output_length,
           first(json_error ORDER BY position) FILTER (direction = 'output' AND json_error IS NOT NULL) AS json_error
    FROM messages GROUP BY trace_id, span_id
)
SELECT c.* REPLACE (
        coalesce(c.input_messages, e.input_messages) AS input_messages,
        coalesce(c.output_messages, e.output_messages) AS output_messages,
        coalesce(c.output_text, e.output_text) AS output_text,
        coalesce(c.tool_calls, e.tool_calls) AS tool_calls,
        coalesce(c.refusal, e.refusal) AS refusal,
        coalesce(c.finish_reasons, e.finish_reasons) AS finish_reasons,
        CASE WHEN c.refused IS NOT NULL THEN coalesce(c.refusal_rule, e.refusal_rule) IS NOT NULL END AS refused,
        coalesce(c.refusal_rule, e.refusal_rule) AS refusal_rule,
        coalesce(c.hedging_rule, CASE WHEN c.refusal_rule IS NULL THEN e.hedging_rule END) AS hedging_rule,
        coalesce(c.output_format, e.output_format) AS output_format,
        coalesce(c.output_signature, e.output_signature) AS output_signature,
        coalesce(c.output_keys, e.output_keys) AS output_keys,
        coalesce(c.output_length, e.output_length) AS output_length,
        -- JSON asked for, content only in events: the events' text must parse (no schema check there)
        CASE WHEN c.validation_status = 'fail' THEN 'fail'
             WHEN c.output_format IS NULL AND c.output_type = 'json' AND e.output_format IN ('json', 'markdown', 'text')
                 THEN CASE WHEN e.json_error IS NULL THEN 'pass' ELSE 'fail' END
             ELSE c.validation_status END AS validation_status,
        CASE WHEN c.validation_status = 'fail' THEN c.validation_error
             WHEN c.output_format IS NULL AND c.output_type = 'json' AND e.output_format IN ('json', 'markdown', 'text')
                 THEN e.json_error
             ELSE c.validation_error END AS validation_error
    ),
    env.environment
FROM named c
LEFT JOIN environments env ON env.trace_id = c.trace_id
LEFT JOIN event_content e ON e.trace_id = c.trace_id AND e.span_id = c.span_id
"""

# The calls kept (no LLM call below them), as they are: `llm_calls_kept_live` serves the columns that a call's own span
# gives (store.rollups' llm_call_own_facts), without the joins that fill in the rest.
_KEPT = """SELECT * FROM calls c
    WHERE NOT EXISTS (
        SELECT 1 FROM calls child WHERE child.trace_id = c.trace_id AND child.parent_span_id = c.span_id
    )"""
_KEPT_LIVE = (
    f"CREATE OR REPLACE VIEW llm_calls_kept{_LIVE} AS WITH calls AS (SELECT * FROM llm_calls_unique{_LIVE}) {_KEPT}"
)

# LLM calls with the columns the store.queries.CALL_GROUPS expressions read (`model`, the task's `name`), so
# call-level metrics group by the same names as task-level ones; `llm_calls_in` is one side of a comparison
# (a time window and, optionally, a prompt version given as 'v3' or 'name@v3').
_LLM_CALL_DIMENSIONS = """
CREATE OR REPLACE VIEW llm_call_dimensions{live} AS
WITH roots AS (
    SELECT trace_id, any_value(name) AS name FROM spans{live}_scan WHERE parent_span_id IS NULL GROUP BY trace_id
)
SELECT c.*, coalesce(c.request_model, c.response_model) AS model, r.name
FROM llm_calls{live} c LEFT JOIN roots r USING (trace_id)
"""
_LLM_CALLS_IN = """
CREATE OR REPLACE MACRO llm_calls_in(since, until, prompt) AS TABLE
SELECT * FROM llm_call_dimensions
WHERE (since IS NULL OR start_time >= since) AND (until IS NULL OR start_time < until)
  AND (prompt IS NULL
       OR prompt IN (prompt_version, coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?')));
CREATE OR REPLACE MACRO drift_sides(baseline_since, baseline_until, baseline_prompt, current_since, current_until,
                                    current_prompt) AS TABLE
SELECT 'baseline' AS side, * FROM llm_calls_in(baseline_since, baseline_until, baseline_prompt)
UNION ALL
SELECT 'current', * FROM llm_calls_in(current_since, current_until, current_prompt);
"""

# The two distribution distances of the drift queries, as one term per category with shares p (baseline) and q
# (current); a query sums them. js_term: Jensen-Shannon divergence in bits, 0 * log 0 taken as 0.
# psi_term: population stability index with natural log; a share of 0 counts as 0.0001, else PSI is infinite.
_DRIFT_TERMS = """
CREATE OR REPLACE MACRO js_term(p, q) AS
    CASE WHEN p > 0 THEN 0.5 * p * log2(2 * p / (p + q)) ELSE 0 END
  + CASE WHEN q > 0 THEN 0.5 * q * log2(2 * q / (p + q)) ELSE 0 END;
CREATE OR REPLACE MACRO psi_term(p, q) AS
    (CASE WHEN q = 0 THEN 0.0001 ELSE q END - CASE WHEN p = 0 THEN 0.0001 ELSE p END)
  * ln(CASE WHEN q = 0 THEN 0.0001 ELSE q END / CASE WHEN p = 0 THEN 0.0001 ELSE p END);
"""

# One row per task with what its spans and calls say (store.rollups materializes it per date); `tasks`
# adds what may change at any time or depends on the reader's config: verdicts, outcome rules, budgets.
_TASK_ROWS = """
CREATE OR REPLACE VIEW task_rows{live} AS
WITH calls AS (
    SELECT trace_id,
           count(*) AS llm_calls,
           count(*) FILTER (WHERE status = 'error') AS llm_errors,
           sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens,
           sum(total_tokens) AS total_tokens,
           sum(cost_usd) AS cost_usd,
           count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_calls,
           -- the model that did most of the work (most tokens) names the task's model; on a tie the
           -- earlier call, so the answer does not depend on the order DuckDB happens to read rows in
           arg_max(
               coalesce(request_model, response_model),
               [coalesce(total_tokens, input_tokens, 0), -epoch_ns(start_time)]
           ) AS model
    FROM llm_calls_kept{live} GROUP BY trace_id  -- the kept calls' own columns: none of llm_calls' joins
),
tools AS (
    SELECT trace_id, count(*) AS tool_calls FROM spans{live} WHERE genai_kind = 'tool' GROUP BY trace_id
)
SELECT s.trace_id,
       s.span_id AS root_span_id,
       s.name,
       s.service_name,
       s.project,
       s.start_time,
       s.end_time,
       s.duration_ms,
       coalesce(c.llm_calls, 0) AS llm_calls,
       coalesce(c.llm_errors, 0) AS llm_errors,
       coalesce(t.tool_calls, 0) AS tool_calls,
       coalesce(c.input_tokens, 0) AS input_tokens,
       coalesce(c.output_tokens, 0) AS output_tokens,
       coalesce(c.total_tokens, 0) AS total_tokens,
       coalesce(c.cost_usd, 0) AS cost_usd,
       coalesce(c.unpriced_calls, 0) AS unpriced_calls,
       c.model,
       s.status_code,
       s.status_message,
       s.prompt_name,
       s.prompt_version,
       s.session_id,
       s.user_id,
       {environment} AS environment,
       s.attributes,
       {outcome_attribute} AS outcome_attribute,  -- the outcome the root's attributes state (config's keys)
       s.date
FROM spans{live} s
LEFT JOIN calls c USING (trace_id)
LEFT JOIN tools t USING (trace_id)
WHERE {is_task}
"""

_TASKS = """
CREATE OR REPLACE VIEW tasks AS
-- the latest verdict for the trace's project, or for any project, whichever came last (store.verdicts),
-- labelled on the verdicts' side (a tenth of the rows), each field picked on its own so that a
-- query reads only the ones it names
WITH scoped AS (
    SELECT trace_id, project, time, {verdict} AS outcome, source, score, comment FROM verdicts_scoped
),
unscoped AS (
    SELECT trace_id, time, {verdict} AS outcome, source, score, comment FROM verdicts_unscoped
),
judged AS (
    SELECT s.*,
           CASE WHEN {scoped_wins} THEN scoped.outcome ELSE unscoped.outcome END AS verdict_outcome,
           CASE WHEN {scoped_wins} THEN scoped.source ELSE unscoped.source END AS verdict_source,
           CASE WHEN {scoped_wins} THEN scoped.score ELSE unscoped.score END AS outcome_score,
           CASE WHEN {scoped_wins} THEN scoped.comment ELSE unscoped.comment END AS outcome_comment,
           {attribute} AS attribute_outcome,
           CASE s.status_code WHEN 'error' THEN 'failure' WHEN 'ok' THEN 'success' END AS status_outcome
    FROM task_rows s
    LEFT JOIN scoped ON scoped.trace_id = s.trace_id AND scoped.project = s.project
    LEFT JOIN unscoped ON unscoped.trace_id = s.trace_id
)
SELECT s.trace_id,
       s.root_span_id,
       s.name,
       s.service_name,
       s.project,
       s.start_time,
       s.end_time,
       s.duration_ms,
       s.llm_calls,
       s.llm_errors,
       s.tool_calls,
       s.input_tokens,
       s.output_tokens,
       s.total_tokens,
       s.cost_usd,
       s.unpriced_calls,
       s.model,
       s.status_code AS status,
       s.status_message,
       coalesce(s.verdict_outcome, s.attribute_outcome, s.status_outcome, 'unknown') AS outcome,
       CASE WHEN s.verdict_outcome IS NOT NULL THEN 'verdict:' || s.verdict_source
            WHEN s.attribute_outcome IS NOT NULL THEN 'attribute'
            WHEN s.status_outcome IS NOT NULL THEN 'status'
            ELSE 'none' END AS outcome_source,
       s.outcome_score,
       s.outcome_comment,
       {budget} AS budget_usd,
       s.cost_usd > {budget} AS over_budget,
       s.prompt_name,
       s.prompt_version,
       s.session_id,
       s.user_id,
       s.environment,
       s.attributes
FROM judged s
"""


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: object = None, attempts: int = 5) -> pa.Table | None:
    """Run `sql` to completion and return its rows (None for a statement without a result)."""
    for attempt in range(1, attempts + 1):
        try:
            pin_files(con)
            relation = con.sql(sql, params=params)
            # Files are opened while rows are fetched, so the fetch belongs inside the retry.
            return None if relation is None else relation.to_arrow_table()
        except duckdb.IOException as exc:
            if attempt == attempts or "No such file" not in str(exc):
                raise
    raise AssertionError("unreachable")


def pin_files(con: duckdb.DuckDBPyConnection) -> None:
    """Take one listing of the files for the next query, so every view in it reads the same files.

    A view reads the compacted files twice (their rows, and their keys for the anti-join) and the
    fresh ones once, each a glob of its own; if compaction committed a file between two of them,
    one query could drop fresh rows as compacted without reading the compacted copy. With the
    listing pinned (DuckDB variables, applied as file filters) each query sees one state of the
    folder, and compaction makes every state it passes through read right. Without it (plain
    `con.sql`), the views read whatever each glob finds. The same listing decides which dates
    the rollups answer for (store.rollups.plan) and which files the live views read.
    """
    root, delta = con.execute("SELECT getvariable('vigil_root'), getvariable('vigil_delta')").fetchall()[0]
    if delta:  # Delta tables: one snapshot (log version) per table and query plays the listing's part
        from store.delta import register_snapshots

        register_snapshots(con, delta)
        return
    listing = list_files(Path(root)) if root else None
    live = rollups.plan(con, Path(root), listing) if listing is not None else None
    pin_listing(con, listing, live)
    key = rollups.memo_to_build(con, live) if live is not None else None
    if key is not None:
        _remember_live(con, key)
    if listing is not None:
        verdicts.remember(con, listing["outcomes"])


def _remember_live(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Build the connection's memo of the live rows (store.rollups) over every live date, outside any window."""
    saved = con.execute("SELECT " + ", ".join(f"getvariable('{v}')" for v in _WINDOW_VARIABLES)).fetchall()[0]
    _set_window_variables(con, [None] * 4)
    try:
        rollups.build_memo(con, key)
    finally:
        _set_window_variables(con, list(saved))


def locate_trace(con: duckdb.DuckDBPyConnection, trace_id: str) -> datetime | None:
    """When its task started, if a valid rollup holds it (store.rollups); None: it may be anywhere."""
    root = con.execute("SELECT getvariable('vigil_root')").fetchall()[0][0]
    if root is None:  # a Delta store has no rollups
        return None
    return rollups.locate_trace(con, Path(root), list_files(Path(root)), trace_id)


def list_files(root: Path) -> dict[str, list[str]]:
    """The files of every table, as pin_files lists them."""
    return {t: [str(p) for p in table_dir(root.resolve(), t).glob("date=*/*.parquet")] for t in TABLES}


def pin_listing(
    con: duckdb.DuckDBPyConnection, listing: dict[str, list[str]] | None, live: dict[str, list[str]] | None
) -> None:
    """Pin every view to `listing`, and the live views of the windowed tables to `live` (None: the listing)."""
    for table in TABLES:
        files = None if listing is None else listing[table]
        con.execute(f"SET VARIABLE vigil_files_{table} = ?::VARCHAR[]", [files])
        if files is not None:
            _define_unique(con, table, fresh=any(f"/{COMPACTED_PREFIX}" not in f for f in files))
    for table in WINDOWED_TABLES:
        files = (None if listing is None else listing[table]) if live is None else live[table]
        con.execute(f"SET VARIABLE vigil_live_files_{table} = ?::VARCHAR[]", [files])
        if files is not None:
            _define_unique(con, table, fresh=any(f"/{COMPACTED_PREFIX}" not in f for f in files), live=_LIVE)


def _define_unique(con: duckdb.DuckDBPyConnection, table: str, fresh: bool, live: str = "") -> None:
    """The deduped view of `table`; without fresh files in the listing, only the compacted ones (planned 3x faster)."""
    state = f"vigil_has_fresh_{table}{live}"
    if con.execute(f"SELECT getvariable('{state}')").fetchall()[0][0] == fresh:
        return  # views are planned again by every query: replace them only when the shape changes
    # main. explicitly: a dashboards query runs with `filtered` first on the search path, where a bare name lands
    view = "main." + ("llm_calls_unique" if table == "llm_calls" else table) + live  # llm_calls needs more, below
    source = f"{table}{live}"
    if fresh:
        keys = ROW_KEYS[table]
        matches = " AND ".join(f"c.{k} = f.{k}" for k in (*keys, PARTITION_TIME[table]))
        con.execute(_DEDUPED.format(view=view, source=source, keys=", ".join(keys), matches=matches))
    else:
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}_compacted")
    con.execute(f"SET VARIABLE {state} = {fresh}")


def connect(root: str | Path, config: Config | None = None) -> duckdb.DuckDBPyConnection:
    """`config` supplies the outcome rules and budgets the tasks view applies (defaults if None)."""
    con = duckdb.connect(":memory:")
    # Every view reference reads the footers of its files to bind (union_by_name); files never
    # change in place (a rewrite is a rename, which DuckDB's cache notices), so keep them cached.
    con.execute("SET parquet_metadata_cache = true")
    location = table_location(config.store) if config is not None else None
    if location is not None and location.is_delta:
        from store.delta import register_snapshots, snapshot_key

        con.execute("SET VARIABLE vigil_root = NULL")
        con.execute("SET VARIABLE vigil_delta = ?", [snapshot_key(location)])
        register_snapshots(con, snapshot_key(location))  # views bind to the registered tables
    else:
        con.execute("SET VARIABLE vigil_root = ?", [str(Path(root).resolve())])
        con.execute("SET VARIABLE vigil_delta = NULL")
    refresh(con, Path(root), config or Config())
    return con


def refresh(con: duckdb.DuckDBPyConnection, root: Path, config: Config | None = None) -> None:
    config = config or Config()
    delta = con.execute("SELECT getvariable('vigil_delta')").fetchall()[0][0]
    sources: dict[str, str] = {}
    for table, schema in TABLES.items():
        folder = table_dir(root, table)
        empty = f"_empty_{table}"
        # A table, not a registered Arrow object: cursors (other threads' connections) must see it too.
        # (from_batches: pa.table / pa.array import pandas, 0.2 s of every process's first connect)
        con.register("_schema", pa.Table.from_batches([], schema=schema))
        con.execute(f"CREATE OR REPLACE TABLE {empty} AS SELECT * FROM _schema")
        con.unregister("_schema")
        if delta:  # store.delta registers `_delta_<table>` (the newest snapshot) before every query
            source = (
                f"(SELECT *, 'delta' AS filename FROM _delta_{table} "
                f"UNION ALL BY NAME SELECT *, NULL::DATE AS date, NULL::VARCHAR AS filename FROM {empty})"
            )
        elif any(folder.glob("date=*/*.parquet")):
            # By name with the typed empty table: a column that no file has yet (files written before it
            # was added to the schema) reads as NULL instead of failing every query that names it.
            files = f"'{_sql_string(folder)}/date=*/*.parquet', hive_partitioning = true, union_by_name = true"
            source = (
                f"(SELECT * FROM read_parquet({files}, filename = true) "
                f"UNION ALL BY NAME SELECT *, NULL::DATE AS date, NULL::VARCHAR AS filename FROM {empty})"
            )
        else:
            source = _EMPTY_SOURCE.format(table=table)
        con.execute(f"CREATE OR REPLACE VIEW {table}_raw AS SELECT * EXCLUDE (filename) FROM {source}")
        # in the schema's column order, which the empty tables have (a file written before a column was added has it
        # last); columns no longer in the schema follow
        names = ", ".join(f'"{name}"' for name in (*schema.names, "date", "filename"))
        sources[table] = f"(SELECT {names}, * EXCLUDE ({names}) FROM {source})"
    # Creating a view binds everything below it, down to every file's footer (about 20 file scans under the live
    # task rows alone): the views above the scans bind over the empty tables first, and the scans read the files
    # last. A store whose files give other columns than the schema (written by another version) binds as before.
    empty = {table: _EMPTY_SOURCE.format(table=table) for table in TABLES}
    _define_stack(con, empty, config)
    bound = _scan_columns(con)
    _define_all_scans(con, sources)
    if _scan_columns(con) != bound:
        _define_stack(con, sources, config)


# A table's rows when it has no files: its typed empty table with the columns the file scans add.
_EMPTY_SOURCE = "(SELECT *, NULL::DATE AS date, NULL::VARCHAR AS filename FROM _empty_{table})"


def _define_stack(con: duckdb.DuckDBPyConnection, sources: dict[str, str], config: Config) -> None:
    """The scans over `sources`, the deduped views over them and every view derived from those."""
    _define_all_scans(con, sources)
    for table in ROW_KEYS:
        for live in ("", _LIVE) if table in WINDOWED_TABLES else ("",):
            con.execute(f"RESET VARIABLE vigil_has_fresh_{table}{live}")
            _define_unique(con, table, fresh=True, live=live)  # right for any listing; pin_files narrows it
    _define_derived(con, config)


def _define_all_scans(con: duckdb.DuckDBPyConnection, sources: dict[str, str]) -> None:
    for table, source in sources.items():
        _define_scans(con, table, source, "")
        if table in WINDOWED_TABLES:
            _define_scans(con, table, source, _LIVE)


def _scan_columns(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The columns the scan views were bound with (read from the catalog: binds nothing)."""
    return con.execute(
        "SELECT table_name, column_index, column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND regexp_matches(table_name, '_(compacted|fresh|scan)$') ORDER BY ALL"
    ).fetchall()


def _define_scans(con: duckdb.DuckDBPyConnection, table: str, source: str, live: str) -> None:
    """`{table}{live}_compacted|_fresh|_scan`: one filter on the file name each, which DuckDB applies to the
    file list before opening any. The live ones read the files store.rollups.plan leaves to live views."""
    narrow = _window_filter(PARTITION_TIME[table]) if table in WINDOWED_TABLES else "true"
    compacted = f"filename LIKE '%/{COMPACTED_PREFIX}%'"
    files = f"getvariable('vigil_{'live_' if live else ''}files_{table}')"
    pinned = f"({files} IS NULL OR list_contains({files}, filename))"
    for part, test in (("compacted", compacted), ("fresh", f"NOT ({compacted})"), ("scan", "true")):
        con.execute(
            f"CREATE OR REPLACE VIEW {table}{live}_{part} AS SELECT * EXCLUDE (filename) FROM {source} "
            f"WHERE {test} AND {pinned} AND {narrow}"
        )


def live_views(config: Config) -> list[str]:
    """The SQL of the views store.rollups materializes (and hashes into every rollup's signature)."""
    return [
        _LLM_CALLS.format(environment=ENVIRONMENT.format(r=""), live=_LIVE, kept=_KEPT),
        _LLM_CALL_DIMENSIONS.format(live=_LIVE),
        _KEPT_LIVE,
        _TASK_ROWS.format(
            live=_LIVE,
            environment=ENVIRONMENT.format(r="s."),
            is_task=_is_task(config),
            outcome_attribute=_outcome_attribute(config),
        ),
    ]


def _define_derived(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """The live views, the rollups over them (store.rollups) and what reads both: tasks, llm_calls, ..."""
    live = live_views(config)
    for sql in live:
        con.execute(sql)
    rollups.define_views(con, "\n".join(live))
    con.execute(_LLM_CALLS_IN)
    con.execute(_DRIFT_TERMS)
    verdicts.define_views(con)
    con.execute(_tasks_sql(config))
    rollups.bind_live(con)  # last: the views above bound over empty live rows, which is quicker


def set_window(con: duckdb.DuckDBPyConnection, since: datetime | None, until: datetime | None) -> None:
    """Narrow the windowed tables' views to [since, until) plus slack; None, None: read everything."""
    values: list[object] = [None] * 4
    if since is not None:
        start = _utc(since) - WINDOW_SLACK_BEFORE
        values[0:2] = [start, start.date()]
    if until is not None:
        end = _utc(until) + WINDOW_SLACK_AFTER
        values[2:4] = [end, end.date()]
    _set_window_variables(con, values)


def _set_window_variables(con: duckdb.DuckDBPyConnection, values: list[object]) -> None:
    for name, value, kind in zip(_WINDOW_VARIABLES, values, ("TIMESTAMPTZ", "DATE") * 2, strict=True):
        con.execute(f"SET VARIABLE {name} = ?::{kind}", [value])


def _window_filter(time_column: str) -> str:
    since, since_date, until, until_date = (f"getvariable('{v}')" for v in _WINDOW_VARIABLES)
    return (
        f"({since} IS NULL OR (date >= {since_date} AND {time_column} >= {since})) "
        f"AND ({until} IS NULL OR (date <= {until_date} AND {time_column} < {until}))"
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"window bound {moment} has no time zone; give an aware datetime (UTC)")
    return moment.astimezone(UTC)


def _tasks_sql(config: Config) -> str:
    """The tasks view with the configured outcome rules and budgets written in as SQL literals."""
    rules = config.outcomes

    def label(expression: str) -> str:
        success, failure = _sql_list(rules.success_values), _sql_list(rules.failure_values)
        return (
            f"CASE WHEN lower({expression}) IN ({success}) THEN 'success' "
            f"WHEN lower({expression}) IN ({failure}) THEN 'failure' END"
        )

    attribute = label("s.outcome_attribute")
    budget = "NULL"
    budgets = config.budgets
    if budgets.per_task_name_usd or budgets.per_service_usd:
        by_name = _sql_map(budgets.per_task_name_usd, "s.name")
        by_service = _sql_map(budgets.per_service_usd, "s.service_name")
        budget = f"coalesce({by_name}, {by_service})"
    scoped_wins = "scoped.time > coalesce(unscoped.time, '-infinity'::TIMESTAMPTZ)"
    return _TASKS.format(verdict=label("label"), scoped_wins=scoped_wins, attribute=attribute, budget=budget)


def _outcome_attribute(config: Config) -> str:
    paths = [_sql_literal("$." + json.dumps(key)) for key in config.outcomes.attribute_keys]
    keys = [f"json_extract_string(s.attributes, {path})" for path in paths]
    return f"coalesce({', '.join(keys)})" if keys else "NULL::VARCHAR"


def _is_task(config: Config) -> str:
    is_task = "s.parent_span_id IS NULL"
    if config.outcomes.task_span_pattern:
        is_task += f" OR s.name GLOB {_sql_literal(config.outcomes.task_span_pattern)}"
    return is_task


def _sql_map(amounts: dict[str, float], column: str) -> str:
    if not amounts:
        return "NULL"
    cases = " ".join(f"WHEN {_sql_literal(name)} THEN {float(usd)!r}::DOUBLE" for name, usd in amounts.items())
    return f"CASE {column} {cases} END"


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(_sql_literal(v.lower()) for v in values) or "NULL"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_string(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")
