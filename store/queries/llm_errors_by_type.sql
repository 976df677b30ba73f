-- params: $since, $until (TIMESTAMPTZ or NULL). columns: error_type, model, service_name, errors, share_of_errors,
--         last_seen, example_trace_id — failed LLM calls (status = 'error') by error type, newest example kept
SELECT coalesce(error_type, status_message, 'unknown') AS error_type,
       coalesce(request_model, response_model, '?') AS model,
       service_name,
       count(*) AS errors,
       count(*) / sum(count(*)) OVER () AS share_of_errors,
       max(start_time) AS last_seen,
       arg_max(trace_id, start_time) AS example_trace_id
FROM llm_calls
WHERE status = 'error'
  AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY errors DESC, last_seen DESC
