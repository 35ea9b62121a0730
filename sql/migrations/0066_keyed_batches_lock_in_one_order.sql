-- 0066: batches of keyed events take their keys' locks first, in one order. Two batches that
-- shared keys in different orders, posted at once, deadlocked: one was answered 500 (now 503
-- "try again" too, should anything else deadlock).

CREATE OR REPLACE FUNCTION nudge.emit_events_one_by_one(p_items jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_out    jsonb[] := '{}';  -- appended in place; a jsonb array would be copied whole each time
  v_field  text;
  v_detail text;
  v_state  text;
BEGIN
  -- Every key's lock first, in one order for every batch (nudge.record_event takes them again):
  -- two batches sharing keys in different orders waited on each other, a deadlock.
  PERFORM pg_advisory_xact_lock(k.lock)
     FROM (SELECT DISTINCT hashtextextended('nudge.events.key ' || (x.v->>'key'), 0) AS lock
             FROM jsonb_array_elements(p_items) AS x(v)
            WHERE jsonb_typeof(x.v) = 'object' AND jsonb_typeof(x.v->'key') = 'string') k
    ORDER BY k.lock;
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      PERFORM nudge.check_item(v_item, nudge.event_item_fields());
      v_out := v_out || nudge.emit_event(
                 p_event_type => v_item->>'event_type', p_entity_type => v_item->>'entity_type',
                 p_entity_id => v_item->>'entity_id',
                 p_data => coalesce(v_item->'data', '{}'::jsonb), p_key => v_item->>'key',
                 p_occurred_at => (v_item->>'occurred_at')::timestamptz);
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION
    WHEN invalid_parameter_value OR SQLSTATE 'NU422' THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT,
                              v_state = RETURNED_SQLSTATE;
      PERFORM nudge.reject_item(v_index, v_state, v_field, v_detail);
    WHEN data_exception THEN  -- an occurred_at PostgreSQL cannot read (February 30, +20:00)
      v_detail := nudge.item_type_problem(v_item);
      IF v_detail IS NULL THEN
        RAISE;
      END IF;
      PERFORM nudge.reject_item(v_index, '22023', split_part(v_detail, ':', 1), v_detail);
  END;
  RETURN to_jsonb(v_out);
END $$;

COMMENT ON FUNCTION nudge.emit_events_one_by_one(p_items jsonb) IS 'nudge.emit_event for every item of p_items, in order, all or nothing, the keys'' locks taken first in one global order (batches sharing keys never deadlock); an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value nudge.item_value_problem refuses, an occurred_at PostgreSQL cannot read) or NU422 "items[<index>]: rule <id>: <field path>: <problem>".';
