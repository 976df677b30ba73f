-- params: $trace_id. columns: span_id, parent_span_id, span_name, start_time, duration_ms, service_name, provider,
--         operation, model, prompt_name, prompt_version, input_tokens, output_tokens, cached_input_tokens,
--         reasoning_tokens, cost_usd, cost_source, status, error_type, status_message, finish_reasons,
--         input_messages, output_messages, output_text, tool_calls — one trace's LLM calls in time order, with content
SELECT span_id, parent_span_id, span_name, start_time, duration_ms, service_name, provider, operation,
       coalesce(response_model, request_model) AS model, prompt_name, prompt_version,
       input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, cost_source,
       status, error_type, status_message, finish_reasons, input_messages, output_messages, output_text, tool_calls
FROM llm_calls
WHERE trace_id = $trace_id
ORDER BY start_time, span_id
