-- params: $since, $until (TIMESTAMPTZ or NULL). columns: provider, model, unpriced_calls, calls, share_of_calls,
--         unpriced_tokens, share_of_tokens — models without a price (add them to [pricing] overrides_file) and their
--         share of all calls and tokens in the window: what cost totals leave out. NULL cost_source: stored before
--         pricing existed (`vigil reprice` prices it), counted as unpriced.
WITH calls AS (
    SELECT provider,
           coalesce(response_model, request_model) AS model,
           coalesce(cost_source, 'unpriced') = 'unpriced' AS unpriced,
           coalesce(total_tokens, coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens
    FROM llm_calls
    WHERE ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
)
SELECT provider,
       model,
       count(*) FILTER (unpriced) AS unpriced_calls,
       count(*) AS calls,
       count(*) FILTER (unpriced) / (SELECT count(*) FROM calls) AS share_of_calls,
       coalesce(sum(tokens) FILTER (unpriced), 0) AS unpriced_tokens,
       coalesce(sum(tokens) FILTER (unpriced), 0) / nullif((SELECT sum(tokens) FROM calls), 0) AS share_of_tokens
FROM calls
GROUP BY ALL
HAVING count(*) FILTER (unpriced) > 0
ORDER BY unpriced_tokens DESC, unpriced_calls DESC, model
