-- params: $run_id · columns: position, trace_id, span_id, status, error_type, error, attempts, model, old_prompt_version, new_prompt_version, old_output, new_output, old_signature, new_signature, signature_kept, old_refusal_rule, new_refusal_rule, refusal_gained, refusal_lost, old_validation, new_validation, new_validation_error, length_ratio, similarity, old_cost_usd, new_cost_usd, cost_delta_usd, old_latency_ms, new_latency_ms, latency_delta_ms, input_tokens, output_tokens, charged_usd, finished_at
-- The pairs of one replay run, original beside replayed answer, the biggest changes first: structure changed,
-- refusal gained or lost, then lowest text similarity.
SELECT position, trace_id, span_id, status, error_type, error, attempts, model, old_prompt_version, new_prompt_version,
       old_output, new_output, old_signature, new_signature, signature_kept, old_refusal_rule, new_refusal_rule,
       refusal_gained, refusal_lost, old_validation, new_validation, new_validation_error, length_ratio, similarity,
       old_cost_usd, new_cost_usd, cost_delta_usd, old_latency_ms, new_latency_ms, latency_delta_ms,
       input_tokens, output_tokens, charged_usd, finished_at
FROM replay_results
WHERE run_id = $run_id
ORDER BY status = 'ok', coalesce(signature_kept, true), NOT coalesce(refusal_gained OR refusal_lost, false),
         similarity NULLS FIRST, position
