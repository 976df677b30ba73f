-- params: $trace_id. columns: span_id, refused, refusal_rule, hedging_rule, output_format, output_signature,
--         output_length, validation_status, validation_error — the quality signals of one trace's LLM calls
SELECT span_id, refused, refusal_rule, hedging_rule, output_format, output_signature, output_length,
       validation_status, validation_error
FROM llm_calls
WHERE trace_id = $trace_id
ORDER BY start_time, span_id
