-- 0023: the drain's backend spends less per fire on the change log (issues 10 and 17).
--
-- Measured (backend CPU per fire over a 100,000-reminder log drain by one nudge-worker,
-- /proc/PID/schedstat): b3f27eb 19.1-19.9 us, main before this 23.2-24.4 us; the worker itself
-- 4.7 us against 4.9 us. perf put 9% of main's backend samples in pglz_compress, called from
-- nudge.log_fires: its one nudge.changes row per statement holds the statement's reminder ids
-- and occurrences (16 KB for a batch of 1,000), which TOAST compressed.

-- Stored out of line as they are: compressing 16 KB of ids and timestamps cost about 1 us per
-- fire and saved little (they are mostly distinct 8-byte values); the stream reads them back
-- without decompressing.
ALTER TABLE nudge.changes
  ALTER COLUMN object_ids SET STORAGE EXTERNAL,
  ALTER COLUMN occurrences SET STORAGE EXTERNAL;

-- A claim (it sets only the lease columns and attempt) never satisfies the WHEN clause of this
-- trigger: its column list lets PostgreSQL skip the trigger for it without evaluating the
-- clause. The list names every column the clause compares for a change; no BEFORE UPDATE
-- trigger of nudge.reminders sets any of them.
DROP TRIGGER reminder_changes_are_logged ON nudge.reminders;
CREATE TRIGGER reminder_changes_are_logged
  AFTER UPDATE OF status, next_run_at, interval_seconds, max_fires, ends_at, payload
  ON nudge.reminders
  FOR EACH ROW
  WHEN (OLD.fire_count = NEW.fire_count
        AND (OLD.status <> NEW.status
             OR (OLD.leased_by IS NOT DISTINCT FROM NEW.leased_by AND OLD.attempt = NEW.attempt
                 AND (NEW.next_run_at, NEW.interval_seconds, NEW.max_fires, NEW.ends_at,
                      NEW.payload)
                     IS DISTINCT FROM
                     (OLD.next_run_at, OLD.interval_seconds, OLD.max_fires, OLD.ends_at,
                      OLD.payload))))
  EXECUTE FUNCTION nudge.log_reminder_change();
