-- params: as signature_drift.sql, plus $min_share (share of one side's JSON calls a key needs to count as there,
--         default 0). columns: group, key, change (appeared | vanished), baseline_calls, current_calls,
--         baseline_json_calls, current_json_calls, baseline_share, current_share, status (changed | insufficient_data)
-- JSON key paths (output_keys) seen on one side and not the other: "appeared" keys are in current outputs but in
-- no baseline output, "vanished" keys the reverse. Shares are of the calls with JSON output (output_keys not NULL).
-- Fewer than $min_samples JSON calls on either side is insufficient_data: the key list is shown, not judged.
WITH sides AS (
    SELECT * FROM drift_sides($baseline_since::TIMESTAMPTZ, $baseline_until::TIMESTAMPTZ, $baseline_prompt::VARCHAR,
                              $current_since::TIMESTAMPTZ, $current_until::TIMESTAMPTZ, $current_prompt::VARCHAR)
),
json_calls AS (
    SELECT {call_group} AS "group", side = 'baseline' AS is_b, list_distinct(output_keys) AS keys
    FROM sides
    WHERE output_keys IS NOT NULL AND status IS DISTINCT FROM 'error'
),
totals AS (
    SELECT "group", count(*) FILTER (is_b) AS b_total, count(*) FILTER (NOT is_b) AS c_total
    FROM json_calls GROUP BY ALL
),
keys AS (
    SELECT "group", key, count(*) FILTER (is_b) AS b_calls, count(*) FILTER (NOT is_b) AS c_calls
    FROM (SELECT "group", is_b, unnest(keys) AS key FROM json_calls)
    GROUP BY ALL
)
SELECT "group", key,
       CASE WHEN b_calls = 0 THEN 'appeared' ELSE 'vanished' END AS change,
       b_calls AS baseline_calls, c_calls AS current_calls,
       b_total AS baseline_json_calls, c_total AS current_json_calls,
       b_calls / nullif(b_total, 0) AS baseline_share,
       c_calls / nullif(c_total, 0) AS current_share,
       CASE WHEN least(b_total, c_total) < coalesce($min_samples::BIGINT, 50) THEN 'insufficient_data'
            ELSE 'changed' END AS status
FROM keys JOIN totals USING ("group")
WHERE (b_calls = 0 AND c_calls / nullif(c_total, 0) >= coalesce($min_share::DOUBLE, 0))
   OR (c_calls = 0 AND b_calls / nullif(b_total, 0) >= coalesce($min_share::DOUBLE, 0))
ORDER BY status = 'insufficient_data', "group", change, greatest(baseline_share, current_share) DESC, key
