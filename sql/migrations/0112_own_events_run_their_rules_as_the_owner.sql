-- 0112: Nudge's own events (nudge.reminder_completed, nudge.reminder_failed) run their rules as
-- Nudge's owner, as a flag's completions do. They run in the session whose change ended the
-- reminder, most often a worker's finish, whose login on the README's grants may not read
-- nudge.rules nor create reminders: the finish failed, and a reminder that ended by max_fires
-- stayed leased and was delivered again each time its lease ran out (explore17a #1: 5 POSTs for
-- max_fires 3). A rule can only remind, set a flag or cancel, as it could over REST.

ALTER FUNCTION nudge.emit_reminder_event() SECURITY DEFINER;

COMMENT ON FUNCTION nudge.emit_reminder_event() IS 'Trigger: a reminder that ends other than by its one fire emits nudge.reminder_completed (data.reason: max_fires, ends_at, stop_condition or cancelled; data.reminder) or nudge.reminder_failed (data.reminder, data.last_error) for its entity, in the same transaction, its rules run as Nudge''s owner (the session may be a worker''s, which may not write rules'' effects); when no rules run at that moment and a rule made the reminder, the event continues that rule''s chain (caused by the reminder''s event, one deeper), so the chain bounds of nudge.record_event also hold across transactions.';
