-- 0101: no login can stop the history's pruning. nudge.prune_history let only one run at a
-- time by an advisory lock, which any login may take: a role with no grants holding
-- pg_advisory_lock(hashtext('nudge.prune_history')) made every prune return 0, silently, as
-- 0088 found for the stream's turn (explore13a #4). The turn is now the row lock of
-- nudge.changes_pruned, which only roles that may update it can take.

CREATE OR REPLACE FUNCTION nudge.prune_history(p_keep interval, p_limit integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_audit      text := current_setting('nudge.audit', true);
  v_executions integer;
  v_attempts   integer;
  v_reminders  integer;
  v_events     integer;
  v_audited    integer;
  v_changes    integer;
BEGIN
  -- One prune at a time, by a row lock only roles that may change the history can take (an
  -- advisory lock, which any login may hold, let one that held it stop every prune).
  PERFORM 1 FROM nudge.changes_pruned FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
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

COMMENT ON FUNCTION nudge.prune_history(p_keep interval, p_limit integer) IS 'Deletes up to p_limit each of executions, delivery attempts, finished reminders, events, audit rows (the oldest, without auditing the deletes) and batches of the stream''s change log with their changes (the oldest but never the last, noting the last pruned batch in nudge.changes_pruned) older than p_keep; when several workers call it at once only one does the work; returns how many rows went.';

