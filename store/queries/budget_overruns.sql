-- params: $since, $until (TIMESTAMPTZ or NULL). columns: trace_id, name, service_name, start_time, outcome, cost_usd,
--         budget_usd, overrun_usd — tasks that cost more than their [budgets] ceiling, largest overrun first
SELECT trace_id, name, service_name, start_time, outcome, cost_usd, budget_usd, cost_usd - budget_usd AS overrun_usd
FROM tasks
WHERE over_budget
  AND ($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR start_time < $until::TIMESTAMPTZ)
ORDER BY overrun_usd DESC, start_time DESC
