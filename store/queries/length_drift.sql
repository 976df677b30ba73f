-- params: as signature_drift.sql, but $threshold is a PSI (default 0.25). columns: group, baseline_calls,
--         current_calls, baseline_p50_length, current_p50_length, baseline_p90_length, current_p90_length, psi,
--         ks_statistic, status (drift | stable | insufficient_data)
-- Output-length shift in characters (output_length). psi is the population stability index over doubling length
-- buckets (0, 1, 2-3, 4-7, 8-15, ...: a relative change of length moves a call one bucket whatever its size), an
-- empty bucket's share counted as 0.0001; status compares it with $threshold (0.1-0.25 is the usual "moderate
-- shift" band). ks_statistic is the two-sample Kolmogorov-Smirnov D = max |F_baseline(x) - F_current(x)|, the
-- statistic of scipy.stats.ks_2samp, shown beside it. Failed calls are left out; fewer than $min_samples calls on
-- either side is insufficient_data.
WITH sides AS (
    SELECT * FROM drift_sides($baseline_since::TIMESTAMPTZ, $baseline_until::TIMESTAMPTZ, $baseline_prompt::VARCHAR,
                              $current_since::TIMESTAMPTZ, $current_until::TIMESTAMPTZ, $current_prompt::VARCHAR)
),
lengths AS (
    SELECT {call_group} AS "group", side = 'baseline' AS is_b, output_length AS length,
           CASE WHEN output_length <= 0 THEN 0 ELSE floor(log2(output_length))::INT + 1 END AS bucket
    FROM sides
    WHERE output_length IS NOT NULL AND status IS DISTINCT FROM 'error'
),
totals AS (
    SELECT "group",
           count(*) FILTER (is_b) AS baseline_calls,
           count(*) FILTER (NOT is_b) AS current_calls,
           quantile_cont(length, 0.5) FILTER (is_b) AS baseline_p50_length,
           quantile_cont(length, 0.5) FILTER (NOT is_b) AS current_p50_length,
           quantile_cont(length, 0.9) FILTER (is_b) AS baseline_p90_length,
           quantile_cont(length, 0.9) FILTER (NOT is_b) AS current_p90_length
    FROM lengths GROUP BY ALL
),
buckets AS (
    SELECT "group", bucket, count(*) FILTER (is_b) AS b_calls, count(*) FILTER (NOT is_b) AS c_calls
    FROM lengths GROUP BY ALL
),
psi AS (
    SELECT "group", sum(psi_term(b_calls / nullif(baseline_calls, 0), c_calls / nullif(current_calls, 0))) AS psi
    FROM buckets JOIN totals USING ("group") GROUP BY ALL
),
-- both empirical CDFs at every observed length: RANGE frames count every call of equal length at once
cdf AS (
    SELECT "group",
           sum(is_b::INT) OVER w / nullif(baseline_calls, 0) AS f_b,
           sum((NOT is_b)::INT) OVER w / nullif(current_calls, 0) AS f_c
    FROM lengths JOIN totals USING ("group")
    WINDOW w AS (PARTITION BY "group" ORDER BY length RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
ks AS (SELECT "group", max(abs(f_b - f_c)) AS ks_statistic FROM cdf GROUP BY ALL)
SELECT "group", baseline_calls, current_calls, baseline_p50_length, current_p50_length, baseline_p90_length,
       current_p90_length, psi, ks_statistic,
       CASE WHEN least(baseline_calls, current_calls) < coalesce($min_samples::BIGINT, 50) THEN 'insufficient_data'
            WHEN psi >= coalesce($threshold::DOUBLE, 0.25) THEN 'drift'
            ELSE 'stable' END AS status
FROM totals JOIN psi USING ("group") JOIN ks USING ("group")
ORDER BY status = 'insufficient_data', psi DESC NULLS LAST, "group"
