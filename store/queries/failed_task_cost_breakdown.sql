-- params: $since, $until (TIMESTAMPTZ or NULL). columns: service_name, task_name, model, call_status, calls, cost_usd,
--         input_tokens, output_tokens, share_of_failed_cost — where the money spent on failed tasks went
WITH failed AS (
    SELECT trace_id, name, service_name FROM tasks
    WHERE outcome = 'failure'
      AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
)
SELECT f.service_name,
       f.name AS task_name,
       coalesce(c.request_model, c.response_model) AS model,
       c.status AS call_status,
       count(*) AS calls,
       sum(c.cost_usd) AS cost_usd,
       sum(c.input_tokens) AS input_tokens,
       sum(c.output_tokens) AS output_tokens,
       sum(c.cost_usd) / nullif(sum(sum(c.cost_usd)) OVER (), 0) AS share_of_failed_cost
FROM failed f JOIN llm_calls c USING (trace_id)
GROUP BY ALL
ORDER BY cost_usd DESC NULLS LAST
