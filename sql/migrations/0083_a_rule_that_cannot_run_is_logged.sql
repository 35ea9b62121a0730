-- 0083: a rule that cannot run for one of Nudge's own events (its error kept in the event's
-- effects) is also told to PostgreSQL's log, once per transaction: nobody heard of it before,
-- and the escalation it was for silently never happened.

CREATE OR REPLACE FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  -- A rule's action can complete reminders, whose lifecycle events run rules in turn: the
  -- depth of this event in that chain, and the event whose rules are running (so also the
  -- cause of any event they emit), travel in settings local to the transaction.
  v_depth   integer := coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0')::integer;
  -- Events in this chain so far, this one included: its root starts the count.
  v_count   integer := CASE WHEN v_depth = 0 THEN 1
                            ELSE coalesce(nullif(current_setting('nudge.chain_events', true), ''),
                                          '0')::integer + 1 END;
  -- nudge.event_id, nudge.rule_id and nudge.rule_path as they were: the first is the cause.
  v_saved   text[] := ARRAY[current_setting('nudge.event_id', true),
                            current_setting('nudge.rule_id', true),
                            current_setting('nudge.rule_path', true)];
  v_event   nudge.events;
  v_rules   nudge.rules[];
  v_rule    nudge.rules;
  v_effects jsonb := '[]'::jsonb;
  v_set     text;  -- set_config's answer, unused: an assignment is cheaper than PERFORM's query
BEGIN
  IF p_key IS NOT NULL THEN
    -- The same key again (perhaps at this moment, from another session: the lock waits for
    -- it to end): the first answer, and nothing changes.
    PERFORM pg_advisory_xact_lock(hashtextextended('nudge.events.key ' || p_key, 0));
    SELECT * INTO v_event FROM nudge.events WHERE key = p_key;
    IF FOUND THEN
      RETURN jsonb_build_object('created', false, 'event', nudge.event_json(v_event),
                                'effects', v_event.effects);
    END IF;
  END IF;

  -- The id first, the row last: rules need the id, and the row is written once, effects and all.
  v_event := ROW(nextval('nudge.events_id_seq'), p_event_type, p_entity_type, p_entity_id, p_data,
                 p_key, coalesce(p_occurred_at, now()), now(),
                 CASE WHEN v_depth > 0 THEN nullif(v_saved[1], '')::bigint END, v_depth, '[]'::jsonb,
                 CASE WHEN v_depth >= 8 THEN 'a chain of rules deeper than 8 events: not run'
                      WHEN v_count > 1000 THEN 'a chain of rules of more than 1000 events: not run'
                 END)
             ::nudge.events;
  IF v_event.refused IS NULL THEN
    v_rules := ARRAY(SELECT r FROM nudge.rules r
                      WHERE r.event_type = p_event_type AND r.enabled ORDER BY r.id);
  ELSIF current_setting('nudge.chain_warned', true) IS DISTINCT FROM 'on' THEN
    -- Once per chain (each refused event is in nudge.events): one per event flooded the log.
    v_set := set_config('nudge.chain_warned', 'on', true);
    RAISE WARNING 'nudge: event % (%) refused: %', v_event.id, p_event_type, v_event.refused;
  END IF;
  IF cardinality(v_rules) > 0 THEN
    -- Only events whose rules run can cause more: they carry the chain's count (a root starts
    -- a new chain, warned of nothing yet).
    v_set := set_config('nudge.event_depth', (v_depth + 1)::text, true)
             || set_config('nudge.event_id', v_event.id::text, true)
             || set_config('nudge.chain_events', v_count::text, true)
             || CASE WHEN v_depth = 0 THEN set_config('nudge.chain_warned', 'off', true) ELSE '' END;
    FOREACH v_rule IN ARRAY v_rules LOOP
      CONTINUE WHEN v_rule."when" <> '{}'::jsonb AND NOT nudge.rule_matches(v_rule."when", v_event);
      IF p_own THEN
        -- Nudge's own events never fail the change that caused them (a worker's finish, a
        -- flag): a rule that cannot run for one is recorded with its error instead.
        BEGIN
          v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
        EXCEPTION WHEN SQLSTATE 'NU422' OR invalid_parameter_value THEN
          v_effects := v_effects || jsonb_build_object('rule_id', v_rule.id,
                                                       'type', v_rule.action->>'type',
                                                       'error', SQLERRM);
          -- Else nobody hears of it (an escalation silently missing): once per transaction,
          -- as a worker's finish may end many reminders of one failing rule.
          IF current_setting('nudge.rule_failure_warned', true) IS DISTINCT FROM 'on' THEN
            v_set := set_config('nudge.rule_failure_warned', 'on', true);
            RAISE WARNING 'nudge: rule % did not run for event % (%): %', v_rule.id, v_event.id,
              p_event_type, SQLERRM;
          END IF;
        END;
      ELSE
        v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
      END IF;
    END LOOP;
    -- This event may be Nudge's own, emitted while another rule's action runs: that rule's
    -- context comes back.
    v_set := set_config('nudge.event_depth', v_depth::text, true)
             || set_config('nudge.event_id', coalesce(v_saved[1], ''), true)
             || set_config('nudge.rule_id', coalesce(v_saved[2], ''), true)
             || set_config('nudge.rule_path', coalesce(v_saved[3], ''), true);
  END IF;
  v_event.effects := v_effects;
  INSERT INTO nudge.events OVERRIDING SYSTEM VALUE SELECT v_event.*;
  RETURN jsonb_build_object('created', true, 'event', nudge.event_json(v_event),
                            'effects', v_effects);
END $$;

COMMENT ON FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) IS 'Records an event and runs every enabled rule of its type whose conditions hold; answers {created, event, effects}; the same key again answers the first event and effects and changes nothing; for Nudge''s own events (p_own) a rule that cannot run is recorded in the effects instead of failing (and PostgreSQL''s log gets one warning per transaction); an event deeper than 8 in a chain of rules, or past the 1,000th event of its chain, is recorded as refused and its rules are not run (one warning per chain).';
