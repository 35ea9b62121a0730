-- 0021: an event answered by rules runs fewer trigger functions.
--
-- Measured in the database (pgbench -M prepared -c1 running the API's event statement with the
-- two rules of scripts/bench.sh, SET track_functions = 'all', per event): log_row_changes ran 4
-- times (110 us), complete_reminders_stopped_by_flags twice (33 us), audit_inserted_rows twice
-- (28 us). nudge.set_flag's INSERT ... ON CONFLICT DO UPDATE fires the UPDATE statement triggers
-- of nudge.status_flags even when it inserts (a change-log call and a completion call that find
-- no row); the event row ran one trigger function to audit it and another to log it; and every
-- flag a rule set ran the audit's row trigger function only to return at once.

-- set_flag: a new key fires only the INSERT statement triggers; an existing key is updated, as
-- ON CONFLICT DO UPDATE would update it (the loop: the key was deleted in between).
CREATE OR REPLACE FUNCTION nudge.set_flag(p_key text, p_value boolean)
RETURNS nudge.status_flags
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE v_flag nudge.status_flags;
BEGIN
  IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('key', 'must be 1 to 200 characters');
  END IF;
  IF p_value IS NULL THEN
    PERFORM nudge.reject('value', 'must be true or false');
  END IF;
  LOOP
    INSERT INTO nudge.status_flags AS f (key, value) VALUES (p_key, p_value)
    ON CONFLICT (key) DO NOTHING
    RETURNING f.* INTO v_flag;
    EXIT WHEN FOUND;
    UPDATE nudge.status_flags AS f SET value = p_value WHERE f.key = p_key
    RETURNING f.* INTO v_flag;
    EXIT WHEN FOUND;
  END LOOP;
  RETURN v_flag;
END $$;

COMMENT ON FUNCTION nudge.set_flag(text, boolean) IS
  'Sets a flag as INSERT ... ON CONFLICT DO UPDATE on nudge.status_flags would (an insert for a new key, an update for an existing one), so a true value completes the reminders waiting on it in the same transaction; returns the flag; 22023 naming key or value for bad input.';

-- The event rows of a statement: logged and audited by one trigger function, not two.
CREATE FUNCTION nudge.log_and_audit_inserted_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO nudge.changes (kind, change, object_ids)
  SELECT 'event', 'received', array_agg(r.id) FROM new_rows r HAVING count(*) > 0;
  -- As nudge.audit_inserted_rows: not for rows a trigger inserted, in a session with
  -- nudge.audit = off, or while rules run (db_user is session_user, the definer changes nothing).
  IF pg_trigger_depth() = 1 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
     AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), 'event', r.id::text, 'insert'
      FROM new_rows r;
  END IF;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.log_and_audit_inserted_events() IS
  'Statement trigger on INSERT into nudge.events: logs the inserted events in one nudge.changes row (kind event, change received) and records each in nudge.audit with the session''s nudge.actor and nudge.route, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run; runs as the log''s owner.';

DROP TRIGGER event_inserts_are_audited ON nudge.events;
DROP TRIGGER event_inserts_are_logged ON nudge.events;
CREATE TRIGGER event_inserts_are_logged_and_audited AFTER INSERT ON nudge.events
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_inserted_events();

-- A flag set while rules run is not audited (the event is): decided in the trigger's WHEN, so
-- no function runs for it (a batch of 1,000 events ran it 1,000 times).
DROP TRIGGER flag_changes_are_audited ON nudge.status_flags;
CREATE TRIGGER flag_changes_are_audited AFTER INSERT OR DELETE OR UPDATE ON nudge.status_flags
  FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
        AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0')
  EXECUTE FUNCTION nudge.audit_row_change('flag');
