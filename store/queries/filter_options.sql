-- params: none. columns: dimension (service | model | prompt_version | environment), value, tasks — the values
--         the dashboards' filters offer; prompt_version uses the label of store.queries.GROUPS['prompt_version']
-- One read (MATERIALIZED) for the four dimensions: the view costs the same whichever columns it serves. task_rows:
-- the rows and these columns of tasks, less the verdicts' joins (tasks adds only verdicts, outcomes and budgets).
WITH t AS MATERIALIZED (
    SELECT service_name, model, prompt_name, prompt_version, environment FROM task_rows
)
SELECT 'service' AS dimension, service_name AS value, count(*) AS tasks FROM t
WHERE service_name IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'model', model, count(*) FROM t WHERE model IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'prompt_version', coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?'), count(*) FROM t
WHERE prompt_name IS NOT NULL OR prompt_version IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'environment', environment, count(*) FROM t WHERE environment IS NOT NULL GROUP BY ALL
ORDER BY dimension, tasks DESC, value
