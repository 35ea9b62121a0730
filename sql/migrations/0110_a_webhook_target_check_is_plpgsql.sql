-- 0110: nudge.with_webhook_target in PL/pgSQL. As an SQL function with its own search_path it
-- cannot be inlined, and each call parsed and planned its body again: 44 us of an event's
-- 438 in the database (track_functions, an event with a remind rule to an email address, which
-- it leaves as it is). PL/pgSQL keeps its plan for the session.

CREATE OR REPLACE FUNCTION nudge.with_webhook_target(p_item jsonb, p_template jsonb, p_event nudge.events) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF p_item->>'channel' = 'webhook' AND strpos(p_template->>'target', '{{') > 0
     AND p_template->>'target' !~ '^\s*\{\{[^{}]*\}\}\s*$' THEN
    RETURN p_item || jsonb_build_object('target', nudge.render_placeholders(
             p_template->>'target',
             jsonb_build_object('entity_type', p_event.entity_type,
                                'entity_id', p_event.entity_id,
                                'event_type', p_event.event_type, 'event_id', p_event.id,
                                'data', p_event.data),
             'url', p_null_is_missing => true));
  END IF;
  RETURN p_item;
END $$;
