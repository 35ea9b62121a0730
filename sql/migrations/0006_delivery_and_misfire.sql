-- 0006: delivery that can be trusted, and what happens after downtime.
--
--   * Retries: a failed attempt keeps its occurrence (occurrence_at) and waits for a backoff
--     (next_run_at); attempts, backoff and the final outcome are decided here, so every worker
--     agrees. executions still gets one row per occurrence; delivery_attempts one per attempt.
--   * Recipients: a reminder without a target is delivered to its entity's address in contacts,
--     looked up at each claim, so a changed address takes effect at the next fire.
--   * Misfires: misfire_policy fire_once (one fire for everything missed, as before), skip (no
--     catch-up fire) or fire_all (each missed occurrence, up to a cap), for recurring and cron.
--
-- The lease token is (leased_by, attempt, occurrence): attempt counts the claims of the current
-- occurrence, so a worker whose lease was taken over can never finish someone else's attempt.

-- Guarantees: NULL when p_address is a usable address for p_channel, otherwise the problem
-- (webhook: an http or https URL of at most 2048 characters without spaces; email: one
-- plausible address). Other channels take anything.
CREATE FUNCTION nudge_address_problem(p_channel text, p_address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_address IS NULL THEN NULL
    WHEN p_channel = 'webhook' AND NOT (p_address ~* '^https?://([^/?#@\s]+@)?[a-z0-9.\-\[\]:]+([/?#]\S*)?$'
                                        AND length(p_address) <= 2048)
      THEN 'must be an http:// or https:// URL without spaces'
    WHEN p_channel = 'email' AND NOT (p_address ~ '^[^@\s<>(),;:"\[\]\\]+@[^@\s<>(),;:"\[\]\\]+\.[^@\s<>(),;:"\[\]\\]+$'
                                      AND length(p_address) <= 254)
      THEN 'must be an email address like someone@example.com'
  END
$$;

ALTER TABLE reminder_jobs
  ADD COLUMN misfire_policy text NOT NULL DEFAULT 'fire_once',
  -- Attempts per occurrence; NULL: the worker's [retry] max_attempts.
  ADD COLUMN max_attempts integer,
  -- The occurrence a retry is waiting to deliver again (next_run_at is then the retry time).
  ADD COLUMN occurrence_at timestamptz,
  -- Missed occurrences fired so far in the current catch-up (fire_all).
  ADD COLUMN catch_up_fires integer NOT NULL DEFAULT 0;

-- NOT VALID: rows written before this migration are not re-checked (an old bad target fails at
-- delivery, with a clear error); every new or changed row is.
ALTER TABLE reminder_jobs
  ADD CONSTRAINT misfire_policy_is_known
    CHECK (misfire_policy IN ('fire_once', 'skip', 'fire_all')),
  ADD CONSTRAINT one_time_misfire_policy_is_fire_once
    CHECK (schedule_type <> 'one_time' OR misfire_policy = 'fire_once'),
  ADD CONSTRAINT max_attempts_is_1_to_100 CHECK (max_attempts BETWEEN 1 AND 100),
  ADD CONSTRAINT catch_up_fires_is_not_negative CHECK (catch_up_fires >= 0),
  ADD CONSTRAINT target_fits_channel CHECK (nudge_address_problem(channel, target) IS NULL) NOT VALID;

-- Where reminders without a target are delivered. Users fill it with plain SQL or the API.
CREATE TABLE contacts (
  entity_type text        NOT NULL,
  entity_id   text        NOT NULL,
  channel     text        NOT NULL,
  address     text        NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT one_address_per_entity_and_channel PRIMARY KEY (entity_type, entity_id, channel),
  CONSTRAINT contact_entity_type_is_1_to_200_chars CHECK (length(entity_type) BETWEEN 1 AND 200),
  CONSTRAINT contact_entity_id_is_1_to_200_chars CHECK (length(entity_id) BETWEEN 1 AND 200),
  CONSTRAINT contact_channel_is_webhook_or_email CHECK (channel IN ('webhook', 'email')),
  CONSTRAINT contact_address_fits_channel CHECK (nudge_address_problem(channel, address) IS NULL)
);

CREATE TRIGGER contact_change_sets_updated_at
  BEFORE UPDATE ON contacts
  FOR EACH ROW EXECUTE FUNCTION nudge_touch_updated_at();

CREATE TABLE delivery_attempts (
  reminder_id   bigint      NOT NULL,
  scheduled_for timestamptz NOT NULL,
  attempt       integer     NOT NULL,
  attempted_at  timestamptz NOT NULL DEFAULT now(),
  outcome       text        NOT NULL,
  status_code   integer,
  error         text,
  response      text,
  duration_ms   integer,
  worker        text        NOT NULL,
  CONSTRAINT one_row_per_attempt PRIMARY KEY (reminder_id, scheduled_for, attempt),
  CONSTRAINT attempt_outcome_is_known CHECK (outcome IN ('delivered', 'failed', 'skipped')),
  CONSTRAINT attempt_number_is_positive CHECK (attempt >= 1),
  CONSTRAINT attempt_error_is_at_most_2000_chars CHECK (length(error) <= 2000),
  CONSTRAINT attempt_response_is_at_most_1024_chars CHECK (length(response) <= 1024),
  CONSTRAINT attempt_duration_is_not_negative CHECK (duration_ms >= 0)
);
-- No foreign key, as for executions: history outlives pruned reminders.
CREATE INDEX delivery_attempts_by_attempted_at ON delivery_attempts USING brin (attempted_at);

-- Guarantees: the occurrence a reminder is on: the one being retried, else its next run.
CREATE FUNCTION nudge_current_occurrence(r reminder_jobs) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(r.occurrence_at, r.next_run_at)
$$;

-- Guarantees: the first occurrence of a recurring or cron reminder strictly after p_after
-- (interval occurrences keep the phase of the current occurrence); a one_time reminder's own.
CREATE FUNCTION nudge_occurrence_after(r reminder_jobs, p_after timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT CASE r.schedule_type
           WHEN 'recurring' THEN nudge_next_interval_occurrence(nudge_current_occurrence(r),
                                                                r.interval_seconds, p_after)
           WHEN 'cron' THEN coalesce(nudge_cron_next(r.cron_schedule, r.timezone, p_after), 'infinity')
           ELSE nudge_current_occurrence(r) END
$$;

-- Guarantees: true while a fire_all reminder is catching up and under p_cap: its next
-- occurrence is the one right after the current one, even if that is already past.
CREATE FUNCTION nudge_catching_up(r reminder_jobs, p_now timestamptz, p_cap integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT r.misfire_policy = 'fire_all' AND r.schedule_type <> 'one_time'
         AND r.catch_up_fires + 1 < p_cap
         AND nudge_occurrence_after(r, nudge_current_occurrence(r)) <= p_now
$$;

-- Guarantees: where a reminder goes once its current occurrence has ended: fire_all while
-- catching up takes the next missed occurrence; otherwise the first occurrence after p_now
-- (missed ones collapse into the fire that just ended); a one_time reminder keeps its time.
CREATE FUNCTION nudge_next_run_after_occurrence(r reminder_jobs, p_now timestamptz, p_cap integer)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN nudge_catching_up(r, p_now, p_cap)
              THEN nudge_occurrence_after(r, nudge_current_occurrence(r))
              ELSE nudge_occurrence_after(r, greatest(p_now, nudge_current_occurrence(r))) END
$$;

-- Guarantees: as nudge_status_after_fire (0002), for an occurrence that ended with p_outcome
-- after its retries: a status other than ACTIVE or PAUSED is kept; one_time ends COMPLETED or
-- FAILED; recurring and cron complete on max_fires or when the next run falls after ends_at.
CREATE FUNCTION nudge_status_after_occurrence(r reminder_jobs, p_outcome text, p_now timestamptz,
                                              p_cap integer) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN r.status NOT IN ('ACTIVE', 'PAUSED') THEN r.status
    WHEN r.schedule_type = 'one_time' AND p_outcome = 'failed' THEN 'FAILED'
    WHEN r.schedule_type = 'one_time' THEN 'COMPLETED'
    WHEN r.fire_count + 1 >= r.max_fires THEN 'COMPLETED'
    WHEN CASE WHEN r.ends_at IS NULL THEN false
              ELSE nudge_next_run_after_occurrence(r, p_now, p_cap) > r.ends_at END THEN 'COMPLETED'
    ELSE r.status
  END
$$;

-- Guarantees: the completed_reason that goes with nudge_status_after_occurrence.
CREATE FUNCTION nudge_completed_reason_after_occurrence(r reminder_jobs, p_outcome text,
                                                        p_now timestamptz, p_cap integer)
RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN r.status NOT IN ('ACTIVE', 'PAUSED') THEN r.completed_reason
    WHEN r.schedule_type = 'one_time' AND p_outcome = 'failed' THEN 'attempts_exhausted'
    WHEN r.schedule_type = 'one_time' THEN 'fired'
    WHEN r.fire_count + 1 >= r.max_fires THEN 'max_fires'
    WHEN CASE WHEN r.ends_at IS NULL THEN false
              ELSE nudge_next_run_after_occurrence(r, p_now, p_cap) > r.ends_at END THEN 'ends_at'
  END
$$;

-- Guarantees: true when an attempt that ended with p_outcome leaves its occurrence to be tried
-- again: it failed, attempts remain, and the reminder is still live.
CREATE FUNCTION nudge_retry_after_attempt(r reminder_jobs, p_outcome text, p_default_max_attempts integer)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT p_outcome = 'failed' AND r.status IN ('ACTIVE', 'PAUSED')
         AND r.attempt < coalesce(r.max_attempts, p_default_max_attempts)
$$;

-- Guarantees: the delay before attempt n+1 after attempt n failed: "full jitter", uniformly
-- random in [0, min(p_max_ms, p_base_ms * 2^(n-1))] milliseconds.
CREATE FUNCTION nudge_retry_delay(p_attempt integer, p_base_ms integer, p_max_ms integer)
RETURNS interval
LANGUAGE sql VOLATILE AS $$
  SELECT random() * least(p_max_ms::double precision,
                          p_base_ms * power(2::double precision, least(greatest(p_attempt, 1) - 1, 40)))
         * interval '1 millisecond'
$$;

-- A claimed attempt as a worker needs it for delivery (nudge_fire of 0002 plus the attempt
-- budget; target already resolved through contacts).
CREATE TYPE nudge_fire_v2 AS (
  id            bigint,
  entity_type   text,
  entity_id     text,
  event_type    text,
  channel       text,
  target        text,
  payload       jsonb,
  schedule_type text,
  scheduled_for timestamptz,
  attempt       integer,
  max_attempts  integer,
  fire_count    integer
);

-- The policy a worker applies, from its configuration (see config/nudge.toml).
CREATE TYPE nudge_worker_policy AS (
  lease_seconds             integer,  -- how long a claim is held
  max_attempts              integer,  -- attempts per occurrence unless the reminder sets its own
  retry_base_ms             integer,  -- backoff base and cap
  retry_max_ms              integer,
  misfire_threshold_seconds integer,  -- later than this counts as missed (skip)
  fire_all_cap              integer   -- most missed occurrences fired per catch-up (fire_all)
);

-- Guarantees: records each attempt the calling worker still holds the lease on exactly once in
-- delivery_attempts. A failed attempt with attempts left keeps its occurrence and waits a
-- backoff; otherwise the occurrence ends: it is recorded once in executions (outcome, attempts
-- it took) and the reminder moves on (nudge_status_after_occurrence). An attempt whose lease
-- was lost changes nothing. Returns how many attempts were recorded.
CREATE FUNCTION nudge_finish_attempts_v2(p_worker text, p_policy nudge_worker_policy,
                                         p_ids bigint[], p_scheduled_for timestamptz[],
                                         p_attempts integer[], p_outcomes text[], p_errors text[],
                                         p_status_codes integer[], p_responses text[],
                                         p_durations_ms integer[])
RETURNS integer
-- As nudge_finish_fires_v1: cached plan, key lookups only.
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  v_recorded integer;
  v_max      integer := p_policy.max_attempts;
  v_cap      integer := p_policy.fire_all_cap;
BEGIN
  WITH moved AS (
    -- The lease token is in the WHERE clause, so a concurrent change (pause, cancel, a stop
    -- flag) is waited for and every decision below is made on the row as it is then.
    UPDATE reminder_jobs r
       SET occurrence_at = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max)
                                THEN nudge_current_occurrence(r) END,
           next_run_at = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max)
                              THEN now() + nudge_retry_delay(r.attempt, p_policy.retry_base_ms,
                                                             p_policy.retry_max_ms)
                              ELSE nudge_next_run_after_occurrence(r, now(), v_cap) END,
           status = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max) THEN r.status
                         ELSE nudge_status_after_occurrence(r, i.outcome, now(), v_cap) END,
           completed_reason = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max)
                                   THEN r.completed_reason
                                   ELSE nudge_completed_reason_after_occurrence(r, i.outcome, now(), v_cap) END,
           finished_at = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max) THEN r.finished_at
                              WHEN nudge_status_after_occurrence(r, i.outcome, now(), v_cap)
                                   IN ('ACTIVE', 'PAUSED') THEN NULL
                              ELSE coalesce(r.finished_at, now()) END,
           fire_count = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max) THEN r.fire_count
                             ELSE r.fire_count + 1 END,
           catch_up_fires = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max) THEN r.catch_up_fires
                                 WHEN nudge_catching_up(r, now(), v_cap) THEN r.catch_up_fires + 1
                                 ELSE 0 END,
           attempt = CASE WHEN nudge_retry_after_attempt(r, i.outcome, v_max) THEN r.attempt ELSE 0 END,
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors, p_status_codes,
                  p_responses, p_durations_ms)
             AS i(id, scheduled_for, attempt, outcome, error, status_code, response, duration_ms)
     WHERE r.id = i.id AND r.leased_by = p_worker AND r.attempt = i.attempt
       AND coalesce(r.occurrence_at, r.next_run_at) = i.scheduled_for
    RETURNING r.id, i.scheduled_for, i.attempt, i.outcome, left(i.error, 2000) AS error,
              i.status_code, left(i.response, 1024) AS response, i.duration_ms,
              r.occurrence_at IS NULL AS ended, r.channel
  ), attempts AS (
    INSERT INTO delivery_attempts (reminder_id, scheduled_for, attempt, outcome, status_code,
                                   error, response, duration_ms, worker)
    SELECT m.id, m.scheduled_for, m.attempt, m.outcome, m.status_code, m.error, m.response,
           greatest(m.duration_ms, 0), p_worker
      FROM moved m
     -- A log line written is the whole story of its delivery, already told by executions;
     -- skipping its attempt row keeps the log channel's drain as fast as before (-20% with it).
     WHERE NOT (m.channel = 'log' AND m.outcome = 'delivered')
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING
    RETURNING 1
  ), recorded AS (
    INSERT INTO executions (reminder_id, scheduled_for, outcome, attempts, worker, error)
    SELECT m.id, m.scheduled_for, m.outcome, m.attempt, p_worker, m.error FROM moved m WHERE m.ended
    ON CONFLICT ON CONSTRAINT one_execution_per_occurrence DO NOTHING
  )
  SELECT count(*)::integer INTO v_recorded FROM moved;
  RETURN v_recorded;
END $$;

-- Guarantees: leases up to p_limit due ACTIVE reminders, earliest first, to p_worker for
-- p_policy.lease_seconds (database clock), skipping rows other workers hold, each with its
-- delivery address (target, else contacts). Never returns a reminder whose stop flag is true
-- (completed instead), nor an occurrence whose attempts were all used by workers that never
-- finished them (recorded as failed), nor an occurrence missed by more than the threshold under
-- misfire_policy skip (recorded as a skipped attempt; the reminder moves to its next future
-- occurrence).
CREATE FUNCTION nudge_claim_due_v2(p_worker text, p_limit integer, p_policy nudge_worker_policy)
RETURNS SETOF nudge_fire_v2
-- Revisiting a batch by ctid must be a TID lookup, never a scan (see nudge_finish_fires_v1).
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  v_take      tid[];
  v_stop      tid[];
  v_exhausted tid[];
  v_missed    tid[];
  v_ids       bigint[];
  v_at        timestamptz[];
  v_attempts  integer[];
  v_count     integer;
BEGIN
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted AND NOT d.missed),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.missed AND NOT d.exhausted AND NOT d.stop_now)
    INTO v_take, v_stop, v_exhausted, v_missed
    FROM (SELECT r.ctid AS row_ctid,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt >= coalesce(r.max_attempts, p_policy.max_attempts) AS exhausted,
                 r.misfire_policy = 'skip' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.next_run_at < now() - p_policy.misfire_threshold_seconds * interval '1 second'
                   AS missed
            FROM reminder_jobs r
           WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
             AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
           ORDER BY r.next_run_at
           LIMIT p_limit
             FOR UPDATE OF r SKIP LOCKED) d;

  -- A flag can turn true in a transaction the stop trigger could not see (a reminder created
  -- concurrently); catching it here keeps "a true flag stops it" without exception.
  IF v_stop IS NOT NULL THEN
    UPDATE reminder_jobs
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(),
           updated_at = now(), attempt = 0, occurrence_at = NULL, leased_by = NULL,
           lease_expires_at = NULL
     WHERE ctid = ANY (v_stop);
  END IF;

  -- Workers that claimed this occurrence as often as it may be attempted all died or timed
  -- out: record it as failed instead of letting it crash workers forever.
  IF v_exhausted IS NOT NULL THEN
    WITH taken AS (
      UPDATE reminder_jobs r SET leased_by = p_worker, lease_expires_at = now()
       WHERE ctid = ANY (v_exhausted)
      RETURNING r.id, coalesce(r.occurrence_at, r.next_run_at) AS occurrence, r.attempt)
    SELECT array_agg(id), array_agg(occurrence), array_agg(attempt), count(*)
      INTO v_ids, v_at, v_attempts, v_count FROM taken;
    PERFORM nudge_finish_attempts_v2(
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
      SELECT r.id, r.next_run_at, nudge_occurrence_after(r, now()) AS next_at
        FROM reminder_jobs r WHERE r.ctid = ANY (v_missed)
    ), skipped AS (
      UPDATE reminder_jobs r
         SET next_run_at = m.next_at,
             status = CASE WHEN r.ends_at < m.next_at THEN 'COMPLETED' ELSE r.status END,
             completed_reason = CASE WHEN r.ends_at < m.next_at THEN 'ends_at' END,
             finished_at = CASE WHEN r.ends_at < m.next_at THEN now() END,
             catch_up_fires = 0, updated_at = now()
        FROM missed m
       WHERE r.id = m.id
      RETURNING r.id)
    INSERT INTO delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
    SELECT m.id, m.next_run_at, 1, 'skipped',
           format('missed by more than %s s (misfire_policy skip)', p_policy.misfire_threshold_seconds),
           p_worker
      FROM missed m JOIN skipped s ON s.id = m.id
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING;
  END IF;

  IF v_take IS NOT NULL THEN
    RETURN QUERY
      UPDATE reminder_jobs r
         SET leased_by = p_worker,
             lease_expires_at = now() + p_policy.lease_seconds * interval '1 second',
             attempt = r.attempt + 1
       WHERE r.ctid = ANY (v_take)
      RETURNING r.id, r.entity_type, r.entity_id, r.event_type, r.channel,
                coalesce(r.target,
                         CASE WHEN r.channel <> 'log' THEN
                           (SELECT c.address FROM contacts c
                             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
                               AND c.channel = r.channel) END),
                r.payload, r.schedule_type, coalesce(r.occurrence_at, r.next_run_at),
                r.attempt, coalesce(r.max_attempts, p_policy.max_attempts), r.fire_count;
  END IF;
END $$;

-- Guarantees: the worker's whole round trip in one transaction: record the attempts that
-- ended, then claim up to p_limit more (0 claims nothing).
CREATE FUNCTION nudge_finish_and_claim_v2(p_worker text, p_policy nudge_worker_policy,
                                          p_ids bigint[], p_scheduled_for timestamptz[],
                                          p_attempts integer[], p_outcomes text[], p_errors text[],
                                          p_status_codes integer[], p_responses text[],
                                          p_durations_ms integer[], p_limit integer)
RETURNS SETOF nudge_fire_v2
LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(p_ids) > 0 THEN
    PERFORM nudge_finish_attempts_v2(p_worker, p_policy, p_ids, p_scheduled_for, p_attempts,
                                     p_outcomes, p_errors, p_status_codes, p_responses,
                                     p_durations_ms);
  END IF;
  IF p_limit > 0 THEN
    RETURN QUERY SELECT * FROM nudge_claim_due_v2(p_worker, p_limit, p_policy);
  END IF;
END $$;

-- Guarantees: as in 0002, and delivery_attempts is pruned by the same retention.
CREATE OR REPLACE FUNCTION nudge_prune_history_v1(p_keep interval, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_executions integer;
  v_attempts   integer;
  v_reminders  integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('nudge_prune_history')) THEN
    RETURN 0;
  END IF;
  DELETE FROM executions e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM executions x
                              WHERE x.fired_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_executions = ROW_COUNT;
  DELETE FROM delivery_attempts a
   WHERE a.ctid = ANY (ARRAY(SELECT x.ctid FROM delivery_attempts x
                              WHERE x.attempted_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_attempts = ROW_COUNT;
  DELETE FROM reminder_jobs r
   WHERE r.id = ANY (ARRAY(SELECT x.id FROM reminder_jobs x
                            WHERE x.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
                              AND x.finished_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_reminders = ROW_COUNT;
  RETURN v_executions + v_attempts + v_reminders;
END $$;

-- Guarantees: as in 0005, plus the misfire policy, the attempt budget and, while an occurrence
-- is being retried, which one and how many attempts it has had.
CREATE OR REPLACE FUNCTION nudge_reminder_json(r reminder_jobs) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'id', r.id, 'entity_type', r.entity_type, 'entity_id', r.entity_id,
    'event_type', r.event_type, 'channel', r.channel, 'target', r.target,
    'payload', r.payload, 'schedule_type', r.schedule_type,
    'interval_seconds', r.interval_seconds, 'cron', r.cron, 'timezone', r.timezone,
    'misfire_policy', r.misfire_policy, 'max_attempts', r.max_attempts,
    'next_run_at', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.next_run_at END,
    'retrying_occurrence', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.occurrence_at END,
    'attempts', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') AND r.occurrence_at IS NOT NULL
                     THEN r.attempt END,
    'stop_condition_type', r.stop_condition_type,
    'stop_condition_value', r.stop_condition_value, 'max_fires', r.max_fires,
    'ends_at', r.ends_at, 'fire_count', r.fire_count, 'status', r.status,
    'completed_reason', r.completed_reason, 'last_error', r.last_error,
    'created_at', r.created_at, 'updated_at', r.updated_at, 'finished_at', r.finished_at))
$$;

-- Guarantees: the public JSON form of one delivery attempt.
CREATE FUNCTION nudge_attempt_json(a delivery_attempts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'attempt', a.attempt, 'attempted_at', a.attempted_at, 'outcome', a.outcome,
    'status_code', a.status_code, 'error', a.error, 'response', a.response,
    'duration_ms', a.duration_ms, 'worker', a.worker))
$$;

-- Guarantees: as in 0003, with the occurrence's delivery attempts, oldest first.
CREATE OR REPLACE FUNCTION nudge_execution_json(e executions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'reminder_id', e.reminder_id, 'scheduled_for', e.scheduled_for, 'fired_at', e.fired_at,
    'outcome', e.outcome, 'attempts', e.attempts, 'worker', e.worker, 'error', e.error,
    'delivery_attempts', (SELECT jsonb_agg(nudge_attempt_json(a) ORDER BY a.attempt)
                            FROM delivery_attempts a
                           WHERE a.reminder_id = e.reminder_id AND a.scheduled_for = e.scheduled_for)))
$$;

-- Guarantees: sets where (p_entity_type, p_entity_id) is reached on p_channel (webhook or
-- email), replacing the old address; it applies from the next claim on. Bad input raises 22023
-- naming the field. Returns the contact.
CREATE FUNCTION nudge_put_contact_v1(p_entity_type text, p_entity_id text, p_channel text,
                                     p_address text) RETURNS contacts
LANGUAGE plpgsql AS $$
DECLARE
  v_contact contacts;
  v_problem text;
BEGIN
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('entity_type', 'must be 1 to 200 characters');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('entity_id', 'must be 1 to 200 characters');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('webhook', 'email') THEN
    PERFORM nudge_reject('channel', 'must be webhook or email');
  END IF;
  IF p_address IS NULL THEN
    PERFORM nudge_reject('address', 'is required');
  END IF;
  v_problem := nudge_address_problem(p_channel, p_address);
  IF v_problem IS NOT NULL THEN
    PERFORM nudge_reject('address', v_problem);
  END IF;
  INSERT INTO contacts AS c (entity_type, entity_id, channel, address)
  VALUES (p_entity_type, p_entity_id, p_channel, p_address)
  ON CONFLICT ON CONSTRAINT one_address_per_entity_and_channel
  DO UPDATE SET address = EXCLUDED.address
  RETURNING c.* INTO v_contact;
  RETURN v_contact;
END $$;

-- Guarantees: the public JSON form of a contact.
CREATE FUNCTION nudge_contact_json(c contacts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('entity_type', c.entity_type, 'entity_id', c.entity_id,
                            'channel', c.channel, 'address', c.address, 'updated_at', c.updated_at)
$$;

-- Guarantees: nudge_create_reminder_v2's guarantees, plus: the target must suit the channel
-- (nudge_address_problem; none means the contacts table at each fire), misfire_policy (default
-- fire_once; skip and fire_all only for recurring and cron) and max_attempts (1..100, default
-- the worker's) are checked and stored.
CREATE FUNCTION nudge_create_reminder_v3(
  p_entity_type          text,
  p_entity_id            text,
  p_event_type           text,
  p_channel              text,
  p_schedule_type        text,
  p_run_at               timestamptz DEFAULT NULL,
  p_interval_seconds     integer     DEFAULT NULL,
  p_target               text        DEFAULT NULL,
  p_payload              jsonb       DEFAULT '{}'::jsonb,
  p_stop_condition_type  text        DEFAULT NULL,
  p_stop_condition_value text        DEFAULT NULL,
  p_max_fires            integer     DEFAULT NULL,
  p_ends_at              timestamptz DEFAULT NULL,
  p_cron                 text        DEFAULT NULL,
  p_timezone             text        DEFAULT NULL,
  p_misfire_policy       text        DEFAULT NULL,
  p_max_attempts         integer     DEFAULT NULL)
RETURNS TABLE (created boolean, reminder reminder_jobs)
LANGUAGE plpgsql AS $$
DECLARE
  v_row     reminder_jobs;
  v_run_at  timestamptz := p_run_at;
  v_stopped boolean := false;
  v_parsed  nudge_cron;
  v_zone    text;
BEGIN
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('entity_type', 'must be 1 to 200 characters');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('entity_id', 'must be 1 to 200 characters');
  END IF;
  IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('event_type', 'must be 1 to 200 characters');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge_reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF length(p_target) > 2048 THEN
    PERFORM nudge_reject('target', 'must be at most 2048 characters');
  END IF;
  IF nudge_address_problem(p_channel, p_target) IS NOT NULL THEN
    PERFORM nudge_reject('target', nudge_address_problem(p_channel, p_target));
  END IF;
  IF p_misfire_policy IS NOT NULL AND p_misfire_policy NOT IN ('fire_once', 'skip', 'fire_all') THEN
    PERFORM nudge_reject('misfire_policy', 'must be one of fire_once, skip, fire_all');
  END IF;
  IF p_misfire_policy IN ('skip', 'fire_all') AND p_schedule_type = 'one_time' THEN
    PERFORM nudge_reject('misfire_policy', 'is only for recurring and cron reminders');
  END IF;
  IF p_max_attempts IS NOT NULL AND p_max_attempts NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge_reject('max_attempts', 'must be 1 to 100');
  END IF;
  IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge_reject('payload', 'must be a JSON object');
  END IF;
  IF pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge_reject('payload', 'must be at most 64 KiB');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF v_run_at IS NULL THEN PERFORM nudge_reject('run_at', 'is required for one_time'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge_reject('interval_seconds', 'is only for recurring reminders');
    END IF;
  ELSIF p_schedule_type = 'recurring' THEN
    IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge_reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
    v_run_at := coalesce(v_run_at, now());
  ELSIF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge_reject('cron', 'is required for cron'); END IF;
    IF length(p_cron) > 200 THEN PERFORM nudge_reject('cron', 'must be at most 200 characters'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge_reject('interval_seconds', 'is not for cron reminders');
    END IF;
    v_zone := coalesce(p_timezone, 'UTC');
    -- The first fire: the first occurrence at or after run_at (default now). The text form
    -- checks the zone and the expression, naming the field that is wrong.
    v_run_at := nudge_cron_next(p_cron, v_zone, coalesce(v_run_at, now()) - interval '1 microsecond');
    v_parsed := nudge_cron_parse(p_cron);
  ELSE
    PERFORM nudge_reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_schedule_type <> 'cron' AND (p_cron IS NOT NULL OR p_timezone IS NOT NULL) THEN
    PERFORM nudge_reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron reminders');
  END IF;
  IF p_stop_condition_type IS NULL AND p_stop_condition_value IS NOT NULL THEN
    PERFORM nudge_reject('stop_condition_type', 'is required with stop_condition_value');
  ELSIF p_stop_condition_type IS NOT NULL AND p_stop_condition_type <> 'db_check' THEN
    PERFORM nudge_reject('stop_condition_type', 'must be db_check');
  ELSIF p_stop_condition_type = 'db_check'
        AND (p_stop_condition_value IS NULL OR length(p_stop_condition_value) NOT BETWEEN 1 AND 200) THEN
    PERFORM nudge_reject('stop_condition_value', 'must be a flag key of 1 to 200 characters');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge_reject('max_fires', 'must be at least 1');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_run_at THEN
    PERFORM nudge_reject('ends_at', 'must not be before the first fire (run_at)');
  END IF;

  IF p_stop_condition_type = 'db_check' THEN
    SELECT coalesce(f.value, false) INTO v_stopped FROM status_flags f WHERE f.key = p_stop_condition_value;
    v_stopped := coalesce(v_stopped, false);
  END IF;

  LOOP
    -- A stopped reminder is inserted COMPLETED, which the identity index does not cover: look
    -- for the live one ourselves. Two such racing creates can only add finished rows.
    IF v_stopped THEN
      SELECT r.* INTO v_row FROM reminder_jobs r
       WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
         AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
      IF FOUND THEN
        RETURN QUERY SELECT false, v_row;
        RETURN;
      END IF;
    END IF;
    INSERT INTO reminder_jobs AS r (entity_type, entity_id, event_type, channel, target, payload,
                                    schedule_type, interval_seconds, next_run_at,
                                    stop_condition_type, stop_condition_value, max_fires, ends_at,
                                    cron, timezone, cron_schedule, misfire_policy, max_attempts,
                                    status, completed_reason, finished_at)
    VALUES (p_entity_type, p_entity_id, p_event_type, p_channel, p_target, p_payload,
            p_schedule_type, p_interval_seconds, v_run_at,
            p_stop_condition_type, p_stop_condition_value, p_max_fires, p_ends_at,
            CASE WHEN p_schedule_type = 'cron' THEN p_cron END, v_zone, v_parsed,
            coalesce(p_misfire_policy, 'fire_once'), p_max_attempts,
            CASE WHEN v_stopped THEN 'COMPLETED' ELSE 'ACTIVE' END,
            CASE WHEN v_stopped THEN 'stop_condition' END,
            CASE WHEN v_stopped THEN now() END)
    ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
    RETURNING r.* INTO v_row;
    IF FOUND THEN
      RETURN QUERY SELECT true, v_row;
      RETURN;
    END IF;
    -- Someone holds this identity: return their reminder. If it finished in between, insert again.
    SELECT r.* INTO v_row FROM reminder_jobs r
     WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
       AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
    IF FOUND THEN
      RETURN QUERY SELECT false, v_row;
      RETURN;
    END IF;
  END LOOP;
END $$;

-- Guarantees: exactly nudge_create_reminder_v3 with the default misfire policy and attempts.
CREATE OR REPLACE FUNCTION nudge_create_reminder_v2(
  p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text,
  p_run_at timestamptz DEFAULT NULL, p_interval_seconds integer DEFAULT NULL,
  p_target text DEFAULT NULL, p_payload jsonb DEFAULT '{}'::jsonb,
  p_stop_condition_type text DEFAULT NULL, p_stop_condition_value text DEFAULT NULL,
  p_max_fires integer DEFAULT NULL, p_ends_at timestamptz DEFAULT NULL,
  p_cron text DEFAULT NULL, p_timezone text DEFAULT NULL)
RETURNS TABLE (created boolean, reminder reminder_jobs)
LANGUAGE sql AS $$
  SELECT * FROM nudge_create_reminder_v3(p_entity_type, p_entity_id, p_event_type, p_channel,
                                         p_schedule_type, p_run_at, p_interval_seconds, p_target,
                                         p_payload, p_stop_condition_type, p_stop_condition_value,
                                         p_max_fires, p_ends_at, p_cron, p_timezone)
$$;

-- Guarantees: as in 0003, through nudge_create_reminder_v3 (misfire_policy, max_attempts).
CREATE OR REPLACE FUNCTION nudge_create_reminders_one_by_one(p_items jsonb)
RETURNS TABLE (item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_field  text;
  v_detail text;
BEGIN
  -- One exception block around the loop (one subtransaction per batch, not per item) so an
  -- error can say which item it came from.
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      RETURN QUERY
        SELECT v_index, c.created, nudge_reminder_json(c.reminder)
          FROM nudge_create_reminder_v3(
                 p_entity_type => v_item->>'entity_type',
                 p_entity_id => v_item->>'entity_id',
                 p_event_type => v_item->>'event_type',
                 p_channel => v_item->>'channel',
                 p_schedule_type => v_item->>'schedule_type',
                 p_run_at => (v_item->>'run_at')::timestamptz,
                 p_interval_seconds => (v_item->>'interval_seconds')::integer,
                 p_target => v_item->>'target',
                 p_payload => coalesce(v_item->'payload', '{}'::jsonb),
                 p_stop_condition_type => v_item->>'stop_condition_type',
                 p_stop_condition_value => v_item->>'stop_condition_value',
                 p_max_fires => (v_item->>'max_fires')::integer,
                 p_ends_at => (v_item->>'ends_at')::timestamptz,
                 p_cron => v_item->>'cron',
                 p_timezone => v_item->>'timezone',
                 p_misfire_policy => v_item->>'misfire_policy',
                 p_max_attempts => (v_item->>'max_attempts')::integer) c;
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
    RAISE EXCEPTION 'items[%].%', v_index, v_detail
      USING ERRCODE = '22023', COLUMN = format('items[%s].%s', v_index, v_field);
  END;
END $$;

-- Guarantees: as in 0003, now for cron items too (set-based as well), with misfire_policy and
-- max_attempts, and answers exactly as nudge_create_reminders_one_by_one would.
CREATE OR REPLACE FUNCTION nudge_create_reminders_v1(p_items jsonb)
RETURNS TABLE (item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_plain boolean;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge_reject('items', 'must be an array');
  END IF;
  CREATE TEMP TABLE IF NOT EXISTS nudge_batch_item_v2 (
    item integer, entity_type text, entity_id text, event_type text, channel text,
    schedule_type text, run_at timestamptz, interval_seconds integer, target text,
    payload jsonb, stop_condition_type text, stop_condition_value text, max_fires integer,
    ends_at timestamptz, cron text, timezone text, cron_schedule nudge_cron,
    misfire_policy text, max_attempts integer, id bigint, created boolean) ON COMMIT DELETE ROWS;
  DELETE FROM nudge_batch_item_v2;  -- a second batch in the same transaction
  BEGIN
    INSERT INTO nudge_batch_item_v2
    SELECT (e.ord - 1)::integer, e.v->>'entity_type', e.v->>'entity_id', e.v->>'event_type',
           e.v->>'channel', e.v->>'schedule_type',
           CASE e.v->>'schedule_type'
                WHEN 'recurring' THEN coalesce((e.v->>'run_at')::timestamptz, now())
                -- As nudge_create_reminder_v3: the first occurrence at or after run_at. A bad
                -- expression or zone raises 22023 and sends the batch down the exact path.
                WHEN 'cron' THEN nudge_cron_next(e.v->>'cron', coalesce(e.v->>'timezone', 'UTC'),
                                                 coalesce((e.v->>'run_at')::timestamptz, now())
                                                   - interval '1 microsecond')
                ELSE (e.v->>'run_at')::timestamptz END,
           (e.v->>'interval_seconds')::integer, e.v->>'target',
           coalesce(e.v->'payload', '{}'::jsonb), e.v->>'stop_condition_type',
           e.v->>'stop_condition_value', (e.v->>'max_fires')::integer,
           (e.v->>'ends_at')::timestamptz,
           CASE WHEN e.v->>'schedule_type' = 'cron' THEN e.v->>'cron' END,
           CASE WHEN e.v->>'schedule_type' = 'cron' THEN coalesce(e.v->>'timezone', 'UTC') END,
           CASE WHEN e.v->>'schedule_type' = 'cron' THEN nudge_cron_parse(e.v->>'cron') END,
           coalesce(e.v->>'misfire_policy', 'fire_once'), (e.v->>'max_attempts')::integer,
           NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord);

    SELECT NOT EXISTS (SELECT 1 FROM nudge_batch_item_v2 b
                        WHERE b.ends_at < b.run_at OR b.run_at IS NULL
                           OR jsonb_typeof(b.payload) <> 'object'
                           -- rules the create function checks and no constraint does
                           OR (b.schedule_type <> 'cron' AND (b.cron IS NOT NULL OR b.timezone IS NOT NULL))
                           OR (b.schedule_type = 'cron' AND length(b.cron) > 200)
                           OR EXISTS (SELECT 1 FROM status_flags f
                                       WHERE f.key = b.stop_condition_value AND f.value))
       AND NOT EXISTS (SELECT 1 FROM nudge_batch_item_v2 b
                        GROUP BY b.entity_type, b.entity_id, b.event_type HAVING count(*) > 1)
      INTO v_plain;

    IF v_plain THEN
      WITH inserted AS (
        INSERT INTO reminder_jobs AS r (entity_type, entity_id, event_type, channel, target,
                                        payload, schedule_type, interval_seconds, next_run_at,
                                        stop_condition_type, stop_condition_value, max_fires,
                                        ends_at, cron, timezone, cron_schedule, misfire_policy,
                                        max_attempts)
        SELECT b.entity_type, b.entity_id, b.event_type, b.channel, b.target, b.payload,
               b.schedule_type, b.interval_seconds, b.run_at, b.stop_condition_type,
               b.stop_condition_value, b.max_fires, b.ends_at, b.cron, b.timezone,
               b.cron_schedule, b.misfire_policy, b.max_attempts
          FROM nudge_batch_item_v2 b ORDER BY b.item
        ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED')
        DO NOTHING
        RETURNING r.id, r.entity_type, r.entity_id, r.event_type)
      UPDATE nudge_batch_item_v2 b SET id = i.id, created = true
        FROM inserted i
       WHERE (b.entity_type, b.entity_id, b.event_type) = (i.entity_type, i.entity_id, i.event_type);
      -- Items whose identity is already live: that reminder is the answer.
      UPDATE nudge_batch_item_v2 b SET id = r.id, created = false
        FROM reminder_jobs r
       WHERE b.id IS NULL AND r.status IN ('ACTIVE', 'PAUSED')
         AND (r.entity_type, r.entity_id, r.event_type) = (b.entity_type, b.entity_id, b.event_type);
      v_plain := NOT EXISTS (SELECT 1 FROM nudge_batch_item_v2 b WHERE b.id IS NULL);
    END IF;
  EXCEPTION WHEN invalid_parameter_value OR check_violation OR not_null_violation
                 OR invalid_datetime_format OR datetime_field_overflow
                 OR invalid_text_representation OR numeric_value_out_of_range THEN
    v_plain := false;  -- rolled back to the block's start: the exact path says what was wrong
  END;

  IF NOT v_plain THEN
    RETURN QUERY SELECT * FROM nudge_create_reminders_one_by_one(p_items);
    RETURN;
  END IF;
  RETURN QUERY
    SELECT b.item, b.created, nudge_reminder_json(r)
      FROM nudge_batch_item_v2 b JOIN reminder_jobs r ON r.id = b.id
     ORDER BY b.item;
END $$;
