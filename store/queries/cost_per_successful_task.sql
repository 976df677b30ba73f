-- params: $since, $until (TIMESTAMPTZ or NULL for open ends); {group}: one of store.queries.GROUPS.
-- columns: group, tasks, successful_tasks, failed_tasks, unknown_tasks, success_rate, total_cost_usd, failed_cost_usd,
--          cost_per_task, cost_per_successful_task, input_tokens, output_tokens, llm_calls, unpriced_calls, over_budget_tasks
-- Cost per successful task = the cost of every task in the window, failed ones included, divided by the successes:
-- what one success really costs. NULL when nothing succeeded.
SELECT {group} AS "group",
       count(*) AS tasks,
       count(*) FILTER (outcome = 'success') AS successful_tasks,
       count(*) FILTER (outcome = 'failure') AS failed_tasks,
       count(*) FILTER (outcome = 'unknown') AS unknown_tasks,
       count(*) FILTER (outcome = 'success') / nullif(count(*) FILTER (outcome IN ('success', 'failure')), 0)
           AS success_rate,
       sum(cost_usd) AS total_cost_usd,
       coalesce(sum(cost_usd) FILTER (outcome = 'failure'), 0) AS failed_cost_usd,
       sum(cost_usd) / count(*) AS cost_per_task,
       sum(cost_usd) / nullif(count(*) FILTER (outcome = 'success'), 0) AS cost_per_successful_task,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(llm_calls) AS llm_calls,
       sum(unpriced_calls) AS unpriced_calls,
       count(*) FILTER (over_budget) AS over_budget_tasks
FROM tasks
WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY total_cost_usd DESC NULLS LAST, "group"
