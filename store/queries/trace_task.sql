-- params: $trace_id. columns: trace_id, name, service_name, start_time, duration_ms, llm_calls, tool_calls, cost_usd,
--         unpriced_calls, model, status, outcome, outcome_source, outcome_comment, budget_usd, over_budget,
--         prompt_name, prompt_version — the task (root span) a trace belongs to
SELECT trace_id, name, service_name, start_time, duration_ms, llm_calls, tool_calls, cost_usd, unpriced_calls, model,
       status, outcome, outcome_source, outcome_comment, budget_usd, over_budget, prompt_name, prompt_version
FROM tasks
WHERE trace_id = $trace_id
ORDER BY start_time
