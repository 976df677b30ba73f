-- params: $since, $until (TIMESTAMPTZ or NULL); {group}: GROUPS (not outcome). columns: group, calls, errors,
--         error_rate, p50_ms, p90_ms, p99_ms, answered_calls, refusals, refusal_rate, validated_calls,
--         validation_failures, validation_failure_rate — per group of LLM calls: the share that failed
--         (status = 'error'), latency, the share of answers (calls that did not fail) that refused, and the share
--         of outputs checked against a requested format (validation_status not NULL) that failed the check
SELECT {group} AS "group",
       count(*) AS calls,
       count(*) FILTER (status = 'error') AS errors,
       count(*) FILTER (status = 'error') / count(*) AS error_rate,
       quantile_cont(duration_ms, 0.5) AS p50_ms,
       quantile_cont(duration_ms, 0.9) AS p90_ms,
       quantile_cont(duration_ms, 0.99) AS p99_ms,
       count(*) FILTER (status IS DISTINCT FROM 'error') AS answered_calls,
       count(*) FILTER (status IS DISTINCT FROM 'error' AND refused) AS refusals,
       refusals / nullif(answered_calls, 0) AS refusal_rate,
       count(*) FILTER (validation_status IS NOT NULL) AS validated_calls,
       count(*) FILTER (validation_status = 'fail') AS validation_failures,
       validation_failures / nullif(validated_calls, 0) AS validation_failure_rate
FROM llm_calls_in($since::TIMESTAMPTZ, $until::TIMESTAMPTZ, NULL)
GROUP BY ALL
ORDER BY calls DESC, "group"
