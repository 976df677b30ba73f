-- params: $since, $until (TIMESTAMPTZ or NULL). columns: model, operation, calls, errors, error_rate, p50_ms, p90_ms,
--         p99_ms, ttft_p50_ms — LLM call latency and error rate per model and operation (chat, embeddings, ...)
SELECT coalesce(request_model, response_model, '?') AS model,
       coalesce(operation, '?') AS operation,
       count(*) AS calls,
       count(*) FILTER (status = 'error') AS errors,
       count(*) FILTER (status = 'error') / count(*) AS error_rate,
       quantile_cont(duration_ms, 0.5) AS p50_ms,
       quantile_cont(duration_ms, 0.9) AS p90_ms,
       quantile_cont(duration_ms, 0.99) AS p99_ms,
       quantile_cont(time_to_first_token_ms, 0.5) AS ttft_p50_ms
FROM llm_calls
WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY calls DESC, model, operation
