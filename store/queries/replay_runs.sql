-- params: $run_id (NULL = all runs) · columns: run_id, created_at, updated_at, set_id, prompt_name, prompt_version, model, provider, status, verdict, cases_total, cases_ok, cases_error, cases_skipped, spent_usd, spent_tokens, budget_usd, budget_tokens, refusal_rate_old, refusal_rate_new, structure_match_rate, structure_match_low, structure_match_high, cost_change, cost_change_low, cost_change_high, similarity_mean, message, summary
-- One row per replay run in its latest state (replay_runs holds a row per state change); rates from its summary,
-- verdict under the [replay] gate defaults. A run still `running` with no live process was killed: resume it.
WITH latest AS (
    SELECT * FROM replay_runs
    WHERE $run_id IS NULL OR run_id = $run_id
    QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY updated_at DESC) = 1
)
SELECT run_id, created_at, updated_at, set_id, prompt_name, prompt_version, model, provider, status,
       coalesce(verdict, 'incomplete') AS verdict,
       cases_total, cases_ok, cases_error, cases_skipped, spent_usd, spent_tokens, budget_usd, budget_tokens,
       TRY_CAST(json_extract(summary, '$.refusal_old.rate') AS DOUBLE) AS refusal_rate_old,
       TRY_CAST(json_extract(summary, '$.refusal_new.rate') AS DOUBLE) AS refusal_rate_new,
       TRY_CAST(json_extract(summary, '$.structure_match.rate') AS DOUBLE) AS structure_match_rate,
       TRY_CAST(json_extract(summary, '$.structure_match.low') AS DOUBLE) AS structure_match_low,
       TRY_CAST(json_extract(summary, '$.structure_match.high') AS DOUBLE) AS structure_match_high,
       TRY_CAST(json_extract(summary, '$.cost.change') AS DOUBLE) AS cost_change,
       TRY_CAST(json_extract(summary, '$.cost.low') AS DOUBLE) AS cost_change_low,
       TRY_CAST(json_extract(summary, '$.cost.high') AS DOUBLE) AS cost_change_high,
       TRY_CAST(json_extract(summary, '$.similarity.mean') AS DOUBLE) AS similarity_mean,
       message, summary
FROM latest
ORDER BY created_at DESC
