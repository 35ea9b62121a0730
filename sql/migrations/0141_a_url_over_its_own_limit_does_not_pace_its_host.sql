-- 0141: a URL refused among several of its own requests does not make the next lone 429 of its
-- host a host-wide limit (0135's README limitation: several Slack URLs each over their own limit
-- at once, some with a single 429 in a finished batch, could pace the whole host). The whole host
-- is paced when two of its URLs were refused alone (each sent once in its batch and not paced:
-- not over a limit of its own) in one batch or within 2 s; nudge.paced_targets.alone remembers
-- which URL rows began so.
--
-- Additive: a column with a default, and a body.

ALTER TABLE nudge.paced_targets ADD COLUMN alone boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN nudge.paced_targets.alone IS
  'Whether its last 429 came alone (the URL sent once in its batch and not paced): a second URL of the host refused alone within 2 s paces the host whole.';

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
  v_url_waits integer[];      -- its largest Retry-After,
  v_url_alone boolean[];      -- and whether it was refused alone (sent once, not paced)
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
  -- 429 paces its URL, unless two URLs of the host were refused alone (sent only once in their
  -- batch, and not paced) in the batch or within 2 s: then the whole host. (A URL refused among
  -- several of its own requests is over a limit of its own: 0141.)
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
             OR count(*) FILTER (WHERE u.limited > 0 AND u.sent = 1 AND NOT u.paced) > 1
             OR (bool_or(u.limited > 0 AND u.sent = 1 AND NOT u.paced)
                 AND EXISTS (SELECT 1 FROM nudge.paced_targets t
                              WHERE t.host = u.host AND t.alone
                                AND t.refused_at > now() - interval '2 seconds'
                                AND t.url <> ALL (array_agg(u.url) FILTER (WHERE u.limited > 0))))
               AS whole
        FROM per_url u
       GROUP BY u.host
    )
    SELECT array_agg(ph.host) FILTER (WHERE ph.whole),
           array_agg(u.url ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.host ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.accepted ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.wait ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.sent = 1 AND NOT u.paced ORDER BY u.url)
             FILTER (WHERE NOT ph.whole AND u.limited > 0)
      INTO v_host_wide, v_urls, v_url_hosts, v_accepted, v_url_waits, v_url_alone
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
           max(o.wait) FILTER (WHERE o.failed) AS failed_wait,
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
                -- A host that said when to come back (a 503's Retry-After) is probed then, if
                -- sooner: its deliveries waited a minute for a Retry-After of 5 s (explore24a #8).
                WHEN o.failed_wait > 0 THEN least(p_policy.breaker_open_seconds, o.failed_wait)
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
     -- A 429 to a host paced whole cuts the pace the host is sent at (nudge.pace_after_429),
     -- once per second: the 429s of one burst arrive in several finishes.
     CROSS JOIN LATERAL (
           SELECT o.limited > 0 AND o.host_wide
                  AND NOT coalesce(h.limited_at > now() - interval '1 second', false) AS cut,
                  nudge.pace_after_429(nudge.host_pace(h, now()), o.accepted) AS pace) p
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
           -- Retry-After, a growing pace would meet its limit as soon as it ends): paced until
           -- it would pass 1,000 a second.
           limited_at = CASE WHEN d.cut THEN now() + d.wait_time ELSE h.limited_at END,
           paced_until = CASE WHEN d.cut THEN nudge.paced_until(d.pace, now() + d.wait_time)
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

  -- A 429 to a URL paced on its own: as a host's, once per second its pace is cut
  -- (nudge.pace_after_429) and no request goes to it before its Retry-After. Rows are locked in URL order, after their hosts', as every finish does.
  IF v_urls IS NOT NULL THEN
    PERFORM 1 FROM nudge.paced_targets t WHERE t.url = ANY (v_urls) ORDER BY t.url FOR UPDATE;
    INSERT INTO nudge.paced_targets AS t (url, host, pace, limited_at, paced_until, next_send_at,
                                          refused_at, alone, updated_at)
    SELECT u.url, u.host, c.pace, c.limited_at, c.paced_until, c.next_send_at, now(), u.alone, now()
      FROM unnest(v_urls, v_url_hosts, v_accepted, v_url_waits, v_url_alone)
             AS u(url, host, accepted, wait, alone)
      LEFT JOIN nudge.paced_targets o ON o.url = u.url
     CROSS JOIN LATERAL (
           SELECT least(coalesce(u.wait, 0)::bigint * 1000, p_policy.retry_max_ms)
                    * interval '1 millisecond' AS wait_time,
                  NOT coalesce(o.limited_at > now() - interval '1 second', false) AS cut,
                  nudge.pace_after_429(nudge.pace_at(o.pace, o.limited_at, o.paced_until, now()),
                                       u.accepted) AS pace) p
     CROSS JOIN LATERAL (
           SELECT CASE WHEN p.cut THEN p.pace ELSE o.pace END AS pace,
                  CASE WHEN p.cut THEN now() + p.wait_time ELSE o.limited_at END AS limited_at,
                  CASE WHEN p.cut THEN nudge.paced_until(p.pace, now() + p.wait_time)
                       ELSE o.paced_until END AS paced_until,
                  greatest(o.next_send_at, now() + p.wait_time) AS next_send_at) c
    ON CONFLICT (url) DO UPDATE
       SET pace = EXCLUDED.pace, limited_at = EXCLUDED.limited_at,
           paced_until = EXCLUDED.paced_until, next_send_at = EXCLUDED.next_send_at,
           refused_at = EXCLUDED.refused_at, alone = EXCLUDED.alone,
           updated_at = EXCLUDED.updated_at;
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

COMMENT ON FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]) IS 'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer; p_limited: it answered 429, with p_retry_after_seconds): an answer (a 429 included) closes the host''s breaker and clears its failures, making the deliveries it held due in doubling waves (the first now, the next two a second later, then four, and so on, in id order); failures add up, keep the batch''s last failed attempt''s error (p_errors, cut at 500 characters) as the host''s last_error (an answer clears it), and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds, or for the largest Retry-After of the batch''s failed attempts (a 503''s) when that is shorter; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; the next probe is due between 0.8 and 1.2 times the open time after it opened (random, so that probes do not keep meeting a receiver that is down at regular times); a 429 paces its URL (nudge.target_url, in nudge.paced_targets), or the whole host when the host is paced already, the address is no URL, or two URLs of the host were refused alone (sent once in their batch and not paced) in the batch or within 2 s: at most once a second, the pace is cut (nudge.pace_after_429 of nudge.pace_at, or of the requests the host or URL accepted in the batch when not paced), growing from the end of that Retry-After (nudge.pace_at) until it passes 1,000 a second (nudge.paced_until), and no delivery goes to it before its largest Retry-After (up to the policy''s retry_max_ms); the URLs of those hosts no longer paced are deleted; each change of breaker state is notified on nudge_breaker; a batch that changes no breaker and has no 429 reads no reminder.';
