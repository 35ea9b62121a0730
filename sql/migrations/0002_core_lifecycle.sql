-- 0002: the lifecycle of a reminder, as functions and triggers.
--
--   create ──► ACTIVE ──claim──► (leased to one worker) ──finish──► ACTIVE (next occurrence)
--                │ ▲                                          └──► COMPLETED | FAILED
--          pause │ │ resume
--                ▼ │
--              PAUSED          cancel: ACTIVE|PAUSED ──► CANCELLED
--                              a stop flag turning true: ACTIVE|PAUSED ──► COMPLETED at once
--
-- Functions the programs call carry a version suffix (_v1) so an old and a new worker can run
-- side by side during a rolling deploy. Errors a caller can act on use these SQLSTATEs:
--   22023 invalid_parameter_value (bad input; the message starts with the field name)
--   NU404 no such reminder        NU409 the transition is not allowed from the current status

-- A fired occurrence as a worker needs it for delivery.
CREATE TYPE nudge_fire AS (
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
  fire_count    integer
);

-- Guarantees: raises 22023 with a message "<field>: <problem>" and the field in COLUMN.
CREATE FUNCTION nudge_reject(p_field text, p_problem text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%: %', p_field, p_problem USING ERRCODE = '22023', COLUMN = p_field;
END $$;

-- Guarantees: the first occurrence of "every p_interval_seconds from p_anchor" strictly after
-- p_after; occurrences missed in between are skipped, so downtime gives one fire, not a burst.
CREATE FUNCTION nudge_next_interval_occurrence(p_anchor timestamptz, p_interval_seconds integer,
                                               p_after timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_anchor > p_after THEN p_anchor
    ELSE p_anchor + interval '1 second' * (p_interval_seconds::bigint
           * (floor(extract(epoch FROM p_after - p_anchor) / p_interval_seconds)::bigint + 1))
  END
$$;

-- Where a reminder goes after an occurrence ends with p_outcome ('delivered' or 'failed') is
-- decided by the next three functions and nowhere else. They are plain SQL expressions, so
-- PostgreSQL inlines them into the statement that applies them.

-- Guarantees: a recurring reminder's next occurrence strictly after p_now; a one_time reminder
-- keeps its time.
CREATE FUNCTION nudge_next_run_after_fire(r reminder_jobs, p_now timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN r.schedule_type = 'recurring'
              THEN nudge_next_interval_occurrence(r.next_run_at, r.interval_seconds, p_now)
              ELSE r.next_run_at END
$$;

-- Guarantees: a reminder no longer ACTIVE or PAUSED keeps its status (finishing never revives
-- it); a one_time reminder never stays live after its fire; a recurring one completes on
-- max_fires or when its next occurrence would fall after ends_at.
CREATE FUNCTION nudge_status_after_fire(r reminder_jobs, p_outcome text, p_now timestamptz)
RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN r.status NOT IN ('ACTIVE', 'PAUSED') THEN r.status
    WHEN r.schedule_type = 'one_time' AND p_outcome = 'failed' THEN 'FAILED'
    WHEN r.schedule_type = 'one_time' THEN 'COMPLETED'
    WHEN r.fire_count + 1 >= r.max_fires THEN 'COMPLETED'
    -- Nested CASE, so the next occurrence is computed here only when there is an end to test.
    WHEN CASE WHEN r.ends_at IS NULL THEN false
              ELSE nudge_next_run_after_fire(r, p_now) > r.ends_at END THEN 'COMPLETED'
    ELSE r.status
  END
$$;

-- Guarantees: the completed_reason that goes with nudge_status_after_fire.
CREATE FUNCTION nudge_completed_reason_after_fire(r reminder_jobs, p_outcome text,
                                                  p_now timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN r.status NOT IN ('ACTIVE', 'PAUSED') THEN r.completed_reason
    WHEN r.schedule_type = 'one_time' AND p_outcome = 'failed' THEN 'attempts_exhausted'
    WHEN r.schedule_type = 'one_time' THEN 'fired'
    WHEN r.fire_count + 1 >= r.max_fires THEN 'max_fires'
    WHEN CASE WHEN r.ends_at IS NULL THEN false
              ELSE nudge_next_run_after_fire(r, p_now) > r.ends_at END THEN 'ends_at'
  END
$$;

-- Guarantees: at most one live (ACTIVE or PAUSED) reminder per identity, even under concurrent
-- identical calls: returns the new reminder with created = true, or the existing live one with
-- created = false. Bad input raises 22023 naming the field; nothing is written then. A reminder
-- whose stop flag is already true is created COMPLETED and never fires.
CREATE FUNCTION nudge_create_reminder_v1(
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
  p_ends_at              timestamptz DEFAULT NULL)
RETURNS TABLE (created boolean, reminder reminder_jobs)
LANGUAGE plpgsql AS $$
DECLARE
  v_row     reminder_jobs;
  v_run_at  timestamptz := p_run_at;
  v_stopped boolean := false;
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
  ELSE
    PERFORM nudge_reject('schedule_type', 'must be one_time or recurring');
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
                                    status, completed_reason, finished_at)
    VALUES (p_entity_type, p_entity_id, p_event_type, p_channel, p_target, p_payload,
            p_schedule_type, p_interval_seconds, v_run_at,
            p_stop_condition_type, p_stop_condition_value, p_max_fires, p_ends_at,
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

-- Guarantees: the reminder locked for a status change, or NU404 if there is none.
CREATE FUNCTION nudge_lock_reminder(p_id bigint) RETURNS reminder_jobs
LANGUAGE plpgsql AS $$
DECLARE v_row reminder_jobs;
BEGIN
  SELECT * INTO v_row FROM reminder_jobs WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'reminder % does not exist', p_id USING ERRCODE = 'NU404';
  END IF;
  RETURN v_row;
END $$;

-- Guarantees: ACTIVE becomes PAUSED (no fire is claimed while paused); pausing a PAUSED reminder
-- changes nothing; any other status raises NU409.
CREATE FUNCTION nudge_pause_reminder_v1(p_id bigint) RETURNS reminder_jobs
LANGUAGE plpgsql AS $$
DECLARE v_row reminder_jobs := nudge_lock_reminder(p_id);
BEGIN
  IF v_row.status = 'PAUSED' THEN RETURN v_row; END IF;
  IF v_row.status <> 'ACTIVE' THEN
    RAISE EXCEPTION 'reminder % is %, only an ACTIVE reminder can be paused', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE reminder_jobs SET status = 'PAUSED', updated_at = now() WHERE id = p_id RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Guarantees: PAUSED becomes ACTIVE; an occurrence that fell due while paused fires once, at
-- once; resuming an ACTIVE reminder changes nothing; any other status raises NU409.
CREATE FUNCTION nudge_resume_reminder_v1(p_id bigint) RETURNS reminder_jobs
LANGUAGE plpgsql AS $$
DECLARE v_row reminder_jobs := nudge_lock_reminder(p_id);
BEGIN
  IF v_row.status = 'ACTIVE' THEN RETURN v_row; END IF;
  IF v_row.status <> 'PAUSED' THEN
    RAISE EXCEPTION 'reminder % is %, only a PAUSED reminder can be resumed', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE reminder_jobs SET status = 'ACTIVE', updated_at = now() WHERE id = p_id RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Guarantees: ACTIVE or PAUSED becomes CANCELLED (terminal; an in-flight fire is still recorded
-- but does not revive it); cancelling a CANCELLED reminder changes nothing; COMPLETED or FAILED
-- raises NU409.
CREATE FUNCTION nudge_cancel_reminder_v1(p_id bigint) RETURNS reminder_jobs
LANGUAGE plpgsql AS $$
DECLARE v_row reminder_jobs := nudge_lock_reminder(p_id);
BEGIN
  IF v_row.status = 'CANCELLED' THEN RETURN v_row; END IF;
  IF v_row.status NOT IN ('ACTIVE', 'PAUSED') THEN
    RAISE EXCEPTION 'reminder % is %, it can no longer be cancelled', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE reminder_jobs
     SET status = 'CANCELLED', completed_reason = 'cancelled', finished_at = now(), updated_at = now()
   WHERE id = p_id RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Guarantees: records each occurrence the calling worker still holds the lease on exactly once in
-- executions, counts it, and moves its reminder on (nudge_status_after_fire). A fire whose lease
-- was lost (expired and taken by another worker) changes nothing: its new holder records it.
-- Returns how many occurrences were recorded.
CREATE FUNCTION nudge_finish_fires_v1(p_worker text, p_ids bigint[], p_scheduled_for timestamptz[],
                                      p_attempts integer[], p_outcomes text[], p_errors text[])
RETURNS integer
-- PL/pgSQL rather than SQL: its plan is cached, and planning this statement costs more than
-- running it for a batch. A batch is a few hundred rows looked up by key: on a table whose
-- pages are cached the planner's disk-based costs would scan and hash the whole table instead.
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  v_recorded integer;
BEGIN
  WITH moved AS (
    -- The lease token (owner, attempt, occurrence) is in the WHERE clause, so a concurrent change
    -- (pause, cancel, a stop flag) is waited for and the decision is made on the row as it is then.
    UPDATE reminder_jobs r
       SET status = nudge_status_after_fire(r, i.outcome, now()),
           completed_reason = nudge_completed_reason_after_fire(r, i.outcome, now()),
           next_run_at = nudge_next_run_after_fire(r, now()),
           finished_at = CASE WHEN nudge_status_after_fire(r, i.outcome, now()) IN ('ACTIVE', 'PAUSED')
                              THEN NULL ELSE coalesce(r.finished_at, now()) END,
           fire_count = r.fire_count + 1, last_error = left(i.error, 2000),
           attempt = 0, leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors)
             AS i(id, scheduled_for, attempt, outcome, error)
     WHERE r.id = i.id
       AND r.leased_by = p_worker AND r.attempt = i.attempt AND r.next_run_at = i.scheduled_for
    RETURNING r.id, i.scheduled_for, i.attempt, i.outcome, left(i.error, 2000) AS error
  ), recorded AS (
    INSERT INTO executions (reminder_id, scheduled_for, outcome, attempts, worker, error)
    SELECT m.id, m.scheduled_for, m.outcome, m.attempt, p_worker, m.error FROM moved m
    ON CONFLICT ON CONSTRAINT one_execution_per_occurrence DO NOTHING
    RETURNING 1
  )
  SELECT count(*)::integer INTO v_recorded FROM recorded;
  RETURN v_recorded;
END $$;

-- Guarantees: leases up to p_limit due ACTIVE reminders, earliest first, to p_worker for
-- p_lease_seconds (database clock), skipping rows other workers hold. Never returns a reminder
-- whose stop flag is true (it is completed instead) nor one whose occurrence was already claimed
-- p_max_attempts times by workers that never finished it (that occurrence is recorded as failed).
CREATE FUNCTION nudge_claim_due_v1(p_worker text, p_limit integer, p_lease_seconds integer,
                                   p_max_attempts integer)
RETURNS SETOF nudge_fire
-- Revisiting a batch by ctid must be a TID lookup, never a scan (see nudge_finish_fires_v1).
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  -- Rows are found once through the due index and then revisited by ctid, which cannot change
  -- while this transaction holds their row locks.
  v_take      tid[];
  v_stop      tid[];
  v_exhausted tid[];
  v_ids       bigint[];
  v_at        timestamptz[];
  v_attempts  integer[];
BEGIN
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now)
    INTO v_take, v_stop, v_exhausted
    FROM (SELECT r.ctid AS row_ctid,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt >= p_max_attempts AS exhausted
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
           updated_at = now(), attempt = 0, leased_by = NULL, lease_expires_at = NULL
     WHERE ctid = ANY (v_stop);
  END IF;

  -- Workers that claimed this occurrence p_max_attempts times all died or timed out: record the
  -- occurrence as failed instead of letting it crash workers forever.
  IF v_exhausted IS NOT NULL THEN
    WITH taken AS (
      UPDATE reminder_jobs SET leased_by = p_worker, lease_expires_at = now()
       WHERE ctid = ANY (v_exhausted)
      RETURNING id, next_run_at, attempt)
    SELECT array_agg(id), array_agg(next_run_at), array_agg(attempt)
      INTO v_ids, v_at, v_attempts FROM taken;
    PERFORM nudge_finish_fires_v1(
      p_worker, v_ids, v_at, v_attempts, array_fill('failed'::text, ARRAY[cardinality(v_ids)]),
      array_fill('abandoned: claimed by workers that never finished it'::text,
                 ARRAY[cardinality(v_ids)]));
  END IF;

  IF v_take IS NOT NULL THEN
    RETURN QUERY
      UPDATE reminder_jobs r
         SET leased_by = p_worker, lease_expires_at = now() + p_lease_seconds * interval '1 second',
             attempt = r.attempt + 1
       WHERE r.ctid = ANY (v_take)
      RETURNING r.id, r.entity_type, r.entity_id, r.event_type, r.channel, r.target, r.payload,
                r.schedule_type, r.next_run_at, r.attempt, r.fire_count;
  END IF;
END $$;

-- Guarantees: the worker's whole round trip in one transaction: finish what it delivered, then
-- claim the next batch (p_limit 0 claims nothing).
CREATE FUNCTION nudge_finish_and_claim_v1(p_worker text, p_ids bigint[], p_scheduled_for timestamptz[],
                                          p_attempts integer[], p_outcomes text[], p_errors text[],
                                          p_limit integer, p_lease_seconds integer,
                                          p_max_attempts integer)
RETURNS SETOF nudge_fire
LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(p_ids) > 0 THEN
    PERFORM nudge_finish_fires_v1(p_worker, p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors);
  END IF;
  IF p_limit > 0 THEN
    RETURN QUERY SELECT * FROM nudge_claim_due_v1(p_worker, p_limit, p_lease_seconds, p_max_attempts);
  END IF;
END $$;

-- Guarantees: pushes back the lease expiry of the listed reminders p_worker still holds (a
-- heartbeat for long deliveries); returns how many it extended.
CREATE FUNCTION nudge_extend_leases_v1(p_worker text, p_ids bigint[], p_lease_seconds integer)
RETURNS integer
LANGUAGE sql AS $$
  WITH extended AS (
    UPDATE reminder_jobs SET lease_expires_at = now() + p_lease_seconds * interval '1 second'
     WHERE id = ANY (p_ids) AND leased_by = p_worker
    RETURNING 1)
  SELECT count(*)::integer FROM extended
$$;

-- Guarantees: gives back leases p_worker holds without firing (the listed ids, or, when p_ids is
-- NULL, every due ACTIVE reminder it holds: all a claim can lease) so another worker can take
-- them at once; a release is not an attempt.
CREATE FUNCTION nudge_release_leases_v1(p_worker text, p_ids bigint[]) RETURNS integer
-- Two statements so each is planned on its own index: the due index for "all of them" (never a
-- scan of the whole table, which holds future and finished reminders too), the key otherwise.
LANGUAGE plpgsql AS $$
DECLARE
  v_released integer;
BEGIN
  IF p_ids IS NULL THEN
    UPDATE reminder_jobs
       SET leased_by = NULL, lease_expires_at = NULL, attempt = greatest(attempt - 1, 0)
     WHERE status = 'ACTIVE' AND next_run_at <= now() AND leased_by = p_worker;
  ELSE
    UPDATE reminder_jobs
       SET leased_by = NULL, lease_expires_at = NULL, attempt = greatest(attempt - 1, 0)
     WHERE id = ANY (p_ids) AND leased_by = p_worker;
  END IF;
  GET DIAGNOSTICS v_released = ROW_COUNT;
  RETURN v_released;
END $$;

-- Guarantees: seconds (≥ 0) until the next moment a claim could find work: the earliest due
-- unleased reminder or the earliest lease to expire; NULL when nothing is scheduled at all.
-- Computed on the database clock, so a worker's own clock never decides when work is due.
CREATE FUNCTION nudge_seconds_until_due_v1() RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_next timestamptz;
BEGIN
  v_next := least(
    (SELECT r.next_run_at FROM reminder_jobs r
      WHERE r.status = 'ACTIVE' AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
      ORDER BY r.next_run_at LIMIT 1),
    (SELECT min(r.lease_expires_at) FROM reminder_jobs r
      WHERE r.status = 'ACTIVE' AND r.next_run_at <= now() AND r.lease_expires_at > now()));
  IF v_next IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN greatest(0, extract(epoch FROM v_next - now()))::double precision;
END $$;

-- Guarantees: deletes up to p_limit executions, and up to p_limit finished reminders, that ended
-- more than p_keep ago; when several workers call it at once only one does the work.
CREATE FUNCTION nudge_prune_history_v1(p_keep interval, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_executions integer;
  v_reminders  integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('nudge_prune_history')) THEN
    RETURN 0;
  END IF;
  DELETE FROM executions e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM executions x
                              WHERE x.fired_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_executions = ROW_COUNT;
  DELETE FROM reminder_jobs r
   WHERE r.id = ANY (ARRAY(SELECT x.id FROM reminder_jobs x
                            WHERE x.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
                              AND x.finished_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_reminders = ROW_COUNT;
  RETURN v_executions + v_reminders;
END $$;

-- Trigger function. Guarantees: when a flag is true after an insert or update, every live
-- reminder it stops is COMPLETED in the same transaction, so none is claimed after it commits.
CREATE FUNCTION nudge_complete_reminders_stopped_by_flag() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE reminder_jobs
     SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
   WHERE stop_condition_type = 'db_check' AND stop_condition_value = NEW.key
     AND status IN ('ACTIVE', 'PAUSED');
  RETURN NULL;
END $$;

CREATE TRIGGER status_flag_true_completes_its_reminders
  AFTER INSERT OR UPDATE OF key, value ON status_flags
  FOR EACH ROW WHEN (NEW.value)
  EXECUTE FUNCTION nudge_complete_reminders_stopped_by_flag();

-- Trigger function. Guarantees: updated_at tells when a flag last changed.
CREATE FUNCTION nudge_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TRIGGER status_flag_change_sets_updated_at
  BEFORE UPDATE ON status_flags
  FOR EACH ROW EXECUTE FUNCTION nudge_touch_updated_at();

-- Guarantees: queues the wake-up hint on channel nudge_due for this transaction, unless the
-- session has set nudge.notify_after_commit = 'on' and so promised to send it itself after
-- commit. Why a session would: PostgreSQL serialises the commits of all transactions that
-- NOTIFY (including their WAL flush), which caps one-row creates at one per fsync; nudge-api
-- instead sends one hint after many commits (api/notifier.cpp).
CREATE FUNCTION nudge_queue_wake_up() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('nudge.notify_after_commit', true), '') <> 'on' THEN
    PERFORM pg_notify('nudge_due', '');
  END IF;
END $$;

-- Trigger function. Guarantees: one small wake-up hint per transaction on channel nudge_due
-- (identical notifications in a transaction are merged by PostgreSQL). The claim query, not the
-- hint, decides what is due.
CREATE FUNCTION nudge_wake_workers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nudge_queue_wake_up();
  RETURN NULL;
END $$;

-- Trigger function. Guarantees: one hint per INSERT statement that added an ACTIVE reminder,
-- however many rows it inserted; none for an idempotent create that inserted nothing.
CREATE FUNCTION nudge_wake_workers_for_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM inserted WHERE status = 'ACTIVE') THEN
    PERFORM nudge_queue_wake_up();
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER reminder_insert_wakes_workers
  AFTER INSERT ON reminder_jobs
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION nudge_wake_workers_for_inserted();

-- A reminder that becomes claimable sooner than before: resumed, released, rescheduled after a
-- fire, or moved earlier. Claims (which set a lease) do not wake anyone.
CREATE TRIGGER reminder_due_sooner_wakes_workers
  AFTER UPDATE ON reminder_jobs
  FOR EACH ROW
  WHEN (NEW.status = 'ACTIVE' AND NEW.lease_expires_at IS NULL
        AND (OLD.status <> 'ACTIVE' OR OLD.lease_expires_at IS NOT NULL
             OR NEW.next_run_at < OLD.next_run_at))
  EXECUTE FUNCTION nudge_wake_workers();
