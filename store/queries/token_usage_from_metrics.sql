-- params: none. columns: service_name, token_type (input|output), tokens — from the GenAI metric gen_ai.client.token.usage
-- Cumulative series repeat their running total in every export, so only each series' newest point counts;
-- delta points add up. Compare with sum(input_tokens) / sum(output_tokens) over llm_calls.
WITH points AS (
    SELECT service_name,
           CASE attributes->>'$."gen_ai.token.type"'
               WHEN 'prompt' THEN 'input' WHEN 'completion' THEN 'output'
               ELSE attributes->>'$."gen_ai.token.type"' END AS token_type,
           sum,
           temporality,
           row_number() OVER (
               PARTITION BY name, service_name, resource_attributes, scope_name, attributes, start_time
               ORDER BY time DESC
           ) AS newest
    FROM metrics
    WHERE name = 'gen_ai.client.token.usage'
)
SELECT service_name, token_type, sum(sum)::BIGINT AS tokens
FROM points
WHERE temporality = 'delta' OR newest = 1
GROUP BY ALL
ORDER BY ALL
