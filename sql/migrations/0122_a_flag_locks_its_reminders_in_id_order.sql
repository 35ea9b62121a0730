-- 0122 (explore19a #2): a flag that stops reminders locks them in id order, as bulk changes and a
-- worker's finish do. In the stop-flag index's order, a flag and a cancel of the same entity's
-- reminders, each one call in its own transaction, deadlocked (65 of 11,171 transactions with 32
-- sessions on 8 entities). Same signature.

CREATE OR REPLACE FUNCTION nudge.complete_reminders_stopped_by_flags() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_live integer;
BEGIN
  -- The flags' keys as an InitPlan of each statement, as before 0033 (a variable would make both
  -- statements parameterised, planned afresh for their first five runs in every backend). A live
  -- reminder is written as "not ended" so that only reminders_live_by_stop_flag serves (0071).
  -- How many there are, up to 2: several are locked in id order first, as bulk changes and a
  -- worker's finish lock them (in the index's order a flag and a cancel of the same entity's
  -- reminders deadlocked: explore19a #2); one is updated as it is found (the ordered lock cost a
  -- flag 10% more).
  SELECT count(*) INTO v_live FROM (
    SELECT 1 FROM nudge.reminders
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')
     LIMIT 2) l;
  IF v_live = 1 THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');
  ELSIF v_live > 1 THEN
    UPDATE nudge.reminders r
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.stop_condition_type = 'db_check'
                       AND x.stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
                       AND x.status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')
                     ORDER BY x.id
                       FOR UPDATE)
       AND r.status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');
  END IF;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.complete_reminders_stopped_by_flags() IS 'Trigger: every live reminder stopped by a flag that is true after an insert or update statement is COMPLETED (stop_condition) in the same transaction (several locked in id order), so none is claimed after it commits; runs as its owner, so a role that may write flags needs no right on reminders.';
