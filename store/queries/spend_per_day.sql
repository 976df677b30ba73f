-- params: $since, $until (TIMESTAMPTZ or NULL); {group}: GROUPS (not outcome). columns: group, calls, cost_usd,
--         unpriced_calls, days, spend_per_day_usd — LLM spend divided by the window's length in days; with an open
--         end, by the number of UTC days that had calls. Unpriced calls add nothing (see unpriced_share.sql).
SELECT {group} AS "group",
       count(*) AS calls,
       coalesce(sum(cost_usd), 0) AS cost_usd,
       count(*) FILTER (coalesce(cost_source, 'unpriced') = 'unpriced') AS unpriced_calls,
       coalesce(epoch($until::TIMESTAMPTZ - $since::TIMESTAMPTZ) / 86400,
                count(DISTINCT strftime(start_time AT TIME ZONE 'UTC', '%Y-%m-%d'))) AS days,
       coalesce(sum(cost_usd), 0) / days AS spend_per_day_usd
FROM llm_calls_in($since::TIMESTAMPTZ, $until::TIMESTAMPTZ, NULL)
GROUP BY ALL
ORDER BY spend_per_day_usd DESC, "group"
