-- 0106: a rejected attempt is decided on its outcome, not on a reminder row rebuilt as if its
-- attempts had run out (0105): passing the CASE of two rows into nudge.after_attempt, which reads
-- the row a dozen times, cost the drain (A/B ab85: 1 worker 0.83 of before). 'rejected' is never
-- retried (nudge.attempt_is_retried retries 'failed' only) and ends a one_time reminder as a
-- failure does (attempts_exhausted). Same behaviour as 0105.

CREATE OR REPLACE FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
                   OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN NULL
              WHEN r.schedule_type = 'one_time' AND p_outcome IN ('failed', 'rejected')
                THEN 'attempts_exhausted'
              WHEN r.schedule_type = 'one_time' THEN 'fired'
              WHEN r.fire_count + 1 >= r.max_fires THEN 'max_fires'
              -- The calendar ends with 9999 (RFC 3339 has four-digit years): a schedule whose
              -- next occurrence falls later has run its course, as one past ends_at has (Quartz
              -- completes a trigger with no fire time left the same way). Only a fire within
              -- 400 years of it (the calendar's cycle, cron_next's furthest search) can have its
              -- next one after it: the drain computes no extra occurrence for any other.
              WHEN (r.ends_at IS NOT NULL
                    OR coalesce(r.occurrence_at, r.next_run_at) > timestamptz '9599-12-01 00:00:00+00')
                   AND nudge.next_run_after_attempt(r, p_outcome, p_policy, p_now)
                       > least(r.ends_at, nudge.latest_fire())
                THEN 'ends_at'
         END
$$;

COMMENT ON FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'Why a live reminder ends once an attempt ended with p_outcome at p_now (attempts_exhausted: a one_time whose last attempt failed, or was rejected; fired: a one_time; max_fires; ends_at: its next run is after ends_at or after 9999-12-31T23:59:59Z), or NULL when it goes on (a retry, a later occurrence) or is not live.';

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
  v_failed   boolean[];  -- and whether the host failed to answer it
BEGIN
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
         array_agg(m.host_failed) FILTER (WHERE m.host IS NOT NULL)
    INTO v_recorded, v_hosts, v_host_ids, v_failed
    FROM moved m;
  IF v_hosts IS NOT NULL THEN
    PERFORM nudge.record_host_outcomes(p_worker, p_policy, v_hosts, v_host_ids, v_failed);
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

COMMENT ON FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[]) IS 'Records each ended attempt (outcome delivered, failed, or rejected: failed with no attempt after it) whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), moves its reminder on as nudge.after_attempt decides, recording an ended occurrence exactly once in executions, and counts each webhook attempt with a duration against its host''s circuit breaker (nudge.record_host_outcomes, unless the policy''s breaker_failures is 0); an occurrence still retrying after an attempt whose p_retry_after_seconds is over 0 (a receiver''s Retry-After) waits at least that long, up to the policy''s retry_max_ms; an attempt whose lease was lost changes nothing. Returns how many attempts it recorded.';
