-- 0108: a heartbeat that moves a probing breaker's next_probe_at moves the deliveries it holds
-- with it. They wait for that time and are found by it when the probe's answer closes (or
-- reopens) the breaker; a probe answered after a heartbeat left them at the old time, so a
-- breaker closed by a successful probe released nothing, and the held deliveries went out only
-- when the probe's first lease ran out (explore16a #6: 27 s late).

CREATE OR REPLACE FUNCTION nudge.extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_extended integer;
  v_host     text;
  v_held     timestamptz;  -- what the breaker's held deliveries wait for,
  v_next     timestamptz;  -- and the new time
BEGIN
  UPDATE nudge.reminders SET lease_expires_at = now() + p_lease_seconds * interval '1 second'
   WHERE id = ANY (p_ids) AND leased_by = p_worker;
  GET DIAGNOSTICS v_extended = ROW_COUNT;
  -- Locked in host order, as a finish locks them before it moves held deliveries.
  FOR v_host, v_held IN
    SELECT h.host, h.next_probe_at FROM nudge.target_hosts h
     WHERE h.state = 'probing' AND h.probe_worker = p_worker AND h.probe_reminder_id = ANY (p_ids)
     ORDER BY h.host
       FOR UPDATE
  LOOP
    v_next := now() + p_lease_seconds * interval '1 second';
    UPDATE nudge.target_hosts SET next_probe_at = v_next, updated_at = now() WHERE host = v_host;
    UPDATE nudge.reminders r
       SET next_run_at = v_next, updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_host;
  END LOOP;
  RETURN v_extended;
END $$;

COMMENT ON FUNCTION nudge.extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer) IS 'Pushes the lease expiry of the listed reminders p_worker still holds, and of the circuit breaker probes among them (with the deliveries each such breaker holds, which wait for its next probe), to p_lease_seconds from now (a heartbeat for long deliveries); returns how many reminder leases it extended.';
