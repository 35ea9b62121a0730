-- 0100: a flag stops its reminders with the rights of Nudge's owner. The trigger ran as whoever
-- set the flag, so an application's role that may only write flags also needed UPDATE on
-- nudge.reminders (and INSERT on nudge.events, for the lifecycle events the completion emits),
-- which let it revive, complete or cancel any reminder by hand (explore13a #3). Setting a flag
-- now needs only the rights on nudge.status_flags; what it stops is decided here, as before.
-- (A trigger function cannot be called directly: only a change to status_flags runs it.)

ALTER FUNCTION nudge.complete_reminders_stopped_by_flags() SECURITY DEFINER;

COMMENT ON FUNCTION nudge.complete_reminders_stopped_by_flags() IS 'Trigger: every live reminder stopped by a flag that is true after an insert or update statement is COMPLETED (stop_condition) in the same transaction, so none is claimed after it commits; runs as its owner, so a role that may write flags needs no right on reminders.';
