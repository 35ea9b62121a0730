-- 0022: a create costs less in the database, with every rule and record it had.
--
-- Measured (backend CPU per call of nudge.create_reminder, 3,000 calls in one statement, a
-- recurring webhook reminder): b3f27eb 155 us, main at 0019 215 us. Of the 60 us: the CHECK
-- target_fits_channel 28 us, because PostgreSQL builds a table's CHECK expressions again for
-- every INSERT statement and inlined nudge.address_problem there by parsing its SQL body each
-- time; the three statement triggers after an INSERT (audit, change log, wake-up) 8, 22 and 15 us,
-- each a trigger call of its own reading the same transition table. And the 27 CHECKs of
-- reminders cost 110 us, rebuilt from their stored node trees for every INSERT statement: the
-- four largest 40 us, in PL/pgSQL functions (compiled once per session) 3 us.

-- The same answers, as PL/pgSQL: compiled once per session, so a CHECK that calls it no longer
-- parses a body for every INSERT (a create's check cost 28 us, now about 5). Like the CHECK helpers
-- below it pins no search_path (sql/README.md, rule 4): it is called for every row a batch
-- inserts and uses built-in operators only.
CREATE OR REPLACE FUNCTION nudge.address_problem(p_channel text, p_address text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF p_address IS NULL THEN
    RETURN NULL;
  END IF;
  IF p_channel = 'webhook'
     AND NOT (p_address ~* '^https?://([^/?#@\s]+@)?[a-z0-9.\-\[\]:]+([/?#]\S*)?$'
              AND length(p_address) <= 2048) THEN
    RETURN 'must be an http:// or https:// URL without spaces';
  END IF;
  IF p_channel = 'email'
     AND NOT (p_address ~ '^[^@\s<>(),;:"\[\]\\]+@[^@\s<>(),;:"\[\]\\]+\.[^@\s<>(),;:"\[\]\\]+$'
              AND length(p_address) <= 254) THEN
    RETURN 'must be an email address like someone@example.com';
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.address_problem(text, text) IS
  'NULL when the address suits the channel (webhook: an http(s) URL of at most 2048 characters without spaces; email: one plain address; other channels: anything), else the problem in words.';

-- What an INSERT into reminders records, in one statement trigger instead of three: the audit
-- (under the guards of nudge.audit_inserted_rows), the change log row (as
-- nudge.log_row_changes('reminder', 'created')) and the wake-up hint. As the log's owner, like
-- nudge.log_row_changes: an application role that may insert reminders need not be granted the
-- log; nudge.audit.db_user is still the session's user.
CREATE FUNCTION nudge.record_inserted_reminders() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- Only what a statement asked for directly, in a session that audits, outside rules.
  IF pg_trigger_depth() = 1
     AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
     AND coalesce(NULLIF(current_setting('nudge.event_depth', true), ''), '0') = '0' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT NULLIF(current_setting('nudge.actor', true), ''),
           NULLIF(current_setting('nudge.route', true), ''), 'reminder', i.id::text, 'insert'
      FROM inserted i;
  END IF;
  INSERT INTO nudge.changes (kind, change, object_ids)
  SELECT 'reminder', 'created', array_agg(i.id) FROM inserted i HAVING count(*) > 0;
  -- A session that notifies after its commit itself (nudge.notify_after_commit) needs no hint.
  IF current_setting('nudge.notify_after_commit', true) IS DISTINCT FROM 'on'
     AND EXISTS (SELECT 1 FROM inserted i WHERE i.status = 'ACTIVE') THEN
    PERFORM nudge.queue_wake_up();
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.record_inserted_reminders() IS
  'Statement trigger on reminders: for the rows an INSERT added, one nudge.audit row each (with nudge.actor, nudge.route and session_user) unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run; one nudge.changes row (reminder, created) naming them all; and one wake-up hint when one of them is ACTIVE, unless the session has nudge.notify_after_commit = on.';

DROP TRIGGER reminder_inserts_are_audited ON nudge.reminders;
DROP TRIGGER reminder_inserts_are_logged ON nudge.reminders;
DROP TRIGGER reminder_insert_wakes_workers ON nudge.reminders;
DROP FUNCTION nudge.wake_workers_for_inserted();  -- its only trigger is gone
CREATE TRIGGER reminder_inserts_are_recorded
  AFTER INSERT ON nudge.reminders REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
  EXECUTE FUNCTION nudge.record_inserted_reminders();

-- The largest CHECKs of reminders, each rule as it was, in a PL/pgSQL function named after it:
-- a call's node tree is a tenth of the expression's, and the function is compiled once per
-- session (40 us a create, now about 3). They pin no search_path: called for every inserted
-- row, the clause would cost a batch 3.4 us a reminder, and they use built-in operators only.
CREATE FUNCTION nudge.completed_reason_fits_status(p_status text, p_reason text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN coalesce((p_status IN ('ACTIVE', 'PAUSED') AND p_reason IS NULL)
                  OR (p_status = 'COMPLETED' AND p_reason IN ('fired', 'max_fires', 'ends_at', 'stop_condition'))
                  OR (p_status = 'CANCELLED' AND p_reason = 'cancelled')
                  OR (p_status = 'FAILED' AND p_reason = 'attempts_exhausted')
                  OR p_status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED'), false);
END $$;
COMMENT ON FUNCTION nudge.completed_reason_fits_status(text, text) IS
  'The rule of CHECK completed_reason_fits_status: true when the reason suits the status (none while ACTIVE or PAUSED; fired, max_fires, ends_at or stop_condition when COMPLETED; cancelled when CANCELLED; attempts_exhausted when FAILED) or the status is unknown (CHECK status_is_known refuses it).';

CREATE FUNCTION nudge.finished_at_set_once_finished(p_status text, p_finished_at timestamptz) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN (p_status IN ('COMPLETED', 'CANCELLED', 'FAILED')) = (p_finished_at IS NOT NULL)
         OR p_status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED');
END $$;
COMMENT ON FUNCTION nudge.finished_at_set_once_finished(text, timestamptz) IS
  'The rule of CHECK finished_at_set_once_finished: true when finished_at is set exactly when the status is COMPLETED, CANCELLED or FAILED, or the status is unknown (CHECK status_is_known refuses it).';

CREATE FUNCTION nudge.stop_condition_is_db_check_with_flag_key(p_type text, p_value text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN coalesce((p_type IS NULL AND p_value IS NULL)
                  OR (p_type = 'db_check' AND length(p_value) BETWEEN 1 AND 200), false);
END $$;
COMMENT ON FUNCTION nudge.stop_condition_is_db_check_with_flag_key(text, text) IS
  'The rule of CHECK stop_condition_is_db_check_with_flag_key: true when there is no stop condition at all, or it is db_check with a flag key of 1 to 200 characters.';

CREATE FUNCTION nudge.only_cron_has_expression_and_zone(p_schedule_type text, p_has_all boolean) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN (p_schedule_type = 'cron') = p_has_all
         OR p_schedule_type NOT IN ('one_time', 'recurring', 'cron');
END $$;
COMMENT ON FUNCTION nudge.only_cron_has_expression_and_zone(text, boolean) IS
  'The rule of CHECK only_cron_has_expression_and_zone: true when a cron reminder, and only one, has its expression, zone and parsed schedule (p_has_all), or the schedule type is unknown (CHECK schedule_type_is_known refuses it).';

-- The same four rules under the same names, now calls of the functions above.
ALTER TABLE nudge.reminders
  DROP CONSTRAINT completed_reason_fits_status,
  ADD CONSTRAINT completed_reason_fits_status CHECK (nudge.completed_reason_fits_status(status, completed_reason)),
  DROP CONSTRAINT finished_at_set_once_finished,
  ADD CONSTRAINT finished_at_set_once_finished CHECK (nudge.finished_at_set_once_finished(status, finished_at)),
  DROP CONSTRAINT stop_condition_is_db_check_with_flag_key,
  ADD CONSTRAINT stop_condition_is_db_check_with_flag_key CHECK (nudge.stop_condition_is_db_check_with_flag_key(stop_condition_type, stop_condition_value)),
  DROP CONSTRAINT only_cron_has_expression_and_zone,
  ADD CONSTRAINT only_cron_has_expression_and_zone CHECK (nudge.only_cron_has_expression_and_zone(schedule_type, cron IS NOT NULL AND timezone IS NOT NULL AND cron_schedule IS NOT NULL));

-- The other CHECKs that list words, each rule as it was, with the list one array constant: an
-- ARRAY[...] of constants is stored as one node per word and folded again for every INSERT.
ALTER TABLE nudge.reminders
  DROP CONSTRAINT channel_is_known,
  ADD CONSTRAINT channel_is_known CHECK ((channel = ANY ('{log,webhook,email}'::text[]))),
  DROP CONSTRAINT misfire_policy_is_known,
  ADD CONSTRAINT misfire_policy_is_known CHECK ((misfire_policy = ANY ('{fire_once,skip,fire_all}'::text[]))),
  DROP CONSTRAINT schedule_type_is_known,
  ADD CONSTRAINT schedule_type_is_known CHECK ((schedule_type = ANY ('{one_time,recurring,cron}'::text[]))),
  DROP CONSTRAINT status_is_known,
  ADD CONSTRAINT status_is_known CHECK ((status = ANY ('{ACTIVE,PAUSED,COMPLETED,CANCELLED,FAILED}'::text[])));
