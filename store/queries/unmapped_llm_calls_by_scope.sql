-- params: none. columns: scope_name, convention, unmapped, calls, missing (fields that could not be read)
SELECT scope_name,
       convention,
       count(*) FILTER (mapping = 'unmapped') AS unmapped,
       count(*) AS calls,
       list_distinct(flatten(list(unmapped_fields))) AS missing
FROM llm_calls
GROUP BY ALL
ORDER BY unmapped DESC, calls DESC
