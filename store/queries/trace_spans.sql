-- params: $trace_id. columns: span_id, parent_span_id, depth, name, kind, genai_kind, service_name, start_time,
--         end_time, offset_ms, duration_ms, status_code, status_message — one trace's spans in tree order, for a waterfall
WITH RECURSIVE trace AS (
    SELECT * FROM spans WHERE trace_id = $trace_id
),
tree AS (
    -- a span whose parent never arrived is drawn as a root, so nothing is hidden
    SELECT span_id, 0 AS depth, [epoch_ns(start_time)::VARCHAR || span_id] AS path
    FROM trace t
    WHERE parent_span_id IS NULL OR NOT EXISTS (SELECT 1 FROM trace p WHERE p.span_id = t.parent_span_id)
    UNION ALL
    SELECT c.span_id, tree.depth + 1, list_append(tree.path, epoch_ns(c.start_time)::VARCHAR || c.span_id)
    FROM tree JOIN trace c ON c.parent_span_id = tree.span_id
    WHERE tree.depth < 64
)
SELECT t.span_id, t.parent_span_id, tree.depth, t.name, t.kind, t.genai_kind, t.service_name, t.start_time,
       t.end_time,
       (epoch_ns(t.start_time) - min(epoch_ns(t.start_time)) OVER ()) / 1e6 AS offset_ms,
       t.duration_ms, t.status_code, t.status_message
FROM trace t JOIN tree USING (span_id)
ORDER BY tree.path
