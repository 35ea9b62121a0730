-- 0151: a rule's reminder template answers its target's password as *** (explore29a #4): the
-- reminders a rule makes were answered masked, the rule itself (POST/GET/PATCH /v1/rules and
-- the stream's rule messages) with the password whole, though the README promises *** on every
-- route. A PATCH of the action gives the target whole again.
--
-- One body.

CREATE OR REPLACE FUNCTION nudge.rule_json(r nudge.rules) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('id', r.id, 'name', r.name, 'event_type', r.event_type,
                            'enabled', r.enabled, 'when', r."when",
                            'action', CASE WHEN jsonb_typeof(r.action #> '{reminder,target}') = 'string'
                                           THEN pg_catalog.jsonb_set(r.action, '{reminder,target}',
                                                  pg_catalog.to_jsonb(nudge.shown_address(r.action #>> '{reminder,target}')))
                                           ELSE r.action END,
                            'created_at', r.created_at, 'updated_at', r.updated_at)
$$;

COMMENT ON FUNCTION nudge.rule_json(r nudge.rules) IS 'The public JSON form of a rule: its reminder template''s target with a URL''s password as *** (nudge.shown_address).';
