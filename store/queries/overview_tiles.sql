-- params: $since, $until (TIMESTAMPTZ or NULL), $boundary (TIMESTAMPTZ or NULL: one period), $bucket ('day' | 'hour';
--         NULL: 'day'). columns: period (current: [$boundary, $until), previous: [$since, $boundary)), bucket (NULL: the
--         whole period; else its day 'YYYY-MM-DD' or hour 'YYYY-MM-DD HH:00', UTC: the tiles' trend), tasks, success_rate, total_cost_usd,
--         cost_per_successful_task, p50_ms, p99_ms, llm_calls, llm_errors, llm_error_rate, unpriced_share, refusal_rate,
--         validation_failure_rate — the Overview's tiles for a window and the one before it, in one read of tasks and
--         one of the calls. Each column means what the named query it is taken from means (tests/test_dashboards_data
--         checks they agree): cost_per_successful_task, task_latency (p50/p99), llm_call_rates (errors), unpriced_share
--         (share_of_calls summed), refusal_rate, validation_failure_rate (failure_rate), all over group 'all' (and
--         per bucket: over group 'day' for the daily buckets).
WITH task_periods AS (
    SELECT CASE WHEN $boundary::TIMESTAMPTZ IS NULL OR start_time >= $boundary::TIMESTAMPTZ THEN 'current'
                ELSE 'previous' END AS period,
           CASE WHEN coalesce($bucket::VARCHAR, 'day') = 'hour' THEN strftime(start_time, '%Y-%m-%d %H:00')
                ELSE strftime(start_time, '%Y-%m-%d') END AS bucket,
           outcome, cost_usd, duration_ms
    FROM tasks
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
),
task_tiles AS (
    SELECT period, bucket,
           count(*) AS tasks,
           count(*) FILTER (outcome = 'success') / nullif(count(*) FILTER (outcome IN ('success', 'failure')), 0)
               AS success_rate,
           sum(cost_usd) AS total_cost_usd,
           sum(cost_usd) / nullif(count(*) FILTER (outcome = 'success'), 0) AS cost_per_successful_task,
           quantile_cont(duration_ms, 0.5) AS p50_ms,
           quantile_cont(duration_ms, 0.99) AS p99_ms
    FROM task_periods GROUP BY GROUPING SETS ((period), (period, bucket))
),
call_periods AS (
    SELECT CASE WHEN $boundary::TIMESTAMPTZ IS NULL OR start_time >= $boundary::TIMESTAMPTZ THEN 'current'
                ELSE 'previous' END AS period,
           CASE WHEN coalesce($bucket::VARCHAR, 'day') = 'hour' THEN strftime(start_time, '%Y-%m-%d %H:00')
                ELSE strftime(start_time, '%Y-%m-%d') END AS bucket,
           status, cost_source, refused, validation_status
    FROM llm_call_dimensions
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
),
call_tiles AS (
    SELECT period, bucket,
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
    FROM call_periods GROUP BY GROUPING SETS ((period), (period, bucket))
)
SELECT coalesce(t.period, c.period) AS period, coalesce(t.bucket, c.bucket) AS bucket,
       t.tasks, t.success_rate, t.total_cost_usd, t.cost_per_successful_task, t.p50_ms, t.p99_ms,
       c.llm_calls, c.llm_errors, c.llm_error_rate, c.unpriced_share, c.refusal_rate, c.validation_failure_rate
FROM task_tiles t FULL JOIN call_tiles c ON t.period = c.period AND t.bucket IS NOT DISTINCT FROM c.bucket
ORDER BY period, bucket NULLS FIRST
