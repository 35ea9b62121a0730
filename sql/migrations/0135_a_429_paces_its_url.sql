-- 0135: a 429 paces its URL, not its whole host (explore24a #1, HIGH: Slack limits each incoming
-- webhook URL to about 1 a second, so one tenant's burst paced hooks.slack.com for ten tenants
-- at 0.72 a second in all, and the other nine's 540 webhooks were 406 s late at the median).
-- A URL (scheme://host:port/path: nudge.target_url, no password, query or fragment) that
-- answered 429 is paced on its own in nudge.paced_targets, as 0130 paces a host. The whole host
-- is still paced when its 429s show a limit wider than one URL: a URL sent only once in the
-- batch (so not over a limit of its own) refused while another URL of the host was refused in
-- the batch or in the last 2 s (a receiver limiting the whole host, a URL per recipient), and
-- while the host is paced whole already. Breakers stay per host.
--
-- Additive: a table, functions and bodies. nudge-api reads the new table (SELECT), the workers
-- write it (SELECT, INSERT, UPDATE, DELETE): README "Least privilege".

CREATE TABLE nudge.paced_targets (
    url text PRIMARY KEY,
    host text NOT NULL,
    pace double precision NOT NULL CHECK (pace > 0),
    limited_at timestamptz NOT NULL,
    paced_until timestamptz NOT NULL,
    next_send_at timestamptz NOT NULL,
    refused_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE nudge.paced_targets IS
  'Each webhook URL (nudge.target_url) paced on its own because it answered 429 while its host is not paced whole (nudge.record_host_outcomes), with the pacing columns of nudge.target_hosts; its rows go when its host''s next URL is paced after it ended, or when the host is closed by hand. Changed only by the workers'' claims and finishes and nudge.close_breaker.';
COMMENT ON COLUMN nudge.paced_targets.host IS
  'Its host as nudge.target_hosts keys it (nudge.target_host).';
COMMENT ON COLUMN nudge.paced_targets.pace IS
  'Deliveries a second the URL may be sent at limited_at: half the pace it had at its last 429 (at least 1 a minute, at most 500 a second); nudge.pace_at tells the pace now.';
COMMENT ON COLUMN nudge.paced_targets.limited_at IS
  'When the URL may be sent to again after its last 429 that halved the pace (that 429, plus its Retry-After): its pace grows from then.';
COMMENT ON COLUMN nudge.paced_targets.paced_until IS
  'When the pace, doubling every 20 s from limited_at, passes 1,000 a second: the URL is no longer paced.';
COMMENT ON COLUMN nudge.paced_targets.next_send_at IS
  'While paced: no delivery goes to the URL before it (its last Retry-After, then one pace after the last delivery sent).';
COMMENT ON COLUMN nudge.paced_targets.refused_at IS
  'When the URL last answered 429: a URL of the same host refused within 2 s of it paces the host whole.';
CREATE INDEX paced_targets_by_host ON nudge.paced_targets (host);
-- The claim's one extra check while nothing is paced (is any?) is an index lookup.
CREATE INDEX paced_targets_paced ON nudge.paced_targets (paced_until);

CREATE FUNCTION nudge.pace_at(p_pace double precision, p_limited_at timestamptz,
                              p_paced_until timestamptz, p_at timestamptz)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE WHEN p_paced_until > p_at
              THEN p_pace * power(2, greatest(extract(epoch FROM p_at - p_limited_at)::float8, 0)
                                     / 20) END
$$;
COMMENT ON FUNCTION nudge.pace_at(p_pace double precision, p_limited_at timestamptz, p_paced_until timestamptz, p_at timestamptz) IS
  'Deliveries a second a paced host or URL may be sent at p_at: p_pace, doubled for every 20 s since p_limited_at (the end of the Retry-After of its last 429 that halved it); NULL when p_at is not before p_paced_until (no longer paced).';

CREATE FUNCTION nudge.target_url(p_address text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT CASE WHEN m IS NOT NULL THEN nudge.target_host(p_address) || coalesce(nullif(m[1], ''), '/') END
    FROM regexp_match(p_address, '^[A-Za-z]+://[^/?#[:space:]]+([^?#[:space:]]*)') AS m
$_$;
COMMENT ON FUNCTION nudge.target_url(p_address text) IS
  'The pacing key of a webhook URL: its host as nudge.target_host writes it, followed by its path as it is (/ when it has none), any user:password@, query and fragment left out; NULL for an address that is no http(s) URL ({{secret.NAME}}, paced as its host).';

CREATE FUNCTION nudge.webhook_url(r nudge.reminders) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT CASE WHEN r.channel = 'webhook' THEN nudge.target_url(coalesce(r.target,
           (SELECT c.address FROM nudge.contacts c
             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
               AND c.channel = 'webhook'))) END
$$;
COMMENT ON FUNCTION nudge.webhook_url(r nudge.reminders) IS
  'The pacing key (nudge.target_url) of a webhook reminder''s address, its target else its contact''s; NULL for other channels, without an address, or for one that is no URL.';

CREATE OR REPLACE FUNCTION nudge.host_pace(h nudge.target_hosts, p_at timestamp with time zone) RETURNS double precision
    LANGUAGE sql STABLE
    AS $$
  SELECT nudge.pace_at(h.pace, h.limited_at, h.paced_until, p_at)
$$;

COMMENT ON FUNCTION nudge.host_pace(h nudge.target_hosts, p_at timestamp with time zone) IS 'Deliveries a second host h, paced whole, may be sent at p_at (nudge.pace_at of its pace, limited_at and paced_until); NULL when it is not paced then.';

CREATE OR REPLACE FUNCTION nudge.target_host_json(h nudge.target_hosts) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('host', h.host, 'state', h.state, 'failures', h.consecutive_failures,
                            'opened_at', h.opened_at, 'next_probe_at', h.next_probe_at,
                            'open_seconds', h.open_seconds, 'updated_at', h.updated_at,
                            'last_error', h.last_error, 'held', nudge.held_deliveries(h),
                            'pace', round(nudge.host_pace(h, now())::numeric, 3),
                            'next_send_at', CASE WHEN h.paced_until > now()
                                                 THEN greatest(h.next_send_at, now()) END,
                            'paced_url_count', (SELECT count(*) FROM nudge.paced_targets t
                                                 WHERE t.host = h.host AND t.paced_until > now()),
                            'paced_urls', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                                    'url', t.url,
                                                    'pace', round(nudge.pace_at(t.pace, t.limited_at,
                                                                                t.paced_until, now())::numeric, 3),
                                                    'next_send_at', greatest(t.next_send_at, now()))
                                                  ORDER BY t.url), '[]')
                                             FROM (SELECT * FROM nudge.paced_targets t
                                                    WHERE t.host = h.host AND t.paced_until > now()
                                                    ORDER BY t.url LIMIT 20) t))
$$;

COMMENT ON FUNCTION nudge.target_host_json(h nudge.target_hosts) IS 'The public JSON form of a target host: its circuit breaker, with its last failed attempt''s error while it has failures (last_error) and the deliveries it holds (held, nudge.held_deliveries), while it is paced whole (it answered 429) its pace now in deliveries a second (nudge.host_pace, 3 decimals) and the earliest a delivery may go to it (next_send_at), both null when it is not, and the URLs of it paced on their own (paced_url_count, and paced_urls: the first 20 by URL, each with its pace and next_send_at).';

CREATE OR REPLACE FUNCTION nudge.paced_backlog(p_read_cap integer, OUT deliveries bigint, OUT oldest_seconds double precision) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
  -- A paced host or URL holds its deliveries 20 s at most (nudge.claim_due): they are among the
  -- reminders due in the next 20 s, read by time in the due index, and only while one is
  -- paced.
  SELECT count(*),
         coalesce(extract(epoch FROM now() - min(greatest((w.r).occurrence_at,
                                                          nudge.earliest_time()))), 0)::float8
    FROM (SELECT r FROM nudge.reminders r
           WHERE (EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.paced_until > now())
                  OR EXISTS (SELECT 1 FROM nudge.paced_targets t WHERE t.paced_until > now()))
             AND r.status = 'ACTIVE' AND r.next_run_at > now()
             AND r.next_run_at <= now() + interval '20 seconds'
           ORDER BY r.next_run_at
           LIMIT p_read_cap) w
   WHERE (w.r).leased_by IS NULL AND (w.r).channel = 'webhook' AND (w.r).occurrence_at IS NOT NULL
     AND (EXISTS (SELECT 1 FROM nudge.target_hosts h
                   WHERE h.paced_until > now()
                     AND h.host = coalesce(nudge.target_host((w.r).target), nudge.webhook_host(w.r)))
          OR EXISTS (SELECT 1 FROM nudge.paced_targets t
                      WHERE t.paced_until > now()
                        AND t.url = coalesce(nudge.target_url((w.r).target), nudge.webhook_url(w.r))))
$$;

COMMENT ON FUNCTION nudge.paced_backlog(p_read_cap integer, OUT deliveries bigint, OUT oldest_seconds double precision) IS 'The webhook deliveries waiting for a host or URL paced now (held until their send times, or retrying within 20 s: ACTIVE, not leased, an occurrence kept, due in the next 20 s), counted among the p_read_cap earliest reminders due then, and how long the oldest of their occurrences has been due (0: none); nothing is read while none is paced.';

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
  SELECT 'nudge_paced_hosts',
         'Webhook target hosts paced now, whole or some of their URLs, because they answered 429 (GET /v1/targets?paced=true).',
         NULL, NULL,
         (SELECT count(*) FROM (SELECT h.host FROM nudge.target_hosts h WHERE h.paced_until > now()
                                UNION
                                SELECT t.host FROM nudge.paced_targets t
                                 WHERE t.paced_until > now()) p)::double precision
  UNION ALL
  -- A paced host's deliveries wait for their send times, not due: without these, a backlog
  -- 16.5 minutes late read 0 in both backlog gauges (explore24a #2).
  SELECT g.name, g.help, NULL, NULL, g.value
    FROM nudge.paced_backlog(greatest(p_count_cap, 1)) b
   CROSS JOIN LATERAL (VALUES
     ('nudge_paced_deliveries',
      format('Webhook deliveries waiting for a paced host or URL (held until their send times, or retrying within 20 s), counted among the %s earliest reminders due in the next 20 s.', greatest(p_count_cap, 1)),
      b.deliveries::double precision),
     ('nudge_oldest_paced_seconds',
      'How long the oldest occurrence waiting for a paced host or URL has been due, in seconds (0: none).',
      b.oldest_seconds)) AS g(name, help, value)
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
         'Seconds since each open or probing circuit breaker last opened (a failed probe opens it again), by host; not for an open one whose probe time has passed with no delivery to probe with.',
         'host', h.host, extract(epoch FROM now() - h.opened_at)::double precision
    FROM nudge.target_hosts h
   -- An open breaker past its probe time that holds nothing says nothing of its host now: its
   -- series rose for good, and an alert on it fired for a host with nothing to send
   -- (explore23a #5). It comes back with the first delivery the breaker holds.
   WHERE h.state = 'probing'
      OR (h.state = 'open' AND (h.next_probe_at > now() OR nudge.held_deliveries(h) > 0))
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

COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS 'The database''s gauges for GET /metrics of nudge-api and the workers, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is), nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing), nudge_held_deliveries (deliveries the open and probing breakers hold, nudge.held_deliveries), nudge_paced_hosts (hosts paced now, whole or some of their URLs: they answered 429), nudge_paced_deliveries and nudge_oldest_paced_seconds (nudge.paced_backlog: the deliveries waiting for a paced host, counted among the p_count_cap earliest due in the next 20 s, and how long the oldest has been due), nudge_workers_connected (nudge-worker processes with a claim loop session in this database, by their sessions'' application_name), nudge_breaker_open_seconds by host (seconds since each breaker that is not closed last opened: a failed probe opens it again; no row while it is closed, nor while it is open past its probe time holding no delivery) and nudge_rule_failures_total (rules that could not run for Nudge''s own events, the sequence nudge.rule_failures: a counter, as its _total says; no value for a login without SELECT on it); reads at most p_count_cap + 1 entries of the due index (and, while a host is paced, p_count_cap more), and the held deliveries of each breaker that is not closed.';

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
  IF v_row.state = 'closed' AND v_row.consecutive_failures = 0
     AND NOT coalesce(v_row.paced_until > now(), false)
     AND NOT EXISTS (SELECT 1 FROM nudge.paced_targets t
                      WHERE t.host = p_host AND t.paced_until > now()) THEN
    RETURN v_row;
  END IF;
  v_from := v_row.state;
  v_held := v_row.next_probe_at;
  UPDATE nudge.target_hosts h
     SET state = 'closed', consecutive_failures = 0, last_error = NULL, open_seconds = NULL,
         opened_at = NULL,
         next_probe_at = NULL, probe_worker = NULL, probe_reminder_id = NULL,
         pace = NULL, limited_at = NULL, paced_until = NULL, next_send_at = NULL,
         updated_at = now()
   WHERE h.host = p_host
  RETURNING * INTO v_row;
  DELETE FROM nudge.paced_targets t WHERE t.host = p_host;
  -- What its pace held waits 20 s at most (nudge.claim_due): due now instead, with the retries
  -- due to it meanwhile.
  UPDATE nudge.reminders r
     SET next_run_at = now(), updated_at = now()
   WHERE r.status = 'ACTIVE' AND r.next_run_at > now()
     AND r.next_run_at <= now() + interval '20 seconds'
     AND r.leased_by IS NULL AND r.channel = 'webhook'
     AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = p_host;
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

COMMENT ON FUNCTION nudge.close_breaker(p_host text) IS 'Closes the circuit breaker of p_host (a host as nudge.target_hosts keys it) by hand and ends its pacing and its URLs'': state closed, failures and last error cleared, the deliveries it held (waiting for its next probe) due at once, as a probe''s success would, and so are those due to it within the next 20 s (held by its pace, or retries), the host and its URLs no longer paced; the change is notified on nudge_breaker (worker null) and audited (subject_type target) unless the session has nudge.audit = off; a closed breaker without failures of a host not paced, whole or by URL, is returned unchanged; no such host raises NU404, a host empty or over 2048 characters 22023 naming host.';

CREATE OR REPLACE FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]) RETURNS void
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
  v_host_wide text[];         -- hosts whose 429s pace the whole host,
  v_urls      text[];         -- else the URLs that answered 429, paced each on its own,
  v_url_hosts text[];         -- their hosts,
  v_accepted  bigint[];       -- the requests each accepted in the batch,
  v_url_waits integer[];      -- and its largest Retry-After
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

  -- Whose limit a 429 is (0135): Slack's incoming webhooks limit each URL, so one tenant's burst
  -- paced a host shared by ten and the other nine's webhooks were 406 s late (explore24a #1);
  -- but a receiver limiting the whole host with a URL per recipient answers 429 to URLs sent
  -- once each, and pacing each of those on its own would not slow the host down at all. So a
  -- 429 paces its URL, unless it came to a URL sent only once in the batch and not paced, while
  -- another URL of the host was refused in the batch or in the last 2 s: then the whole host.
  -- A host paced already stays paced whole, and an address that is no URL ({{secret.NAME}}:
  -- one URL) is paced as its host.
  IF cardinality(v_limiting) > 0 THEN
    WITH attempt AS (
      SELECT o.host, coalesce(nudge.target_url(r.target), nudge.webhook_url(r)) AS url, o.failed,
             o.limited, o.wait
        FROM unnest(p_hosts, p_ids, p_failed, p_limited, p_retry_after_seconds)
               AS o(host, id, failed, limited, wait)
        JOIN nudge.reminders r ON r.id = o.id
       WHERE o.host = ANY (v_limiting)
    ), per_url AS (
      SELECT a.host, a.url, count(*) AS sent, count(*) FILTER (WHERE a.limited) AS limited,
             count(*) FILTER (WHERE NOT a.failed AND NOT a.limited) AS accepted,
             max(a.wait) FILTER (WHERE a.limited) AS wait,
             EXISTS (SELECT 1 FROM nudge.paced_targets t
                      WHERE t.url = a.url AND t.paced_until > now()) AS paced
        FROM attempt a
       GROUP BY a.host, a.url
    ), per_host AS (
      SELECT u.host,
             EXISTS (SELECT 1 FROM nudge.target_hosts h
                      WHERE h.host = u.host AND h.paced_until > now())
             OR bool_or(u.limited > 0 AND u.url IS NULL)
             OR (bool_or(u.limited > 0 AND u.sent = 1 AND NOT u.paced)
                 AND (count(*) FILTER (WHERE u.limited > 0) > 1
                      OR EXISTS (SELECT 1 FROM nudge.paced_targets t
                                  WHERE t.host = u.host AND t.refused_at > now() - interval '2 seconds'
                                    AND t.url <> ALL (array_agg(u.url) FILTER (WHERE u.limited > 0)))))
               AS whole
        FROM per_url u
       GROUP BY u.host
    )
    SELECT array_agg(ph.host) FILTER (WHERE ph.whole),
           array_agg(u.url ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.host ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.accepted ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.wait ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0)
      INTO v_host_wide, v_urls, v_url_hosts, v_accepted, v_url_waits
      FROM per_url u JOIN per_host ph ON ph.host = u.host;
  END IF;

  -- Decided on the rows as they are now (locked above): any answer closes the breaker and
  -- clears the count; failures add to it, and open a closed breaker at the threshold; the
  -- probe's failure opens a probing one again for twice the time. A 429 is an answer, and
  -- paces the host (see the pacing columns of nudge.target_hosts).
  WITH outcome AS (
    SELECT o.host, count(*) FILTER (WHERE o.failed) AS failures, bool_or(NOT o.failed) AS answered,
           count(*) FILTER (WHERE o.limited) AS limited,
           o.host = ANY (coalesce(v_host_wide, '{}')) AS host_wide,
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
           o.error, t.to_state, o.limited, o.host_wide, p.cut, p.pace,
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
     -- A 429 to a host paced whole halves the pace the host is sent at (from twice the requests
     -- it accepted in this batch, at least 1 a second, when it was not paced), once per second:
     -- the 429s of one burst arrive in several finishes.
     CROSS JOIN LATERAL (
           SELECT o.limited > 0 AND o.host_wide
                  AND NOT coalesce(h.limited_at > now() - interval '1 second', false) AS cut,
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
           next_send_at = CASE WHEN d.limited > 0 AND d.host_wide
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

  -- A 429 to a URL paced on its own: as a host's, once per second its pace halves (from twice
  -- what the URL accepted in the batch when it was not paced) and no request goes to it before
  -- its Retry-After. Rows are locked in URL order, after their hosts', as every finish does.
  IF v_urls IS NOT NULL THEN
    PERFORM 1 FROM nudge.paced_targets t WHERE t.url = ANY (v_urls) ORDER BY t.url FOR UPDATE;
    INSERT INTO nudge.paced_targets AS t (url, host, pace, limited_at, paced_until, next_send_at,
                                          refused_at, updated_at)
    SELECT u.url, u.host, c.pace, c.limited_at, c.paced_until, c.next_send_at, now(), now()
      FROM unnest(v_urls, v_url_hosts, v_accepted, v_url_waits) AS u(url, host, accepted, wait)
      LEFT JOIN nudge.paced_targets o ON o.url = u.url
     CROSS JOIN LATERAL (
           SELECT least(coalesce(u.wait, 0)::bigint * 1000, p_policy.retry_max_ms)
                    * interval '1 millisecond' AS wait_time,
                  NOT coalesce(o.limited_at > now() - interval '1 second', false) AS cut,
                  greatest(1.0 / 60,
                           least(500, coalesce(nudge.pace_at(o.pace, o.limited_at, o.paced_until,
                                                             now()),
                                               2 * greatest(u.accepted, 1)) / 2)) AS pace) p
     CROSS JOIN LATERAL (
           SELECT CASE WHEN p.cut THEN p.pace ELSE o.pace END AS pace,
                  CASE WHEN p.cut THEN now() + p.wait_time ELSE o.limited_at END AS limited_at,
                  CASE WHEN p.cut THEN now() + p.wait_time
                                       + 20 * log(2, 1000 / p.pace::numeric) * interval '1 second'
                       ELSE o.paced_until END AS paced_until,
                  greatest(o.next_send_at, now() + p.wait_time) AS next_send_at) c
    ON CONFLICT (url) DO UPDATE
       SET pace = EXCLUDED.pace, limited_at = EXCLUDED.limited_at,
           paced_until = EXCLUDED.paced_until, next_send_at = EXCLUDED.next_send_at,
           refused_at = EXCLUDED.refused_at, updated_at = EXCLUDED.updated_at;
    -- The URLs of these hosts no longer paced go (one a concurrent finish holds stays).
    DELETE FROM nudge.paced_targets t
     WHERE t.url IN (SELECT s.url FROM nudge.paced_targets s
                      WHERE s.host = ANY (v_url_hosts) AND s.paced_until <= now()
                        AND s.url <> ALL (v_urls)
                        FOR UPDATE SKIP LOCKED);
  END IF;

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

COMMENT ON FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]) IS 'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer; p_limited: it answered 429, with p_retry_after_seconds): an answer (a 429 included) closes the host''s breaker and clears its failures, making the deliveries it held due in doubling waves (the first now, the next two a second later, then four, and so on, in id order); failures add up, keep the batch''s last failed attempt''s error (p_errors, cut at 500 characters) as the host''s last_error (an answer clears it), and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; the next probe is due between 0.8 and 1.2 times the open time after it opened (random, so that probes do not keep meeting a receiver that is down at regular times); a 429 paces its URL (nudge.target_url, in nudge.paced_targets), or the whole host when the host is paced already, the address is no URL, or a URL sent once in the batch and not paced was refused while another URL of the host was refused in the batch or in the last 2 s: at most once a second, the pace becomes half of what it is (nudge.pace_at; or, when not paced, of twice the requests the host or URL accepted in the batch, at least 1 a second), kept between 1 a minute and 500 a second, growing from the end of that Retry-After, paced until doubling every 20 s takes it past 1,000 a second, and no delivery goes to it before its largest Retry-After (up to the policy''s retry_max_ms); the URLs of those hosts no longer paced are deleted; each change of breaker state is notified on nudge_breaker; a batch that changes no breaker and has no 429 reads no reminder.';

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
  v_paced     tid[];     -- rows to take whose host or URL is paced,
  v_pacers    text[];    -- what paces each (its host, else its URL),
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

  -- Paced hosts and URLs (0130, 0135), only while one is: a host or URL that answered 429 is
  -- sent at its pace (nudge.pace_at), no request before its next_send_at. A row is paced by its
  -- host when the whole host is paced, else by its URL (nudge.target_url) when that is. The
  -- rows of such a pacer are given send times a pace apart from then, in the order of their
  -- occurrences: a second's worth goes out, the others wait for theirs, or 20 s at most
  -- (occurrence and attempt kept, no attempt used), so its backlog goes out spread instead of
  -- meeting its limit all at once (explore23a #1). A pacer another claim is pacing right now is
  -- skipped: its rows are neither taken nor held.
  IF v_take IS NOT NULL
     AND (EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.paced_until > now())
          OR EXISTS (SELECT 1 FROM nudge.paced_targets t WHERE t.paced_until > now())) THEN
    -- In the order of their occurrences (held rows share their times: by those, a host's
    -- backlog went out by id, one tenant after another: explore24a #4).
    SELECT array_agg(p.row_ctid), array_agg(e.pacer), array_agg(p.id), array_agg(p.due)
      INTO v_paced, v_pacers, v_paced_ids, v_paced_due
      FROM (SELECT r.ctid AS row_ctid, r.id, coalesce(r.occurrence_at, r.next_run_at) AS due,
                   coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) AS host,
                   coalesce(nudge.target_url(r.target), nudge.webhook_url(r)) AS url
              FROM nudge.reminders r
             WHERE r.ctid = ANY (v_take) AND r.channel = 'webhook'
               AND r.ctid <> ALL (coalesce(v_probes, '{}'))) p
     CROSS JOIN LATERAL (
           SELECT CASE WHEN EXISTS (SELECT 1 FROM nudge.target_hosts h
                                     WHERE h.host = p.host AND h.paced_until > now())
                         THEN p.host
                       WHEN EXISTS (SELECT 1 FROM nudge.paced_targets t
                                     WHERE t.url = p.url AND t.paced_until > now())
                         THEN p.url END AS pacer) e
     WHERE e.pacer IS NOT NULL;
  END IF;

  IF v_paced IS NOT NULL THEN
    -- Placing rows is flow control, not a change of the reminders: not in nudge.changes (its
    -- trigger reads this), which logged 366,000 of them against 11,000 fires (explore24a #5).
    PERFORM set_config('nudge.placing', 'on', true);
    WITH paced_hosts AS (
      SELECT h.host AS pacer, greatest(h.next_send_at, now()) AS start,
             nudge.host_pace(h, now()) AS pace
        FROM nudge.target_hosts h
       WHERE h.host = ANY (v_pacers) AND h.paced_until > now()
       ORDER BY h.host
         FOR UPDATE SKIP LOCKED
    ), paced_urls AS (
      SELECT t.url AS pacer, greatest(t.next_send_at, now()) AS start,
             nudge.pace_at(t.pace, t.limited_at, t.paced_until, now()) AS pace
        FROM nudge.paced_targets t
       WHERE t.url = ANY (v_pacers) AND t.paced_until > now()
       ORDER BY t.url
         FOR UPDATE SKIP LOCKED
    ), pacing AS (
      SELECT * FROM paced_hosts UNION ALL SELECT * FROM paced_urls
    ), placed AS (
      SELECT s.*,
             -- A second's worth (whole deliveries, at least one) may go at once: the row goes if
             -- its place, counted from the pacer's next send time, is within it.
             s.k + extract(epoch FROM s.start - now()) * s.pace
               <= greatest(1, floor(s.pace)) - 1 + 1e-9 AS goes
        FROM (SELECT b.row_ctid, b.id, b.pacer, p.start, p.pace,
                     row_number() OVER (PARTITION BY b.pacer ORDER BY b.due, b.id) - 1 AS k
                FROM unnest(v_paced, v_pacers, v_paced_ids, v_paced_due)
                       AS b(row_ctid, pacer, id, due)
                JOIN pacing p ON p.pacer = b.pacer) s
    ), held AS (
      -- At its send time, a pace after the one before; but for 20 s at most (the time the pace
      -- takes to double), then placed again at the pace of then: a backlog placed at the pace of
      -- a 429 would keep it for good, and placed every 10 s, a waiting row was rewritten
      -- 66 to 1,014 times a second (explore24a #5).
      UPDATE nudge.reminders r
         SET occurrence_at = coalesce(r.occurrence_at, r.next_run_at),
             next_run_at = least(pl.start + pl.k / pl.pace * interval '1 second',
                                 now() + interval '20 seconds'),
             leased_by = NULL, lease_expires_at = NULL, updated_at = now()
        FROM placed pl
       WHERE r.id = pl.id AND NOT pl.goes
    ), taken AS (
      SELECT pl.pacer, min(pl.start) + count(*) FILTER (WHERE pl.goes) / min(pl.pace)
                                       * interval '1 second' AS next_send_at
        FROM placed pl GROUP BY pl.pacer
    ), sent_hosts AS (
      UPDATE nudge.target_hosts h SET next_send_at = tk.next_send_at, updated_at = now()
        FROM taken tk
       WHERE h.host = tk.pacer
    ), sent_urls AS (
      UPDATE nudge.paced_targets t SET next_send_at = tk.next_send_at, updated_at = now()
        FROM taken tk
       WHERE t.url = tk.pacer
    )
    SELECT array_agg(pl.row_ctid) FILTER (WHERE pl.goes) INTO v_sent FROM placed pl;
    PERFORM set_config('nudge.placing', '', true);
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

COMMENT ON FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer, p_email_slots integer, p_pass_over text[]) IS 'Leases up to p_limit due ACTIVE reminders, earliest first, passing over (neither locking nor taking) those whose target is LIKE any of p_pass_over when given, of which at most p_slots webhooks and emails and at most p_email_slots emails (each when given; log lines take no slot, and the rows past them are left due), to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts (attempt - rate_limited) were all used by workers that never finished them (recorded as failed), one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt saying up to when; the reminder moves to its first occurrence missed by no more than the threshold, due at once, or else its next future one), nor a webhook to a host whose circuit breaker is not closed (held until the breaker''s next_probe_at, occurrence and attempt kept), except one probe per host whose next_probe_at has passed (the held one with the fewest attempts used), which marks the breaker probing for lease_seconds (notified on nudge_breaker); a fire_all reminder starting a catch-up of more than fire_all_cap missed occurrences (up to ends_at) is returned at the first of the newest fire_all_cap of them (nudge.catch_up_kept), the older ones recorded as one skipped attempt at the oldest saying how many were dropped and from when to when; a webhook to a paced host, else to a paced URL (it answered 429: nudge.record_host_outcomes), goes only at that pace (nudge.pace_at) and no sooner than its next_send_at, a second''s worth at once, the others held (in the order of their occurrences, not logged in nudge.changes) until their send times a pace apart, or for 20 s at most and then placed again (occurrence and attempt kept, no attempt used), and the rows of a paced host or URL another claim is pacing are neither taken nor held; each fire''s max_attempts is the attempt number at which a failure ends its occurrence (its attempts plus the 429s that used none) and rate_limits_left how many more 429s would use none.';

