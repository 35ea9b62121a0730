-- 0051: a reminder's history lists every occurrence that has attempts, not only ended ones.
-- Found by trying it: a reminder cancelled while retrying had two failed requests on record and
-- GET /v1/reminders/{id}/executions answered an empty list; the attempts of an occurrence still
-- retrying, and an occurrence skipped under misfire_policy skip, were not listed either. Only
-- an ended occurrence has an executions row (the worker's record of a fire, counted and
-- streamed as one), so the others are built from their attempts when the history is read:
-- `retrying` (the live reminder's current occurrence), `skipped`, or `unfinished` (its
-- reminder was cancelled or completed before it ended).
-- Also: reschedule_reminder's comment says what run_at does while an occurrence is retrying (it
-- moves that retry; the schedule's later occurrences keep their places), which a PATCH of a
-- retrying reminder showed and no document said.

CREATE FUNCTION nudge.reminder_executions(p_reminder_id bigint,
                                          p_before timestamptz DEFAULT NULL,
                                          p_limit integer DEFAULT 100)
 RETURNS TABLE(execution jsonb, scheduled_for timestamptz)
 LANGUAGE sql STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
  WITH ended AS (
    SELECT nudge.execution_json(e) AS execution, e.scheduled_for
      FROM nudge.executions e
     WHERE e.reminder_id = p_reminder_id AND (p_before IS NULL OR e.scheduled_for < p_before)
     ORDER BY e.scheduled_for DESC
     LIMIT p_limit
  ), span AS (
    -- Occurrences without an ending are looked for only back to the oldest ended one listed
    -- (all the way when the page is not full), so a page costs the same however long the
    -- history is.
    SELECT CASE WHEN count(*) < p_limit THEN '-infinity'::timestamptz
                ELSE min(ended.scheduled_for) END AS after
      FROM ended
  ), open AS (
    SELECT a.scheduled_for, count(*) AS attempts, bool_and(a.outcome = 'skipped') AS skipped,
           (array_agg(a.worker ORDER BY a.attempt DESC))[1] AS worker,
           (array_agg(a.error ORDER BY a.attempt DESC))[1] AS error,
           jsonb_agg(nudge.attempt_json(a) ORDER BY a.attempt) AS delivery_attempts
      FROM nudge.delivery_attempts a, span
     WHERE a.reminder_id = p_reminder_id AND a.scheduled_for > span.after
       AND (p_before IS NULL OR a.scheduled_for < p_before)
       AND NOT EXISTS (SELECT 1 FROM nudge.executions e
                        WHERE e.reminder_id = p_reminder_id AND e.scheduled_for = a.scheduled_for)
     GROUP BY a.scheduled_for
  )
  SELECT x.execution, x.scheduled_for
    FROM (SELECT ended.execution, ended.scheduled_for FROM ended
          UNION ALL
          SELECT jsonb_strip_nulls(jsonb_build_object(
                   'reminder_id', p_reminder_id, 'scheduled_for', o.scheduled_for,
                   'outcome', CASE WHEN o.skipped THEN 'skipped'
                                   WHEN r.status IN ('ACTIVE', 'PAUSED')
                                        AND r.occurrence_at = o.scheduled_for THEN 'retrying'
                                   ELSE 'unfinished' END,
                   'attempts', o.attempts, 'worker', o.worker, 'error', o.error,
                   'delivery_attempts', o.delivery_attempts)),
                 o.scheduled_for
            FROM open o LEFT JOIN nudge.reminders r ON r.id = p_reminder_id) x
   ORDER BY x.scheduled_for DESC
   LIMIT p_limit
$function$;

COMMENT ON FUNCTION nudge.reminder_executions(bigint, timestamptz, integer) IS 'Up to p_limit occurrences of reminder p_reminder_id scheduled before p_before (all when NULL), newest first, each as its public JSON with its delivery attempts oldest first: an ended one as recorded in executions (delivered or failed, with fired_at), one with attempts but no ending as retrying (the live reminder''s current occurrence), skipped (missed under misfire_policy skip) or unfinished (its reminder was cancelled or completed first), without fired_at.';

COMMENT ON FUNCTION nudge.reschedule_reminder(bigint, timestamptz, integer, jsonb, integer, timestamptz, text[]) IS 'Changes when and how an ACTIVE or PAUSED reminder fires (a NULL argument keeps that setting; p_clear names the limits to remove, max_fires and/or ends_at; identity, channel and status never change): run_at is the next fire, for a cron reminder its schedule''s first occurrence at or after run_at (while an occurrence is retrying, that occurrence''s next attempt: the schedule''s later occurrences keep their places), never after ends_at nor after 9999-12-31T23:59:59Z; nothing to change (every argument NULL, p_clear empty) raises 22023 naming change, a bad value 22023 naming the field (a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included; payload when the new payload lacks a value the reminder''s request reads; clear naming anything else; a limit both given and cleared), another status NU409, a missing reminder NU404; bringing the next fire forward wakes sleeping workers.';
