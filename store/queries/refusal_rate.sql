-- params: $since, $until (TIMESTAMPTZ or NULL); {call_group}: CALL_GROUPS. columns: group, calls,
--         refusals, refusal_rate, provider_refusals, lexical_refusals, hedged, hedging_rate, top_rule — share of
--         answered LLM calls (status ok, an output-producing operation) that refused, and which rule said so most.
--         Over llm_call_facts: llm_call_dimensions' rows in the columns aggregates read (store.rollups.FACT_COLUMNS).
SELECT {call_group} AS "group",
       count(*) AS calls,
       count(*) FILTER (WHERE refused) AS refusals,
       count(*) FILTER (WHERE refused) / count(*) AS refusal_rate,
       count(*) FILTER (WHERE refusal_rule LIKE 'provider:%' OR refusal_rule LIKE 'finish_reason:%') AS provider_refusals,
       count(*) FILTER (WHERE refused AND NOT (refusal_rule LIKE 'provider:%' OR refusal_rule LIKE 'finish_reason:%'))
           AS lexical_refusals,
       count(*) FILTER (WHERE hedging_rule IS NOT NULL) AS hedged,
       count(*) FILTER (WHERE hedging_rule IS NOT NULL) / count(*) AS hedging_rate,
       mode(refusal_rule) FILTER (WHERE refused) AS top_rule
FROM llm_call_facts
WHERE refused IS NOT NULL AND status = 'ok'
  AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
GROUP BY ALL
ORDER BY refusal_rate DESC, calls DESC, "group"
