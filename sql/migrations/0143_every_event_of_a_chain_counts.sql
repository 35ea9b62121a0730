-- 0143: a chain of rules' work is bounded (explore26a #2). Every event of a chain counts toward
-- its 1,000 events, refused ones too: only events whose rules ran were counted, so 1,000 of them,
-- each running up to 20 rules, could write some 20,000 events and reminders (10 fan-out rules on
-- nudge.reminder_completed: 10,011 events and 9,991 reminders from one event, 17.8 s, and over
-- REST a 503 after 10 s that no retry could cure). And a rule's check, which creates a sample
-- reminder and undoes it, emits no event for it: with a stop flag already true, every save ran
-- the other rules' chains (the 6th such rule's save was a 503 too).
--
-- Bodies only.

CREATE OR REPLACE FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  -- A rule's action can complete reminders, whose lifecycle events run rules in turn: the
  -- depth of this event in that chain, and the event whose rules are running (so also the
  -- cause of any event they emit), travel in settings local to the transaction.
  v_depth   integer := coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0')::integer;
  -- Events in this chain so far, this one included, refused ones too: its root starts the count.
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
  IF v_depth > 0 THEN
    -- Every event of a chain counts, refused ones too: counted only where rules ran, a chain
    -- of 1,000 such events, each running 10 rules, wrote 10,011 events and 9,991 reminders in
    -- 17.8 s (explore26a #2).
    v_set := set_config('nudge.chain_events', v_count::text, true);
  END IF;
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
          -- Counted for the workers' /metrics (nudge_rule_failures_total) in whichever session
          -- it happens: a sequence, as it must count without a lock or a row written.
          PERFORM nextval('nudge.rule_failures');
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

COMMENT ON FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) IS 'Records an event and runs every enabled rule of its type whose conditions hold; answers {created, event, effects}; the same key again answers the first event and effects and changes nothing; for Nudge''s own events (p_own) a rule that cannot run is recorded in the effects instead of failing, counted in the sequence nudge.rule_failures (also when the transaction rolls back), and PostgreSQL''s log gets one warning per transaction; an event deeper than 8 in a chain of rules, or past the 1,000th event of its chain (every event counts, refused ones too), is recorded as refused and its rules are not run (one warning per chain).';

CREATE OR REPLACE FUNCTION nudge.emit_reminder_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  -- No rules run in this transaction now, and a rule made the reminder: its chain goes on.
  v_resumed boolean := NEW.event_id IS NOT NULL
                       AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0';
  v_depth   integer;
  v_set     text;  -- set_config's answer, unused
BEGIN
  -- A rule's check creates a sample reminder and undoes it: its end is no event (a stop flag
  -- already true made every save run the other rules' chains, 1,000 events each: explore26a #2).
  IF current_setting('nudge.checking_rule', true) = 'on' THEN
    RETURN NULL;
  END IF;
  IF v_resumed THEN
    SELECT e.depth + 1 INTO v_depth FROM nudge.events e WHERE e.id = NEW.event_id;
    -- An event pruned with the history (older than retention_days) starts a chain anew.
    v_resumed := v_depth IS NOT NULL;
  END IF;
  IF v_resumed THEN
    v_set := set_config('nudge.event_depth', v_depth::text, true)
             || set_config('nudge.event_id', NEW.event_id::text, true)
             || set_config('nudge.chain_events', '0', true);
  END IF;
  IF NEW.status = 'FAILED' THEN
    PERFORM nudge.record_event('nudge.reminder_failed', NEW.entity_type, NEW.entity_id,
                               jsonb_build_object('reminder', nudge.reminder_json(NEW),
                                                  'last_error', NEW.last_error),
                               NULL, NULL, true);
  ELSE
    PERFORM nudge.record_event('nudge.reminder_completed', NEW.entity_type, NEW.entity_id,
                               jsonb_build_object('reason', NEW.completed_reason,
                                                  'reminder', nudge.reminder_json(NEW)),
                               NULL, NULL, true);
  END IF;
  IF v_resumed THEN
    v_set := set_config('nudge.event_depth', '', true)
             || set_config('nudge.event_id', '', true)
             || set_config('nudge.chain_events', '', true);
  END IF;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.emit_reminder_event() IS 'Trigger: a reminder that ends other than by its one fire emits nudge.reminder_completed (data.reason: max_fires, ends_at, stop_condition or cancelled; data.reminder) or nudge.reminder_failed (data.reminder, data.last_error) for its entity, in the same transaction, its rules run as Nudge''s owner (the session may be a worker''s, which may not write rules'' effects); when no rules run at that moment and a rule made the reminder, the event continues that rule''s chain (caused by the reminder''s event, one deeper), so the chain bounds of nudge.record_event also hold across transactions; nothing while a rule''s check creates its sample reminder (nudge.checking_rule).';
