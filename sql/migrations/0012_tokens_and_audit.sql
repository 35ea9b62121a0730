-- 0012: API tokens and the audit trail (issue 17).
--
--   nudge.api_tokens  who may call the REST API: a name, the SHA-256 of the token (the token is
--                     shown once, by `nudge-api token create`, and never stored), its scopes,
--                     when it was created and last used, and when it was revoked. Revoking marks
--                     the row and keeps it: a name is never reused, so a token name in the audit
--                     trail always means one token.
--   nudge.audit       who changed what: one row per row that a REST request or an SQL session
--                     inserts, updates or deletes in reminders, rules, status_flags, contacts,
--                     events and api_tokens, with the token and route (over REST), the database
--                     user and the time.
--
-- Who is acting travels in session settings, read by the audit triggers. nudge-api sets
-- nudge.actor (the token's name, empty without auth) and nudge.route (the route template, e.g.
-- 'POST /v1/reminders/{id}/pause') on a pooled connection before a request that changes
-- something, and only when they differ from what that connection carries already, so a request
-- costs no extra round trip in the common case. A session without them is an SQL session: its
-- rows name session_user only. nudge-worker's sessions set nudge.audit = 'off': what workers do
-- (claims, fires, retries) is recorded in executions and delivery_attempts already.
--
-- What Nudge does in answer to a change is not recorded again: reminders a flag completes (a
-- trigger's work), a rule's effects (recorded in its event's effects; nudge.event_depth is set
-- while rules run), what prune_history removes.
--
-- Additive: older binaries work with it (their writes are audited as SQL sessions).

-- ---------------------------------------------------------------------------------------------
-- Tokens
-- ---------------------------------------------------------------------------------------------

CREATE TABLE nudge.api_tokens (
  name         text        NOT NULL,
  token_hash   bytea       NOT NULL,  -- SHA-256 of the whole token text
  scopes       text[]      NOT NULL,  -- read, write, admin, metrics; in that order
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,           -- written by nudge-api at most once a minute per token
  revoked_at   timestamptz,
  CONSTRAINT api_token_name_is_unique PRIMARY KEY (name),
  CONSTRAINT api_token_name_is_a_word_of_1_to_100_chars
    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
  CONSTRAINT api_token_hash_is_a_sha256 CHECK (length(token_hash) = 32),
  CONSTRAINT api_token_scopes_are_read_write_admin_or_metrics
    CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'admin', 'metrics'])
);
COMMENT ON TABLE nudge.api_tokens IS
  'Tokens of the REST API, stored as SHA-256 hashes with their scopes; a revoked token keeps its row and its name.';
CREATE UNIQUE INDEX api_tokens_one_per_hash ON nudge.api_tokens (token_hash);

CREATE FUNCTION nudge.create_token(p_name text, p_token_hash bytea, p_scopes text[])
RETURNS nudge.api_tokens
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE v_token nudge.api_tokens;
BEGIN
  IF p_name IS NULL OR p_name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' THEN
    PERFORM nudge.reject('name', 'must be 1 to 100 letters, digits, dots, dashes or underscores, '
                                 'beginning with a letter or digit');
  END IF;
  IF p_token_hash IS NULL OR length(p_token_hash) <> 32 THEN
    PERFORM nudge.reject('token_hash', 'must be the 32 bytes of a SHA-256');
  END IF;
  IF coalesce(cardinality(p_scopes), 0) = 0
     OR NOT p_scopes <@ ARRAY['read', 'write', 'admin', 'metrics'] THEN
    PERFORM nudge.reject('scopes', 'must be one or more of read, write, admin, metrics');
  END IF;
  INSERT INTO nudge.api_tokens AS t (name, token_hash, scopes)
  VALUES (p_name, p_token_hash,
          ARRAY(SELECT s FROM unnest(ARRAY['read', 'write', 'admin', 'metrics']) s
                 WHERE s = ANY (p_scopes)))
  ON CONFLICT (name) DO NOTHING
  RETURNING t.* INTO v_token;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'a token named % exists already (a revoked token keeps its name)', p_name
      USING ERRCODE = 'NU409';
  END IF;
  RETURN v_token;
END $$;
COMMENT ON FUNCTION nudge.create_token(text, bytea, text[]) IS
  'Stores a new token by its SHA-256 with its scopes (in the order read, write, admin, metrics) and returns it; 22023 naming name, token_hash or scopes for bad input, NU409 when the name is taken, revoked or not.';

CREATE FUNCTION nudge.revoke_token(p_name text) RETURNS nudge.api_tokens
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE v_token nudge.api_tokens;
BEGIN
  SELECT * INTO v_token FROM nudge.api_tokens WHERE name = p_name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no token is named %', p_name USING ERRCODE = 'NU404';
  END IF;
  IF v_token.revoked_at IS NULL THEN
    UPDATE nudge.api_tokens SET revoked_at = now() WHERE name = p_name RETURNING * INTO v_token;
  END IF;
  RETURN v_token;
END $$;
COMMENT ON FUNCTION nudge.revoke_token(text) IS
  'Marks the token revoked (once: revoking it again changes nothing) and returns it, which every listening nudge-api hears at commit; NU404 when no token has that name.';

-- nudge-api caches verified tokens for [api] token_cache_seconds and LISTENs on nudge_tokens: a
-- revoked, deleted or changed token is dropped from every connected API process's cache as soon
-- as the change commits, however it was made (nudge.revoke_token or plain SQL).
CREATE FUNCTION nudge.announce_token_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_notify('nudge_tokens', OLD.name);
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.announce_token_change() IS
  'Trigger: a token revoked, deleted or changed in name, hash or scopes is announced on channel nudge_tokens (payload: its old name) when the transaction commits.';

CREATE TRIGGER api_token_change_is_announced
  AFTER UPDATE OF name, token_hash, scopes, revoked_at OR DELETE ON nudge.api_tokens
  FOR EACH ROW EXECUTE FUNCTION nudge.announce_token_change();

-- ---------------------------------------------------------------------------------------------
-- The audit trail
-- ---------------------------------------------------------------------------------------------

-- Narrow, with one index: the primary key, which serves the newest-first cursor and pruning
-- (ids rise with time), and no CHECK: only the triggers below write it. A create writes one more
-- small row and one index entry. (PostgreSQL rebuilds a table's CHECK expressions for every
-- statement that inserts into it: one on change cost a fifth of the audit insert, and a BRIN
-- index on changed_at doubled it.)
CREATE TABLE nudge.audit (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  changed_at   timestamptz NOT NULL DEFAULT now(),
  token        text,                         -- the token's name; NULL over SQL
  route        text,                         -- 'PATCH /v1/rules/{id}'; NULL over SQL
  db_user      text        NOT NULL DEFAULT session_user,
  subject_type text        NOT NULL,         -- reminder, rule, flag, contact, event or token
  subject      text        NOT NULL,         -- its id, key, name or entity_type/entity_id/channel
  change       text        NOT NULL          -- insert, update or delete
);
COMMENT ON TABLE nudge.audit IS
  'Who changed what: one row per row a REST request or an SQL session changed in reminders, rules, status_flags, contacts, events or api_tokens; pruned after [history] retention_days.';

-- Changes made while rules run are their events' effects, recorded in nudge.events.
CREATE FUNCTION nudge.audit_row_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_row     record;
  v_subject text;
BEGIN
  IF coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') <> '0' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN v_row := OLD; ELSE v_row := NEW; END IF;
  -- One branch per table: each is planned for the row type of the table it runs for.
  IF TG_TABLE_NAME = 'status_flags' THEN
    v_subject := v_row.key;
  ELSIF TG_TABLE_NAME = 'contacts' THEN
    v_subject := v_row.entity_type || '/' || v_row.entity_id || '/' || v_row.channel;
  ELSIF TG_TABLE_NAME = 'api_tokens' THEN
    v_subject := v_row.name;
  ELSE
    v_subject := v_row.id::text;
  END IF;
  INSERT INTO nudge.audit (token, route, subject_type, subject, change)
  VALUES (nullif(current_setting('nudge.actor', true), ''),
          nullif(current_setting('nudge.route', true), ''), TG_ARGV[0], v_subject, lower(TG_OP));
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.audit_row_change() IS
  'Row trigger (argument: the subject type): records the changed row in nudge.audit with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless rules are running.';

-- It runs for every create, so it is written for speed: its trigger has no WHEN clause
-- (PostgreSQL rebuilds a WHEN expression for every statement, which cost more than these tests
-- in the function), and like the wake-up trigger it does not pin search_path (the SET clause
-- cost a quarter of the audit of a create) but names everything in full.
CREATE FUNCTION nudge.audit_inserted_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF pg_catalog.pg_trigger_depth() > 1
     OR pg_catalog.current_setting('nudge.audit', true) = 'off'
     OR coalesce(NULLIF(pg_catalog.current_setting('nudge.event_depth', true), ''), '0') <> '0' THEN
    RETURN NULL;
  END IF;
  INSERT INTO nudge.audit (token, route, subject_type, subject, change)
  SELECT NULLIF(pg_catalog.current_setting('nudge.actor', true), ''),
         NULLIF(pg_catalog.current_setting('nudge.route', true), ''), TG_ARGV[0],
         i.id::pg_catalog.text, 'insert'
    FROM inserted i;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.audit_inserted_rows() IS
  'Statement trigger (argument: the subject type) on tables with an id: records each row the statement inserted in nudge.audit in one insert, with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run.';

-- Only changes made directly by a statement (trigger depth 0) of a session that audits: what
-- triggers do in answer (a flag completing reminders, a reminder's end emitting its event) and
-- what workers do are not changes anyone asked for. Reminders and events are inserted in batches
-- (a batch create, a batch of events): one statement trigger records them all in one insert.
-- Updates and deletes are tested in WHEN, so that a worker's claims and finishes (thousands of
-- rows a statement) never call a function.
CREATE TRIGGER reminder_inserts_are_audited
  AFTER INSERT ON nudge.reminders REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
  EXECUTE FUNCTION nudge.audit_inserted_rows('reminder');
CREATE TRIGGER reminder_changes_are_audited
  AFTER UPDATE OR DELETE ON nudge.reminders FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_row_change('reminder');
CREATE TRIGGER event_inserts_are_audited
  AFTER INSERT ON nudge.events REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
  EXECUTE FUNCTION nudge.audit_inserted_rows('event');
CREATE TRIGGER event_changes_are_audited
  AFTER UPDATE OR DELETE ON nudge.events FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_row_change('event');
CREATE TRIGGER rule_changes_are_audited
  AFTER INSERT OR UPDATE OR DELETE ON nudge.rules FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_row_change('rule');
CREATE TRIGGER flag_changes_are_audited
  AFTER INSERT OR UPDATE OR DELETE ON nudge.status_flags FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_row_change('flag');
CREATE TRIGGER contact_changes_are_audited
  AFTER INSERT OR UPDATE OR DELETE ON nudge.contacts FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_row_change('contact');
-- last_used_at is nudge-api's bookkeeping, not a change.
CREATE TRIGGER token_changes_are_audited
  AFTER INSERT OR DELETE OR UPDATE OF name, token_hash, scopes, revoked_at ON nudge.api_tokens
  FOR EACH ROW
  WHEN (pg_trigger_depth() = 0 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off')
  EXECUTE FUNCTION nudge.audit_row_change('token');

-- ---------------------------------------------------------------------------------------------
-- History: the audit trail is kept as long as the rest
-- ---------------------------------------------------------------------------------------------

-- Same signature, so CREATE OR REPLACE. What it deletes is retention, not anyone's change: its
-- deletes are not audited, even when an SQL session calls it (the session's own setting comes
-- back afterwards).
CREATE OR REPLACE FUNCTION nudge.prune_history(p_keep interval, p_limit integer) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_audit      text := current_setting('nudge.audit', true);
  v_executions integer;
  v_attempts   integer;
  v_reminders  integer;
  v_events     integer;
  v_audited    integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('nudge.prune_history')) THEN
    RETURN 0;
  END IF;
  PERFORM set_config('nudge.audit', 'off', true);
  DELETE FROM nudge.executions e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.executions x
                              WHERE x.fired_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_executions = ROW_COUNT;
  DELETE FROM nudge.delivery_attempts a
   WHERE a.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.delivery_attempts x
                              WHERE x.attempted_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_attempts = ROW_COUNT;
  DELETE FROM nudge.reminders r
   WHERE r.id = ANY (ARRAY(SELECT x.id FROM nudge.reminders x
                            WHERE x.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
                              AND x.finished_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_reminders = ROW_COUNT;
  DELETE FROM nudge.events e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.events x
                              WHERE x.received_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_events = ROW_COUNT;
  -- The oldest p_limit by id, of which those older than p_keep: the primary key is the only
  -- index, and ids rise with time.
  DELETE FROM nudge.audit a
   WHERE a.id = ANY (ARRAY(SELECT x.id FROM (SELECT y.id, y.changed_at FROM nudge.audit y
                                               ORDER BY y.id LIMIT p_limit) x
                            WHERE x.changed_at < now() - p_keep));
  GET DIAGNOSTICS v_audited = ROW_COUNT;
  PERFORM set_config('nudge.audit', coalesce(v_audit, ''), true);
  RETURN v_executions + v_attempts + v_reminders + v_events + v_audited;
END $$;
COMMENT ON FUNCTION nudge.prune_history(interval, integer) IS
  'Deletes up to p_limit each of executions, delivery attempts, finished reminders, events and audit rows older than p_keep, without auditing its deletes; when several workers call it at once only one does the work; returns how many rows went.';
