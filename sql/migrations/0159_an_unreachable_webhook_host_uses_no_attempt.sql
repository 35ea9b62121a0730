-- 0159: a webhook whose host could not be reached (its name does not resolve, the connection
-- was refused or not made in time) uses none of its occurrence's attempts while its free tries
-- last, as a 429 does (explore31a F1): the request never left. With 3 attempts in about 3 s and
-- a circuit breaker that opens at the 5th failure in a row, a receiver away for a few seconds
-- (a deploy, a restart) failed the first reminders due meanwhile for good, and one with a
-- single reminder due never opened its breaker at all. Now such tries go on with their backoff
-- until the breaker opens and holds them, and its probe finds the host back. The worker
-- reports them as 'unreachable'; they are recorded as failed attempts, and counted with the
-- 429s in rate_limited (20 free tries in all per occurrence: a host that stays unreachable
-- still fails its reminders, after hours).

CREATE OR REPLACE FUNCTION nudge.attempt_is_retried(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT p_outcome IN ('failed', 'rate_limited', 'unreachable') AND r.status IN ('ACTIVE', 'PAUSED')
         AND (r.attempt - r.rate_limited < coalesce(r.max_attempts, p_policy.max_attempts)
              OR (p_outcome IN ('rate_limited', 'unreachable')
                  AND r.rate_limited < nudge.free_rate_limited_tries()))
$$;

COMMENT ON FUNCTION nudge.attempt_is_retried(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy) IS 'Whether an attempt of a live reminder that ended with p_outcome is tried again: it failed, its receiver answered 429 (rate_limited) or its webhook host could not be reached (unreachable), and attempts of its occurrence are left (attempt - rate_limited under the reminder''s max_attempts, else the policy''s); or it was rate-limited or unreachable while fewer than nudge.free_rate_limited_tries() tries of the occurrence were.';

CREATE OR REPLACE FUNCTION nudge.after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS nudge.attempt_result
    LANGUAGE sql STABLE
    AS $$
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
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy) THEN r.attempt ELSE 0 END,
    CASE WHEN NOT nudge.attempt_is_retried(r, p_outcome, p_policy) THEN 0
         WHEN p_outcome IN ('rate_limited', 'unreachable')
              AND r.rate_limited < nudge.free_rate_limited_tries()
           THEN r.rate_limited + 1
         ELSE r.rate_limited END
  )::nudge.attempt_result
$$;

COMMENT ON FUNCTION nudge.after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'What a reminder becomes when an attempt ended with p_outcome at p_now: a failed attempt with attempts left, or one its receiver answered 429 (rate_limited) or whose webhook host could not be reached (unreachable) while its free tries last, keeps its occurrence and waits a jittered backoff, the latter two counted in rate_limited and using no attempt; otherwise the occurrence ends and the reminder moves to its next one (missed ones collapse into this fire; fire_all takes each missed one, up to the cap) or ends (one_time: COMPLETED or FAILED; max_fires; a next run after ends_at), its count of free tries back to 0; a status other than ACTIVE or PAUSED is never changed.';

CREATE OR REPLACE FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
                   OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN NULL
              WHEN r.schedule_type = 'one_time' AND p_outcome IN ('failed', 'rejected', 'rate_limited', 'unreachable')
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

COMMENT ON FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'Why a live reminder ends once an attempt ended with p_outcome at p_now (attempts_exhausted: a one_time whose last attempt failed, was rate-limited, was unreachable or was rejected; fired: a one_time; max_fires; ends_at: its next run is after ends_at or after 9999-12-31T23:59:59Z), or NULL when it goes on (a retry, a later occurrence) or is not live.';

CREATE OR REPLACE FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[] DEFAULT NULL::integer[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    SET "nudge.placing" TO 'on'
    AS $$
DECLARE
  v_recorded integer;
  v_hosts    text[];     -- per webhook attempt: its host,
  v_host_ids bigint[];   -- its reminder,
  v_failed   boolean[];  -- whether the host failed to answer it,
  v_host_errors text[];  -- the attempt's error,
  v_limited  boolean[];  -- whether the host answered 429,
  v_waits    integer[];  -- and the Retry-After it gave
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
            catch_up_fires, attempt, rate_limited)
         -- Decided on the outcome as reported: 'rejected' is never retried; a 429 is
         -- 'rate_limited', which, as 'unreachable' (a webhook whose host could not be
         -- reached), uses no attempt up to nudge.free_rate_limited_tries().
         = ROW((nudge.after_attempt(r, i.reported, p_policy, now())).*),
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      -- In id order, as bulk changes and lease extensions lock reminders: in the order the
      -- attempts ended, a finish and a bulk pause or cancel of the same rows could deadlock.
      -- 'rejected' and 'unreachable' are recorded as 'failed'.
      FROM (SELECT u.id, u.scheduled_for, u.attempt,
                   CASE WHEN u.outcome = 'failed' AND u.status_code = 429 THEN 'rate_limited'
                        ELSE u.outcome END AS reported,
                   CASE WHEN u.outcome IN ('rejected', 'unreachable') THEN 'failed'
                        ELSE u.outcome END AS outcome,
                   u.error, u.status_code, u.response, u.duration_ms, u.retry_after
              FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors,
                          p_status_codes, p_responses, p_durations_ms, p_retry_after_seconds)
                     AS u(id, scheduled_for, attempt, outcome, error, status_code, response,
                          duration_ms, retry_after)
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
                        AND (p_policy.breaker_failures > 0 OR i.reported = 'rate_limited')
                   THEN coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) END AS host,
              -- The host did not answer, or answered that it cannot serve now: no response,
              -- 5xx or 408. Any other answer, a 404 or a 429 included, shows the host is up.
              i.outcome = 'failed' AND p_policy.breaker_failures > 0
                AND (i.status_code IS NULL OR i.status_code >= 500 OR i.status_code = 408)
                AS host_failed,
              -- It asked to be sent less (429), and when to send again (Retry-After).
              i.reported = 'rate_limited' AS host_limited, i.retry_after
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
         array_agg(m.error) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.host_limited) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.retry_after) FILTER (WHERE m.host IS NOT NULL)
    INTO v_recorded, v_hosts, v_host_ids, v_failed, v_host_errors, v_limited, v_waits
    FROM moved m;
  PERFORM set_config('lock_timeout', v_lock_timeout, true);
  IF v_hosts IS NOT NULL THEN
    PERFORM nudge.record_host_outcomes(p_worker, p_policy, v_hosts, v_host_ids, v_failed,
                                        v_host_errors, v_limited, v_waits);
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

COMMENT ON FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[]) IS 'Records each ended attempt (outcome delivered, failed, rejected: failed with no attempt after it, or unreachable: failed, a webhook whose host could not be reached) whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), moves its reminder on as nudge.after_attempt decides (a failed attempt answered 429 as rate_limited, and an unreachable one: no attempt used while nudge.free_rate_limited_tries() last), recording an ended occurrence exactly once in executions, and reports each webhook attempt with a duration to nudge.record_host_outcomes: whether its host failed to answer (none, 5xx or 408; unless the policy''s breaker_failures is 0), answered 429, and its Retry-After; an occurrence still retrying after an attempt whose p_retry_after_seconds is over 0 (a receiver''s Retry-After) waits at least that long, up to the policy''s retry_max_ms; an attempt whose lease was lost changes nothing; a reminder row another transaction holds for more than 10 ms refuses the whole finish with 55P03 (lock_timeout), nothing recorded, rather than wait for it. Returns how many attempts it recorded.';

COMMENT ON FUNCTION nudge.free_rate_limited_tries() IS 'How many tries of one occurrence may use none of its attempts: answered 429 (Too Many Requests), or to a webhook host that could not be reached; 20 in all, each such try beyond is a failed attempt.';

COMMENT ON COLUMN nudge.reminders.rate_limited IS 'Tries of the current occurrence that used none of its attempts: answered 429, or to a webhook host that could not be reached (up to nudge.free_rate_limited_tries()); the attempts used are attempt - rate_limited.';

COMMENT ON TYPE nudge.claimed_fire IS 'One claimed attempt as a worker delivers it: the reminder, its address (target, else contacts), the occurrence, the attempt number, the attempt number at which a failure ends the occurrence (max_attempts: its attempts plus the free tries, 429s and unreachable hosts, that used none), for a reminder with its own request that request rendered for this attempt, whether the claim took it over from an expired lease (rescued), and how many more free tries (429s, unreachable hosts) would use no attempt (rate_limits_left).';

COMMENT ON FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer, p_email_slots integer, p_pass_over text[]) IS 'Leases up to p_limit due ACTIVE reminders, earliest first, passing over (neither locking nor taking) those whose target is LIKE any of p_pass_over when given, of which at most p_slots webhooks and emails and at most p_email_slots emails (each when given; log lines take no slot, and the rows past them are left due), to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued, also when a breaker or pace held it since); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts (attempt - rate_limited) were all used by workers that never finished them (recorded as failed), one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt saying up to when; the reminder moves to its first occurrence missed by no more than the threshold, due at once, or else its next future one), nor a webhook to a host whose circuit breaker is not closed (held until the breaker''s next_probe_at, occurrence and attempt kept), except one probe per host whose next_probe_at has passed (the held one with the fewest attempts used), which marks the breaker probing for lease_seconds (notified on nudge_breaker); a fire_all reminder starting a catch-up of more than fire_all_cap missed occurrences (up to ends_at) is returned at the first of the newest fire_all_cap of them (nudge.catch_up_kept), the older ones recorded as one skipped attempt at the oldest saying how many were dropped and from when to when; a webhook to a paced host, else to a paced URL (it answered 429: nudge.record_host_outcomes), goes only at that pace (nudge.pace_at) and no sooner than its next_send_at, a second''s worth at once, the others held (in the order of their occurrences, not logged in nudge.changes) until their send times a pace apart, or for 20 s at most and then placed again (occurrence and attempt kept, no attempt used), and the rows of a paced host or URL another claim is pacing are neither taken nor held; each fire''s max_attempts is the attempt number at which a failure ends its occurrence (its attempts plus the free tries, 429s and unreachable hosts, that used none) and rate_limits_left how many more free tries would use none.';
