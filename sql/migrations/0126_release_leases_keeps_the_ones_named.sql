-- 0126: nudge.release_leases keeps the leases named in p_keep when it gives back every one of a
-- worker's (p_ids NULL): a worker that reconnects or stops keeps those of outcomes still to be
-- recorded (0125's session: given back, they were claimed and delivered again at once). The
-- worker restated the NULL branch's filter in its own statement; the rule is the function's.
-- The new trailing parameter has a default, so an older worker's call still resolves.

DROP FUNCTION nudge.release_leases(text, bigint[]);

CREATE FUNCTION nudge.release_leases(p_worker text, p_ids bigint[], p_keep bigint[] DEFAULT NULL::bigint[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_released integer;
BEGIN
  -- A row another transaction holds (an application's, that stopped it) is passed over, not
  -- waited for: its lease expires instead, and a stopping worker is not held up.
  IF p_ids IS NULL THEN
    UPDATE nudge.reminders r
       SET leased_by = NULL, lease_expires_at = NULL, attempt = greatest(r.attempt - 1, 0)
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.status = 'ACTIVE' AND x.next_run_at <= now() AND x.leased_by = p_worker
                       AND x.id <> ALL (coalesce(p_keep, '{}'))
                       FOR UPDATE SKIP LOCKED);
  ELSE
    UPDATE nudge.reminders r
       SET leased_by = NULL, lease_expires_at = NULL, attempt = greatest(r.attempt - 1, 0)
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.id = ANY (p_ids) AND x.leased_by = p_worker
                       AND x.id <> ALL (coalesce(p_keep, '{}'))
                       FOR UPDATE SKIP LOCKED);
  END IF;
  GET DIAGNOSTICS v_released = ROW_COUNT;
  RETURN v_released;
END $$;

COMMENT ON FUNCTION nudge.release_leases(p_worker text, p_ids bigint[], p_keep bigint[]) IS 'Gives back leases p_worker holds without an attempt (the listed ids, or with NULL every due ACTIVE reminder it holds), except those in p_keep, so another worker can take them at once, passing over a row another transaction holds (its lease expires instead); returns how many.';
