-- 0010: what the metrics of a worker (GET /metrics, issue 17) need from the database.
--
-- 1. A claim says which of the fires it returns it took over from an expired lease: a worker
--    that died or stalled held them (nudge_worker_leases_rescued_total). The claim already reads
--    each row it takes; it now also notes the ids of those whose lease was still set, and the
--    returned fire carries `rescued`. Its plan and its round trip stay as they were.
-- 2. nudge.gauges: the database's state as gauges, read once per scrape by each worker with a
--    metrics listener: the due backlog and the age of its oldest reminder, from the due index,
--    counted up to a cap so that a scrape stays cheap whatever the backlog. A gauge added to
--    this function later (the circuit breakers' states, for one) appears in every worker's
--    /metrics without a change to the worker.
--
-- Additive only: claimed_fire gains a last attribute, which older workers do not select.

ALTER TYPE nudge.claimed_fire ADD ATTRIBUTE rescued boolean;
COMMENT ON TYPE nudge.claimed_fire IS
  'One claimed attempt as a worker delivers it: the reminder, its address (target, else contacts), the occurrence, the attempt number, the attempts it gets, for a reminder with its own request that request rendered for this attempt, and whether the claim took it over from an expired lease (rescued).';

CREATE OR REPLACE FUNCTION nudge.claim_due(p_worker text, p_limit integer,
                                           p_policy nudge.worker_policy)
RETURNS SETOF nudge.claimed_fire
-- Revisiting a batch by ctid must be a TID lookup, never a scan (see nudge.finish_attempts).
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  -- Rows are found once through the due index and then revisited by ctid, which cannot change
  -- while this transaction holds their row locks.
  v_take      tid[];
  v_stop      tid[];
  v_exhausted tid[];
  v_missed    tid[];
  v_rescued   bigint[];  -- ids taken over from a lease that expired
  v_ids       bigint[];
  v_at        timestamptz[];
  v_attempts  integer[];
  v_count     integer;
BEGIN
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted AND NOT d.missed),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.missed AND NOT d.exhausted AND NOT d.stop_now),
         array_agg(d.row_id) FILTER (WHERE d.held AND NOT d.stop_now AND NOT d.exhausted
                                     AND NOT d.missed)
    INTO v_take, v_stop, v_exhausted, v_missed, v_rescued
    FROM (SELECT r.ctid AS row_ctid, r.id AS row_id,
                 -- Only an expired lease can still be set on a due row this claim may take.
                 r.leased_by IS NOT NULL AS held,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM nudge.status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt >= coalesce(r.max_attempts, p_policy.max_attempts) AS exhausted,
                 r.misfire_policy = 'skip' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.next_run_at < now() - p_policy.misfire_threshold_seconds * interval '1 second'
                   AS missed
            FROM nudge.reminders r
           WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
             AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
           ORDER BY r.next_run_at
           LIMIT p_limit
             FOR UPDATE OF r SKIP LOCKED) d;

  -- A flag can turn true in a transaction the stop trigger could not see (a reminder created
  -- concurrently); catching it here keeps "a true flag stops it" without exception.
  IF v_stop IS NOT NULL THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(),
           updated_at = now(), attempt = 0, occurrence_at = NULL, leased_by = NULL,
           lease_expires_at = NULL
     WHERE ctid = ANY (v_stop);
  END IF;

  -- Workers that claimed this occurrence as often as it may be attempted all died or timed
  -- out: record it as failed instead of letting it crash workers forever.
  IF v_exhausted IS NOT NULL THEN
    WITH taken AS (
      UPDATE nudge.reminders r SET leased_by = p_worker, lease_expires_at = now()
       WHERE ctid = ANY (v_exhausted)
      RETURNING r.id, coalesce(r.occurrence_at, r.next_run_at) AS occurrence, r.attempt)
    SELECT array_agg(id), array_agg(occurrence), array_agg(attempt), count(*)
      INTO v_ids, v_at, v_attempts, v_count FROM taken;
    PERFORM nudge.finish_attempts(
      p_worker, p_policy, v_ids, v_at, v_attempts, array_fill('failed'::text, ARRAY[v_count]),
      array_fill('abandoned: claimed by workers that never finished it'::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]), array_fill(NULL::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]));
  END IF;

  -- Missed under misfire_policy skip: no catch-up fire; the next future occurrence instead.
  IF v_missed IS NOT NULL THEN
    -- Sub-statements share one snapshot: `missed` sees each row (locked by this claim) before
    -- `skipped` moves it.
    WITH missed AS (
      SELECT r.id, r.next_run_at, nudge.occurrence_after(r, now()) AS next_at
        FROM nudge.reminders r WHERE r.ctid = ANY (v_missed)
    ), skipped AS (
      UPDATE nudge.reminders r
         SET next_run_at = m.next_at,
             status = CASE WHEN r.ends_at < m.next_at THEN 'COMPLETED' ELSE r.status END,
             completed_reason = CASE WHEN r.ends_at < m.next_at THEN 'ends_at' END,
             finished_at = CASE WHEN r.ends_at < m.next_at THEN now() END,
             catch_up_fires = 0, updated_at = now()
        FROM missed m
       WHERE r.id = m.id
      RETURNING r.id)
    INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
    SELECT m.id, m.next_run_at, 1, 'skipped',
           format('missed by more than %s s (misfire_policy skip)', p_policy.misfire_threshold_seconds),
           p_worker
      FROM missed m JOIN skipped s ON s.id = m.id
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING;
  END IF;

  IF v_take IS NOT NULL THEN
    RETURN QUERY
      UPDATE nudge.reminders r
         SET leased_by = p_worker,
             lease_expires_at = now() + p_policy.lease_seconds * interval '1 second',
             attempt = r.attempt + 1
       WHERE r.ctid = ANY (v_take)
      RETURNING r.id, r.entity_type, r.entity_id, r.event_type, r.channel,
                coalesce(r.target,
                         CASE WHEN r.channel <> 'log' THEN
                           (SELECT c.address FROM nudge.contacts c
                             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
                               AND c.channel = r.channel) END),
                r.payload, r.schedule_type, coalesce(r.occurrence_at, r.next_run_at),
                r.attempt, coalesce(r.max_attempts, p_policy.max_attempts), r.fire_count,
                CASE WHEN r.request IS NOT NULL
                     THEN nudge.rendered_request(r, coalesce(r.occurrence_at, r.next_run_at),
                                                 r.attempt) END,
                coalesce(r.id = ANY (v_rescued), false);
  END IF;
END $$;
COMMENT ON FUNCTION nudge.claim_due(text, integer, nudge.worker_policy) IS
  'Leases up to p_limit due ACTIVE reminders, earliest first, to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts were all used by workers that never finished them (recorded as failed), nor one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt; the reminder moves to its next future occurrence).';

-- One row per sample, Prometheus-named, so that the workers render whatever this answers. The
-- backlog is the claim's own condition (due, ACTIVE, no live lease), read through
-- reminders_due_in_order and cut at p_count_cap: a plain index scan reads at most that many
-- entries, where a bitmap scan would read the whole due range first and a sequential scan the
-- whole table (the planner picks one of those for a large cap).
CREATE FUNCTION nudge.gauges(p_count_cap integer)
RETURNS TABLE(name text, help text, label_name text, label_value text, value double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
  SELECT 'nudge_due_reminders',
         format('Due ACTIVE reminders no worker holds, counted up to %s.', greatest(p_count_cap, 1)),
         NULL, NULL,
         (SELECT count(*) FROM (
            SELECT 1 FROM nudge.reminders r
             WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
               AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
             LIMIT greatest(p_count_cap, 1)) w)::double precision
  UNION ALL
  SELECT 'nudge_oldest_due_seconds',
         'How long the earliest due reminder no worker holds has been due, in seconds (0: none).',
         NULL, NULL,
         coalesce(extract(epoch FROM now() - (
           SELECT r.next_run_at FROM nudge.reminders r
            WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
              AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
            ORDER BY r.next_run_at LIMIT 1)), 0)::double precision
$$;
COMMENT ON FUNCTION nudge.gauges(integer) IS
  'The database''s gauges for the workers'' GET /metrics, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap) and nudge_oldest_due_seconds (how long the earliest of them has been due; 0 when none is); reads at most p_count_cap + 1 entries of the due index.';
