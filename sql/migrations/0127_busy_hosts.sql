-- 0127: nudge.busy_hosts, where the webhook work of this moment waits or runs, by host: a slow
-- receiver never opens its breaker, so GET /v1/targets (breakers of hosts that failed) did not
-- show it, and finding which host held the deliveries took SQL by hand (explore21a #5).

CREATE FUNCTION nudge.busy_hosts(p_limit integer DEFAULT 20, p_read_cap integer DEFAULT 10000) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
  WITH earliest AS (
    -- The earliest due rows on the due index, leased or not, whatever their channel: the cap
    -- bounds the rows read, not the webhooks found.
    SELECT r.channel, r.target, r.entity_type, r.entity_id, r.next_run_at,
           r.lease_expires_at IS NOT NULL AND r.lease_expires_at > now() AS leased
      FROM nudge.reminders r
     WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
     ORDER BY r.next_run_at
     LIMIT greatest(p_read_cap, 1)),
  -- By address first: an address is parsed into its host once, not once a row.
  by_address AS (
    SELECT coalesce(e.target,
                    (SELECT c.address FROM nudge.contacts c
                      WHERE c.entity_type = e.entity_type AND c.entity_id = e.entity_id
                        AND c.channel = 'webhook')) AS address,
           count(*) FILTER (WHERE e.leased) AS in_flight,
           count(*) FILTER (WHERE NOT e.leased) AS due,
           min(e.next_run_at) FILTER (WHERE NOT e.leased) AS oldest_due_at
      FROM earliest e
     WHERE e.channel = 'webhook'
     GROUP BY 1),
  by_host AS (
    SELECT nudge.target_host(a.address) AS host, sum(a.in_flight) AS in_flight,
           sum(a.due) AS due, min(a.oldest_due_at) AS oldest_due_at
      FROM by_address a
     WHERE a.address IS NOT NULL
     GROUP BY 1)
  SELECT jsonb_build_object(
    'hosts', coalesce((
      SELECT jsonb_agg(jsonb_build_object(
               'host', b.host, 'in_flight', b.in_flight, 'due', b.due,
               -- From year 1 at the earliest (-infinity cannot be subtracted); 0 when none is due.
               'oldest_due_seconds',
               CASE WHEN b.oldest_due_at IS NULL THEN 0
                    ELSE round(extract(epoch FROM now() - greatest(b.oldest_due_at,
                                                                   nudge.earliest_time())), 3) END,
               'breaker', coalesce(h.state, 'closed'))
             ORDER BY b.in_flight + b.due DESC, b.host)
        FROM (SELECT * FROM by_host
               ORDER BY in_flight + due DESC, host LIMIT greatest(p_limit, 0)) b
        LEFT JOIN nudge.target_hosts h ON h.host = b.host), '[]'::jsonb),
    'read', (SELECT count(*) FROM earliest),
    'read_cap', greatest(p_read_cap, 1))
$$;

COMMENT ON FUNCTION nudge.busy_hosts(p_limit integer, p_read_cap integer) IS 'The webhook hosts (nudge.target_host of the target, else of the contact''s address) with the most deliveries due or under way now, up to p_limit of them, busiest first: for each, in_flight (leased to a worker), due (no live lease), the seconds its earliest due one has waited and its circuit breaker''s state (closed when it has none), counted among the p_read_cap earliest due ACTIVE reminders of any channel (read, the rows read, says whether the cap cut the count); deliveries a breaker holds or a retry waits for are not due and are not counted.';
