-- params: $since, $until (TIMESTAMPTZ or NULL). columns: model, operation, calls, errors, error_rate, p50_ms, p90_ms,
--         p99_ms, ttft_p50_ms — LLM call latency and error rate per model and operation (chat, embeddings, ...)
-- Over llm_call_own_facts (llm_calls' rows, in the columns a call's own span gives: store.rollups.OWN_FACT_COLUMNS).
-- The three percentiles as one list-form quantile_cont: one copy of the values instead of three, the same answers.
WITH per_group AS (
    SELECT coalesce(request_model, response_model, '?') AS model,
           coalesce(operation, '?') AS operation,
           count(*) AS calls,
           count(*) FILTER (status = 'error') AS errors,
           quantile_cont(duration_ms, [0.5, 0.9, 0.99]) AS duration_ms,
           quantile_cont(time_to_first_token_ms, 0.5) AS ttft_p50_ms
    FROM llm_call_own_facts
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
    GROUP BY ALL
)
SELECT model, operation, calls, errors, errors / calls AS error_rate,
       duration_ms[1] AS p50_ms, duration_ms[2] AS p90_ms, duration_ms[3] AS p99_ms, ttft_p50_ms
FROM per_group
ORDER BY calls DESC, model, operation
