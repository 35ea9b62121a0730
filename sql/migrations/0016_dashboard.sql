-- 0016: what the dashboard's overview (GET /v1/overview, issue 18) needs from the database, in one
-- call whose cost does not grow with the tables.
--
-- nudge.overview: reminders by status, the due backlog and its oldest, fires delivered and failed
-- in the last hour, and every gauge of nudge.gauges (so a gauge added there later, such as a
-- circuit breaker's state, reaches the page without a change here).
--   - Counts by status are exact while the table is small, and past p_exact_below rows estimated
--     from the planner's statistics (the table's live size times the status column's most common
--     frequencies), as River UI learned to do: count(*) over millions of rows on every page view
--     is what timed out there.
--   - The last hour's fires come through the BRIN index on executions.fired_at.
--
-- Additive only.

CREATE FUNCTION nudge.overview(p_exact_below bigint DEFAULT 100000, p_due_cap integer DEFAULT 10000)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_rows      double precision;
  v_counts    jsonb;
  v_estimated boolean;
  v_hour      jsonb;
  v_gauges    jsonb;
BEGIN
  -- The table's rows now, as the planner sizes it: rows per page at the last ANALYZE times the
  -- pages it has now (-1 or 0 pages: never analysed, so small or new; counted exactly).
  SELECT CASE WHEN c.reltuples < 0 OR c.relpages = 0 THEN -1
              ELSE c.reltuples / c.relpages
                   * (pg_relation_size(c.oid) / current_setting('block_size')::integer) END
    INTO v_rows
    FROM pg_class c WHERE c.oid = 'nudge.reminders'::regclass;
  v_estimated := v_rows >= p_exact_below;
  IF v_estimated THEN
    SELECT coalesce(jsonb_object_agg(m.status, round(m.freq * v_rows)::bigint), '{}')
      INTO v_counts
      FROM pg_stats s,
           LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(status, freq)
     WHERE s.schemaname = 'nudge' AND s.tablename = 'reminders' AND s.attname = 'status';
  ELSE
    SELECT coalesce(jsonb_object_agg(c.status, c.n), '{}')
      INTO v_counts
      FROM (SELECT r.status, count(*) AS n FROM nudge.reminders r GROUP BY r.status) c;
  END IF;

  SELECT jsonb_build_object('delivered', count(*) FILTER (WHERE e.outcome = 'delivered'),
                            'failed', count(*) FILTER (WHERE e.outcome = 'failed'))
    INTO v_hour
    FROM nudge.executions e
   WHERE e.fired_at > now() - interval '1 hour';

  SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'name', g.name, 'label_name', g.label_name, 'label_value', g.label_value,
           'value', g.value))), '[]')
    INTO v_gauges
    FROM nudge.gauges(p_due_cap) g;

  RETURN jsonb_build_object(
    'counts', v_counts,
    'counts_estimated', v_estimated,
    'due_now', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                 WHERE g->>'name' = 'nudge_due_reminders'),
    'due_now_cap', p_due_cap,
    'oldest_due_seconds', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                            WHERE g->>'name' = 'nudge_oldest_due_seconds'),
    'last_hour', v_hour,
    'gauges', v_gauges,
    'as_of', now());
END $$;
COMMENT ON FUNCTION nudge.overview(bigint, integer) IS
  'The dashboard''s overview as jsonb: reminders by status (exact below p_exact_below rows, else estimated from pg_stats and the table''s size, with counts_estimated saying which), due_now and oldest_due_seconds from nudge.gauges(p_due_cap), fires delivered and failed in the last hour (last_hour), and every row of nudge.gauges; past p_exact_below rows its cost grows only with the last hour''s fires, not with the tables.';
