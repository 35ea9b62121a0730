-- 0054: a session's lookups stay index lookups however small the tables were when it planned
-- them. PL/pgSQL caches each statement's plan for the life of the session (a statement without
-- parameters at once, one with parameters after five runs when the generic plan is no dearer),
-- and so do the API's prepared statements. A plan made while a table holds a page or two is a
-- sequential scan, and it stays one until an ANALYZE of the table invalidates it (autovacuum:
-- within about a minute of the first 50 changes, never with autovacuum off). Found by measuring
-- bench.sh events (pg_stat_statements, track = all): the flag trigger's check for reminders
-- waiting on the flags just set read the whole reminders table for every event (7 ms an event
-- at the end of a 10-second run); on a 50,000-row table with plans made while it was empty,
-- pause, resume, cancel and reschedule read all of it to find one id (10-16 ms), a flag
-- statement 23-27 ms, a batch of events or reminders 30-90 ms more. The functions that look
-- rows up by key now plan without sequential scans: each lookup walks an index at any table
-- size, as the worker's claim and finish already do (hash joins stay allowed: without them a
-- batch of 1,000 events took three times as long). JIT is off in them too: a scan of a temporary
-- table, which has no index, still counts the penalty of a disabled plan (10^10), and that cost
-- would make PostgreSQL compile each such statement (0.2-1 s each). A SET clause costs about
-- 1 us a call.

ALTER FUNCTION nudge.complete_reminders_stopped_by_flags() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.set_flag(text, boolean) SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.put_contact(text, text, text, text) SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.pause_reminder(bigint) SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.resume_reminder(bigint) SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.cancel_reminder(bigint) SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.reschedule_reminder(bigint, timestamptz, integer, jsonb, integer, timestamptz,
                                         text[]) SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.emit_event(text, text, text, jsonb, text, timestamptz)
  SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.record_events(jsonb)
  SET enable_seqscan = off SET jit = off;
ALTER FUNCTION nudge.create_reminders(jsonb)
  SET enable_seqscan = off SET jit = off;
