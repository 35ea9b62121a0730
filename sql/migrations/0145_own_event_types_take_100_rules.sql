-- 0145: Nudge's own event types (nudge.reminder_completed, nudge.reminder_failed) take up to 100
-- enabled rules, others 20 as before (explore26a #4): every workflow's escalation and observer
-- is a rule on them, told apart by its "when", so a team with several workflows met the cap of 20.
--
-- A body only.

CREATE OR REPLACE FUNCTION nudge.rule_is_checked_before_saving() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_cap integer;
BEGIN
  PERFORM nudge.check_rule(NEW);
  IF NEW.enabled AND (TG_OP = 'INSERT' OR NOT OLD.enabled OR OLD.event_type <> NEW.event_type) THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('nudge.rules/' || NEW.event_type, 0));
    -- Every workflow's escalation is a rule on Nudge's own events, told apart by its "when":
    -- they take more (explore26a #4: a team with several workflows met 20).
    v_cap := CASE WHEN NEW.event_type LIKE 'nudge.%' THEN 100 ELSE 20 END;
    IF (SELECT count(*) FROM nudge.rules
         WHERE event_type = NEW.event_type AND enabled AND id <> NEW.id) >= v_cap THEN
      PERFORM nudge.reject('event_type', format(
        'at most %s enabled rules per event type, and "%s" has %s: disable or delete one first',
        v_cap, NEW.event_type, v_cap));
    END IF;
  END IF;
  NEW.compiled := nudge.compile_rule(NEW);
  NEW.updated_at := now();
  RETURN NEW;
END $$;

COMMENT ON FUNCTION nudge.rule_is_checked_before_saving() IS 'Trigger: every inserted or updated rule passes nudge.check_rule (plain SQL included), an event type keeps at most 20 enabled rules, one of Nudge''s own (nudge.*) 100 (22023 naming event_type for the one past them, checked under a lock on the event type), and the rule is compiled for batches of events; updated_at tells when it last changed.';
