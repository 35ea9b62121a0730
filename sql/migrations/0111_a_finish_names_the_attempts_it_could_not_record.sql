-- 0111: a finish that could not record some of the attempts it was given says so (explore16a
-- #9): a worker that did not run past its leases (SIGSTOP, a paused VM) logged its deliveries
-- as failed timeouts and counted them, while their outcomes were thrown away, another worker
-- had delivered them again, and nothing said a lease was lost. The worker logs the WARNING.

CREATE OR REPLACE FUNCTION nudge.finish_and_claim(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_limit integer, p_slots integer DEFAULT NULL::integer, p_retry_after_seconds integer[] DEFAULT NULL::integer[], p_email_slots integer DEFAULT NULL::integer) RETURNS SETOF nudge.claimed_fire
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_recorded integer;
  v_lost     bigint[];
BEGIN
  IF cardinality(p_ids) > 0 THEN
    v_recorded := nudge.finish_attempts(p_worker, p_policy, p_ids, p_scheduled_for, p_attempts,
                                        p_outcomes, p_errors, p_status_codes, p_responses,
                                        p_durations_ms, p_retry_after_seconds);
    IF v_recorded < cardinality(p_ids) THEN
      -- Rare, so looked up only then: the attempts neither recorded nor ended by this worker.
      SELECT array_agg(u.id ORDER BY u.id) INTO v_lost
        FROM unnest(p_ids, p_scheduled_for, p_attempts) AS u(id, scheduled_for, attempt)
       WHERE NOT EXISTS (SELECT 1 FROM nudge.delivery_attempts a
                          WHERE a.reminder_id = u.id AND a.scheduled_for = u.scheduled_for
                            AND a.attempt = u.attempt AND a.worker = p_worker)
         AND NOT EXISTS (SELECT 1 FROM nudge.executions e
                          WHERE e.reminder_id = u.id AND e.scheduled_for = u.scheduled_for
                            AND e.worker = p_worker);
      RAISE WARNING 'nudge: % of % ended attempts of worker % were not recorded: it no longer held their leases (they ran out while it was not running, and another worker took them over); reminders %',
        cardinality(p_ids) - v_recorded, cardinality(p_ids), p_worker,
        array_to_string(v_lost[1:20], ', ') || CASE WHEN cardinality(v_lost) > 20 THEN ', ...' ELSE '' END;
    END IF;
  END IF;
  IF p_limit > 0 THEN
    RETURN QUERY SELECT * FROM nudge.claim_due(p_worker, p_limit, p_policy, p_slots, p_email_slots);
  END IF;
END $$;

COMMENT ON FUNCTION nudge.finish_and_claim(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_limit integer, p_slots integer, p_retry_after_seconds integer[], p_email_slots integer) IS 'A worker''s whole round trip in one transaction: nudge.finish_attempts for the attempts that ended (with their receivers'' Retry-After), then nudge.claim_due for up to p_limit more, at most p_slots of them webhooks and emails and at most p_email_slots emails (0 claims nothing); attempts it could not record (their leases were lost: they ran out while the worker was not running, and another worker took them over) are counted and named in a WARNING, which the worker logs.';
