-- 0104: a contact's audit subject tells contacts apart whose names hold a slash. It was
-- entity_type/entity_id/channel as written, so a/b + c and a + b/c were both a/b/c/email, and a
-- filter on that subject listed both (explore14a #7). Each name is now written as in the
-- contact's path (/v1/contacts/a%2Fb/c/email): % as %25, / as %2F. Rows recorded before stay.

CREATE OR REPLACE FUNCTION nudge.audit_changed_rows() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- As the other audits: what a statement asked for directly, in a session that audits,
  -- outside rules. Tested here, not in a WHEN clause: PostgreSQL reads a trigger's WHEN back
  -- from its text for every statement (about 40k instructions), and an upsert fires both its
  -- INSERT and its UPDATE trigger.
  IF pg_trigger_depth() <> 1 OR current_setting('nudge.audit', true) = 'off'
     OR coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') <> '0' THEN
    RETURN NULL;
  END IF;
  -- One branch per subject: each statement is planned for the row type of its table.
  IF TG_TABLE_NAME = 'contacts' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), TG_ARGV[0],
           -- Written as the contact's path: a name holding / or % cannot pass for another's.
           replace(replace(r.entity_type, '%', '%25'), '/', '%2F') || '/'
             || replace(replace(r.entity_id, '%', '%25'), '/', '%2F') || '/' || r.channel,
           lower(TG_OP)
      FROM changed_rows r;
  ELSE
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), TG_ARGV[0], r.id::text, lower(TG_OP)
      FROM changed_rows r;
  END IF;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.audit_changed_rows() IS 'Statement trigger (argument: the subject type) with the transition table changed_rows: records every row the statement inserted, updated or deleted in nudge.audit in one insert (subject: the id, or entity_type/entity_id/channel for a contact, each name''s % and / written %25 and %2F as in its path), with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run.';
