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
-- 2. Order without gaps: ids come from a sequence and are not commit order (id 101 can commit
--    before id 100). Each row carries its transaction's id (xid8); a reader takes only rows
--    whose transaction is below its snapshot's xmin, i.e. finished, so nothing can later
--    appear behind what it has read, and pages by (xid, id, n), n an object's place in its row.
-- 3. Retention: nudge.prune_history also prunes the log (oldest first), and remembers the
--    last position it pruned (nudge.changes_pruned), so that a client resuming from before it
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
-- Append-mostly and read from its end: no fill factor, no vacuum of dead tuples to speak of.
CREATE INDEX changes_in_stream_order ON nudge.changes (xid, id);
COMMENT ON TABLE nudge.changes IS
  'What happened, in commit order by (xid, id) and then the order of the arrays, for the live stream: written by triggers, one row per statement; the objects are read when a change is rendered; pruned after [history] retention_days.';

CREATE TABLE nudge.changes_pruned (
  only_row boolean PRIMARY KEY DEFAULT true CONSTRAINT changes_pruned_has_one_row CHECK (only_row),
  xid xid8 NOT NULL,
  id bigint NOT NULL
);
INSERT INTO nudge.changes_pruned (xid, id) VALUES ('0', 0);
COMMENT ON TABLE nudge.changes_pruned IS
  'The last stream position (xid, id) pruned from nudge.changes: a client resuming from before it has missed changes that are gone.';

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

-- The stream's one read: finished changes after a position, rendered as the REST answers are.
-- A position is (xid, id, n): the row's transaction and id, and the object's place in the row.
CREATE FUNCTION nudge.stream_changes(p_after_xid xid8, p_after_id bigint, p_after_n integer,
                                     p_limit integer)
RETURNS TABLE(xid xid8, id bigint, n integer, kind text, reminder_id bigint, entity_type text,
              entity_id text, data jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.xid, p.id, p.n, p.kind, r.id, coalesce(r.entity_type, e.entity_type),
         coalesce(r.entity_id, e.entity_id),
         CASE p.kind
           WHEN 'reminder' THEN
             jsonb_build_object('change', CASE WHEN p.change = 'fired' AND x.outcome = 'failed'
                                                    AND r.status = 'FAILED'
                                               THEN 'failed' ELSE p.change END,
                                'reminder', coalesce(nudge.reminder_json(r),
                                                     jsonb_build_object('id', p.object_id)))
             || CASE WHEN x.json IS NOT NULL THEN jsonb_build_object('execution', x.json)
                     ELSE '{}'::jsonb END
           WHEN 'flag' THEN
             jsonb_build_object('change', p.change,
                                'flag', coalesce(to_jsonb(f), jsonb_build_object('key', p.flag_key)))
           WHEN 'event' THEN
             jsonb_build_object('change', p.change,
                                'event', coalesce(nudge.event_json(e),
                                                  jsonb_build_object('id', p.object_id)),
                                'effects', coalesce(e.effects, '[]'::jsonb))
           ELSE
             jsonb_build_object('change', p.change,
                                'rule', coalesce(p.gone, nudge.rule_json(u),
                                                 jsonb_build_object('id', p.object_id)))
         END
    FROM (SELECT c.xid, c.id, o.n::integer AS n, c.kind, c.change, o.object_id, o.occurrence,
                 o.flag_key, o.gone
            -- At most p_limit rows, in index order: each holds at least one change.
            FROM (SELECT * FROM nudge.changes c
                   WHERE (c.xid, c.id) >= (p_after_xid, p_after_id)
                     -- Only finished transactions: nothing can commit behind what is read.
                     AND c.xid < pg_snapshot_xmin(pg_current_snapshot())
                   ORDER BY c.xid, c.id
                   LIMIT p_limit) c
           CROSS JOIN LATERAL unnest(c.object_ids, c.occurrences, c.flag_keys, c.gone)
                 WITH ORDINALITY AS o(object_id, occurrence, flag_key, gone, n)
           WHERE (c.xid, c.id, o.n) > (p_after_xid, p_after_id, p_after_n)
           ORDER BY c.xid, c.id, o.n
           LIMIT p_limit) p
    LEFT JOIN nudge.reminders r ON p.kind = 'reminder' AND r.id = p.object_id
    -- A lookup by the executions' key for each fire, never a scan of the history.
    LEFT JOIN LATERAL (SELECT x.outcome, nudge.execution_json(x) AS json
                         FROM nudge.executions x
                        WHERE p.kind = 'reminder' AND p.change = 'fired'
                          AND x.reminder_id = p.object_id AND x.scheduled_for = p.occurrence) x
           ON true
    LEFT JOIN nudge.status_flags f ON p.kind = 'flag' AND f.key = p.flag_key
    LEFT JOIN nudge.events e ON p.kind = 'event' AND e.id = p.object_id
    LEFT JOIN nudge.rules u ON p.kind = 'rule' AND u.id = p.object_id
   ORDER BY p.xid, p.id, p.n
$$;
COMMENT ON FUNCTION nudge.stream_changes(p_after_xid xid8, p_after_id bigint, p_after_n integer, p_limit integer) IS
  'Up to p_limit changes after position (p_after_xid, p_after_id, p_after_n) in that order, only of transactions finished before this statement''s snapshot (so none can later commit behind them), each with its reminder id and entity for filtering and its data as the stream sends it ({change, reminder[, execution]} | {change, flag} | {change, event, effects} | {change, rule}), objects as they are now.';

CREATE FUNCTION nudge.stream_end(p_after_xid xid8, p_after_id bigint)
RETURNS TABLE(xid xid8, id bigint, n integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.xid, c.id, coalesce(cardinality(c.object_ids), cardinality(c.flag_keys))
    FROM nudge.changes c
   WHERE (c.xid, c.id) > (p_after_xid, p_after_id)
     AND c.xid < pg_snapshot_xmin(pg_current_snapshot())
   ORDER BY c.xid DESC, c.id DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION nudge.stream_end(p_after_xid xid8, p_after_id bigint) IS
  'The position of the last change in a row after (p_after_xid, p_after_id) whose transaction finished before this statement''s snapshot; no row when there is none: a reader with no client to render for moves there without reading the changes.';

CREATE FUNCTION nudge.stream_start() RETURNS TABLE(xid xid8, id bigint, n integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_snapshot_xmin(pg_current_snapshot()), 0::bigint, 0
$$;
COMMENT ON FUNCTION nudge.stream_start() IS
  'A position before every change of a transaction not finished at this statement''s snapshot and after every other: where a reader starting now begins.';

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
  -- The oldest first, from the index: reads at most p_limit rows however young the log is.
  WITH pruned AS (
    DELETE FROM nudge.changes c
     WHERE c.ctid = ANY (ARRAY(SELECT o.ctid
                                 FROM (SELECT x.ctid, x.at FROM nudge.changes x
                                        ORDER BY x.xid, x.id LIMIT p_limit) o
                                WHERE o.at < now() - p_keep))
    RETURNING c.xid, c.id
  ), last AS (
    SELECT p.xid, p.id FROM pruned p ORDER BY p.xid DESC, p.id DESC LIMIT 1
  ), noted AS (
    UPDATE nudge.changes_pruned s SET xid = l.xid, id = l.id
      FROM last l WHERE (l.xid, l.id) > (s.xid, s.id)
  )
  SELECT count(*)::integer INTO v_changes FROM pruned;
  PERFORM set_config('nudge.audit', coalesce(v_audit, ''), true);
  RETURN v_executions + v_attempts + v_reminders + v_events + v_audited + v_changes;
END $$;
COMMENT ON FUNCTION nudge.prune_history(p_keep interval, p_limit integer) IS
  'Deletes up to p_limit each of executions, delivery attempts, finished reminders, events, audit rows (the oldest, without auditing the deletes) and rows of the stream''s change log (the oldest, noting the last pruned position in nudge.changes_pruned) older than p_keep; when several workers call it at once only one does the work; returns how many rows went.';
