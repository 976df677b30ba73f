-- params: $since, $until (TIMESTAMPTZ or NULL); {call_group}: CALL_GROUPS. columns: group, calls, errors, error_rate,
--         p50_ms, p90_ms, p99_ms — per group of LLM calls: the share that failed (status = 'error') and latency.
--         Refusals and validation failures: refusal_rate.sql and validation_failure_rate.sql
-- Over {call_facts}: llm_call_dimensions' rows in the columns aggregates read (store.rollups.FACT_COLUMNS), or only
-- a call's own ones where the group needs no more (store.queries.OWN_CALL_GROUPS); the percentiles as one list-form
-- quantile_cont (one copy of the values, the same exact answers).
WITH per_group AS (
    SELECT {call_group} AS "group",
           count(*) AS calls,
           count(*) FILTER (status = 'error') AS errors,
           quantile_cont(duration_ms, [0.5, 0.9, 0.99]) AS duration_ms
    FROM {call_facts}
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
    GROUP BY ALL
)
SELECT "group", calls, errors, errors / calls AS error_rate,
       duration_ms[1] AS p50_ms, duration_ms[2] AS p90_ms, duration_ms[3] AS p99_ms
FROM per_group
ORDER BY calls DESC, "group"
