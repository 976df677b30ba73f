-- params: $since, $until (TIMESTAMPTZ or NULL). columns: day, model, prompt_version, answered_calls, refusals,
--         refusal_rate, validated_calls, validation_failures, validation_failure_rate — refusal_rate.sql's and
--         validation_failure_rate.sql's rates (same definitions) per UTC day, model and prompt version together,
--         for one line per model and prompt version (labelled as store.queries.CALL_GROUPS)
SELECT strftime(start_time, '%Y-%m-%d') AS day,
       coalesce(model, '?') AS model,
       coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?') AS prompt_version,
       count(*) FILTER (status = 'ok' AND refused IS NOT NULL) AS answered_calls,
       count(*) FILTER (status = 'ok' AND refused) AS refusals,
       refusals / nullif(answered_calls, 0) AS refusal_rate,
       count(*) FILTER (validation_status IS NOT NULL) AS validated_calls,
       count(*) FILTER (validation_status = 'fail') AS validation_failures,
       validation_failures / nullif(validated_calls, 0) AS validation_failure_rate
FROM llm_call_dimensions
WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY day, model, prompt_version
