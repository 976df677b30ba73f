-- params: $since, $until (TIMESTAMPTZ or NULL), $boundary (TIMESTAMPTZ or NULL: one period). columns: period
--         (current: [$boundary, $until), previous: [$since, $boundary)), tasks, success_rate, total_cost_usd,
--         cost_per_successful_task, p50_ms, p99_ms, llm_calls, llm_errors, llm_error_rate, unpriced_share, refusal_rate,
--         validation_failure_rate — the Overview's tiles for a window and the one before it, in one read of tasks and
--         one of the calls. Each column means what the named query it is taken from means (tests/test_dashboards_data
--         checks they agree): cost_per_successful_task, task_latency (p50/p99), llm_call_rates (errors), unpriced_share
--         (share_of_calls summed), refusal_rate, validation_failure_rate (failure_rate), all over group 'all'.
WITH task_periods AS (
    SELECT CASE WHEN $boundary::TIMESTAMPTZ IS NULL OR start_time >= $boundary::TIMESTAMPTZ THEN 'current'
                ELSE 'previous' END AS period,
           outcome, cost_usd, duration_ms
    FROM tasks
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
),
task_tiles AS (
    SELECT period,
           count(*) AS tasks,
           count(*) FILTER (outcome = 'success') / nullif(count(*) FILTER (outcome IN ('success', 'failure')), 0)
               AS success_rate,
           sum(cost_usd) AS total_cost_usd,
           sum(cost_usd) / nullif(count(*) FILTER (outcome = 'success'), 0) AS cost_per_successful_task,
           quantile_cont(duration_ms, 0.5) AS p50_ms,
           quantile_cont(duration_ms, 0.99) AS p99_ms
    FROM task_periods GROUP BY period
),
call_periods AS (
    SELECT CASE WHEN $boundary::TIMESTAMPTZ IS NULL OR start_time >= $boundary::TIMESTAMPTZ THEN 'current'
                ELSE 'previous' END AS period,
           status, cost_source, refused, validation_status
    FROM llm_call_dimensions
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
),
call_tiles AS (
    SELECT period,
           count(*) AS llm_calls,
           count(*) FILTER (status = 'error') AS llm_errors,
           count(*) FILTER (status = 'error') / count(*) AS llm_error_rate,
           count(*) FILTER (coalesce(cost_source, 'unpriced') = 'unpriced') / count(*) AS unpriced_share,
           -- refusal_rate: answered calls (status ok) checked for refusals
           count(*) FILTER (refused IS NOT NULL AND status = 'ok' AND refused)
               / nullif(count(*) FILTER (refused IS NOT NULL AND status = 'ok'), 0) AS refusal_rate,
           -- validation_failure_rate: calls that asked for structured output
           count(*) FILTER (validation_status = 'fail') / nullif(count(*) FILTER (validation_status IS NOT NULL), 0)
               AS validation_failure_rate
    FROM call_periods GROUP BY period
)
SELECT period, t.tasks, t.success_rate, t.total_cost_usd, t.cost_per_successful_task, t.p50_ms, t.p99_ms,
       c.llm_calls, c.llm_errors, c.llm_error_rate, c.unpriced_share, c.refusal_rate, c.validation_failure_rate
FROM task_tiles t FULL JOIN call_tiles c USING (period)
ORDER BY period
