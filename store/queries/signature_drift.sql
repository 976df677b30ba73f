-- params: $baseline_since, $baseline_until, $current_since, $current_until (TIMESTAMPTZ or NULL: open end),
--         $baseline_prompt, $current_prompt (a prompt version 'v3' or 'name@v3'; NULL: any), $min_samples (calls per
--         side, default 50), $threshold (JS distance from which a group drifts, default 0.2); {call_group}: CALL_GROUPS.
-- columns: group, baseline_calls, current_calls, baseline_signatures, current_signatures, js_divergence, js_distance,
--          psi, top_baseline_signature, top_current_signature, status (drift | stable | insufficient_data)
-- Output-structure drift: how far the mix of output_signature moved from the baseline side to the current side.
-- js_divergence is Jensen-Shannon divergence in bits (log base 2, 0..1); js_distance = sqrt(js_divergence), what
-- scipy.spatial.distance.jensenshannon(p, q, base=2) returns, and what status compares with $threshold.
-- psi = sum over signatures of (q - p) * ln(q / p), an empty share counted as 0.0001 (see catalog psi_term).
-- Failed calls (status = 'error') are left out: they are error_rate's business. A group with fewer than
-- $min_samples calls on either side is insufficient_data, never drift and never stable.
WITH sides AS (
    SELECT * FROM drift_sides($baseline_since::TIMESTAMPTZ, $baseline_until::TIMESTAMPTZ, $baseline_prompt::VARCHAR,
                              $current_since::TIMESTAMPTZ, $current_until::TIMESTAMPTZ, $current_prompt::VARCHAR)
),
counts AS (
    SELECT {call_group} AS "group", output_signature AS signature,
           count(*) FILTER (side = 'baseline') AS b_calls,
           count(*) FILTER (side = 'current') AS c_calls
    FROM sides
    WHERE output_signature IS NOT NULL AND status IS DISTINCT FROM 'error'
    GROUP BY ALL
),
shares AS (
    SELECT *,
           sum(b_calls) OVER (PARTITION BY "group") AS b_total,
           sum(c_calls) OVER (PARTITION BY "group") AS c_total,
           b_calls / nullif(b_total, 0) AS p,
           c_calls / nullif(c_total, 0) AS q
    FROM counts
),
distances AS (
    SELECT "group",
           any_value(b_total)::BIGINT AS baseline_calls,
           any_value(c_total)::BIGINT AS current_calls,
           count(*) FILTER (b_calls > 0) AS baseline_signatures,
           count(*) FILTER (c_calls > 0) AS current_signatures,
           greatest(sum(js_term(p, q)), 0) AS js_divergence,
           sum(psi_term(p, q)) AS psi,
           arg_max(signature, b_calls) FILTER (b_calls > 0) AS top_baseline_signature,
           arg_max(signature, c_calls) FILTER (c_calls > 0) AS top_current_signature
    FROM shares
    GROUP BY ALL
)
SELECT "group", baseline_calls, current_calls, baseline_signatures, current_signatures, js_divergence,
       sqrt(js_divergence) AS js_distance, psi, top_baseline_signature, top_current_signature,
       CASE WHEN least(baseline_calls, current_calls) < coalesce($min_samples::BIGINT, 50) THEN 'insufficient_data'
            WHEN sqrt(js_divergence) >= coalesce($threshold::DOUBLE, 0.2) THEN 'drift'
            ELSE 'stable' END AS status
FROM distances
ORDER BY status = 'insufficient_data', js_distance DESC NULLS LAST, "group"
