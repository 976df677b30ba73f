-- params: $prompt_name (NULL = all) · columns: name, version, source (registry | traces), role, model, template, system_prompt, params, created_at, calls, first_seen, last_seen
-- Pushed versions (`vigil prompt push`) beside versions only seen in traces (llm_calls.prompt_name/prompt_version);
-- a version in both shows once, as registry, with the traffic the traces saw.
WITH seen AS (
    SELECT prompt_name AS name, prompt_version AS version,
           arg_max(prompt_template, start_time) AS template,
           count(*) AS calls, min(start_time) AS first_seen, max(start_time) AS last_seen
    FROM llm_calls
    WHERE prompt_name IS NOT NULL AND prompt_version IS NOT NULL
    GROUP BY ALL
)
SELECT coalesce(p.name, s.name) AS name,
       coalesce(p.version, s.version) AS version,
       CASE WHEN p.name IS NOT NULL THEN 'registry' ELSE 'traces' END AS source,
       coalesce(p.role, 'user') AS role,
       p.model,
       coalesce(p.template, s.template) AS template,
       p.system_prompt,
       p.params,
       coalesce(p.created_at, s.first_seen) AS created_at,
       coalesce(s.calls, 0) AS calls,
       s.first_seen,
       s.last_seen
FROM prompts p
FULL OUTER JOIN seen s ON s.name = p.name AND s.version = p.version
WHERE $prompt_name IS NULL OR coalesce(p.name, s.name) = $prompt_name
ORDER BY name, created_at, version
