-- 0168: a reminder's updated_at never goes back. Set to now(), the start of the transaction, a
-- pause committed by a transaction that began before the reminder's last fire was dated before
-- that fire, and the dashboard, which keeps the newer of two states of a row by updated_at,
-- kept the fire's ACTIVE on screen for good (explore32d F3). Such a write is dated when it is
-- made instead; the rest keep now(), so a transaction's rows still share one time.

CREATE FUNCTION nudge.date_reminder_write_now() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
  RETURN NEW;
END $$;

COMMENT ON FUNCTION nudge.date_reminder_write_now() IS 'Trigger: a reminder write dated before the row''s updated_at (a transaction begun before the last change) is dated when it is made (clock_timestamp(), never before the old updated_at), so that updated_at orders a reminder''s states.';

CREATE TRIGGER reminder_updated_at_never_goes_back BEFORE UPDATE ON nudge.reminders
    FOR EACH ROW WHEN (new.updated_at < old.updated_at)
    EXECUTE FUNCTION nudge.date_reminder_write_now();

-- A host key of a 2,048-character URL without a port is 2,052 characters or so: its breaker
-- could not be closed by hand (explore32d F2).

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
  -- A host key is a URL's scheme, host and port: a 2,048-character URL without a port is
  -- keyed with its default one (explore32d F2: its breaker could not be closed).
  IF p_host IS NULL OR length(p_host) NOT BETWEEN 1 AND 2064 THEN
    PERFORM nudge.reject('host', 'must be a host as GET /v1/targets lists it (https://hooks.example.com:443)');
  END IF;
  -- Locked as a finish locks it, so no finish or claim changes it meanwhile.
  SELECT * INTO v_row FROM nudge.target_hosts h WHERE h.host = p_host FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no circuit breaker for host %: a host has one once a delivery to it failed or was answered 429 (GET /v1/targets)',
      p_host USING ERRCODE = 'NU404';
  END IF;
  IF v_row.state = 'closed' AND v_row.consecutive_failures = 0 AND NOT nudge.is_paced(v_row) THEN
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

COMMENT ON FUNCTION nudge.close_breaker(p_host text) IS 'Closes the circuit breaker of p_host (a host as nudge.target_hosts keys it) by hand and ends its pacing and its URLs'': state closed, failures and last error cleared, the deliveries it held (waiting for its next probe) due at once, as a probe''s success would, and so are those due to it within the next 20 s (held by its pace, or retries), the host and its URLs no longer paced; the change is notified on nudge_breaker (worker null) and audited (subject_type target) unless the session has nudge.audit = off; a closed breaker without failures of a host not paced, whole or by URL, is returned unchanged; no such host raises NU404, a host empty or over 2064 characters (a 2,048-character URL and its default port) 22023 naming host.';

