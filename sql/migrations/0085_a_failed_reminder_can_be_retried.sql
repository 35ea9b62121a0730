-- 0085: a FAILED reminder can be retried. A one_time reminder whose attempts ran out (its
-- receiver down for longer than its backoff) could only be created again, by hand, one by one;
-- job queues let an operator retry what failed once the receiver is back (River's JobRetry,
-- pg-boss's retry, Oban's retry_job). nudge.retry_reminder makes it ACTIVE and due now, as a new
-- occurrence: the failed one stays in the history, failed, and the retry has its own
-- Idempotency-Key. nudge.retry_reminders does it in bulk, like pause/resume/cancel. On the
-- stream the change is "retried".

CREATE FUNCTION nudge.retry_reminder(p_id bigint) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row  nudge.reminders := nudge.lock_reminder(p_id);
  v_twin bigint;
BEGIN
  IF v_row.status = 'ACTIVE' THEN RETURN v_row; END IF;
  IF v_row.status <> 'FAILED' THEN
    RAISE EXCEPTION 'reminder % is %, only a FAILED reminder can be retried', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  SELECT t.id INTO v_twin FROM nudge.reminders t
   WHERE t.entity_type = v_row.entity_type AND t.entity_id = v_row.entity_id
     AND t.event_type = v_row.event_type AND t.status IN ('ACTIVE', 'PAUSED');
  IF FOUND THEN
    RAISE EXCEPTION 'reminder % cannot be retried: reminder % is live with its entity_type, '
                    'entity_id and event_type', p_id, v_twin
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE nudge.reminders
     -- now(): after the failed occurrence, so never the same one (whole seconds could be).
     SET status = 'ACTIVE', completed_reason = NULL, finished_at = NULL, next_run_at = now(),
         occurrence_at = NULL, attempt = 0, updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
EXCEPTION
  WHEN unique_violation THEN  -- the identity became live since the check (a concurrent create)
    RAISE EXCEPTION 'reminder % cannot be retried: a reminder with its entity_type, entity_id and '
                    'event_type is live', p_id
      USING ERRCODE = 'NU409';
END $$;

COMMENT ON FUNCTION nudge.retry_reminder(p_id bigint) IS 'FAILED becomes ACTIVE and due now with a fresh attempt budget, as a new occurrence (the failed one stays failed in the history; the retry has its own Idempotency-Key); retrying an ACTIVE reminder changes nothing; any other status, or a live reminder with the same entity_type, entity_id and event_type, raises NU409, a missing reminder NU404.';

CREATE FUNCTION nudge.retry_reminders(p_ids bigint[] DEFAULT NULL::bigint[], p_status text DEFAULT NULL::text, p_entity_type text DEFAULT NULL::text, p_entity_id text DEFAULT NULL::text, p_event_type text DEFAULT NULL::text, p_channel text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql
    AS $$
  SELECT nudge.change_matching_reminders('retry', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;

COMMENT ON FUNCTION nudge.retry_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Retries up to 10,000 FAILED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.retry_reminder would each, leaving out any whose entity_type, entity_id and event_type a live reminder or a newer FAILED one holds; answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

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
             -- A failed reminder whose identity is live again, or that a newer failed one
             -- shares, cannot take a retry (one live reminder per identity).
             AND (p_change <> 'retry'
                  OR NOT EXISTS (SELECT 1 FROM nudge.reminders t
                                  WHERE t.entity_type = r.entity_type
                                    AND t.entity_id = r.entity_id
                                    AND t.event_type = r.event_type
                                    AND (t.status IN ('ACTIVE', 'PAUSED')
                                         OR (t.status = 'FAILED' AND t.id > r.id))))
           ORDER BY r.id LIMIT c_limit + 1
             FOR UPDATE) m;
  v_ids := coalesce(v_ids, '{}');
  v_more := cardinality(v_ids) > c_limit;
  v_ids := v_ids[1:c_limit];

  PERFORM CASE p_change WHEN 'pause' THEN nudge.pause_reminder(i.id)
                        WHEN 'resume' THEN nudge.resume_reminder(i.id)
                        WHEN 'retry' THEN nudge.retry_reminder(i.id)
                        ELSE nudge.cancel_reminder(i.id) END
     FROM unnest(v_ids) WITH ORDINALITY AS i(id, n) ORDER BY i.n;
  RETURN jsonb_build_object('count', cardinality(v_ids), 'ids', to_jsonb(v_ids), 'more', v_more);
END $$;

COMMENT ON FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses, resumes, cancels or retries (p_change) up to 10,000 reminders that can take that change and match every given filter, in id order, each through the single-reminder function (a retry only of a FAILED reminder whose identity no live reminder and no newer FAILED one holds); answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

CREATE OR REPLACE FUNCTION nudge.log_reminder_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  INSERT INTO nudge.changes (kind, change, object_ids)
  VALUES ('reminder',
          CASE WHEN NEW.status = OLD.status THEN 'rescheduled'
               WHEN OLD.status = 'FAILED' THEN 'retried'
               ELSE CASE NEW.status WHEN 'PAUSED' THEN 'paused' WHEN 'ACTIVE' THEN 'resumed'
                                    WHEN 'CANCELLED' THEN 'cancelled'
                                    WHEN 'COMPLETED' THEN 'completed' ELSE 'failed' END END,
          ARRAY[NEW.id]);
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.log_reminder_change() IS 'Trigger: logs in nudge.changes a reminder update that is not a fire: its new status (paused, resumed, cancelled, completed, failed), retried when a FAILED one became ACTIVE, or rescheduled when only its schedule or payload changed.';
