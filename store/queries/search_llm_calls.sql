-- params: $since, $until (TIMESTAMPTZ or NULL), $text (NULL: any; matched case-insensitively and literally in the
--         input messages and output text), $status ('ok' | 'error' | NULL), $sample_seed (NULL: newest first; else a
--         repeatable pseudo-random order), $limit (default 50). columns: trace_id, span_id, start_time, service_name,
--         model, prompt_version, status, error_type, duration_ms, input_tokens, output_tokens, cost_usd, input_preview
--         (the text of the last input message: what was asked, not the system prompt), output_preview
WITH hits AS (
    SELECT *,
           -- the user's text is matched literally: its LIKE wildcards are escaped
           '%' || replace(replace(replace($text::VARCHAR, '\', '\\'), '%', '\%'), '_', '\_') || '%' AS pattern
    FROM llm_calls
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
      AND ($status::VARCHAR IS NULL OR status = $status::VARCHAR)
)
SELECT trace_id, span_id, start_time, service_name,
       coalesce(request_model, response_model) AS model,
       coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?') AS prompt_version,
       status, error_type, duration_ms, input_tokens, output_tokens, cost_usd,
       left(coalesce(try(json_extract_string(input_messages, '$[#-1].parts[0].content')), input_messages), 200)
           AS input_preview,
       left(coalesce(output_text, output_messages), 200) AS output_preview
FROM hits
WHERE $text::VARCHAR IS NULL
   OR input_messages ILIKE pattern ESCAPE '\'
   OR output_text ILIKE pattern ESCAPE '\'
   OR output_messages ILIKE pattern ESCAPE '\'
ORDER BY CASE WHEN $sample_seed::VARCHAR IS NULL THEN NULL ELSE hash(span_id || $sample_seed::VARCHAR) END,
         start_time DESC, span_id
LIMIT coalesce($limit::BIGINT, 50)
