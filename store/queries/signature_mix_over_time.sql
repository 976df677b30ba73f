-- params: $since, $until (TIMESTAMPTZ or NULL), $bucket ('hour' | 'day' | 'week', default 'day'), $top (signatures
--         kept by name per group, default 8; the rest are '(other)'); {group}: GROUPS. columns: bucket_start, group,
--         signature, calls, share — the mix of output signatures per time bucket, for a stacked chart
WITH calls AS (
    SELECT date_trunc(coalesce($bucket::VARCHAR, 'day'), start_time) AS bucket_start, {group} AS "group",
           output_signature AS signature
    FROM llm_calls_in($since::TIMESTAMPTZ, $until::TIMESTAMPTZ, NULL)
    WHERE output_signature IS NOT NULL AND status IS DISTINCT FROM 'error'
),
ranked AS (
    SELECT "group", signature, row_number() OVER (PARTITION BY "group" ORDER BY count(*) DESC, signature) AS rank
    FROM calls GROUP BY 1, 2
)
SELECT bucket_start, "group",
       CASE WHEN rank <= coalesce($top::BIGINT, 8) THEN signature ELSE '(other)' END AS signature,
       count(*) AS calls,
       count(*) / sum(count(*)) OVER (PARTITION BY bucket_start, "group") AS share
FROM calls JOIN ranked USING ("group", signature)
GROUP BY 1, 2, 3
ORDER BY bucket_start, "group", calls DESC, signature
