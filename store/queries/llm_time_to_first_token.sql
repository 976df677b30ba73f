-- params: $since, $until (TIMESTAMPTZ or NULL). columns: model, operation, streams, ttft_p50_ms, ttft_p90_ms,
--         ttft_p99_ms, duration_p50_ms — time to first token of streamed LLM calls per model and operation
SELECT coalesce(request_model, response_model, '?') AS model,
       coalesce(operation, '?') AS operation,
       count(*) AS streams,
       quantile_cont(time_to_first_token_ms, 0.5) AS ttft_p50_ms,
       quantile_cont(time_to_first_token_ms, 0.9) AS ttft_p90_ms,
       quantile_cont(time_to_first_token_ms, 0.99) AS ttft_p99_ms,
       quantile_cont(duration_ms, 0.5) AS duration_p50_ms
FROM llm_calls
WHERE time_to_first_token_ms IS NOT NULL
  AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY streams DESC, model, operation
