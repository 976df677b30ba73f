-- params: $since, $until (TIMESTAMPTZ or NULL), $limit (default 20). columns: trace_id, span_id, start_time,
--         service_name, model, prompt_version, validation_error, output_preview — the newest calls whose output failed
--         the structure their request asked for
SELECT trace_id, span_id, start_time, service_name,
       coalesce(request_model, response_model) AS model,
       coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?') AS prompt_version,
       validation_error,
       left(coalesce(output_text, output_messages), 300) AS output_preview
FROM llm_calls
WHERE validation_status = 'fail'
  AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
ORDER BY start_time DESC, span_id
LIMIT coalesce($limit::BIGINT, 20)
