-- 0031: nudge.reminder_json writes the reminder's JSON as text and reads it once as jsonb.
--
-- The answer is the same jsonb value (jsonb orders its keys itself, so the text the API sends
-- is the same too): only the work changes. jsonb_build_object encodes each of ~30 fields,
-- sorts the keys, and each `||` and jsonb_strip_nulls decodes and re-encodes the whole
-- object; concat skips the NULL parts (a `', "key":' || NULL` is NULL, so unset fields are left
-- out as jsonb_strip_nulls left them), to_json quotes strings and times exactly as
-- jsonb_build_object does, and one jsonb input parses the result. Rendering 1,000 reminders
-- (`SELECT nudge.reminder_json(r)::text`, backend CPU, fastest of 3 runs of 10) 19.6-20.7 ->
-- 14.1-14.9 ms, about 5 of them nudge.describe_reminder; every row of a 52,000-reminder
-- database gives the same jsonb as before.
CREATE OR REPLACE FUNCTION nudge.reminder_json(r nudge.reminders) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT concat(
    '{"id":', r.id,
    -- The payload is the user's JSON, kept as it is (nulls inside it too); schedule_text is
    -- always there (null when there are no words for it): only unset fields are left out.
    ',"payload":', coalesce(r.payload::text, 'null'),
    ',"schedule_text":', coalesce(to_json(nudge.describe_reminder(r))::text, 'null'),
    ',"entity_type":' || to_json(r.entity_type)::text,
    ',"entity_id":' || to_json(r.entity_id)::text,
    ',"event_type":' || to_json(r.event_type)::text,
    ',"channel":' || to_json(r.channel)::text,
    ',"target":' || to_json(r.target)::text,
    ',"schedule_type":' || to_json(r.schedule_type)::text,
    ',"interval_seconds":' || r.interval_seconds,
    ',"cron":' || to_json(r.cron)::text,
    ',"timezone":' || to_json(r.timezone)::text,
    ',"misfire_policy":' || to_json(r.misfire_policy)::text,
    ',"max_attempts":' || r.max_attempts,
    ',"next_run_at":'
      || CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN to_json(r.next_run_at)::text END,
    ',"retrying_occurrence":'
      || CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN to_json(r.occurrence_at)::text END,
    ',"attempts":'
      || CASE WHEN r.status IN ('ACTIVE', 'PAUSED') AND r.occurrence_at IS NOT NULL
              THEN r.attempt END,
    ',"stop_condition_type":' || to_json(r.stop_condition_type)::text,
    ',"stop_condition_value":' || to_json(r.stop_condition_value)::text,
    ',"max_fires":' || r.max_fires,
    ',"ends_at":' || to_json(r.ends_at)::text,
    ',"fire_count":' || r.fire_count,
    ',"status":' || to_json(r.status)::text,
    ',"completed_reason":' || to_json(r.completed_reason)::text,
    ',"last_error":' || to_json(r.last_error)::text,
    ',"rule_id":' || r.rule_id,
    ',"event_id":' || r.event_id,
    ',"created_at":' || to_json(r.created_at)::text,
    ',"updated_at":' || to_json(r.updated_at)::text,
    ',"finished_at":' || to_json(r.finished_at)::text,
    -- The request as stored, its nulls kept like the payload's ({{secret.NAME}}, never a value).
    ',"request":' || r.request::text,
    '}')::jsonb
$$;
