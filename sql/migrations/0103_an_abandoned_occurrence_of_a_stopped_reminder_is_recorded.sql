-- 0103: an occurrence whose worker died after its reminder was stopped is recorded, and its
-- lease let go. A claim rescues expired leases of ACTIVE reminders only: a reminder cancelled or
-- completed by its flag while a worker that then died held it kept the dead worker's lease
-- forever, and its occurrence (often delivered: 14 of 20 in explore14b's run) had no execution
-- and no attempt. Claims touch only lease columns and stay HOT updates, so no index may name
-- them: a stop that leaves a lease is noted in a table of its own, and workers read that.

CREATE TABLE nudge.stopped_while_leased (
  reminder_id bigint PRIMARY KEY,
  stopped_at timestamp with time zone NOT NULL DEFAULT now()
);

COMMENT ON TABLE nudge.stopped_while_leased IS 'Reminders stopped (COMPLETED, CANCELLED or FAILED) while a worker held their lease: a worker records the occurrence as abandoned once the lease expires (nudge.finish_abandoned), or drops the row once the lease is gone.';

CREATE FUNCTION nudge.note_stopped_while_leased() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  INSERT INTO nudge.stopped_while_leased (reminder_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.note_stopped_while_leased() IS 'Trigger: a reminder whose status becomes COMPLETED, CANCELLED or FAILED while a lease is set on it is noted in nudge.stopped_while_leased (once); runs as its owner, so whoever may stop a reminder needs no right on that table.';

-- Only statements that set status, and only rows still leased after them (a worker's own finish
-- clears the lease in the same UPDATE).
CREATE TRIGGER a_stop_while_leased_is_noted AFTER UPDATE OF status ON nudge.reminders
  FOR EACH ROW
  WHEN (new.leased_by IS NOT NULL
        AND (new.status)::text = ANY (ARRAY['COMPLETED'::text, 'CANCELLED'::text, 'FAILED'::text]))
  EXECUTE FUNCTION nudge.note_stopped_while_leased();

-- Those already stopped under a lease.
INSERT INTO nudge.stopped_while_leased (reminder_id)
SELECT id FROM nudge.reminders
 WHERE leased_by IS NOT NULL AND status IN ('COMPLETED', 'CANCELLED', 'FAILED');

CREATE FUNCTION nudge.finish_abandoned(p_worker text, p_policy nudge.worker_policy) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_ids      bigint[];
  v_at       timestamptz[];
  v_attempts integer[];
  v_count    integer;
BEGIN
  -- Leases a live worker finished (or rows pruned since) need nothing more.
  DELETE FROM nudge.stopped_while_leased s
   WHERE NOT EXISTS (SELECT 1 FROM nudge.reminders r
                      WHERE r.id = s.reminder_id AND r.leased_by IS NOT NULL);
  -- An expired lease on a stopped reminder: its worker is gone (a live one extends it). Taken
  -- as the claim takes an exhausted occurrence, and recorded the same way.
  WITH taken AS (
    UPDATE nudge.reminders r SET leased_by = p_worker, lease_expires_at = now()
      FROM (SELECT x.id FROM nudge.reminders x
             WHERE x.id IN (SELECT s.reminder_id FROM nudge.stopped_while_leased s)
               AND x.lease_expires_at <= now()
               AND x.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
             ORDER BY x.id
               FOR UPDATE SKIP LOCKED) e
     WHERE r.id = e.id
    RETURNING r.id, coalesce(r.occurrence_at, r.next_run_at) AS occurrence, r.attempt)
  SELECT array_agg(id ORDER BY id), array_agg(occurrence ORDER BY id),
         array_agg(attempt ORDER BY id), count(*)
    INTO v_ids, v_at, v_attempts, v_count FROM taken;
  IF v_count = 0 THEN
    RETURN 0;
  END IF;
  PERFORM nudge.finish_attempts(
    p_worker, p_policy, v_ids, v_at, v_attempts, array_fill('failed'::text, ARRAY[v_count]),
    array_fill('abandoned: the worker delivering it stopped before recording the outcome, and '
               'the reminder was stopped meanwhile; it may have been delivered'::text,
               ARRAY[v_count]),
    array_fill(NULL::integer, ARRAY[v_count]), array_fill(NULL::text, ARRAY[v_count]),
    array_fill(NULL::integer, ARRAY[v_count]));
  DELETE FROM nudge.stopped_while_leased WHERE reminder_id = ANY (v_ids);
  RETURN v_count;
END $$;

COMMENT ON FUNCTION nudge.finish_abandoned(p_worker text, p_policy nudge.worker_policy) IS 'Records, once, the occurrence of each reminder stopped while leased whose lease has expired (its worker died) as a failed attempt and execution saying it was abandoned and may have been delivered, and lets the lease go; forgets the stopped reminders whose lease a worker finished. Returns how many occurrences it recorded.';
