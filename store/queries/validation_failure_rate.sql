-- params: $since, $until (TIMESTAMPTZ or NULL); {call_group}: one of store.queries.CALL_GROUPS. columns: group, calls,
--         failures, failure_rate, app_reported_failures, top_error, example_trace_id — LLM calls that asked for
--         structured output (or whose application reported validation) and failed it: unparseable JSON, a schema
--         mismatch, or the application's own failure. Calls with validation_status NULL asked for nothing.
SELECT {call_group} AS "group",
       count(*) AS calls,
       count(*) FILTER (WHERE validation_status = 'fail') AS failures,
       count(*) FILTER (WHERE validation_status = 'fail') / count(*) AS failure_rate,
       count(*) FILTER (WHERE validation_status = 'fail' AND starts_with(validation_error, 'application reported'))
           AS app_reported_failures,
       mode(validation_error) FILTER (WHERE validation_status = 'fail') AS top_error,
       arg_max(trace_id, start_time) FILTER (WHERE validation_status = 'fail') AS example_trace_id
FROM llm_calls
WHERE validation_status IS NOT NULL
  AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY failure_rate DESC, calls DESC, "group"
