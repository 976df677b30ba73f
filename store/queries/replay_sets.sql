-- params: none. columns: set_id, calls, created_at, models, prompt_versions — the saved replay sets, newest first
SELECT set_id, count(*) AS calls, min(created_at) AS created_at,
       string_agg(DISTINCT coalesce(request_model, response_model), ', ') AS models,
       string_agg(DISTINCT coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?'), ', ') AS prompt_versions
FROM replay_sets
GROUP BY set_id
ORDER BY created_at DESC, set_id
