-- params: $since, $until (TIMESTAMPTZ or NULL); {group}: GROUPS. columns: group, tasks, tool_calls,
--         tool_calls_per_task, p99_tool_calls, max_tool_calls — tool spans per task (a runaway agent loops on tools)
SELECT {group} AS "group",
       count(*) AS tasks,
       sum(tool_calls) AS tool_calls,
       avg(tool_calls) AS tool_calls_per_task,
       quantile_cont(tool_calls, 0.99) AS p99_tool_calls,
       max(tool_calls) AS max_tool_calls
FROM tasks
WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY "group"
