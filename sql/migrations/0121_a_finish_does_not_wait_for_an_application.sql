-- 0121 (HIGH, explore19a #1): an application's open transaction that stopped a reminder under
-- delivery (a flag, a cancel) holds its row until it ends, and the worker's finish waited for it:
-- finish and claim are one transaction, so the whole claim loop stopped (58 s without a delivery
-- while the application sat idle in transaction, and 6 of 12 deliveries answered in 3 s were
-- recorded as failed timeouts). A finish now waits at most 10 ms for a reminder row (55P03 after
-- that; the worker records the others one by one and that one later, claiming meanwhile), and the
-- lease heartbeat and the giving back of leases pass over such rows. Same signatures: an older
-- worker gets the 55P03 and retries the whole finish until the row is free (it waited before).

CREATE OR REPLACE FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[] DEFAULT NULL::integer[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  v_recorded integer;
  v_hosts    text[];     -- per webhook attempt: its host,
  v_host_ids bigint[];   -- its reminder,
  v_failed   boolean[];  -- whether the host failed to answer it,
  v_host_errors text[];  -- and the attempt's error
  v_lock_timeout text := current_setting('lock_timeout');
BEGIN
  -- Another transaction holding one of these rows (an application's open transaction that
  -- stopped or changed a reminder under delivery) would hold this finish, and with it every
  -- claim of its worker's loop, until it ends: after a moment the finish is refused instead
  -- (55P03), and the worker records the others without it and this one later.
  PERFORM set_config('lock_timeout', '10ms', true);
  WITH moved AS (
    -- The lease token is in the WHERE clause, so a concurrent change (pause, cancel, a stop
    -- flag) is waited for and every decision is made on the row as it is then.
    UPDATE nudge.reminders r
       SET (occurrence_at, next_run_at, status, completed_reason, finished_at, fire_count,
            catch_up_fires, attempt)
         -- Decided on the outcome as reported: 'rejected' is never retried.
         = ROW((nudge.after_attempt(r, i.reported, p_policy, now())).*),
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      -- In id order, as bulk changes and lease extensions lock reminders: in the order the
      -- attempts ended, a finish and a bulk pause or cancel of the same rows could deadlock.
      -- 'rejected' is recorded as 'failed'.
      FROM (SELECT u.id, u.scheduled_for, u.attempt, u.outcome AS reported,
                   CASE WHEN u.outcome = 'rejected' THEN 'failed' ELSE u.outcome END AS outcome,
                   u.error, u.status_code, u.response, u.duration_ms
              FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors,
                          p_status_codes, p_responses, p_durations_ms)
                     AS u(id, scheduled_for, attempt, outcome, error, status_code, response,
                          duration_ms)
             ORDER BY u.id) AS i
     WHERE r.id = i.id AND r.leased_by = p_worker AND r.attempt = i.attempt
       AND coalesce(r.occurrence_at, r.next_run_at) = i.scheduled_for
    RETURNING r.id, i.scheduled_for, i.attempt, i.outcome, left(i.error, 2000) AS error,
              i.status_code, left(i.response, 1024) AS response, i.duration_ms,
              r.occurrence_at IS NULL AS ended, r.channel,
              -- The request as the claim rendered it for this attempt (the row's attempt
              -- counter may have moved on: the attempt's own number is used).
              CASE WHEN r.request IS NOT NULL
                   THEN nudge.rendered_request(r, i.scheduled_for, i.attempt) END AS request,
              CASE WHEN r.channel = 'webhook' AND i.duration_ms IS NOT NULL
                        AND p_policy.breaker_failures > 0
                   THEN coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) END AS host,
              -- The host did not answer, or answered that it cannot serve now: no response,
              -- 5xx, 408 or 429. Any other answer, a 404 included, shows the host is up.
              i.outcome = 'failed'
                AND (i.status_code IS NULL OR i.status_code >= 500 OR i.status_code IN (408, 429))
                AS host_failed
  ), attempts AS (
    INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, status_code,
                                         error, response, duration_ms, worker, request)
    SELECT m.id, m.scheduled_for, m.attempt, m.outcome, m.status_code, m.error, m.response,
           greatest(m.duration_ms, 0), p_worker,
           CASE WHEN m.request ? 'body'
                THEN m.request || jsonb_build_object('body', left(m.request->>'body', 1024))
                ELSE m.request END
      FROM moved m
     -- A log line written is the whole story of its delivery, already told by executions;
     -- skipping its attempt row keeps the log channel's drain fast (-20% with it).
     WHERE NOT (m.channel = 'log' AND m.outcome = 'delivered')
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING
  ), recorded AS (
    INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker, error)
    SELECT m.id, m.scheduled_for, m.outcome, m.attempt, p_worker, m.error FROM moved m WHERE m.ended
    ON CONFLICT ON CONSTRAINT one_execution_per_occurrence DO NOTHING
  )
  SELECT count(*)::integer, array_agg(m.host) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.id) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.host_failed) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.error) FILTER (WHERE m.host IS NOT NULL)
    INTO v_recorded, v_hosts, v_host_ids, v_failed, v_host_errors
    FROM moved m;
  PERFORM set_config('lock_timeout', v_lock_timeout, true);
  IF v_hosts IS NOT NULL THEN
    PERFORM nudge.record_host_outcomes(p_worker, p_policy, v_hosts, v_host_ids, v_failed,
                                        v_host_errors);
  END IF;
  -- A receiver that answered 429 or 503 with Retry-After is not asked again sooner (up to the
  -- policy's longest retry delay): an occurrence still retrying waits at least that long.
  IF p_retry_after_seconds IS NOT NULL THEN
    UPDATE nudge.reminders r
       SET next_run_at = greatest(r.next_run_at,
                                  now() + least(w.seconds::bigint * 1000, p_policy.retry_max_ms)
                                          * interval '1 millisecond')
      FROM unnest(p_ids, p_scheduled_for, p_attempts, p_retry_after_seconds)
             AS w(id, scheduled_for, attempt, seconds)
     WHERE w.seconds > 0 AND r.id = w.id AND r.occurrence_at = w.scheduled_for
       AND r.attempt = w.attempt AND r.leased_by IS NULL AND r.status IN ('ACTIVE', 'PAUSED');
  END IF;
  RETURN v_recorded;
END $$;

COMMENT ON FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[]) IS 'Records each ended attempt (outcome delivered, failed, or rejected: failed with no attempt after it) whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), moves its reminder on as nudge.after_attempt decides, recording an ended occurrence exactly once in executions, and counts each webhook attempt with a duration against its host''s circuit breaker with its error (nudge.record_host_outcomes, unless the policy''s breaker_failures is 0); an occurrence still retrying after an attempt whose p_retry_after_seconds is over 0 (a receiver''s Retry-After) waits at least that long, up to the policy''s retry_max_ms; an attempt whose lease was lost changes nothing; a reminder row another transaction holds for more than 10 ms refuses the whole finish with 55P03 (lock_timeout), nothing recorded, rather than wait for it. Returns how many attempts it recorded.';

CREATE OR REPLACE FUNCTION nudge.extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_extended integer;
  v_host     text;
  v_held     timestamptz;  -- what the breaker's held deliveries wait for,
  v_next     timestamptz;  -- and the new time
BEGIN
  -- A row another transaction holds (an application's, that stopped it) is passed over, not
  -- waited for: this heartbeat also keeps the worker's other leases.
  UPDATE nudge.reminders r SET lease_expires_at = now() + p_lease_seconds * interval '1 second'
   WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                   WHERE x.id = ANY (p_ids) AND x.leased_by = p_worker
                     FOR UPDATE SKIP LOCKED);
  GET DIAGNOSTICS v_extended = ROW_COUNT;
  -- Locked in host order, as a finish locks them before it moves held deliveries.
  FOR v_host, v_held IN
    SELECT h.host, h.next_probe_at FROM nudge.target_hosts h
     WHERE h.state = 'probing' AND h.probe_worker = p_worker AND h.probe_reminder_id = ANY (p_ids)
     ORDER BY h.host
       FOR UPDATE
  LOOP
    v_next := now() + p_lease_seconds * interval '1 second';
    UPDATE nudge.target_hosts SET next_probe_at = v_next, updated_at = now() WHERE host = v_host;
    UPDATE nudge.reminders r
       SET next_run_at = v_next, updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_host;
  END LOOP;
  RETURN v_extended;
END $$;

COMMENT ON FUNCTION nudge.extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer) IS 'Pushes the lease expiry of the listed reminders p_worker still holds, and of the circuit breaker probes among them (with the deliveries each such breaker holds, which wait for its next probe), to p_lease_seconds from now (a heartbeat for long deliveries), passing over a reminder row another transaction holds; returns how many reminder leases it extended.';

CREATE OR REPLACE FUNCTION nudge.release_leases(p_worker text, p_ids bigint[]) RETURNS integer
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
                       FOR UPDATE SKIP LOCKED);
  ELSE
    UPDATE nudge.reminders r
       SET leased_by = NULL, lease_expires_at = NULL, attempt = greatest(r.attempt - 1, 0)
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.id = ANY (p_ids) AND x.leased_by = p_worker
                       FOR UPDATE SKIP LOCKED);
  END IF;
  GET DIAGNOSTICS v_released = ROW_COUNT;
  RETURN v_released;
END $$;

COMMENT ON FUNCTION nudge.release_leases(p_worker text, p_ids bigint[]) IS 'Gives back leases p_worker holds without an attempt (the listed ids, or with NULL every due ACTIVE reminder it holds) so another worker can take them at once, passing over a row another transaction holds (its lease expires instead); returns how many.';
