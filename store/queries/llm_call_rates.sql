-- params: $since, $until (TIMESTAMPTZ or NULL); {call_group}: CALL_GROUPS. columns: group, calls, errors, error_rate,
--         p50_ms, p90_ms, p99_ms — per group of LLM calls: the share that failed (status = 'error') and latency.
--         Refusals and validation failures: refusal_rate.sql and validation_failure_rate.sql
SELECT {call_group} AS "group",
       count(*) AS calls,
       count(*) FILTER (status = 'error') AS errors,
       count(*) FILTER (status = 'error') / count(*) AS error_rate,
       quantile_cont(duration_ms, 0.5) AS p50_ms,
       quantile_cont(duration_ms, 0.9) AS p90_ms,
       quantile_cont(duration_ms, 0.99) AS p99_ms
FROM llm_calls_in($since::TIMESTAMPTZ, $until::TIMESTAMPTZ, NULL)
GROUP BY ALL
ORDER BY calls DESC, "group"
