-- params: $since, $until (TIMESTAMPTZ or NULL); {group}: one of store.queries.GROUPS. columns: group, tasks, p50_ms,
--         p90_ms, p99_ms, max_ms — end-to-end task (root span) duration percentiles
SELECT {group} AS "group",
       count(*) AS tasks,
       quantile_cont(duration_ms, 0.5) AS p50_ms,
       quantile_cont(duration_ms, 0.9) AS p90_ms,
       quantile_cont(duration_ms, 0.99) AS p99_ms,
       max(duration_ms) AS max_ms
FROM tasks
WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY "group"
