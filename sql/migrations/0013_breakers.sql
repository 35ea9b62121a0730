--! breaking-change
-- 0013: a circuit breaker per webhook target host, shared by every worker through this table
-- (issue 17, item 5).
--
-- A host is the scheme, host and port of a webhook address (nudge.target_host): every reminder
-- delivered there, by its own target or through its contact, shares one breaker. Email relays
-- are the operator's own and have none.
--
--   closed   deliveries go out; consecutive failures are counted. At the worker's
--            [breaker] failures, the breaker opens.
--   open     due deliveries to the host are held (not attempted: no attempt is used up) until
--            next_probe_at, like a retry: their occurrence and attempt number are kept.
--   probing  one held delivery went out as the probe, leased to one worker until next_probe_at
--            (its heartbeat extends it, so a crashed prober only delays the next probe). Its
--            success closes the breaker; its failure opens it again for twice the time, up to
--            [breaker] max_open_seconds.
--
-- Breaking: nudge.worker_policy gains the three [breaker] settings, and an older worker's
-- ROW(six values)::nudge.worker_policy no longer casts.

-- 1. The settings travel with the rest of a worker's policy.
ALTER TYPE nudge.worker_policy ADD ATTRIBUTE breaker_failures integer;
ALTER TYPE nudge.worker_policy ADD ATTRIBUTE breaker_open_seconds integer;
ALTER TYPE nudge.worker_policy ADD ATTRIBUTE breaker_max_open_seconds integer;
COMMENT ON TYPE nudge.worker_policy IS
  'What a worker''s configuration decides for it: lease, default attempts, backoff, misfire threshold, fire_all cap and circuit breaker (failures that open it, 0: not counted; first open time; cap of the doubled open time).';

-- 2. One row per host that has failed; finishes and claims change it, nothing else.
CREATE TABLE nudge.target_hosts (
  host                 text PRIMARY KEY,
  state                text NOT NULL DEFAULT 'closed',
  consecutive_failures integer NOT NULL DEFAULT 0,
  opened_at            timestamptz,
  next_probe_at        timestamptz,
  open_seconds         integer,
  probe_worker         text,
  probe_reminder_id    bigint,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT breaker_state_is_known CHECK (state IN ('closed', 'open', 'probing')),
  CONSTRAINT failures_are_not_negative CHECK (consecutive_failures >= 0),
  CONSTRAINT only_a_closed_breaker_has_no_probe_time
    CHECK ((state = 'closed') = (next_probe_at IS NULL AND opened_at IS NULL AND open_seconds IS NULL)),
  CONSTRAINT only_a_probing_breaker_has_a_prober
    CHECK ((state = 'probing') = (probe_worker IS NOT NULL AND probe_reminder_id IS NOT NULL))
);
COMMENT ON TABLE nudge.target_hosts IS
  'The circuit breaker of each webhook host (scheme://host:port) that has failed: closed (failures counted), open (deliveries held until next_probe_at) or probing (one delivery out as the probe, leased to probe_worker until next_probe_at). Changed only by the workers'' claims and finishes.';
COMMENT ON COLUMN nudge.target_hosts.next_probe_at IS
  'Open: when the probe may go, and until when held deliveries wait. Probing: when the probe''s lease ends (another may go then).';
COMMENT ON COLUMN nudge.target_hosts.open_seconds IS
  'How long the breaker stays open this time: [breaker] open_seconds, doubled by each failed probe up to max_open_seconds.';
-- The claim's one extra check while every breaker is closed (is any open or probing?), and
-- the count of hosts by state, are index lookups.
CREATE INDEX target_hosts_by_state ON nudge.target_hosts (state);

-- 3. The host of a webhook address, and of a reminder.
-- target_host is one expression, inlined into its callers (it pins no search_path: it names
-- nothing of ours); webhook_host looks up a contact, is never inlined, and pins its path. The
-- hot paths call target_host on the target and webhook_host only for a reminder without one
-- (a SQL function call costs some 0.1 ms a row, an inlined expression a few us).
CREATE FUNCTION nudge.target_host(p_address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regexp_replace(regexp_replace(
           lower(regexp_replace(p_address,
                                '^([A-Za-z]+)://(?:[^/?#@[:space:]]+@)?([^/?#[:space:]]+).*$',
                                '\1://\2')),
           '^(https://(?:[^:]*|\[[^]]*\]))$', '\1:443'),
           '^(http://(?:[^:]*|\[[^]]*\]))$', '\1:80')
$$;
COMMENT ON FUNCTION nudge.target_host(text) IS
  'The breaker key of a webhook address (an http(s) URL as nudge.address_problem accepts it): scheme://host:port in lower case, the port filled in (80, 443) and any user:password@, path, query and fragment left out.';

CREATE FUNCTION nudge.webhook_host(r nudge.reminders) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN r.channel = 'webhook' THEN nudge.target_host(coalesce(r.target,
           (SELECT c.address FROM nudge.contacts c
             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
               AND c.channel = 'webhook'))) END
$$;
COMMENT ON FUNCTION nudge.webhook_host(nudge.reminders) IS
  'The breaker key (nudge.target_host) of a webhook reminder''s address, its target else its contact''s; NULL for other channels or without an address.';

-- 4. A breaker change, told on channel nudge_breaker (the worker that made it logs it).
CREATE FUNCTION nudge.breaker_change(h nudge.target_hosts, p_from text, p_worker text)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('host', h.host, 'from', p_from, 'to', h.state,
                            'failures', h.consecutive_failures, 'opened_at', h.opened_at,
                            'next_probe_at', h.next_probe_at, 'worker', p_worker)::text
$$;
COMMENT ON FUNCTION nudge.breaker_change(nudge.target_hosts, text, text) IS
  'The nudge_breaker notification of a breaker that p_worker moved from state p_from to h: host, from, to, failures, opened_at, next_probe_at and worker, as JSON.';

-- 5. Outcomes per host, counted set-based once per finished batch.
CREATE FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy,
                                           p_hosts text[], p_ids bigint[], p_failed boolean[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
-- Plans are costed high where a scan this function turns off is the only way: never compile
-- them (JIT took 2.4 s a call to plan the held deliveries' update).
SET jit = off AS $$
DECLARE
  v_failing text[];  -- hosts that failed in this batch
  v_changes text[];  -- notifications of the breakers that changed state
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
  -- probe's failure opens a probing one again for twice the time. The deliveries a breaker
  -- held wait for its new next probe, or are due at once when it closed.
  WITH outcome AS (
    SELECT o.host, count(*) FILTER (WHERE o.failed) AS failures, bool_or(NOT o.failed) AS answered,
           array_agg(o.id) FILTER (WHERE o.failed) AS failed_ids
      FROM unnest(p_hosts, p_ids, p_failed) AS o(host, id, failed)
     GROUP BY o.host
  ), decided AS (
    SELECT h.host, h.state AS from_state, h.next_probe_at AS held_until, o.answered, o.failures,
           t.to_state,
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
  ), rehold AS (
    -- Held deliveries wait for the breaker's new next probe, or are due now that it closed.
    UPDATE nudge.reminders r
       SET next_run_at = coalesce(c.next_probe_at, now()), updated_at = now()
      FROM changed c
     WHERE c.from_state <> 'closed' AND c.next_probe_at IS DISTINCT FROM c.held_until
       AND r.status = 'ACTIVE' AND r.next_run_at = c.held_until AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = c.host
    RETURNING 1
  )
  SELECT array_agg(c.change) INTO v_changes FROM changed c WHERE c.from_state <> c.state;
  PERFORM pg_notify('nudge_breaker', n) FROM unnest(v_changes) AS n;
END $$;
COMMENT ON FUNCTION nudge.record_host_outcomes(text, nudge.worker_policy, text[], bigint[], boolean[]) IS
  'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer): an answer closes the host''s breaker and clears its failures, making the deliveries it held due at once; failures add up and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; each change of state is notified on nudge_breaker.';

-- 6. The finish counts each webhook attempt a worker made against its host. An attempt the
--    claim records for workers that died (no duration) says nothing about the host.
CREATE OR REPLACE FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy,
                                                 p_ids bigint[], p_scheduled_for timestamptz[],
                                                 p_attempts integer[], p_outcomes text[],
                                                 p_errors text[], p_status_codes integer[],
                                                 p_responses text[], p_durations_ms integer[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
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
         = (SELECT d.occurrence_at, d.next_run_at, d.status, d.completed_reason, d.finished_at,
                   d.fire_count, d.catch_up_fires, d.attempt
              FROM nudge.after_attempt(r, i.outcome, p_policy, now()) d),
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
COMMENT ON FUNCTION nudge.finish_attempts(text, nudge.worker_policy, bigint[], timestamptz[], integer[], text[], text[], integer[], text[], integer[]) IS
  'Records each ended attempt whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), moves its reminder on as nudge.after_attempt decides, recording an ended occurrence exactly once in executions, and counts each webhook attempt with a duration against its host''s circuit breaker (nudge.record_host_outcomes, unless the policy''s breaker_failures is 0); an attempt whose lease was lost changes nothing. Returns how many attempts it recorded.';

-- 7. The claim holds what goes to an open breaker's host, and sends one probe per host.
CREATE OR REPLACE FUNCTION nudge.claim_due(p_worker text, p_limit integer,
                                           p_policy nudge.worker_policy)
RETURNS SETOF nudge.claimed_fire
-- Revisiting a batch by ctid must be a TID lookup, never a scan (see nudge.finish_attempts).
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
-- The breakers' statements, like nudge.record_host_outcomes', are never worth compiling.
SET jit = off AS $$
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
  v_blocked   tid[];     -- rows to take whose host's breaker is not closed,
  v_hosts     text[];    -- their hosts,
  v_blocked_ids bigint[];
  v_used      integer[];  -- their attempts used,
  v_probes    tid[];     -- and of those, the probes this claim sends
  v_changes   text[];
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
  'Leases up to p_limit due ACTIVE reminders, earliest first, to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts were all used by workers that never finished them (recorded as failed), one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt; the reminder moves to its next future occurrence), nor a webhook to a host whose circuit breaker is not closed (held until the breaker''s next_probe_at, occurrence and attempt kept), except one probe per host whose next_probe_at has passed (the held one with the fewest attempts used), which marks the breaker probing for lease_seconds (notified on nudge_breaker).';

-- 8. The heartbeat that keeps a long delivery's lease keeps its probe's too.
CREATE OR REPLACE FUNCTION nudge.extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp AS $$
  WITH extended AS (
    UPDATE nudge.reminders SET lease_expires_at = now() + p_lease_seconds * interval '1 second'
     WHERE id = ANY (p_ids) AND leased_by = p_worker
    RETURNING 1
  ), probes AS (
    UPDATE nudge.target_hosts
       SET next_probe_at = now() + p_lease_seconds * interval '1 second', updated_at = now()
     WHERE state = 'probing' AND probe_worker = p_worker AND probe_reminder_id = ANY (p_ids)
    RETURNING 1)
  SELECT count(*)::integer FROM extended
$$;
COMMENT ON FUNCTION nudge.extend_leases(text, bigint[], integer) IS
  'Pushes the lease expiry of the listed reminders p_worker still holds, and of the circuit breaker probes among them, to p_lease_seconds from now (a heartbeat for long deliveries); returns how many reminder leases it extended.';

-- 9. The breakers in every worker's /metrics: how many hosts are in each state.
CREATE OR REPLACE FUNCTION nudge.gauges(p_count_cap integer)
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
  UNION ALL
  SELECT 'nudge_breaker_hosts',
         'Webhook target hosts that have failed, by circuit breaker state (closed, open, probing).',
         'state', s.state,
         (SELECT count(*) FROM nudge.target_hosts h WHERE h.state = s.state)::double precision
    FROM unnest(ARRAY['closed', 'open', 'probing']) AS s(state)
$$;
COMMENT ON FUNCTION nudge.gauges(integer) IS
  'The database''s gauges for the workers'' GET /metrics, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due; 0 when none is) and nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing); reads at most p_count_cap + 1 entries of the due index.';

-- 10. GET /v1/targets.
CREATE FUNCTION nudge.target_host_json(h nudge.target_hosts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('host', h.host, 'state', h.state, 'failures', h.consecutive_failures,
                            'opened_at', h.opened_at, 'next_probe_at', h.next_probe_at,
                            'open_seconds', h.open_seconds, 'updated_at', h.updated_at)
$$;
COMMENT ON FUNCTION nudge.target_host_json(nudge.target_hosts) IS
  'The public JSON form of a target host''s circuit breaker.';
