-- 0033: a statement that writes flags runs the UPDATE that completes the reminders they stop only
-- when a live reminder waits on one of them.
--
-- Most flags stop nothing (an event's set_flag rule marks what happened, as in bench.sh events),
-- and an UPDATE of nudge.reminders that changes no row still builds its whole plan state: the
-- table, five indexes and its triggers. The same index lookup as a plain EXISTS costs a fraction
-- of that. A single event with bench.sh's two rules 3,739k -> 3,677k instructions in the
-- database (callgrind, postgres --single, difference of 10 and 60 emit_event calls, 20,000
-- events before); what the UPDATE does when it runs is unchanged.
CREATE OR REPLACE FUNCTION nudge.complete_reminders_stopped_by_flags() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- The flags' keys as an InitPlan of each statement, as before 0033 (a variable would make both
  -- statements parameterised, planned afresh for their first five runs in every backend).
  IF EXISTS (SELECT 1 FROM nudge.reminders
              WHERE stop_condition_type = 'db_check'
                AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
                AND status IN ('ACTIVE', 'PAUSED')) THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status IN ('ACTIVE', 'PAUSED');
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.complete_reminders_stopped_by_flags() IS 'Trigger: every live reminder stopped by a flag that is true after an insert or update statement is COMPLETED (stop_condition) in the same transaction, so none is claimed after it commits.';
