-- 0091: a bulk retry of 10,000 failed reminders runs in seconds, not past the statement timeout.
-- Each candidate looked for a newer FAILED twin of its identity, which no index serves (the
-- identity index holds live reminders only): 1.1 ms a reminder, so 9,000 or more ran past
-- [database] statement_timeout_ms and every call was a 503 (explore11b: 10,000 took 10.9 s).
-- Now a candidate is looked up among live reminders only, and the matching failed reminders are
-- retried newest first, each unless its identity is live by then: of one identity's matching
-- failed reminders the newest is retried.

CREATE FUNCTION nudge.retry_if_no_live_twin(p_id bigint) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE v_row nudge.reminders := nudge.lock_reminder(p_id);
BEGIN
  IF v_row.status <> 'FAILED' OR EXISTS (
       SELECT 1 FROM nudge.reminders t
        WHERE t.entity_type = v_row.entity_type AND t.entity_id = v_row.entity_id
          AND t.event_type = v_row.event_type AND t.status IN ('ACTIVE', 'PAUSED')) THEN
    RETURN false;
  END IF;
  PERFORM nudge.retry_reminder(p_id);
  RETURN true;
END $$;

COMMENT ON FUNCTION nudge.retry_if_no_live_twin(p_id bigint) IS 'Retries FAILED reminder p_id as nudge.retry_reminder does and answers true, or answers false and changes nothing when it is not FAILED or a live reminder has its entity_type, entity_id and event_type.';

CREATE OR REPLACE FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  -- At most this many change per call; "more" tells the caller to call again.
  c_limit   constant integer := 10000;
  v_from    text[] := CASE p_change WHEN 'pause' THEN '{ACTIVE}'
                                    WHEN 'resume' THEN '{PAUSED}'
                                    WHEN 'retry' THEN '{FAILED}'
                                    ELSE '{ACTIVE,PAUSED}' END;
  v_ids     bigint[];
  v_more    boolean;
  v_id      bigint;
  v_done    bigint[] := '{}';
BEGIN
  IF p_ids IS NULL AND p_status IS NULL AND p_entity_type IS NULL AND p_entity_id IS NULL
     AND p_event_type IS NULL AND p_channel IS NULL THEN
    PERFORM nudge.reject('filter', 'name ids or at least one of status, entity_type, entity_id, '
                                   'event_type, channel (status ACTIVE matches every active reminder)');
  END IF;
  IF cardinality(p_ids) NOT BETWEEN 1 AND 1000 THEN
    PERFORM nudge.reject('ids', 'must hold 1 to 1000 reminder ids');
  END IF;
  -- As REST reads them: an id that is none, and a name filter that matches nothing by its form.
  PERFORM nudge.reject(format('ids[%s]', u.n - 1), 'must be a reminder id (a positive integer)')
     FROM (SELECT i.n FROM unnest(p_ids) WITH ORDINALITY AS i(id, n)
            WHERE i.id IS NULL OR i.id < 1 ORDER BY i.n LIMIT 1) u;
  PERFORM nudge.reject(f.field, CASE WHEN f.value = '' THEN 'must not be empty'
                                     ELSE 'must be at most 200 characters' END)
     FROM (SELECT x.field, x.value
             FROM unnest(ARRAY['entity_type', 'entity_id', 'event_type'],
                         ARRAY[p_entity_type, p_entity_id, p_event_type]) WITH ORDINALITY
                  AS x(field, value, n)
            WHERE x.value = '' OR length(x.value) > 200 ORDER BY x.n LIMIT 1) f;
  IF p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF p_status IS NOT NULL
     AND p_status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED') THEN
    PERFORM nudge.reject('status', 'must be one of ACTIVE, PAUSED, COMPLETED, CANCELLED, FAILED');
  END IF;

  SELECT array_agg(m.id ORDER BY m.id) INTO v_ids
    FROM (SELECT r.id FROM nudge.reminders r
           WHERE r.status = ANY (v_from)
             AND (p_ids IS NULL OR r.id = ANY (p_ids))
             AND (p_status IS NULL OR r.status = p_status)
             AND (p_entity_type IS NULL OR r.entity_type = p_entity_type)
             AND (p_entity_id IS NULL OR r.entity_id = p_entity_id)
             AND (p_event_type IS NULL OR r.event_type = p_event_type)
             AND (p_channel IS NULL OR r.channel = p_channel)
             -- A failed reminder whose identity is live again cannot take a retry (one live
             -- reminder per identity; a lookup in the live identities' index).
             AND (p_change <> 'retry'
                  OR NOT EXISTS (SELECT 1 FROM nudge.reminders t
                                  WHERE t.entity_type = r.entity_type
                                    AND t.entity_id = r.entity_id
                                    AND t.event_type = r.event_type
                                    AND t.status IN ('ACTIVE', 'PAUSED')))
           ORDER BY r.id LIMIT c_limit + 1
             FOR UPDATE) m;
  v_ids := coalesce(v_ids, '{}');
  v_more := cardinality(v_ids) > c_limit;
  v_ids := v_ids[1:c_limit];

  IF p_change = 'retry' THEN
    -- Newest first: of the matching failed reminders of one identity, the newest is retried and
    -- the older ones, whose identity it then makes live, are left as they are.
    FOR v_id IN SELECT i.id FROM unnest(v_ids) AS i(id) ORDER BY i.id DESC LOOP
      IF nudge.retry_if_no_live_twin(v_id) THEN
        v_done := v_done || v_id;
      END IF;
    END LOOP;
    v_ids := ARRAY(SELECT d.id FROM unnest(v_done) AS d(id) ORDER BY d.id);
  ELSE
    PERFORM CASE p_change WHEN 'pause' THEN nudge.pause_reminder(i.id)
                          WHEN 'resume' THEN nudge.resume_reminder(i.id)
                          ELSE nudge.cancel_reminder(i.id) END
       FROM unnest(v_ids) WITH ORDINALITY AS i(id, n) ORDER BY i.n;
  END IF;
  RETURN jsonb_build_object('count', cardinality(v_ids), 'ids', to_jsonb(v_ids), 'more', v_more);
END $$;

COMMENT ON FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses, resumes, cancels or retries (p_change) up to 10,000 reminders that can take that change and match every given filter, each through the single-reminder function (a retry only of a FAILED reminder whose identity no live reminder holds, newest first, so that of one identity''s matching failed reminders the newest is retried); answers {count, ids, more} (ids ascending); ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

COMMENT ON FUNCTION nudge.retry_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Retries up to 10,000 FAILED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.retry_reminder would each, newest first, leaving out any whose entity_type, entity_id and event_type a live reminder holds by then (so of one identity''s matching failed reminders the newest is retried); answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';
