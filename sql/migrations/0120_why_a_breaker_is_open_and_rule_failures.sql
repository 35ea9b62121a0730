-- 0120 (explore18a #2, #6): on-call can see why a circuit breaker is open and which host, and
-- can count rule failures. A breaker keeps its last failed attempt's error (last_error: GET
-- /v1/targets, the dashboard, the nudge_breaker notification and so the worker's log line),
-- the workers' /metrics gain nudge_breaker_open_seconds by host (an alert can name the host)
-- and nudge_rule_failures_total (a rule that cannot run for one of Nudge's own events was only
-- logged and kept in that event's effects). nudge.record_host_outcomes takes the errors: a new
-- signature, DROP + CREATE; it is called only by nudge.finish_attempts, so older binaries work
-- with this migration (an older worker shows the counter as a gauge).

ALTER TABLE nudge.target_hosts ADD COLUMN last_error text,
  ADD CONSTRAINT only_a_failing_breaker_has_a_last_error
    CHECK (last_error IS NULL OR (consecutive_failures > 0 AND length(last_error) <= 500));

-- Counts without a lock or a row written, in whichever session the rule fails (a worker's
-- finish, an application's flag); read by nudge.gauges.
CREATE SEQUENCE nudge.rule_failures;

DROP FUNCTION nudge.record_host_outcomes(text, nudge.worker_policy, text[], bigint[], boolean[]);

CREATE FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_failing   text[];         -- hosts that failed in this batch
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
  INSERT INTO nudge.target_hosts (host) SELECT unnest(v_failing) ON CONFLICT (host) DO NOTHING;
  PERFORM 1 FROM nudge.target_hosts h
   WHERE h.host = ANY (p_hosts)
     AND (h.state <> 'closed' OR h.consecutive_failures > 0 OR h.host = ANY (v_failing))
   ORDER BY h.host
     FOR UPDATE;

  -- Decided on the rows as they are now (locked above): any answer closes the breaker and
  -- clears the count; failures add to it, and open a closed breaker at the threshold; the
  -- probe's failure opens a probing one again for twice the time.
  WITH outcome AS (
    SELECT o.host, count(*) FILTER (WHERE o.failed) AS failures, bool_or(NOT o.failed) AS answered,
           array_agg(o.id) FILTER (WHERE o.failed) AS failed_ids,
           -- What on-call reads first about a failing host: its batch's last failure.
           (array_agg(left(o.error, 500) ORDER BY o.n DESC) FILTER (WHERE o.failed))[1] AS error
      FROM unnest(p_hosts, p_ids, p_failed, p_errors) WITH ORDINALITY AS o(host, id, failed, error, n)
     GROUP BY o.host
  ), decided AS (
    SELECT h.host, h.state AS from_state, h.next_probe_at AS held_until, o.answered, o.failures,
           o.error, t.to_state,
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
     WHERE h.state <> 'closed' OR h.consecutive_failures > 0 OR o.failures > 0
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
                                WHEN d.to_state = 'open' AND d.from_state <> 'open'
                                  THEN now() + d.open_seconds * interval '1 second'
                                ELSE h.next_probe_at END,
           probe_worker = CASE WHEN d.to_state = 'probing' THEN h.probe_worker END,
           probe_reminder_id = CASE WHEN d.to_state = 'probing' THEN h.probe_reminder_id END,
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

  -- The deliveries a breaker held wait for its new next probe, or are due now that it closed.
  -- (The breaker rows stay locked by this transaction, so no claim holds more meanwhile.) One
  -- statement per host, so each looks its deliveries up by their time in the due index: joined
  -- to an array, a generic plan would walk the whole index.
  FOR i IN 1 .. coalesce(cardinality(v_moved), 0) LOOP
    UPDATE nudge.reminders r
       SET next_run_at = coalesce(v_next[i], now()), updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held[i] AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_moved[i];
  END LOOP;
END $$;

COMMENT ON FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[]) IS 'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer): an answer closes the host''s breaker and clears its failures, making the deliveries it held due at once; failures add up, keep the batch''s last failed attempt''s error (p_errors, cut at 500 characters) as the host''s last_error (an answer clears it), and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; each change of state is notified on nudge_breaker; a batch that changes no breaker reads no reminder.';

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
         array_agg(m.host_failed) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.error) FILTER (WHERE m.host IS NOT NULL)
    INTO v_recorded, v_hosts, v_host_ids, v_failed, v_host_errors
    FROM moved m;
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

COMMENT ON FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[]) IS 'Records each ended attempt (outcome delivered, failed, or rejected: failed with no attempt after it) whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), moves its reminder on as nudge.after_attempt decides, recording an ended occurrence exactly once in executions, and counts each webhook attempt with a duration against its host''s circuit breaker with its error (nudge.record_host_outcomes, unless the policy''s breaker_failures is 0); an occurrence still retrying after an attempt whose p_retry_after_seconds is over 0 (a receiver''s Retry-After) waits at least that long, up to the policy''s retry_max_ms; an attempt whose lease was lost changes nothing. Returns how many attempts it recorded.';

CREATE OR REPLACE FUNCTION nudge.close_breaker(p_host text) RETURNS nudge.target_hosts
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row  nudge.target_hosts;
  v_from text;
  v_held timestamptz;
BEGIN
  IF p_host IS NULL OR length(p_host) NOT BETWEEN 1 AND 2048 THEN
    PERFORM nudge.reject('host', 'must be a host as GET /v1/targets lists it (https://hooks.example.com:443)');
  END IF;
  -- Locked as a finish locks it, so no finish or claim changes it meanwhile.
  SELECT * INTO v_row FROM nudge.target_hosts h WHERE h.host = p_host FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no circuit breaker for host %: only a host that has failed has one (GET /v1/targets)',
      p_host USING ERRCODE = 'NU404';
  END IF;
  IF v_row.state = 'closed' AND v_row.consecutive_failures = 0 THEN
    RETURN v_row;
  END IF;
  v_from := v_row.state;
  v_held := v_row.next_probe_at;
  UPDATE nudge.target_hosts h
     SET state = 'closed', consecutive_failures = 0, last_error = NULL, open_seconds = NULL,
         opened_at = NULL,
         next_probe_at = NULL, probe_worker = NULL, probe_reminder_id = NULL, updated_at = now()
   WHERE h.host = p_host
  RETURNING * INTO v_row;
  -- What it held waits for its probe time (nudge.record_host_outcomes): due now instead.
  IF v_held IS NOT NULL THEN
    UPDATE nudge.reminders r
       SET next_run_at = now(), updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = p_host;
  END IF;
  IF v_from <> 'closed' THEN
    PERFORM pg_notify('nudge_breaker', nudge.breaker_change(v_row, v_from, NULL));
  END IF;
  IF current_setting('nudge.audit', true) IS DISTINCT FROM 'off' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    VALUES (nullif(current_setting('nudge.actor', true), ''),
            nullif(current_setting('nudge.route', true), ''), 'target', p_host, 'update');
  END IF;
  RETURN v_row;
END $$;

COMMENT ON FUNCTION nudge.close_breaker(p_host text) IS 'Closes the circuit breaker of p_host (a host as nudge.target_hosts keys it) by hand: state closed, failures and last error cleared, and the deliveries it held (waiting for its next probe) due at once, as a probe''s success would; the change is notified on nudge_breaker (worker null) and audited (subject_type target) unless the session has nudge.audit = off; a closed breaker without failures is returned unchanged; no such host raises NU404, a host empty or over 2048 characters 22023 naming host.';

CREATE OR REPLACE FUNCTION nudge.breaker_change(h nudge.target_hosts, p_from text, p_worker text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('host', h.host, 'from', p_from, 'to', h.state,
                            'failures', h.consecutive_failures, 'opened_at', h.opened_at,
                            'next_probe_at', h.next_probe_at, 'last_error', h.last_error,
                            'worker', p_worker)::text
$$;

COMMENT ON FUNCTION nudge.breaker_change(h nudge.target_hosts, p_from text, p_worker text) IS 'The nudge_breaker notification of a breaker that p_worker moved from state p_from to h: host, from, to, failures, opened_at, next_probe_at, last_error (the last failed attempt''s error while it has failures) and worker, as JSON.';

CREATE OR REPLACE FUNCTION nudge.target_host_json(h nudge.target_hosts) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('host', h.host, 'state', h.state, 'failures', h.consecutive_failures,
                            'opened_at', h.opened_at, 'next_probe_at', h.next_probe_at,
                            'open_seconds', h.open_seconds, 'updated_at', h.updated_at,
                            'last_error', h.last_error, 'held', nudge.held_deliveries(h))
$$;

COMMENT ON FUNCTION nudge.target_host_json(h nudge.target_hosts) IS 'The public JSON form of a target host''s circuit breaker, with its last failed attempt''s error while it has failures (last_error) and the deliveries it holds (held, nudge.held_deliveries).';

CREATE OR REPLACE FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  -- A rule's action can complete reminders, whose lifecycle events run rules in turn: the
  -- depth of this event in that chain, and the event whose rules are running (so also the
  -- cause of any event they emit), travel in settings local to the transaction.
  v_depth   integer := coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0')::integer;
  -- Events in this chain so far, this one included: its root starts the count.
  v_count   integer := CASE WHEN v_depth = 0 THEN 1
                            ELSE coalesce(nullif(current_setting('nudge.chain_events', true), ''),
                                          '0')::integer + 1 END;
  -- nudge.event_id, nudge.rule_id and nudge.rule_path as they were: the first is the cause.
  v_saved   text[] := ARRAY[current_setting('nudge.event_id', true),
                            current_setting('nudge.rule_id', true),
                            current_setting('nudge.rule_path', true)];
  v_event   nudge.events;
  v_rules   nudge.rules[];
  v_rule    nudge.rules;
  v_effects jsonb := '[]'::jsonb;
  v_set     text;  -- set_config's answer, unused: an assignment is cheaper than PERFORM's query
BEGIN
  IF p_key IS NOT NULL THEN
    -- The same key again (perhaps at this moment, from another session: the lock waits for
    -- it to end): the first answer, and nothing changes.
    PERFORM pg_advisory_xact_lock(hashtextextended('nudge.events.key ' || p_key, 0));
    SELECT * INTO v_event FROM nudge.events WHERE key = p_key;
    IF FOUND THEN
      RETURN jsonb_build_object('created', false, 'event', nudge.event_json(v_event),
                                'effects', v_event.effects);
    END IF;
  END IF;

  -- The id first, the row last: rules need the id, and the row is written once, effects and all.
  v_event := ROW(nextval('nudge.events_id_seq'), p_event_type, p_entity_type, p_entity_id, p_data,
                 p_key, coalesce(p_occurred_at, now()), now(),
                 CASE WHEN v_depth > 0 THEN nullif(v_saved[1], '')::bigint END, v_depth, '[]'::jsonb,
                 CASE WHEN v_depth >= 8 THEN 'a chain of rules deeper than 8 events: not run'
                      WHEN v_count > 1000 THEN 'a chain of rules of more than 1000 events: not run'
                 END)
             ::nudge.events;
  IF v_event.refused IS NULL THEN
    v_rules := ARRAY(SELECT r FROM nudge.rules r
                      WHERE r.event_type = p_event_type AND r.enabled ORDER BY r.id);
  ELSIF current_setting('nudge.chain_warned', true) IS DISTINCT FROM 'on' THEN
    -- Once per chain (each refused event is in nudge.events): one per event flooded the log.
    v_set := set_config('nudge.chain_warned', 'on', true);
    RAISE WARNING 'nudge: event % (%) refused: %', v_event.id, p_event_type, v_event.refused;
  END IF;
  IF cardinality(v_rules) > 0 THEN
    -- Only events whose rules run can cause more: they carry the chain's count (a root starts
    -- a new chain, warned of nothing yet).
    v_set := set_config('nudge.event_depth', (v_depth + 1)::text, true)
             || set_config('nudge.event_id', v_event.id::text, true)
             || set_config('nudge.chain_events', v_count::text, true)
             || CASE WHEN v_depth = 0 THEN set_config('nudge.chain_warned', 'off', true) ELSE '' END;
    FOREACH v_rule IN ARRAY v_rules LOOP
      CONTINUE WHEN v_rule."when" <> '{}'::jsonb AND NOT nudge.rule_matches(v_rule."when", v_event);
      IF p_own THEN
        -- Nudge's own events never fail the change that caused them (a worker's finish, a
        -- flag): a rule that cannot run for one is recorded with its error instead.
        BEGIN
          v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
        EXCEPTION WHEN SQLSTATE 'NU422' OR invalid_parameter_value THEN
          v_effects := v_effects || jsonb_build_object('rule_id', v_rule.id,
                                                       'type', v_rule.action->>'type',
                                                       'error', SQLERRM);
          -- Counted for the workers' /metrics (nudge_rule_failures_total) in whichever session
          -- it happens: a sequence, as it must count without a lock or a row written.
          PERFORM nextval('nudge.rule_failures');
          -- Else nobody hears of it (an escalation silently missing): once per transaction,
          -- as a worker's finish may end many reminders of one failing rule.
          IF current_setting('nudge.rule_failure_warned', true) IS DISTINCT FROM 'on' THEN
            v_set := set_config('nudge.rule_failure_warned', 'on', true);
            RAISE WARNING 'nudge: rule % did not run for event % (%): %', v_rule.id, v_event.id,
              p_event_type, SQLERRM;
          END IF;
        END;
      ELSE
        v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
      END IF;
    END LOOP;
    -- This event may be Nudge's own, emitted while another rule's action runs: that rule's
    -- context comes back.
    v_set := set_config('nudge.event_depth', v_depth::text, true)
             || set_config('nudge.event_id', coalesce(v_saved[1], ''), true)
             || set_config('nudge.rule_id', coalesce(v_saved[2], ''), true)
             || set_config('nudge.rule_path', coalesce(v_saved[3], ''), true);
  END IF;
  v_event.effects := v_effects;
  INSERT INTO nudge.events OVERRIDING SYSTEM VALUE SELECT v_event.*;
  RETURN jsonb_build_object('created', true, 'event', nudge.event_json(v_event),
                            'effects', v_effects);
END $$;

COMMENT ON FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) IS 'Records an event and runs every enabled rule of its type whose conditions hold; answers {created, event, effects}; the same key again answers the first event and effects and changes nothing; for Nudge''s own events (p_own) a rule that cannot run is recorded in the effects instead of failing, counted in the sequence nudge.rule_failures (also when the transaction rolls back), and PostgreSQL''s log gets one warning per transaction; an event deeper than 8 in a chain of rules, or past the 1,000th event of its chain, is recorded as refused and its rules are not run (one warning per chain).';

CREATE OR REPLACE FUNCTION nudge.gauges(p_count_cap integer) RETURNS TABLE(name text, help text, label_name text, label_value text, value double precision)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $_$
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
         -- Counted from year 1 at the earliest: -infinity (a row written by hand) cannot be
         -- subtracted, and jsonb (the overview) holds no infinite number.
         coalesce(extract(epoch FROM now() - (
           SELECT greatest(r.next_run_at, nudge.earliest_time()) FROM nudge.reminders r
            WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
              AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
            ORDER BY r.next_run_at LIMIT 1)), 0)::double precision
  UNION ALL
  SELECT 'nudge_breaker_hosts',
         'Webhook target hosts that have failed, by circuit breaker state (closed, open, probing).',
         'state', s.state,
         (SELECT count(*) FROM nudge.target_hosts h WHERE h.state = s.state)::double precision
    FROM unnest(ARRAY['closed', 'open', 'probing']) AS s(state)
  UNION ALL
  SELECT 'nudge_held_deliveries',
         'Webhook deliveries that open or probing circuit breakers hold until their next probe.',
         NULL, NULL,
         (SELECT coalesce(sum(nudge.held_deliveries(h)), 0) FROM nudge.target_hosts h
           WHERE h.state <> 'closed')::double precision
  UNION ALL
  SELECT 'nudge_workers_connected',
         'nudge-worker processes with a claim loop connected to this database.',
         NULL, NULL,
         (SELECT count(DISTINCT split_part(a.application_name, '/', 1))
            FROM pg_stat_activity a
           WHERE a.datname = current_database()
             AND a.application_name ~ '^[^/]+:[0-9]+:[0-9a-f]{8}/[0-9]+$')::double precision
  UNION ALL
  SELECT 'nudge_breaker_open_seconds',
         'How long each open or probing circuit breaker has been open, in seconds, by host.',
         'host', h.host, extract(epoch FROM now() - h.opened_at)::double precision
    FROM nudge.target_hosts h
   WHERE h.state <> 'closed'
  UNION ALL
  SELECT 'nudge_rule_failures_total',
         'Rules that could not run for one of Nudge''s own events (each kept in that event''s effects).',
         NULL, NULL,
         -- No sample, not an error that loses every gauge, for a login not granted it yet.
         (SELECT CASE WHEN has_sequence_privilege(s.schemaname || '.' || s.sequencename, 'SELECT')
                      THEN coalesce(s.last_value, 0) END
            FROM pg_sequences s
           WHERE s.schemaname = 'nudge' AND s.sequencename = 'rule_failures')::double precision
$_$;

COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS 'The database''s gauges for the workers'' GET /metrics, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is), nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing), nudge_held_deliveries (deliveries the open and probing breakers hold, nudge.held_deliveries), nudge_workers_connected (nudge-worker processes with a claim loop session in this database, by their sessions'' application_name), nudge_breaker_open_seconds by host (how long each breaker that is not closed has been open) and nudge_rule_failures_total (rules that could not run for Nudge''s own events, the sequence nudge.rule_failures: a counter, as its _total says; no value for a login without SELECT on it); reads at most p_count_cap + 1 entries of the due index, and the held deliveries of each breaker that is not closed.';
