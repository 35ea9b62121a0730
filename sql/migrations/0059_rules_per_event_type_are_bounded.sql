-- 0059: an event type has at most 20 enabled rules. Each rule of an event's type runs for the
-- event, so rules multiplied the work of one request without bound: 100 rules and one batch of
-- 1,000 events made 100,000 reminders and a 52 MB answer in one request, counted once by the rate
-- limiter. With the bound a request does at most 20 effects per event it carries.
--
-- The count is taken under a transaction lock on the event type, so two saves at once cannot
-- both pass it; rules already past the bound stay (a migration does not disable rules), but none
-- of that type can be enabled again until fewer than 20 are.

CREATE OR REPLACE FUNCTION nudge.rule_is_checked_before_saving() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM nudge.check_rule(NEW);
  IF NEW.enabled AND (TG_OP = 'INSERT' OR NOT OLD.enabled OR OLD.event_type <> NEW.event_type) THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('nudge.rules/' || NEW.event_type, 0));
    IF (SELECT count(*) FROM nudge.rules
         WHERE event_type = NEW.event_type AND enabled AND id <> NEW.id) >= 20 THEN
      PERFORM nudge.reject('event_type', format(
        'at most 20 enabled rules per event type, and "%s" has 20: disable or delete one first',
        NEW.event_type));
    END IF;
  END IF;
  NEW.compiled := nudge.compile_rule(NEW);
  NEW.updated_at := now();
  RETURN NEW;
END $$;
COMMENT ON FUNCTION nudge.rule_is_checked_before_saving() IS 'Trigger: every inserted or updated rule passes nudge.check_rule (plain SQL included), an event type keeps at most 20 enabled rules (22023 naming event_type for the 21st, checked under a lock on the event type), and the rule is compiled for batches of events; updated_at tells when it last changed.';
