-- Bulk changes: pause, resume or cancel every reminder that matches a filter (status, entity,
-- event type, channel) or a list of up to 1,000 ids, in one transaction.
--
-- Each reminder changes through the same function as a single change (nudge.pause_reminder,
-- resume_reminder, cancel_reminder), so a bulk change does exactly what that many single ones
-- would: the misfire policy on resume, the lifecycle event on cancel, the workers woken. The
-- matching rows are locked first, in id order, so two bulk changes cannot deadlock, and a row a
-- worker finished in the meantime no longer matches instead of failing the whole change.

CREATE FUNCTION nudge.change_matching_reminders(
  p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text,
  p_event_type text, p_channel text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- At most this many change per call; "more" tells the caller to call again.
  c_limit   constant integer := 10000;
  v_from    text[] := CASE p_change WHEN 'pause' THEN '{ACTIVE}'
                                    WHEN 'resume' THEN '{PAUSED}'
                                    ELSE '{ACTIVE,PAUSED}' END;
  v_ids     bigint[];
  v_more    boolean;
BEGIN
  IF p_ids IS NULL AND p_status IS NULL AND p_entity_type IS NULL AND p_entity_id IS NULL
     AND p_event_type IS NULL AND p_channel IS NULL THEN
    PERFORM nudge.reject('filter', 'name ids or at least one of status, entity_type, entity_id, '
                                   'event_type, channel (status ACTIVE matches every active reminder)');
  END IF;
  IF cardinality(p_ids) > 1000 THEN
    PERFORM nudge.reject('ids', 'must hold at most 1000 ids');
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
           ORDER BY r.id LIMIT c_limit + 1
             FOR UPDATE) m;
  v_ids := coalesce(v_ids, '{}');
  v_more := cardinality(v_ids) > c_limit;
  v_ids := v_ids[1:c_limit];

  PERFORM CASE p_change WHEN 'pause' THEN nudge.pause_reminder(i.id)
                        WHEN 'resume' THEN nudge.resume_reminder(i.id)
                        ELSE nudge.cancel_reminder(i.id) END
     FROM unnest(v_ids) WITH ORDINALITY AS i(id, n) ORDER BY i.n;
  RETURN jsonb_build_object('count', cardinality(v_ids), 'ids', to_jsonb(v_ids), 'more', v_more);
END $$;
COMMENT ON FUNCTION nudge.change_matching_reminders(text, bigint[], text, text, text, text, text) IS
  'Pauses, resumes or cancels (p_change) up to 10,000 reminders that can take that change and match every given filter (ids: at most 1,000), in id order, each through the single-reminder function; answers {count, ids, more}; no filter at all raises 22023 naming filter.';

CREATE FUNCTION nudge.pause_reminders(
  p_ids bigint[] DEFAULT NULL, p_status text DEFAULT NULL, p_entity_type text DEFAULT NULL,
  p_entity_id text DEFAULT NULL, p_event_type text DEFAULT NULL, p_channel text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql AS $$
  SELECT nudge.change_matching_reminders('pause', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;
COMMENT ON FUNCTION nudge.pause_reminders(bigint[], text, text, text, text, text) IS
  'Pauses up to 10,000 ACTIVE reminders matching every given filter (ids: at most 1,000) in one transaction, as nudge.pause_reminder would each; answers {count, ids, more}; more = true when others still match; no filter raises 22023.';

CREATE FUNCTION nudge.resume_reminders(
  p_ids bigint[] DEFAULT NULL, p_status text DEFAULT NULL, p_entity_type text DEFAULT NULL,
  p_entity_id text DEFAULT NULL, p_event_type text DEFAULT NULL, p_channel text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql AS $$
  SELECT nudge.change_matching_reminders('resume', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;
COMMENT ON FUNCTION nudge.resume_reminders(bigint[], text, text, text, text, text) IS
  'Resumes up to 10,000 PAUSED reminders matching every given filter (ids: at most 1,000) in one transaction, as nudge.resume_reminder would each (missed occurrences follow the misfire policy); answers {count, ids, more}; no filter raises 22023.';

CREATE FUNCTION nudge.cancel_reminders(
  p_ids bigint[] DEFAULT NULL, p_status text DEFAULT NULL, p_entity_type text DEFAULT NULL,
  p_entity_id text DEFAULT NULL, p_event_type text DEFAULT NULL, p_channel text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql AS $$
  SELECT nudge.change_matching_reminders('cancel', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;
COMMENT ON FUNCTION nudge.cancel_reminders(bigint[], text, text, text, text, text) IS
  'Cancels up to 10,000 ACTIVE or PAUSED reminders matching every given filter (ids: at most 1,000) in one transaction, as nudge.cancel_reminder would each (each emits nudge.reminder_completed with reason cancelled); answers {count, ids, more}; no filter raises 22023.';
