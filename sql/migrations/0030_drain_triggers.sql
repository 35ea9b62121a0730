-- 0030: claims and finishes spend less on nudge.reminders' AFTER UPDATE triggers (issues 10
-- and 17: the drain within 5% of b3f27eb).
--
-- Where it went (callgrind, one backend in single-user mode, nudge.finish_and_claim rounds of
-- 1,000 due log reminders, 8 rounds minus 3 so start-up cancels out): 188.0k instructions per
-- fire; 176.7k with no AFTER UPDATE row trigger at all. Of the 11k, PostgreSQL fetches the old
-- row of every updated row once any such trigger exists (about 1.1k per row), then each
-- trigger's WHEN clause costs what it reads: current_setting() (the audit trigger's, on every
-- claimed and finished row) costs more than any column test, and a clause that reads an OLD
-- column first makes PostgreSQL take apart the old row up to that column. After this
-- migration: 184.1k (-2.1%; the audit as a statement trigger -1.0%, the NEW tests first -0.5%,
-- the claim's generic plans -0.5%). Folding the row triggers into one with one WHEN saved
-- nothing (186.9k): the clause still reads the old row for a finish.

-- 1. An UPDATE's audit is a statement trigger: its WHEN (the session audits, the statement did
--    not run in a trigger) is evaluated once per statement instead of once per row, and the
--    rows are recorded in one insert from the transition table. A DELETE keeps the row trigger.
--    Same audit rows: one per updated reminder, subject its id, change 'update'.
CREATE FUNCTION nudge.audit_updated_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') <> '0' THEN
    RETURN NULL;
  END IF;
  INSERT INTO nudge.audit (token, route, subject_type, subject, change)
  SELECT nullif(current_setting('nudge.actor', true), ''),
         nullif(current_setting('nudge.route', true), ''), TG_ARGV[0], u.id::text, 'update'
    FROM updated u;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.audit_updated_rows() IS
  'Statement trigger (argument: the subject type) on tables with an id, with the transition table updated: records each row the statement updated in nudge.audit in one insert, with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless rules are running.';

DROP TRIGGER reminder_changes_are_audited ON nudge.reminders;
CREATE TRIGGER reminder_deletes_are_audited
  AFTER DELETE ON nudge.reminders
  FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_row_change('reminder');
CREATE TRIGGER reminder_updates_are_audited
  AFTER UPDATE ON nudge.reminders
  REFERENCING NEW TABLE AS updated
  FOR EACH STATEMENT
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_updated_rows('reminder');

-- 2. The same WHEN clauses, a test of a NEW column first (the new row is at hand, no old row
--    is taken apart): a claim (a lease set) fails the wake-up's at once, a one_time fire
--    (completed_reason 'fired'), a retry and a recurring fire (no completed_reason) fail the
--    end event's.
DROP TRIGGER reminder_due_sooner_wakes_workers ON nudge.reminders;
CREATE TRIGGER reminder_due_sooner_wakes_workers
  AFTER UPDATE ON nudge.reminders
  FOR EACH ROW
  WHEN (NEW.lease_expires_at IS NULL AND NEW.status = 'ACTIVE'
        AND (OLD.status <> 'ACTIVE' OR OLD.lease_expires_at IS NOT NULL
             OR NEW.next_run_at < OLD.next_run_at))
  EXECUTE FUNCTION nudge.wake_workers();

DROP TRIGGER reminder_end_emits_an_event ON nudge.reminders;
CREATE TRIGGER reminder_end_emits_an_event
  AFTER UPDATE OF status ON nudge.reminders
  FOR EACH ROW
  WHEN (NEW.completed_reason IS NOT NULL AND NEW.completed_reason <> 'fired'
        AND OLD.status IN ('ACTIVE', 'PAUSED')
        AND NEW.status IN ('COMPLETED', 'CANCELLED', 'FAILED'))
  EXECUTE FUNCTION nudge.emit_reminder_event();

-- 3. A claim keeps one generic plan for each of its statements, as the finish does (0025):
--    PostgreSQL planned them again on every call (about 1k instructions per fire).
ALTER FUNCTION nudge.claim_due(text, integer, nudge.worker_policy)
  SET plan_cache_mode = force_generic_plan;
