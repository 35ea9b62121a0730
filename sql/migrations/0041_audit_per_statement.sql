-- 0041: contacts, rules, events and reminders are audited once per statement, from its
-- transition table, instead of by a PL/pgSQL call and an INSERT for every row.
--
-- Contacts are what an application writes in bulk from its own SQL (its people's addresses): a
-- statement inserting 20,000 contacts took 3x as long with the row trigger as without any audit.
-- 0039 did the same for flags. The rows recorded are the same: one audit row per row written
-- (insert, update or delete, with the session's nudge.actor and nudge.route), none for a
-- statement a trigger ran, in a session with nudge.audit = off, or while rules run.
--
-- One function now audits every statement of these tables (nudge.audit_updated_rows, which did
-- it for the reminders' updates alone, goes). Tokens keep their row trigger: it fires only for
-- UPDATE OF the columns that matter (not last_used_at), and a trigger with a column list cannot
-- have a transition table; nudge.audit_row_change loses the branches of the tables that left it.

CREATE FUNCTION nudge.audit_changed_rows() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
           r.entity_type || '/' || r.entity_id || '/' || r.channel, lower(TG_OP)
      FROM changed_rows r;
  ELSE
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), TG_ARGV[0], r.id::text, lower(TG_OP)
      FROM changed_rows r;
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.audit_changed_rows() IS 'Statement trigger (argument: the subject type) with the transition table changed_rows: records every row the statement inserted, updated or deleted in nudge.audit in one insert (subject: the id, or entity_type/entity_id/channel for a contact), with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run.';

CREATE OR REPLACE FUNCTION nudge.audit_row_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_row     record;
  v_subject text;
BEGIN
  IF coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') <> '0' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN v_row := OLD; ELSE v_row := NEW; END IF;
  -- One branch per table: each is planned for the row type of the table it runs for.
  IF TG_TABLE_NAME = 'api_tokens' THEN
    v_subject := v_row.name;
  ELSE
    v_subject := v_row.id::text;
  END IF;
  INSERT INTO nudge.audit (token, route, subject_type, subject, change)
  VALUES (nullif(current_setting('nudge.actor', true), ''),
          nullif(current_setting('nudge.route', true), ''), TG_ARGV[0], v_subject, lower(TG_OP));
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.audit_row_change() IS 'Row trigger (argument: the subject type), for tables whose audit fires only for some columns (tokens): records the changed row in nudge.audit (subject: a token''s name, else the id) with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless rules are running.';

DROP TRIGGER contact_changes_are_audited ON nudge.contacts;
DROP TRIGGER rule_changes_are_audited ON nudge.rules;
DROP TRIGGER event_changes_are_audited ON nudge.events;
DROP TRIGGER reminder_deletes_are_audited ON nudge.reminders;
DROP TRIGGER reminder_updates_are_audited ON nudge.reminders;
DROP FUNCTION nudge.audit_updated_rows();

-- A trigger with a transition table serves one kind of statement, hence one per kind, named
-- <subject>_<kind>s_are_audited (contact_inserts_are_audited, ...).
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM (VALUES ('contacts', 'contact', 'insert'), ('contacts', 'contact', 'update'),
                                 ('contacts', 'contact', 'delete'), ('rules', 'rule', 'insert'),
                                 ('rules', 'rule', 'update'), ('rules', 'rule', 'delete'),
                                 ('events', 'event', 'update'), ('events', 'event', 'delete'),
                                 ('reminders', 'reminder', 'update'),
                                 ('reminders', 'reminder', 'delete')) AS x(tbl, subject, kind)
  LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER %s ON nudge.%I REFERENCING %s TABLE AS changed_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows(%L)',
                   t.subject || '_' || t.kind || 's_are_audited', upper(t.kind), t.tbl,
                   CASE t.kind WHEN 'delete' THEN 'OLD' ELSE 'NEW' END, t.subject);
  END LOOP;
END $$;
