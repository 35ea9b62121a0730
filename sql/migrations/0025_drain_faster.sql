-- 0025: a fire costs the drain's backend less (issue 17: within 5% of b3f27eb).
--
-- Where the finish and the claim spent it (perf on the backend of a log drain): the finish's
-- UPDATE asked nudge.after_attempt for the new columns through a sub-SELECT, which PostgreSQL
-- runs as a SubPlan for every row, handing it the whole row (formed for each row, then read
-- field by field); and every row either UPDATE wrote was first locked again (heap_lock_tuple,
-- one more WAL record) because nudge.reminders had BEFORE UPDATE row triggers: PostgreSQL
-- locks the row for any such trigger before it looks at the trigger's column list or WHEN.
--
-- Measured: instructions per fire of the claim and finish rounds (callgrind, one backend in
-- single-user mode, rounds of 1,000 log reminders, 5 vs 20 rounds so start-up cancels out) 217k
-- before, 188k after (-13.5%); in perf of a worker's backend during a 100,000 log drain the
-- SubPlan (6.3% of the samples), the BEFORE trigger path with its lock (3.0%) and the whole-row
-- reads (2.8%) are gone. CPU per fire on this loaded machine (load 5-11 on 2 cores) swung more
-- than that: backend 30.9 vs 29.0 us, medians of 10 alternating drains.

-- 1. nudge.after_attempt returns one composite value from SQL functions PostgreSQL inlines
--    into the UPDATE: each column becomes a plain expression over the row's own columns (no
--    SubPlan, no whole row). Each decision is one small function; the decisions are those of
--    0013's body, which the SQL tests pin (retries, catch-up, misfires, ends).
CREATE TYPE nudge.attempt_result AS (
  occurrence_at timestamptz, next_run_at timestamptz, status text, completed_reason text,
  finished_at timestamptz, fire_count integer, catch_up_fires integer, attempt integer);
COMMENT ON TYPE nudge.attempt_result IS
  'The columns of a reminder that nudge.after_attempt decides when an attempt ends.';

CREATE FUNCTION nudge.attempt_is_retried(r nudge.reminders, p_outcome text,
                                         p_policy nudge.worker_policy)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT p_outcome = 'failed' AND r.status IN ('ACTIVE', 'PAUSED')
         AND r.attempt < coalesce(r.max_attempts, p_policy.max_attempts)
$$;
COMMENT ON FUNCTION nudge.attempt_is_retried(nudge.reminders, text, nudge.worker_policy) IS
  'Whether an attempt of a live reminder that ended with p_outcome is tried again: it failed and attempts of its occurrence are left (the reminder''s max_attempts, else the policy''s).';

CREATE FUNCTION nudge.attempt_catches_up(r nudge.reminders, p_outcome text,
                                         p_policy nudge.worker_policy, p_now timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT NOT nudge.attempt_is_retried(r, p_outcome, p_policy)
         AND r.misfire_policy = 'fire_all' AND r.catch_up_fires + 1 < p_policy.fire_all_cap
         AND nudge.occurrence_after(r, coalesce(r.occurrence_at, r.next_run_at)) <= p_now
$$;
COMMENT ON FUNCTION nudge.attempt_catches_up(nudge.reminders, text, nudge.worker_policy, timestamptz) IS
  'Whether a fire_all reminder whose occurrence ended takes the next occurrence even though it is not ahead of p_now (a missed one), while its catch-up is under the policy''s fire_all_cap.';

CREATE FUNCTION nudge.next_run_after_attempt(r nudge.reminders, p_outcome text,
                                             p_policy nudge.worker_policy, p_now timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
              THEN p_now + nudge.retry_delay(r.attempt, p_policy.retry_base_ms,
                                             p_policy.retry_max_ms,
                                             nudge.jitter(r.id, r.attempt, p_now))
              WHEN r.schedule_type = 'one_time' THEN coalesce(r.occurrence_at, r.next_run_at)
              WHEN nudge.attempt_catches_up(r, p_outcome, p_policy, p_now)
                THEN nudge.occurrence_after(r, coalesce(r.occurrence_at, r.next_run_at))
              ELSE nudge.occurrence_after(r, greatest(p_now, coalesce(r.occurrence_at, r.next_run_at)))
         END
$$;
COMMENT ON FUNCTION nudge.next_run_after_attempt(nudge.reminders, text, nudge.worker_policy, timestamptz) IS
  'A reminder''s next_run_at once an attempt ended with p_outcome at p_now: a retry after a jittered backoff; a one_time reminder''s own occurrence; a catching-up fire_all reminder''s next occurrence; else the first occurrence after both p_now and the one that ended (missed ones collapse into this fire).';

CREATE FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text,
                                        p_policy nudge.worker_policy, p_now timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
                   OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN NULL
              WHEN r.schedule_type = 'one_time' AND p_outcome = 'failed' THEN 'attempts_exhausted'
              WHEN r.schedule_type = 'one_time' THEN 'fired'
              WHEN r.fire_count + 1 >= r.max_fires THEN 'max_fires'
              WHEN r.ends_at IS NOT NULL
                   AND nudge.next_run_after_attempt(r, p_outcome, p_policy, p_now) > r.ends_at
                THEN 'ends_at'
         END
$$;
COMMENT ON FUNCTION nudge.end_after_attempt(nudge.reminders, text, nudge.worker_policy, timestamptz) IS
  'Why a live reminder ends once an attempt ended with p_outcome at p_now (attempts_exhausted: a one_time whose last attempt failed; fired: a one_time; max_fires; ends_at: its next run is after ends_at), or NULL when it goes on (a retry, a later occurrence) or is not live.';

CREATE FUNCTION nudge.status_after_attempt(r nudge.reminders, p_outcome text,
                                           p_policy nudge.worker_policy, p_now timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN nudge.end_after_attempt(r, p_outcome, p_policy, p_now) = 'attempts_exhausted'
                THEN 'FAILED'
              WHEN nudge.end_after_attempt(r, p_outcome, p_policy, p_now) IS NOT NULL THEN 'COMPLETED'
              ELSE r.status END
$$;
COMMENT ON FUNCTION nudge.status_after_attempt(nudge.reminders, text, nudge.worker_policy, timestamptz) IS
  'A reminder''s status once an attempt ended with p_outcome at p_now: FAILED or COMPLETED when it ends (nudge.end_after_attempt), else as it was.';

DROP FUNCTION nudge.after_attempt(nudge.reminders, text, nudge.worker_policy, timestamptz);
CREATE FUNCTION nudge.after_attempt(r nudge.reminders, p_outcome text,
                                    p_policy nudge.worker_policy, p_now timestamptz)
RETURNS nudge.attempt_result LANGUAGE sql STABLE AS $$
  SELECT ROW(
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
         THEN coalesce(r.occurrence_at, r.next_run_at) END,
    nudge.next_run_after_attempt(r, p_outcome, p_policy, p_now),
    nudge.status_after_attempt(r, p_outcome, p_policy, p_now),
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
              OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN r.completed_reason
         ELSE nudge.end_after_attempt(r, p_outcome, p_policy, p_now) END,
    CASE WHEN nudge.status_after_attempt(r, p_outcome, p_policy, p_now) IN ('ACTIVE', 'PAUSED')
         THEN NULL ELSE coalesce(r.finished_at, p_now) END,
    r.fire_count + CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy) THEN 0 ELSE 1 END,
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy) THEN r.catch_up_fires
         WHEN nudge.attempt_catches_up(r, p_outcome, p_policy, p_now) THEN r.catch_up_fires + 1
         ELSE 0 END,
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy) THEN r.attempt ELSE 0 END
  )::nudge.attempt_result
$$;
COMMENT ON FUNCTION nudge.after_attempt(nudge.reminders, text, nudge.worker_policy, timestamptz) IS
  'What a reminder becomes when an attempt ended with p_outcome at p_now: a failed attempt with attempts left keeps its occurrence and waits a jittered backoff; otherwise the occurrence ends and the reminder moves to its next one (missed ones collapse into this fire; fire_all takes each missed one, up to the cap) or ends (one_time: COMPLETED or FAILED; max_fires; a next run after ends_at); a status other than ACTIVE or PAUSED is never changed.';

-- 2. The finish takes its columns from nudge.after_attempt as a row of plain expressions, and
--    keeps one generic plan: the custom plans PostgreSQL otherwise chose for it (their cost
--    estimate is as low) were planned again on every call.
CREATE OR REPLACE FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy,
                                                 p_ids bigint[], p_scheduled_for timestamptz[],
                                                 p_attempts integer[], p_outcomes text[],
                                                 p_errors text[], p_status_codes integer[],
                                                 p_responses text[], p_durations_ms integer[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan AS $$
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
         = ROW((nudge.after_attempt(r, i.outcome, p_policy, now())).*),
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors, p_status_codes,
                  p_responses, p_durations_ms)
             AS i(id, scheduled_for, attempt, outcome, error, status_code, response, duration_ms)
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
  RETURN v_recorded;
END $$;

-- 3. No BEFORE UPDATE row trigger on nudge.reminders, so claims and finishes no longer lock
--    each row they update a second time. A request is checked by an AFTER trigger (the same
--    check and error, raised at the end of the statement that wrote it); the words of a cron
--    expression are set before an INSERT as before, and after an UPDATE that writes the
--    expression by a second update of that row (claims and finishes never write it).
DROP TRIGGER reminder_request_is_checked ON nudge.reminders;
CREATE TRIGGER reminder_request_is_checked
  AFTER INSERT OR UPDATE OF request, payload ON nudge.reminders
  FOR EACH ROW
  WHEN (NEW.request IS NOT NULL)
  EXECUTE FUNCTION nudge.reminder_request_is_checked();

DROP TRIGGER reminder_cron_is_described ON nudge.reminders;
CREATE TRIGGER reminder_cron_is_described
  BEFORE INSERT ON nudge.reminders
  FOR EACH ROW WHEN (NEW.cron_schedule IS NOT NULL)
  EXECUTE FUNCTION nudge.describe_reminder_cron();

CREATE FUNCTION nudge.describe_changed_reminder_cron() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE nudge.reminders r SET cron_words = nudge.cron_words(NEW.cron_schedule, NEW.cron)
   WHERE r.id = NEW.id;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.describe_changed_reminder_cron() IS
  'Trigger: after a write of a reminder''s cron expression, sets its cron_words to nudge.cron_words of the expression as written.';

CREATE TRIGGER reminder_cron_change_is_described
  AFTER UPDATE OF cron, cron_schedule ON nudge.reminders
  FOR EACH ROW WHEN (NEW.cron_schedule IS NOT NULL)
  EXECUTE FUNCTION nudge.describe_changed_reminder_cron();

COMMENT ON COLUMN nudge.reminders.cron_words IS
  'nudge.cron_words of the cron expression, kept by triggers reminder_cron_is_described (insert) and reminder_cron_change_is_described (update); NULL unless cron.';
