-- params: $since, $until (TIMESTAMPTZ or NULL). columns: calls, answered_calls, refused_calls, refusal_rate,
--         validated_calls, validation_failures, validation_failure_rate — refusals among the calls that answered
--         (not errored, refusal checked) and validation failures among the calls that asked for structured output
SELECT count(*) AS calls,
       count(*) FILTER (refused IS NOT NULL AND status IS DISTINCT FROM 'error') AS answered_calls,
       count(*) FILTER (refused AND status IS DISTINCT FROM 'error') AS refused_calls,
       refused_calls / nullif(answered_calls, 0) AS refusal_rate,
       count(*) FILTER (validation_status IS NOT NULL) AS validated_calls,
       count(*) FILTER (validation_status = 'fail') AS validation_failures,
       validation_failures / nullif(validated_calls, 0) AS validation_failure_rate
FROM llm_calls
WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
