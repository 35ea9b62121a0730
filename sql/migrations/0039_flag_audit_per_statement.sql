-- 0039: a statement that writes flags is logged and audited by one statement trigger, instead of
-- a PL/pgSQL call and an INSERT for every flag it writes.
--
-- Flags are how an application stops reminders, often many at once from its own SQL. The audit
-- was a row trigger: a statement that set 1,000 flags ran 1,000 trigger calls, each its own
-- INSERT into nudge.audit, and that more than doubled its cost. Reminders and events were
-- already audited once per statement from their transition tables; flags now are too, in the
-- same trigger that logs them for the live stream (one call instead of two for a single flag).
-- The rows recorded are the same: one audit row per flag written (insert, update or delete,
-- with the session's nudge.actor and nudge.route), none for a statement a trigger ran, in a
-- session with nudge.audit = off, or while rules run.
--
-- nudge.audit_inserted_rows, which no trigger has used since 0021 and 0022 folded it into the
-- events' and reminders' own statement triggers, goes, and nudge.log_row_changes loses its flag
-- branch.

CREATE FUNCTION nudge.log_and_audit_flag_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  -- As the other audits: what a statement asked for directly, in a session that audits,
  -- outside rules.
  v_audit boolean := pg_trigger_depth() = 1
                     AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
                     AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0';
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF v_audit THEN
      INSERT INTO nudge.audit (token, route, subject_type, subject, change)
      SELECT nullif(current_setting('nudge.actor', true), ''),
             nullif(current_setting('nudge.route', true), ''), 'flag', r.key, 'delete'
        FROM old_rows r;
    END IF;
    RETURN NULL;
  END IF;
  INSERT INTO nudge.changes (kind, change, flag_keys)
  SELECT 'flag', 'set', array_agg(r.key) FROM new_rows r HAVING count(*) > 0;
  IF v_audit THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), 'flag', r.key, lower(TG_OP)
      FROM new_rows r;
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.log_and_audit_flag_changes() IS 'Statement trigger on nudge.status_flags: logs the flags an INSERT or UPDATE wrote in one nudge.changes row (kind flag, change set), and records every flag the statement inserted, updated or deleted in nudge.audit with the session''s nudge.actor and nudge.route and session_user, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run; runs as the log''s owner.';

DROP TRIGGER flag_changes_are_audited ON nudge.status_flags;
DROP TRIGGER status_flag_inserts_are_logged ON nudge.status_flags;
DROP TRIGGER status_flag_updates_are_logged ON nudge.status_flags;
-- Named to run before status_flags_..._complete_their_reminders, as the log triggers did.
CREATE TRIGGER status_flag_inserts_are_logged_and_audited AFTER INSERT ON nudge.status_flags
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_flag_changes();
CREATE TRIGGER status_flag_updates_are_logged_and_audited AFTER UPDATE ON nudge.status_flags
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_flag_changes();
CREATE TRIGGER status_flag_deletes_are_audited AFTER DELETE ON nudge.status_flags
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_flag_changes();

CREATE OR REPLACE FUNCTION nudge.log_row_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO nudge.changes (kind, change, object_ids, gone)
    SELECT TG_ARGV[0], TG_ARGV[1], array_agg(r.id), array_agg(nudge.rule_json(r::nudge.rules))
      FROM old_rows r HAVING count(*) > 0;
  ELSE
    INSERT INTO nudge.changes (kind, change, object_ids)
    SELECT TG_ARGV[0], TG_ARGV[1], array_agg(r.id) FROM new_rows r HAVING count(*) > 0;
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.log_row_changes() IS 'Trigger (arguments: kind, change): logs the rows of the statement in one nudge.changes row by their ids, deleted rules with their last JSON forms.';

DROP FUNCTION nudge.audit_inserted_rows();
