-- params: $since, $until (TIMESTAMPTZ or NULL), $limit (default 20). columns: trace_id, name, service_name, model,
--         start_time, duration_ms, outcome, cost_usd, llm_calls, unpriced_calls, input_tokens, output_tokens,
--         budget_usd, over_budget — the costliest tasks in the window
SELECT trace_id, name, service_name, model, start_time, duration_ms, outcome, cost_usd, llm_calls, unpriced_calls,
       input_tokens, output_tokens, budget_usd, over_budget
FROM tasks
WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
ORDER BY cost_usd DESC, start_time DESC
LIMIT coalesce($limit::BIGINT, 20)
