-- 0130: a receiver's 429 (Too Many Requests) is flow control, not a failure (explore23a #1:
-- a receiver taking 2 requests a second, 429 with Retry-After beyond, failed 294 of a burst of
-- 300, and 225 with 0128's release waves: each 429 used an attempt, and every round met its
-- limit at once).
--
-- 1. A 429 uses none of the occurrence's attempts, up to nudge.free_rate_limited_tries() of
--    them (20; beyond, each is a failed attempt as before): reminders.rate_limited counts
--    them, and the attempts used are attempt - rate_limited. The attempt is recorded as
--    failed (status 429) and retried after the usual backoff, no sooner than its Retry-After.
-- 2. A 429 no longer counts against the host's circuit breaker: the host answered. It paces
--    the host instead (target_hosts.pace, limited_at, paced_until, next_send_at): no request
--    before its Retry-After, then its due deliveries are spread a pace apart, which halves
--    with each 429 (once a second) and doubles every 20 s of sending without one, until pacing
--    ends at 1,000 a second.
-- 3. A claim returns for each fire the attempt number at which a failure ends the occurrence
--    (max_attempts: the attempts plus the 429s that used none) and how many more 429s would use
--    none (rate_limits_left), so a worker tells a last attempt as the database does.
--
-- Additive for older binaries: they read claims by column name, send a 429 as a failed attempt
-- (which this finish reads as rate-limited), and call nudge.record_host_outcomes only through
-- nudge.finish_attempts (its changed signature is DROP + CREATE).

-- 1. The count of an occurrence's free 429s, and what a finish decides about it.
ALTER TABLE nudge.reminders ADD COLUMN rate_limited nudge.reminder_attempt NOT NULL DEFAULT 0;
COMMENT ON COLUMN nudge.reminders.rate_limited IS
  'Tries of the current occurrence whose receiver answered 429 and that used none of its attempts (up to nudge.free_rate_limited_tries()); the attempts used are attempt - rate_limited.';
ALTER TYPE nudge.attempt_result ADD ATTRIBUTE rate_limited integer;

CREATE FUNCTION nudge.free_rate_limited_tries() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 20 $$;
COMMENT ON FUNCTION nudge.free_rate_limited_tries() IS
  'How many tries of one occurrence its receiver may answer 429 (Too Many Requests) without using any of its attempts: 20; each 429 beyond is a failed attempt.';

-- 2. The pace of a host that answered 429.
ALTER TABLE nudge.target_hosts
  ADD COLUMN pace double precision,
  ADD COLUMN limited_at timestamptz,
  ADD COLUMN paced_until timestamptz,
  ADD COLUMN next_send_at timestamptz,
  ADD CONSTRAINT a_paced_host_has_a_positive_pace_and_its_times
    CHECK (CASE WHEN pace IS NULL THEN limited_at IS NULL AND paced_until IS NULL
                ELSE pace > 0 AND limited_at IS NOT NULL AND paced_until IS NOT NULL END);
COMMENT ON TABLE nudge.target_hosts IS
  'Each webhook host (scheme://host:port) that has failed or answered 429: its circuit breaker, closed (failures counted), open (deliveries held until next_probe_at) or probing (one delivery out as the probe, leased to probe_worker until next_probe_at), and its pace while it is paced (paced_until). Changed only by the workers'' claims and finishes.';
COMMENT ON COLUMN nudge.target_hosts.pace IS
  'Deliveries a second the host may be sent at limited_at: half the pace it had at its last 429 (at least 1 a minute, at most 500 a second); nudge.host_pace tells the pace now.';
COMMENT ON COLUMN nudge.target_hosts.limited_at IS
  'When the host may be sent to again after its last 429 that halved the pace (that 429, plus the Retry-After of its batch): its pace grows from then.';
COMMENT ON COLUMN nudge.target_hosts.paced_until IS
  'When the pace, doubling every 20 s from limited_at, passes 1,000 a second: the host is no longer paced.';
COMMENT ON COLUMN nudge.target_hosts.next_send_at IS
  'While paced: no delivery goes to the host before it (its last Retry-After, then one pace after the last delivery sent).';
-- The claim's one extra check while no host is paced (is any?) is an index lookup.
CREATE INDEX target_hosts_paced ON nudge.target_hosts (paced_until) WHERE paced_until IS NOT NULL;

CREATE FUNCTION nudge.host_pace(h nudge.target_hosts, p_at timestamptz) RETURNS double precision
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN h.paced_until > p_at
              THEN h.pace * power(2, greatest(extract(epoch FROM p_at - h.limited_at)::float8, 0)
                                     / 20) END
$$;
COMMENT ON FUNCTION nudge.host_pace(h nudge.target_hosts, p_at timestamptz) IS
  'Deliveries a second host h may be sent at p_at: its pace, doubled for every 20 s since limited_at (the end of the Retry-After of its last 429 that halved it); NULL when it is not paced then.';

-- 3. What a claim tells the worker about 429s.
ALTER TYPE nudge.claimed_fire ADD ATTRIBUTE rate_limits_left integer;
COMMENT ON TYPE nudge.claimed_fire IS
  'One claimed attempt as a worker delivers it: the reminder, its address (target, else contacts), the occurrence, the attempt number, the attempt number at which a failure ends the occurrence (max_attempts: its attempts plus the 429s that used none), for a reminder with its own request that request rendered for this attempt, whether the claim took it over from an expired lease (rescued), and how many more 429s would use no attempt (rate_limits_left).';
COMMENT ON TYPE nudge.attempt_result IS
  'The columns of a reminder that nudge.after_attempt decides when an attempt ends.';

DROP FUNCTION nudge.record_host_outcomes(text, nudge.worker_policy, text[], bigint[], boolean[], text[]);


-- 1. A rate-limited attempt (a 429) is retried while the occurrence's free 429s last, and counted.
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
         WHEN p_outcome = 'rate_limited' AND r.rate_limited < nudge.free_rate_limited_tries()
           THEN r.rate_limited + 1
         ELSE r.rate_limited END
  )::nudge.attempt_result
$$;
COMMENT ON FUNCTION nudge.after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS
  'What a reminder becomes when an attempt ended with p_outcome at p_now: a failed attempt with attempts left, or one its receiver answered 429 (rate_limited) while its free tries last, keeps its occurrence and waits a jittered backoff, the latter counted in rate_limited and using no attempt; otherwise the occurrence ends and the reminder moves to its next one (missed ones collapse into this fire; fire_all takes each missed one, up to the cap) or ends (one_time: COMPLETED or FAILED; max_fires; a next run after ends_at), its count of rate-limited tries back to 0; a status other than ACTIVE or PAUSED is never changed.';

CREATE OR REPLACE FUNCTION nudge.attempt_is_retried(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT p_outcome IN ('failed', 'rate_limited') AND r.status IN ('ACTIVE', 'PAUSED')
         AND (r.attempt - r.rate_limited < coalesce(r.max_attempts, p_policy.max_attempts)
              OR (p_outcome = 'rate_limited' AND r.rate_limited < nudge.free_rate_limited_tries()))
$$;
COMMENT ON FUNCTION nudge.attempt_is_retried(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy) IS
  'Whether an attempt of a live reminder that ended with p_outcome is tried again: it failed, or its receiver answered 429 (rate_limited), and attempts of its occurrence are left (attempt - rate_limited under the reminder''s max_attempts, else the policy''s); or it was rate-limited while fewer than nudge.free_rate_limited_tries() tries of the occurrence were.';

CREATE OR REPLACE FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
                   OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN NULL
              WHEN r.schedule_type = 'one_time' AND p_outcome IN ('failed', 'rejected', 'rate_limited')
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
COMMENT ON FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS
  'Why a live reminder ends once an attempt ended with p_outcome at p_now (attempts_exhausted: a one_time whose last attempt failed, was rate-limited or was rejected; fired: a one_time; max_fires; ends_at: its next run is after ends_at or after 9999-12-31T23:59:59Z), or NULL when it goes on (a retry, a later occurrence) or is not live.';


-- 1 and 2. A finish reads a failed attempt answered 429 as rate-limited: it uses no attempt
-- while the free ones last, and paces its host instead of counting against its breaker.
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
         -- 'rate_limited', which uses no attempt up to nudge.free_rate_limited_tries().
         = ROW((nudge.after_attempt(r, i.reported, p_policy, now())).*),
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      -- In id order, as bulk changes and lease extensions lock reminders: in the order the
      -- attempts ended, a finish and a bulk pause or cancel of the same rows could deadlock.
      -- 'rejected' is recorded as 'failed'.
      FROM (SELECT u.id, u.scheduled_for, u.attempt,
                   CASE WHEN u.outcome = 'failed' AND u.status_code = 429 THEN 'rate_limited'
                        ELSE u.outcome END AS reported,
                   CASE WHEN u.outcome = 'rejected' THEN 'failed' ELSE u.outcome END AS outcome,
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
COMMENT ON FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[]) IS
  'Records each ended attempt (outcome delivered, failed, or rejected: failed with no attempt after it) whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), moves its reminder on as nudge.after_attempt decides (a failed attempt answered 429 as rate_limited: no attempt used while nudge.free_rate_limited_tries() last), recording an ended occurrence exactly once in executions, and reports each webhook attempt with a duration to nudge.record_host_outcomes: whether its host failed to answer (none, 5xx or 408; unless the policy''s breaker_failures is 0), answered 429, and its Retry-After; an occurrence still retrying after an attempt whose p_retry_after_seconds is over 0 (a receiver''s Retry-After) waits at least that long, up to the policy''s retry_max_ms; an attempt whose lease was lost changes nothing; a reminder row another transaction holds for more than 10 ms refuses the whole finish with 55P03 (lock_timeout), nothing recorded, rather than wait for it. Returns how many attempts it recorded.';

CREATE FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_failing   text[];         -- hosts that failed in this batch
  v_limiting  text[];         -- hosts that answered 429 in it
  v_changes   text[];         -- notifications of the breakers that changed state
  v_moved     text[];         -- breakers that held deliveries and moved their probe time:
  v_held      timestamptz[];  -- the time their deliveries wait for,
  v_next      timestamptz[];  -- and the new one (NULL: closed, due now)
BEGIN
  v_failing := ARRAY(SELECT DISTINCT o.host FROM unnest(p_hosts, p_failed) AS o(host, failed)
                      WHERE o.failed ORDER BY o.host);
  -- A host gets its row with its first failure. Rows that may change are created and then
  -- locked in host order, so that two finishes sharing hosts never wait for each other in a
  -- circle; a host with a clean record that only answered is neither locked nor written.
  v_limiting := ARRAY(SELECT DISTINCT o.host FROM unnest(p_hosts, p_limited) AS o(host, limited)
                       WHERE o.limited ORDER BY o.host);
  INSERT INTO nudge.target_hosts (host) SELECT unnest(v_failing || v_limiting)
  ON CONFLICT (host) DO NOTHING;
  PERFORM 1 FROM nudge.target_hosts h
   WHERE h.host = ANY (p_hosts)
     AND (h.state <> 'closed' OR h.consecutive_failures > 0
          OR h.host = ANY (v_failing || v_limiting))
   ORDER BY h.host
     FOR UPDATE;

  -- Decided on the rows as they are now (locked above): any answer closes the breaker and
  -- clears the count; failures add to it, and open a closed breaker at the threshold; the
  -- probe's failure opens a probing one again for twice the time. A 429 is an answer, and
  -- paces the host (see the pacing columns of nudge.target_hosts).
  WITH outcome AS (
    SELECT o.host, count(*) FILTER (WHERE o.failed) AS failures, bool_or(NOT o.failed) AS answered,
           count(*) FILTER (WHERE o.limited) AS limited,
           count(*) FILTER (WHERE NOT o.failed AND NOT o.limited) AS accepted,
           max(o.wait) FILTER (WHERE o.limited) AS wait,
           array_agg(o.id) FILTER (WHERE o.failed) AS failed_ids,
           -- What on-call reads first about a failing host: its batch's last failure.
           (array_agg(left(o.error, 500) ORDER BY o.n DESC) FILTER (WHERE o.failed))[1] AS error
      FROM unnest(p_hosts, p_ids, p_failed, p_errors, p_limited, p_retry_after_seconds)
             WITH ORDINALITY AS o(host, id, failed, error, limited, wait, n)
     GROUP BY o.host
  ), decided AS (
    SELECT h.host, h.state AS from_state, h.next_probe_at AS held_until, o.answered, o.failures,
           o.error, t.to_state, o.limited, p.cut, p.pace,
           least(coalesce(o.wait, 0)::bigint * 1000, p_policy.retry_max_ms)
             * interval '1 millisecond' AS wait_time,
           CASE WHEN t.to_state <> 'open' OR h.state = 'open' THEN h.open_seconds
                WHEN h.state = 'probing'
                  THEN least(h.open_seconds * 2,
                             greatest(p_policy.breaker_max_open_seconds,
                                      p_policy.breaker_open_seconds))
                ELSE p_policy.breaker_open_seconds END AS open_seconds
      FROM nudge.target_hosts h
      JOIN outcome o ON o.host = h.host
     CROSS JOIN LATERAL (
           SELECT CASE WHEN o.answered THEN 'closed'
                       WHEN h.state = 'closed'
                            AND h.consecutive_failures + o.failures >= p_policy.breaker_failures
                         THEN 'open'
                       WHEN h.state = 'probing' AND h.probe_worker = p_worker
                            AND h.probe_reminder_id = ANY (o.failed_ids) THEN 'open'
                       ELSE h.state END AS to_state) t
     -- A 429 halves the pace the host is sent at (from twice the requests it accepted in this
     -- batch, at least 1 a second, when it was not paced), once per second: the 429s of one
     -- burst arrive in several finishes.
     CROSS JOIN LATERAL (
           SELECT o.limited > 0 AND NOT coalesce(h.limited_at > now() - interval '1 second', false)
                    AS cut,
                  greatest(1.0 / 60,
                           least(500, coalesce(nudge.host_pace(h, now()),
                                               2 * greatest(o.accepted, 1)) / 2)) AS pace) p
     WHERE h.state <> 'closed' OR h.consecutive_failures > 0 OR o.failures > 0 OR o.limited > 0
  ), changed AS (
    UPDATE nudge.target_hosts h
       SET state = d.to_state,
           consecutive_failures = CASE WHEN d.answered THEN 0
                                       ELSE h.consecutive_failures + d.failures END,
           last_error = CASE WHEN d.answered THEN NULL
                             WHEN d.failures > 0 THEN coalesce(d.error, 'no error text')
                             ELSE h.last_error END,
           open_seconds = CASE WHEN d.to_state = 'closed' THEN NULL ELSE d.open_seconds END,
           opened_at = CASE WHEN d.to_state = 'closed' THEN NULL
                            WHEN d.to_state = 'open' AND d.from_state <> 'open' THEN now()
                            ELSE h.opened_at END,
           next_probe_at = CASE WHEN d.to_state = 'closed' THEN NULL
                                -- Jittered (0.8 to 1.2 times the open time): probes at
                                -- exact doublings met a receiver down 30 s in every minute
                                -- in its down phase each time, for ever (explore23a #2).
                                WHEN d.to_state = 'open' AND d.from_state <> 'open'
                                  THEN now() + d.open_seconds * (0.8 + 0.4 * random())
                                               * interval '1 second'
                                ELSE h.next_probe_at END,
           probe_worker = CASE WHEN d.to_state = 'probing' THEN h.probe_worker END,
           probe_reminder_id = CASE WHEN d.to_state = 'probing' THEN h.probe_reminder_id END,
           pace = CASE WHEN d.cut THEN d.pace ELSE h.pace END,
           -- The pace grows once the host may be sent to again (while it waits for its
           -- Retry-After, a growing pace would meet its limit as soon as it ends), doubling
           -- every 20 s: paced until it would pass 1,000 a second.
           limited_at = CASE WHEN d.cut THEN now() + d.wait_time ELSE h.limited_at END,
           paced_until = CASE WHEN d.cut THEN now() + d.wait_time
                                              + 20 * log(2, 1000 / d.pace::numeric)
                                                * interval '1 second'
                              ELSE h.paced_until END,
           -- No request before the host's Retry-After (up to the policy's longest retry delay).
           next_send_at = CASE WHEN d.limited > 0
                               THEN greatest(h.next_send_at, now() + d.wait_time)
                               ELSE h.next_send_at END,
           updated_at = now()
      FROM decided d
     WHERE h.host = d.host
    RETURNING h.host, h.state, h.next_probe_at, d.from_state, d.held_until,
              nudge.breaker_change(h, d.from_state, p_worker) AS change
  )
  SELECT array_agg(c.change) FILTER (WHERE c.from_state <> c.state),
         array_agg(c.host) FILTER (WHERE c.moves),
         array_agg(c.held_until) FILTER (WHERE c.moves),
         array_agg(c.next_probe_at) FILTER (WHERE c.moves)
    INTO v_changes, v_moved, v_held, v_next
    FROM (SELECT ch.*, ch.from_state <> 'closed' AND ch.held_until IS NOT NULL
                       AND ch.next_probe_at IS DISTINCT FROM ch.held_until AS moves
            FROM changed ch) c;
  PERFORM pg_notify('nudge_breaker', n) FROM unnest(v_changes) AS n;

  -- The deliveries a breaker held wait for its new next probe, or are due now that it closed:
  -- in doubling waves (one now, two a second later, four the second after: 1,000 in 10 s), as
  -- all at once a receiver that limits its rate refused all but two of 296 in every round until
  -- their attempts were used up (explore23a #1). (The breaker rows stay locked by this
  -- transaction, so no claim holds more meanwhile.) One statement per host, so each looks its
  -- deliveries up by their time in the due index: joined to an array, a generic plan would walk
  -- the whole index.
  FOR i IN 1 .. coalesce(cardinality(v_moved), 0) LOOP
    IF v_next[i] IS NOT NULL THEN
      UPDATE nudge.reminders r
         SET next_run_at = v_next[i], updated_at = now()
       WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held[i] AND r.leased_by IS NULL
         AND r.channel = 'webhook'
         AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_moved[i];
    ELSE
      UPDATE nudge.reminders r
         SET next_run_at = now() + floor(log(2, w.k)) * interval '1 second', updated_at = now()
        FROM (SELECT h.id, row_number() OVER (ORDER BY h.id)::numeric AS k
                FROM nudge.reminders h
               WHERE h.status = 'ACTIVE' AND h.next_run_at = v_held[i] AND h.leased_by IS NULL
                 AND h.channel = 'webhook'
                 AND coalesce(nudge.target_host(h.target), nudge.webhook_host(h)) = v_moved[i]) w
       WHERE r.id = w.id;
    END IF;
  END LOOP;
END $$;
COMMENT ON FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]) IS
  'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer; p_limited: it answered 429, with p_retry_after_seconds): an answer (a 429 included) closes the host''s breaker and clears its failures, making the deliveries it held due in doubling waves (the first now, the next two a second later, then four, and so on, in id order); failures add up, keep the batch''s last failed attempt''s error (p_errors, cut at 500 characters) as the host''s last_error (an answer clears it), and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; the next probe is due between 0.8 and 1.2 times the open time after it opened (random, so that probes do not keep meeting a receiver that is down at regular times); a 429 paces the host: at most once a second, its pace becomes half of nudge.host_pace (or, when it was not paced, of twice the requests it accepted in the batch, at least 1 a second), kept between 1 a minute and 500 a second, growing from the end of that Retry-After, paced until doubling every 20 s takes it past 1,000 a second, and no delivery goes before its largest Retry-After (up to the policy''s retry_max_ms); each change of breaker state is notified on nudge_breaker; a batch that changes no breaker and has no 429 reads no reminder.';


-- 2. A claim sends a paced host's deliveries at its pace; 3. and says what a 429 would do.
CREATE OR REPLACE FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer DEFAULT NULL::integer, p_email_slots integer DEFAULT NULL::integer, p_pass_over text[] DEFAULT NULL::text[]) RETURNS SETOF nudge.claimed_fire
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  -- Rows are found once through the due index and then revisited by ctid, which cannot change
  -- while this transaction holds their row locks.
  v_take      tid[];
  v_stop      tid[];
  v_exhausted tid[];
  v_missed    tid[];
  v_crowded   tid[];     -- fire_all rows with more missed occurrences than the cap
  v_rescued   bigint[];  -- ids taken over from a lease that expired
  v_ids       bigint[];
  v_at        timestamptz[];
  v_attempts  integer[];
  v_count     integer;
  v_blocked   tid[];     -- rows to take whose host's breaker is not closed,
  v_hosts     text[];    -- their hosts,
  v_blocked_ids bigint[];
  v_used      integer[];  -- their attempts used,
  v_probes    tid[];     -- and of those, the probes this claim sends
  v_changes   text[];
  v_paced     tid[];     -- rows to take whose host is paced,
  v_paced_hosts text[];  -- their hosts,
  v_paced_ids bigint[];
  v_paced_due timestamptz[];
  v_sent      tid[];     -- and of those, the ones its pace lets go now
BEGIN
  -- A webhook or an email takes one of the worker's delivery slots, and an email one of its
  -- relay connections too: past p_slots of them, or p_email_slots emails, the rows are left as
  -- they are (locked until this claim commits, then due for any worker), so a crash charges an
  -- attempt only to deliveries under way, and a cancel reaches every email not yet sent. Log
  -- lines take no slot.
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted AND NOT d.missed
                                       AND NOT d.crowded AND d.fits),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.missed AND NOT d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.crowded AND NOT d.exhausted AND NOT d.stop_now
                                       AND d.fits),
         array_agg(d.row_id) FILTER (WHERE d.held AND NOT d.stop_now AND NOT d.exhausted
                                     AND NOT d.missed AND d.fits)
    INTO v_take, v_stop, v_exhausted, v_missed, v_crowded, v_rescued
    FROM (SELECT m.*,
                 NOT m.takes_slot
                 OR (m.email_fits
                     AND (p_slots IS NULL
                          OR count(*) FILTER (WHERE m.takes_slot AND m.email_fits
                                                AND NOT (m.stop_now OR m.exhausted OR m.missed))
                               OVER (ORDER BY m.due ROWS UNBOUNDED PRECEDING) <= p_slots)) AS fits
            FROM (SELECT l.*,
                 l.channel <> 'email' OR p_email_slots IS NULL
                 OR count(*) FILTER (WHERE l.channel = 'email'
                                       AND NOT (l.stop_now OR l.exhausted OR l.missed))
                      OVER (ORDER BY l.due ROWS UNBOUNDED PRECEDING) <= p_email_slots AS email_fits
            FROM (SELECT r.ctid AS row_ctid, r.id AS row_id, r.next_run_at AS due,
                 r.channel, r.channel <> 'log' AS takes_slot,
                 -- Only an expired lease can still be set on a due row this claim may take.
                 r.leased_by IS NOT NULL AS held,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM nudge.status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt - r.rate_limited >= coalesce(r.max_attempts, p_policy.max_attempts)
                   AS exhausted,
                 r.misfire_policy = 'skip' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.next_run_at < now() - p_policy.misfire_threshold_seconds * interval '1 second'
                   AS missed,
                 -- A fire_all catch-up about to start with possibly more missed occurrences
                 -- than the cap: for an interval exactly, for a cron at least (its
                 -- occurrences are at least a minute apart). Only these pay for a count.
                 r.misfire_policy = 'fire_all' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.catch_up_fires = 0
                   AND CASE r.schedule_type
                         WHEN 'recurring' THEN extract(epoch FROM now() - r.next_run_at)
                                               >= p_policy.fire_all_cap::float8 * r.interval_seconds
                         WHEN 'cron' THEN r.next_run_at <= now() - p_policy.fire_all_cap * interval '1 minute'
                         ELSE false END
                   AS crowded
            FROM nudge.reminders r
           WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
             AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
             -- Targets the worker passes over (a slow host's), read but neither locked nor taken.
             AND (p_pass_over IS NULL OR r.target IS NULL OR NOT r.target LIKE ANY (p_pass_over))
           ORDER BY r.next_run_at
           LIMIT p_limit
             FOR UPDATE OF r SKIP LOCKED) l) m) d;

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

  -- Missed under misfire_policy skip: no catch-up fire. The reminder moves to its first
  -- occurrence missed by no more than the threshold (it fires at once: lateness, not an outage)
  -- or else its next future one; the skipped ones are one skipped attempt at the oldest.
  IF v_missed IS NOT NULL THEN
    -- Sub-statements share one snapshot: `missed` sees each row (locked by this claim) before
    -- `skipped` moves it.
    WITH missed AS (
      -- (A row at -infinity, written by hand, has no phase: counted on from now, as before.)
      SELECT r.id, r.next_run_at,
             nudge.occurrence_after(r, CASE WHEN isfinite(r.next_run_at)
                                            THEN now() - p_policy.misfire_threshold_seconds
                                                         * interval '1 second'
                                            ELSE now() END) AS next_at
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
           format('missed by more than %s s (misfire_policy skip), as was every later occurrence '
                  'before %s', p_policy.misfire_threshold_seconds,
                  nudge.rfc3339_in_zone(m.next_at, 'UTC')),
           p_worker
      FROM missed m JOIN skipped s ON s.id = m.id
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING;
  END IF;

  -- A fire_all catch-up keeps the newest fire_all_cap missed occurrences, the ones nearest to
  -- now: the reminder moves to the first one it keeps, and the older ones it drops are recorded
  -- as one skipped attempt at the oldest, saying how many and up to when. The moved rows are
  -- due and taken by this claim: their new versions' ctids join the rest.
  IF v_crowded IS NOT NULL THEN
    WITH crowded AS (
      SELECT r.id, r.ctid AS row_ctid, r.next_run_at, k.first_kept, k.last_dropped, k.dropped
        FROM nudge.reminders r,
             LATERAL nudge.catch_up_kept(r, p_policy.fire_all_cap, least(now(), r.ends_at)) k
       WHERE r.ctid = ANY (v_crowded)
    ), moved AS (
      UPDATE nudge.reminders r SET next_run_at = c.first_kept, updated_at = now()
        FROM crowded c
       WHERE r.id = c.id AND c.first_kept IS NOT NULL
      RETURNING r.id, r.ctid AS row_ctid
    ), recorded AS (
      INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
      SELECT c.id, c.next_run_at, 1, 'skipped',
             format('missed: %s occurrences from %s to %s dropped, over fire_all_cap %s '
                    '(misfire_policy fire_all keeps the newest)', c.dropped,
                    nudge.rfc3339_in_zone(c.next_run_at, 'UTC'),
                    nudge.rfc3339_in_zone(c.last_dropped, 'UTC'), p_policy.fire_all_cap),
             p_worker
        FROM crowded c JOIN moved m ON m.id = c.id
      ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING
    )
    SELECT array_agg(coalesce(m.row_ctid, c.row_ctid)) INTO v_crowded
      FROM crowded c LEFT JOIN moved m ON m.id = c.id;
    v_take := coalesce(v_take, '{}') || v_crowded;
  END IF;

  -- Circuit breakers (0013), only while one is not closed: a row to take whose host's breaker
  -- is open waits for the breaker's next probe, like a retry (its occurrence and attempt kept,
  -- no attempt used), so it does not stay at the head of the due index; once the open time is
  -- over, one of them per host goes out as the probe.
  IF v_take IS NOT NULL
     AND EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.state IN ('open', 'probing')) THEN
    SELECT array_agg(b.row_ctid), array_agg(b.host), array_agg(b.id), array_agg(b.attempt)
      INTO v_blocked, v_hosts, v_blocked_ids, v_used
      FROM (SELECT r.ctid AS row_ctid, r.id, r.attempt,
                   coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) AS host
              FROM nudge.reminders r
             WHERE r.ctid = ANY (v_take) AND r.channel = 'webhook') b
     WHERE EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.host = b.host AND h.state <> 'closed');
  END IF;

  IF v_blocked IS NOT NULL THEN
    -- The probe: for each host whose open time (or whose prober's lease) is over, the row with
    -- the fewest attempts used (a probe is a real attempt: failed probes are spread, not spent
    -- on one reminder), taken with the breaker's row lock; a breaker another claim is changing
    -- right now is skipped, so exactly one probe goes out.
    WITH probe_due AS (
      SELECT h.host, h.state FROM nudge.target_hosts h
       WHERE h.host = ANY (v_hosts) AND h.state <> 'closed' AND h.next_probe_at <= now()
       ORDER BY h.host
         FOR UPDATE SKIP LOCKED
    ), chosen AS (
      SELECT DISTINCT ON (b.host) b.host, b.id, b.row_ctid, p.state AS from_state
        FROM unnest(v_hosts, v_blocked_ids, v_blocked, v_used) AS b(host, id, row_ctid, used)
        JOIN probe_due p ON p.host = b.host
       ORDER BY b.host, b.used, b.id
    ), probing AS (
      UPDATE nudge.target_hosts h
         SET state = 'probing', probe_worker = p_worker, probe_reminder_id = c.id,
             next_probe_at = now() + p_policy.lease_seconds * interval '1 second',
             updated_at = now()
        FROM chosen c
       WHERE h.host = c.host
      RETURNING c.row_ctid, nudge.breaker_change(h, c.from_state, p_worker) AS change)
    SELECT array_agg(p.row_ctid), array_agg(p.change) INTO v_probes, v_changes FROM probing p;
    PERFORM pg_notify('nudge_breaker', n) FROM unnest(v_changes) AS n;

    -- The rest wait for their host's next probe. A breaker another transaction is changing
    -- (a finish closing it) is skipped: its rows are neither taken nor held, and the next
    -- claim sees what it became.
    WITH held_by AS (
      SELECT h.host, h.next_probe_at FROM nudge.target_hosts h
       WHERE h.host = ANY (v_hosts) AND h.state <> 'closed'
       ORDER BY h.host
         FOR SHARE SKIP LOCKED
    )
    UPDATE nudge.reminders r
       SET occurrence_at = coalesce(r.occurrence_at, r.next_run_at), next_run_at = hb.next_probe_at,
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(v_blocked, v_hosts, v_blocked_ids) AS b(row_ctid, host, id)
      JOIN held_by hb ON hb.host = b.host
     WHERE r.id = b.id AND b.row_ctid <> ALL (coalesce(v_probes, '{}'));

    v_take := ARRAY(SELECT t FROM unnest(v_take) AS t WHERE t <> ALL (v_blocked))
              || coalesce(v_probes, '{}');
  END IF;

  -- Paced hosts (0130), only while one is: a host that answered 429 is sent at its pace
  -- (nudge.host_pace), no request before its next_send_at. The rows of such a host are given
  -- send times a pace apart from then: a second's worth goes out, the others wait for theirs,
  -- or 10 s at most (occurrence and attempt kept, no attempt used), so its backlog goes out
  -- spread instead of meeting its limit all at once (explore23a #1). A host another claim is
  -- pacing right now is skipped: its rows are neither taken nor held.
  IF v_take IS NOT NULL
     AND EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.paced_until > now()) THEN
    SELECT array_agg(p.row_ctid), array_agg(p.host), array_agg(p.id), array_agg(p.due)
      INTO v_paced, v_paced_hosts, v_paced_ids, v_paced_due
      FROM (SELECT r.ctid AS row_ctid, r.id, r.next_run_at AS due,
                   coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) AS host
              FROM nudge.reminders r
             WHERE r.ctid = ANY (v_take) AND r.channel = 'webhook'
               AND r.ctid <> ALL (coalesce(v_probes, '{}'))) p
     WHERE EXISTS (SELECT 1 FROM nudge.target_hosts h
                    WHERE h.host = p.host AND h.paced_until > now());
  END IF;

  IF v_paced IS NOT NULL THEN
    WITH pacing AS (
      SELECT h.host, greatest(h.next_send_at, now()) AS start, nudge.host_pace(h, now()) AS pace
        FROM nudge.target_hosts h
       WHERE h.host = ANY (v_paced_hosts) AND h.paced_until > now()
       ORDER BY h.host
         FOR UPDATE SKIP LOCKED
    ), placed AS (
      SELECT s.*,
             -- A second's worth (whole deliveries, at least one) may go at once: the row goes if
             -- its place, counted from the host's next send time, is within it.
             s.k + extract(epoch FROM s.start - now()) * s.pace
               <= greatest(1, floor(s.pace)) - 1 + 1e-9 AS goes
        FROM (SELECT b.row_ctid, b.id, b.host, p.start, p.pace,
                     row_number() OVER (PARTITION BY b.host ORDER BY b.due, b.id) - 1 AS k
                FROM unnest(v_paced, v_paced_hosts, v_paced_ids, v_paced_due)
                       AS b(row_ctid, host, id, due)
                JOIN pacing p ON p.host = b.host) s
    ), held AS (
      -- At its send time, a pace after the one before; but for 10 s at most, then placed again
      -- at the pace of then: a backlog placed at the pace of a 429 would keep it for good.
      UPDATE nudge.reminders r
         SET occurrence_at = coalesce(r.occurrence_at, r.next_run_at),
             next_run_at = least(pl.start + pl.k / pl.pace * interval '1 second',
                                 now() + interval '10 seconds'),
             leased_by = NULL, lease_expires_at = NULL, updated_at = now()
        FROM placed pl
       WHERE r.id = pl.id AND NOT pl.goes
    ), sent AS (
      UPDATE nudge.target_hosts h
         SET next_send_at = s.start + s.taken / s.pace * interval '1 second', updated_at = now()
        FROM (SELECT pl.host, min(pl.start) AS start, min(pl.pace) AS pace,
                     count(*) FILTER (WHERE pl.goes) AS taken
                FROM placed pl GROUP BY pl.host) s
       WHERE h.host = s.host
    )
    SELECT array_agg(pl.row_ctid) FILTER (WHERE pl.goes) INTO v_sent FROM placed pl;
    v_take := ARRAY(SELECT t FROM unnest(v_take) AS t WHERE t <> ALL (v_paced))
              || coalesce(v_sent, '{}');
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
                r.attempt, coalesce(r.max_attempts, p_policy.max_attempts) + r.rate_limited,
                r.fire_count,
                CASE WHEN r.request IS NOT NULL
                     THEN nudge.rendered_request(r, coalesce(r.occurrence_at, r.next_run_at),
                                                 r.attempt) END,
                coalesce(r.id = ANY (v_rescued), false),
                nudge.free_rate_limited_tries() - r.rate_limited;
  END IF;
END $$;
COMMENT ON FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer, p_email_slots integer, p_pass_over text[]) IS
  'Leases up to p_limit due ACTIVE reminders, earliest first, passing over (neither locking nor taking) those whose target is LIKE any of p_pass_over when given, of which at most p_slots webhooks and emails and at most p_email_slots emails (each when given; log lines take no slot, and the rows past them are left due), to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts (attempt - rate_limited) were all used by workers that never finished them (recorded as failed), one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt saying up to when; the reminder moves to its first occurrence missed by no more than the threshold, due at once, or else its next future one), nor a webhook to a host whose circuit breaker is not closed (held until the breaker''s next_probe_at, occurrence and attempt kept), except one probe per host whose next_probe_at has passed (the held one with the fewest attempts used), which marks the breaker probing for lease_seconds (notified on nudge_breaker); a fire_all reminder starting a catch-up of more than fire_all_cap missed occurrences (up to ends_at) is returned at the first of the newest fire_all_cap of them (nudge.catch_up_kept), the older ones recorded as one skipped attempt at the oldest saying how many were dropped and from when to when; a webhook to a paced host (it answered 429: nudge.host_pace) goes only at the host''s pace and no sooner than its next_send_at, a second''s worth at once, the others held until their send times a pace apart, or for 10 s at most and then placed again (occurrence and attempt kept, no attempt used), and the rows of a paced host another claim is pacing are neither taken nor held; each fire''s max_attempts is the attempt number at which a failure ends its occurrence (its attempts plus the 429s that used none) and rate_limits_left how many more 429s would use none.';

-- 4. GET /v1/targets shows a paced host's pace.
CREATE OR REPLACE FUNCTION nudge.target_host_json(h nudge.target_hosts) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('host', h.host, 'state', h.state, 'failures', h.consecutive_failures,
                            'opened_at', h.opened_at, 'next_probe_at', h.next_probe_at,
                            'open_seconds', h.open_seconds, 'updated_at', h.updated_at,
                            'last_error', h.last_error, 'held', nudge.held_deliveries(h),
                            'pace', round(nudge.host_pace(h, now())::numeric, 3),
                            'next_send_at', CASE WHEN h.paced_until > now()
                                                 THEN greatest(h.next_send_at, now()) END)
$$;
COMMENT ON FUNCTION nudge.target_host_json(h nudge.target_hosts) IS
  'The public JSON form of a target host: its circuit breaker, with its last failed attempt''s error while it has failures (last_error) and the deliveries it holds (held, nudge.held_deliveries), and while it is paced (it answered 429) its pace now in deliveries a second (nudge.host_pace, 3 decimals) and the earliest a delivery may go to it (next_send_at); both null when it is not paced.';
