-- params: $since, $until (TIMESTAMPTZ or NULL), $rule (NULL: any rule; else a refusal_rule id, or a prefix ending in
--         '%' such as 'en.%'), $limit (default 20). columns: trace_id, span_id, start_time, service_name, model,
--         prompt_version, refusal_rule, output_preview — the newest refused calls, with the text that refused
SELECT trace_id, span_id, start_time, service_name,
       coalesce(request_model, response_model, '?') AS model,
       coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?') AS prompt_version,
       refusal_rule,
       left(coalesce(refusal, output_text, ''), 200) AS output_preview
FROM llm_calls
WHERE refused
  AND ($rule::VARCHAR IS NULL OR refusal_rule LIKE $rule::VARCHAR)
  AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
ORDER BY start_time DESC, span_id
LIMIT coalesce($limit::BIGINT, 20)
