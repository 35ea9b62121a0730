-- 0078: a reminder a rule made continues its event's chain of rules when it ends in a later
-- transaction (a worker's finish, a cancel, a flag an application sets): its
-- nudge.reminder_completed or nudge.reminder_failed is one deeper than the event that made it,
-- and names it as its cause. The chain's bounds held only within one transaction: a rule that
-- makes a reminder whenever such a reminder ends looped for ever, one worker finish at a time
-- (about 760 reminders a second with a delay of 0).

CREATE OR REPLACE FUNCTION nudge.emit_reminder_event() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  -- No rules run in this transaction now, and a rule made the reminder: its chain goes on.
  v_resumed boolean := NEW.event_id IS NOT NULL
                       AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0';
  v_depth   integer;
  v_set     text;  -- set_config's answer, unused
BEGIN
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

COMMENT ON FUNCTION nudge.emit_reminder_event() IS 'Trigger: a reminder that ends other than by its one fire emits nudge.reminder_completed (data.reason: max_fires, ends_at, stop_condition or cancelled; data.reminder) or nudge.reminder_failed (data.reminder, data.last_error) for its entity, in the same transaction; when no rules run at that moment and a rule made the reminder, the event continues that rule''s chain (caused by the reminder''s event, one deeper), so the chain bounds of nudge.record_event also hold across transactions.';
