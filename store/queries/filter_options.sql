-- params: none. columns: dimension (service | model | prompt_version | environment), value, tasks — the values
--         the dashboards' filters offer; prompt_version uses the label of store.queries.GROUPS['prompt_version']
SELECT 'service' AS dimension, service_name AS value, count(*) AS tasks FROM tasks
WHERE service_name IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'model', model, count(*) FROM tasks WHERE model IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'prompt_version', coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?'), count(*) FROM tasks
WHERE prompt_name IS NOT NULL OR prompt_version IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'environment', environment, count(*) FROM tasks WHERE environment IS NOT NULL GROUP BY ALL
ORDER BY dimension, tasks DESC, value
