-- 0018: the change log the live stream (GET /v1/stream, issue 18) is read from.
--
-- 1. nudge.changes: the changes a stream client is told about (a reminder created, fired,
--    retrying, failed, completed, paused, resumed, cancelled or rescheduled; a flag set; an event
--    received; a rule created, updated or deleted). Statement-level triggers with transition
--    tables write ONE row per statement, holding the ids of every object it changed in arrays:
--    a worker's finish of 1,000 fires adds one row of two arrays to its transaction (a row per
--    fire cost the drain 17%), and no NOTIFY. The other changes of a reminder (API calls, stop
--    flags) are picked out by a row trigger's WHEN, which claims and finishes fail at once.
--    Rows carry only what changed; the objects are read when the stream renders the change, so
--    a client sees them as of delivery.
-- 2. Delivery order by snapshot difference: ids come from a sequence and are not commit order
--    (id 101 can commit before id 100). nudge.stream_advance, called by every API process's
--    reader under one lock, compares the snapshot of the last batch with a new one: the rows of
--    the transactions visible now and not then (xid at or past the old xmax, or in its in-progress
--    list) are the next batch, numbered in order (nudge.change_batches). Only the transactions
--    that wrote the log can hold a batch back, never an unrelated long transaction elsewhere on
--    the server (as a reader below the snapshot's xmin was). A stream position is
--    (batch, id, n), n an object's place in its row: it increases in delivery order, and every
--    API process reads the same batches, so Last-Event-ID resumes on any of them.
-- 3. Retention: nudge.prune_history prunes the oldest batches with their rows, and remembers
--    the last batch it pruned (nudge.changes_pruned), so that a client resuming from before it
--    can be told what is gone.

CREATE TABLE nudge.changes (
  id bigint GENERATED ALWAYS AS IDENTITY,
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL,
  change text NOT NULL,
  object_ids bigint[],          -- the reminders, events or rules
  flag_keys text[],             -- the flags
  occurrences timestamptz[],    -- the occurrences the reminders fired or are retrying
  gone jsonb[],                 -- deleted rules as they were (nothing is left to read)
  CONSTRAINT change_kind_is_known CHECK (kind IN ('reminder', 'flag', 'event', 'rule')),
  CONSTRAINT change_names_its_objects CHECK ((kind = 'flag') = (flag_keys IS NOT NULL)
                                             AND (kind = 'flag') = (object_ids IS NULL))
);
-- Read by transaction: the rows of a batch's transactions from an id on, and those of new ones.
CREATE INDEX changes_by_transaction ON nudge.changes (xid, id);
COMMENT ON TABLE nudge.changes IS
  'What happened, for the live stream: written by triggers, one row per statement, each delivered in the batch (nudge.change_batches) of its transaction, in id order and then the order of the arrays; the objects are read when a change is rendered; pruned with its batch after [history] retention_days.';

CREATE TABLE nudge.change_batches (
  pos bigint PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  snapshot pg_snapshot NOT NULL,
  xids xid8[] NOT NULL
);
-- Every change is of a transaction after this snapshot: the table is new.
INSERT INTO nudge.change_batches (pos, snapshot, xids) VALUES (0, pg_current_snapshot(), '{}');
COMMENT ON TABLE nudge.change_batches IS
  'The stream''s delivery order: batch pos holds the changes of the transactions xids, which finished between the snapshot of batch pos - 1 and its own; written only by nudge.stream_advance, pruned by nudge.prune_history (never the last).';

CREATE TABLE nudge.changes_pruned (
  only_row boolean PRIMARY KEY DEFAULT true CONSTRAINT changes_pruned_has_one_row CHECK (only_row),
  pos bigint NOT NULL
);
INSERT INTO nudge.changes_pruned (pos) VALUES (0);
COMMENT ON TABLE nudge.changes_pruned IS
  'The last batch pruned from nudge.change_batches with its changes: a client resuming from a position in or before it has missed changes that are gone.';

-- Fires: an ended occurrence is an execution row, a failed attempt with attempts left an attempt
-- row without one. Logged from those inserts, which carry what the change is: the hot path's
-- reminder UPDATEs (claims and finishes) have no statement trigger, so PostgreSQL keeps no
-- transition tables of them (that cost 6% of a drain in SQL) and joins nothing.
CREATE FUNCTION nudge.log_fires() RETURNS trigger
LANGUAGE plpgsql
-- As the log's owner: an application role that may change the table need not be granted the log.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO nudge.changes (kind, change, object_ids, occurrences)
  SELECT 'reminder', 'fired', array_agg(e.reminder_id), array_agg(e.scheduled_for)
    FROM new_rows e HAVING count(*) > 0;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.log_fires() IS
  'Trigger: logs the execution rows of the statement in one nudge.changes row, each a fire of its reminder and occurrence (rendered as failed when it failed and its reminder is FAILED).';

CREATE TRIGGER execution_inserts_are_logged AFTER INSERT ON nudge.executions
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_fires();

CREATE FUNCTION nudge.log_retries() RETURNS trigger
LANGUAGE plpgsql
-- As the log's owner: an application role that may change the table need not be granted the log.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- The statement's executions are in place: an occurrence that ended is a fire, not a retry.
  INSERT INTO nudge.changes (kind, change, object_ids, occurrences)
  SELECT 'reminder', 'retrying', array_agg(a.reminder_id), array_agg(a.scheduled_for)
    FROM new_rows a
   WHERE a.outcome = 'failed'
     AND NOT EXISTS (SELECT 1 FROM nudge.executions x
                      WHERE x.reminder_id = a.reminder_id AND x.scheduled_for = a.scheduled_for)
  HAVING count(*) > 0;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.log_retries() IS
  'Trigger: logs in one nudge.changes row the failed delivery attempts of the statement whose occurrence did not end (no execution): each reminder is retrying that occurrence.';

CREATE TRIGGER delivery_attempt_inserts_are_logged AFTER INSERT ON nudge.delivery_attempts
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_retries();

-- Every other change of a reminder is a row the trigger's WHEN picks out: claims, finishes and
-- lease changes fail it at its first or third test, so they queue no trigger at all.
CREATE FUNCTION nudge.log_reminder_change() RETURNS trigger
LANGUAGE plpgsql
-- As the log's owner: an application role that may change the table need not be granted the log.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO nudge.changes (kind, change, object_ids)
  VALUES ('reminder',
          CASE WHEN NEW.status = OLD.status THEN 'rescheduled'
               ELSE CASE NEW.status WHEN 'PAUSED' THEN 'paused' WHEN 'ACTIVE' THEN 'resumed'
                                    WHEN 'CANCELLED' THEN 'cancelled'
                                    WHEN 'COMPLETED' THEN 'completed' ELSE 'failed' END END,
          ARRAY[NEW.id]);
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.log_reminder_change() IS
  'Trigger: logs in nudge.changes a reminder update that is not a fire: its new status (paused, resumed, cancelled, completed, failed), or rescheduled when only its schedule or payload changed.';

CREATE TRIGGER reminder_changes_are_logged AFTER UPDATE ON nudge.reminders
  FOR EACH ROW
  WHEN (OLD.fire_count = NEW.fire_count
        AND (OLD.status <> NEW.status
             OR (OLD.leased_by IS NOT DISTINCT FROM NEW.leased_by AND OLD.attempt = NEW.attempt
                 AND (NEW.next_run_at, NEW.interval_seconds, NEW.max_fires, NEW.ends_at,
                      NEW.payload)
                     IS DISTINCT FROM
                     (OLD.next_run_at, OLD.interval_seconds, OLD.max_fires, OLD.ends_at,
                      OLD.payload))))
  EXECUTE FUNCTION nudge.log_reminder_change();

-- Everything else: one kind and change per trigger, from its arguments.
CREATE FUNCTION nudge.log_row_changes() RETURNS trigger
LANGUAGE plpgsql
-- As the log's owner: an application role that may change the table need not be granted the log.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_ARGV[0] = 'flag' THEN
    INSERT INTO nudge.changes (kind, change, flag_keys)
    SELECT 'flag', TG_ARGV[1], array_agg(r.key) FROM new_rows r HAVING count(*) > 0;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO nudge.changes (kind, change, object_ids, gone)
    SELECT TG_ARGV[0], TG_ARGV[1], array_agg(r.id), array_agg(nudge.rule_json(r::nudge.rules))
      FROM old_rows r HAVING count(*) > 0;
  ELSE
    INSERT INTO nudge.changes (kind, change, object_ids)
    SELECT TG_ARGV[0], TG_ARGV[1], array_agg(r.id) FROM new_rows r HAVING count(*) > 0;
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.log_row_changes() IS
  'Trigger (arguments: kind, change): logs the rows of the statement in one nudge.changes row: flags by their keys, deleted rules with their last JSON forms, anything else by its id.';

CREATE TRIGGER reminder_inserts_are_logged AFTER INSERT ON nudge.reminders
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('reminder', 'created');
CREATE TRIGGER status_flag_inserts_are_logged AFTER INSERT ON nudge.status_flags
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('flag', 'set');
CREATE TRIGGER status_flag_updates_are_logged AFTER UPDATE ON nudge.status_flags
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('flag', 'set');
CREATE TRIGGER event_inserts_are_logged AFTER INSERT ON nudge.events
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('event', 'received');
CREATE TRIGGER rule_inserts_are_logged AFTER INSERT ON nudge.rules
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('rule', 'created');
CREATE TRIGGER rule_updates_are_logged AFTER UPDATE ON nudge.rules
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('rule', 'updated');
CREATE TRIGGER rule_deletes_are_logged AFTER DELETE ON nudge.rules
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('rule', 'deleted');

-- The stream's batches: the one writer is the readers' shared step.
CREATE FUNCTION nudge.stream_advance() RETURNS bigint
LANGUAGE plpgsql
-- As the log's owner: the API's role need not be granted the batches.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_last nudge.change_batches;
  v_now pg_snapshot;
  v_xids xid8[];
BEGIN
  -- One at a time: each batch starts where the committed one before it ended, and they commit
  -- in the order of pos, so a reader that sees a batch sees every one before it.
  PERFORM pg_advisory_xact_lock(hashtext('nudge.stream_advance'));
  SELECT * INTO v_last FROM nudge.change_batches b ORDER BY b.pos DESC LIMIT 1;
  -- One statement: the rows it sees are those of the transactions finished in its snapshot.
  SELECT pg_current_snapshot(),
         ARRAY(SELECT DISTINCT c.xid FROM nudge.changes c
                WHERE c.xid >= pg_snapshot_xmax(v_last.snapshot)
                   OR c.xid = ANY (ARRAY(SELECT pg_snapshot_xip(v_last.snapshot)))
                ORDER BY c.xid)
    INTO v_now, v_xids;
  IF cardinality(v_xids) = 0 THEN
    -- Nothing new: the next batch starts from the same snapshot, and nothing is written.
    RETURN v_last.pos;
  END IF;
  INSERT INTO nudge.change_batches (pos, snapshot, xids) VALUES (v_last.pos + 1, v_now, v_xids);
  RETURN v_last.pos + 1;
END $$;
COMMENT ON FUNCTION nudge.stream_advance() IS
  'Makes the next batch of the stream: the transactions that wrote nudge.changes and finished since the last batch''s snapshot (an unrelated running transaction holds nothing back), numbered after it; one caller at a time; returns the last batch''s position (unchanged when nothing finished).';

-- The stream's one read: the changes of a page, reminders and fires as raw columns (rendered by
-- the API, cheaper than jsonb here: api/stream_render.cpp), flags, events and rules rendered.
-- A position is (pos, id, n): the batch, the row and the object's place in the row. A fire with
-- delivery attempts is one row per attempt, in their order.
CREATE FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer,
                                     p_through_pos bigint, p_limit integer)
RETURNS TABLE(pos bigint, id bigint, n integer, kind text, change text, object_id bigint,
              entity_type text, entity_id text, data jsonb,
              r_id bigint, r_entity_type text, r_entity_id text, r_event_type text,
              r_channel text, r_target text, r_schedule_type text, r_interval_seconds integer,
              r_cron text, r_timezone text, r_misfire_policy text, r_max_attempts integer,
              r_next_run_at timestamptz, r_occurrence_at timestamptz, r_attempt integer,
              r_stop_condition_type text, r_stop_condition_value text, r_max_fires integer,
              r_ends_at timestamptz, r_fire_count integer, r_status text,
              r_completed_reason text, r_last_error text, r_rule_id bigint, r_event_id bigint,
              r_created_at timestamptz, r_updated_at timestamptz, r_finished_at timestamptz,
              r_payload jsonb, r_request jsonb, r_schedule_text text,
              x_scheduled_for timestamptz, x_fired_at timestamptz, x_outcome text,
              x_attempts integer, x_worker text, x_error text, x_attempt jsonb)
-- PL/pgSQL for its cached plan: as SQL, the query was planned on every call (17 ms of a page of
-- 1,000 fires that took 36 ms to run).
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT p.pos, p.id, p.n, p.kind,
         CASE WHEN p.change = 'fired' AND x.outcome = 'failed' AND r.status = 'FAILED'
              THEN 'failed' ELSE p.change END,
         p.object_id, coalesce(r.entity_type, e.entity_type), coalesce(r.entity_id, e.entity_id),
         CASE p.kind
           WHEN 'flag' THEN
             jsonb_build_object('change', p.change,
                                'flag', coalesce(to_jsonb(f), jsonb_build_object('key', p.flag_key)))
           WHEN 'event' THEN
             jsonb_build_object('change', p.change,
                                'event', coalesce(nudge.event_json(e),
                                                  jsonb_build_object('id', p.object_id)),
                                'effects', coalesce(e.effects, '[]'::jsonb))
           WHEN 'rule' THEN
             jsonb_build_object('change', p.change,
                                'rule', coalesce(p.gone, nudge.rule_json(u),
                                                 jsonb_build_object('id', p.object_id)))
         END,
         -- The reminder's columns that its JSON shows (nudge.reminder_json), as they are now.
         r.id, r.entity_type, r.entity_id, r.event_type, r.channel, r.target, r.schedule_type,
         r.interval_seconds, r.cron, r.timezone, r.misfire_policy, r.max_attempts, r.next_run_at,
         r.occurrence_at, r.attempt, r.stop_condition_type, r.stop_condition_value, r.max_fires,
         r.ends_at, r.fire_count, r.status, r.completed_reason, r.last_error, r.rule_id,
         r.event_id, r.created_at, r.updated_at, r.finished_at, r.payload, r.request,
         CASE WHEN r.id IS NOT NULL THEN nudge.describe_reminder(r) END,
         x.scheduled_for, x.fired_at, x.outcome, x.attempts, x.worker, x.error,
         -- attempt_json of no row is {}: none.
         CASE WHEN a.attempt IS NOT NULL THEN nudge.attempt_json(a) END
    FROM (SELECT c.pos, c.id, o.n::integer AS n, c.kind, c.change, o.object_id, o.occurrence,
                 o.flag_key, o.gone
            FROM (SELECT c.*,
                         -- The objects of the rows before it: rows that cannot reach the page are
                         -- not unnested (a fire's row holds up to 1,000).
                         coalesce(sum(coalesce(cardinality(c.object_ids), cardinality(c.flag_keys)))
                                    OVER (ORDER BY c.pos, c.id ROWS BETWEEN UNBOUNDED PRECEDING
                                                                        AND 1 PRECEDING), 0)
                           AS before
                    -- At most p_limit rows, each holding at least one change, from at most
                    -- p_limit batches, each holding at least one row; in a batch by id.
                    FROM (SELECT b.pos, c.*
                            FROM (SELECT b.pos, b.xids FROM nudge.change_batches b
                                   WHERE b.pos >= p_after_pos AND b.pos <= p_through_pos
                                   ORDER BY b.pos LIMIT p_limit) b
                           CROSS JOIN LATERAL (
                             SELECT c.* FROM nudge.changes c
                              WHERE c.xid = ANY (b.xids)
                                AND c.id >= CASE WHEN b.pos = p_after_pos THEN p_after_id ELSE 0 END
                           ) c
                           ORDER BY b.pos, c.id
                           LIMIT p_limit) c) c
           CROSS JOIN LATERAL unnest(c.object_ids, c.occurrences, c.flag_keys, c.gone)
                 WITH ORDINALITY AS o(object_id, occurrence, flag_key, gone, n)
           WHERE c.before < p_limit + p_after_n
             AND (c.pos, c.id, o.n) > (p_after_pos, p_after_id, p_after_n)
           ORDER BY c.pos, c.id, o.n
           LIMIT p_limit) p
    LEFT JOIN nudge.reminders r ON p.kind = 'reminder' AND r.id = p.object_id
    -- Lookups by the executions' and the attempts' keys for each fire, never a scan.
    LEFT JOIN nudge.executions x
           ON p.kind = 'reminder' AND p.change = 'fired'
          AND x.reminder_id = p.object_id AND x.scheduled_for = p.occurrence
    LEFT JOIN nudge.delivery_attempts a
           ON a.reminder_id = x.reminder_id AND a.scheduled_for = x.scheduled_for
    LEFT JOIN nudge.status_flags f ON p.kind = 'flag' AND f.key = p.flag_key
    LEFT JOIN nudge.events e ON p.kind = 'event' AND e.id = p.object_id
    LEFT JOIN nudge.rules u ON p.kind = 'rule' AND u.id = p.object_id
   ORDER BY p.pos, p.id, p.n, a.attempt;
END $$;
COMMENT ON FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer) IS
  'Up to p_limit changes after position (p_after_pos, p_after_id, p_after_n) of the batches up to p_through_pos, in that order, each with its reminder id or object id and entity for filtering: a flag''s, event''s or rule''s data as the stream sends it ({change, flag} | {change, event, effects} | {change, rule}); a reminder''s change (fired as failed when its failure ended the reminder) with the reminder row, its schedule_text, and for a fire its execution row, one result row per delivery attempt (attempt_json) or one without; objects as they are now.';

-- Retention: the log goes the way of the rest of the history.
CREATE OR REPLACE FUNCTION nudge.prune_history(p_keep interval, p_limit integer) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_audit      text := current_setting('nudge.audit', true);
  v_executions integer;
  v_attempts   integer;
  v_reminders  integer;
  v_events     integer;
  v_audited    integer;
  v_changes    integer;
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
  -- The oldest batches first, never the last (the next starts from its snapshot), with the
  -- rows of their transactions.
  WITH batches AS (
    DELETE FROM nudge.change_batches b
     WHERE b.pos = ANY (ARRAY(SELECT x.pos FROM nudge.change_batches x
                               WHERE x.at < now() - p_keep
                                 AND x.pos < (SELECT max(y.pos) FROM nudge.change_batches y)
                               ORDER BY x.pos LIMIT p_limit))
    RETURNING b.pos, b.xids
  ), noted AS (
    UPDATE nudge.changes_pruned s SET pos = l.pos
      FROM (SELECT max(b.pos) AS pos FROM batches b) l WHERE l.pos > s.pos
  ), pruned AS (
    DELETE FROM nudge.changes c
     WHERE c.xid = ANY (ARRAY(SELECT x FROM batches b, unnest(b.xids) x))
    RETURNING 1
  )
  SELECT count(*)::integer INTO v_changes FROM pruned;
  PERFORM set_config('nudge.audit', coalesce(v_audit, ''), true);
  RETURN v_executions + v_attempts + v_reminders + v_events + v_audited + v_changes;
END $$;
COMMENT ON FUNCTION nudge.prune_history(p_keep interval, p_limit integer) IS
  'Deletes up to p_limit each of executions, delivery attempts, finished reminders, events, audit rows (the oldest, without auditing the deletes) and batches of the stream''s change log with their changes (the oldest but never the last, noting the last pruned batch in nudge.changes_pruned) older than p_keep; when several workers call it at once only one does the work; returns how many rows went.';
