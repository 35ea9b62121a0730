-- 0071: plans made while the tables were small stay lookups once they grow (0054 left two).
--
-- A flag written never reads every live reminder. The flag trigger's lookup named the live
-- statuses as reminders_one_live_per_identity's predicate does, so that index, whose entries
-- are every live reminder, could serve it as a whole-index scan filtered by key; a session that
-- planned it while nudge.reminders was small (analyzed or not: a new installation, a bulk load)
-- kept that plan until the next ANALYZE, and each flag written by the API, an event's rule or an
-- application's UPDATE read every live reminder (4.3 ms at 20,000). The index on flag keys now
-- names the statuses a live reminder does not have, which no other index's predicate follows
-- from: it is the lookup's only index.

DROP INDEX nudge.reminders_live_by_stop_flag;
CREATE INDEX reminders_live_by_stop_flag ON nudge.reminders (stop_condition_value)
  WHERE stop_condition_type = 'db_check' AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');

CREATE OR REPLACE FUNCTION nudge.complete_reminders_stopped_by_flags() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
BEGIN
  -- The flags' keys as an InitPlan of each statement, as before 0033 (a variable would make both
  -- statements parameterised, planned afresh for their first five runs in every backend). A live
  -- reminder is written as "not ended" so that only reminders_live_by_stop_flag serves (0071).
  IF EXISTS (SELECT 1 FROM nudge.reminders
              WHERE stop_condition_type = 'db_check'
                AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
                AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')) THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');
  END IF;
  RETURN NULL;
END $$;

-- A batch create answers its reminders by id, one lookup each: the join it was could be planned,
-- on a small table, as a merge join walking the whole primary key (20,000 rows for one item).

CREATE OR REPLACE FUNCTION nudge.create_reminders(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder jsonb)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_plain boolean;
  v_rows  bigint;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  PERFORM nudge.new_reminder_stage();
  BEGIN
    INSERT INTO pg_temp.nudge_new_reminder
    SELECT (e.ord - 1)::integer, e.v->>'entity_type', e.v->>'entity_id', e.v->>'event_type',
           e.v->>'channel', e.v->>'schedule_type', (e.v->>'run_at')::timestamptz,
           coalesce((e.v->>'interval_seconds')::integer,
                    (e.v->>'interval_minutes')::integer * 60), e.v->>'target',
           coalesce(e.v->'payload', '{}'::jsonb), e.v->>'stop_condition_type',
           e.v->>'stop_condition_value', (e.v->>'max_fires')::integer,
           (e.v->>'ends_at')::timestamptz, e.v->>'cron', e.v->>'timezone', NULL, NULL,
           coalesce(e.v->>'misfire_policy', 'fire_once'), (e.v->>'max_attempts')::integer,
           (e.v->>'rule_id')::bigint, (e.v->>'event_id')::bigint,
           nullif(e.v->'request', 'null'::jsonb), NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord)
     -- An item with a key it should not have is left out, which sends the batch down the exact
     -- path: one that is not known, or both intervals. (A bad interval_minutes, like a bad
     -- interval_seconds, fails a constraint.) So is one with a value REST would not take as
     -- it is typed.
     WHERE e.v - nudge.create_item_fields() = '{}'::jsonb
       AND NOT e.v ?& ARRAY['interval_seconds', 'interval_minutes']
       AND nudge.item_values_are_plain(e.v);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    -- Every time as REST writes one: one match over the batch's times.
    v_plain := v_rows = jsonb_array_length(p_items)
               AND (SELECT nudge.are_rfc3339(array_agg(e.v->>'run_at') || array_agg(e.v->>'ends_at'))
                      FROM jsonb_array_elements(p_items) AS e(v))
               AND nudge.create_staged_reminders();
  EXCEPTION WHEN invalid_parameter_value OR check_violation OR not_null_violation
                 OR invalid_datetime_format OR datetime_field_overflow
                 OR invalid_time_zone_displacement_value
                 OR invalid_text_representation OR numeric_value_out_of_range THEN
    v_plain := false;  -- rolled back to the block's start: the exact path says what was wrong
  END;

  IF NOT v_plain THEN
    RETURN QUERY SELECT * FROM nudge.create_reminders_one_by_one(p_items);
    RETURN;
  END IF;
  -- Each staged reminder by its id (OFFSET 0 keeps the lookup a lookup: as a join it could be
  -- planned, on a small table, as a merge join walking the whole primary key).
  RETURN QUERY
    SELECT b.item, b.created, nudge.reminder_json(x.r)
      FROM pg_temp.nudge_new_reminder b
     CROSS JOIN LATERAL (SELECT r FROM nudge.reminders r WHERE r.id = b.id OFFSET 0) x
     ORDER BY b.item;
END $$;

-- A worker's finish looks its reminders up by id whatever the plan. Its UPDATE joined the ids it
-- was given to nudge.reminders on r.id = i.id only, so a plan made on a small analyzed table
-- could walk the whole primary key filtered by leased_by (a worker that started on a near-empty
-- table, then a burst of reminders: every finish read the table until the next ANALYZE);
-- r.id = ANY (p_ids) is an index condition every plan of that table carries.

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
         = ROW((nudge.after_attempt(r, i.outcome, p_policy, now())).*),
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors, p_status_codes,
                  p_responses, p_durations_ms)
             AS i(id, scheduled_for, attempt, outcome, error, status_code, response, duration_ms)
     -- id = ANY (p_ids) makes every plan of the table a lookup of these ids (0071).
     WHERE r.id = ANY (p_ids) AND r.id = i.id AND r.leased_by = p_worker AND r.attempt = i.attempt
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
