-- 0042: four defects found by trying Nudge as a new user.
--
-- 1. A reminder near the payload limit could not end. Its nudge.reminder_completed or
--    nudge.reminder_failed event carries the whole reminder in data, which the 64 KiB limit of
--    nudge.event_data refused: setting its stop flag (over REST or the application's own SQL),
--    cancelling it and the worker's finish all failed, and the worker delivered the occurrence
--    again each time its lease ran out. Events posted by callers are still held to 64 KiB when
--    they arrive (nudge.emit_event, nudge.record_events); the column takes what Nudge's own
--    events carry: a reminder is at most a 64 KiB payload, a 16 KiB request body, 20 headers of
--    2 KiB and a few KiB of other fields.
-- 2. A time zone PostgreSQL reads as a POSIX TZ string was taken, with POSIX's sign: "+05:00"
--    and "UTC+5" placed 09:00 at UTC-5, and the sentence then said "(+05:00)". Only names of
--    the tz database are taken now.
-- 3. Rescheduling a cron reminder to run_at fired it at that very instant, off its schedule; it
--    now fires at the schedule's first occurrence at or after run_at, as a create does. A run_at
--    after the reminder's ends_at is refused, as an ends_at before the next fire already was.
-- 4. nudge.set_flag with the value the flag already has wrote it again (an audit row, a change
--    for the live stream, a new updated_at); a change that changes nothing records nothing.

ALTER DOMAIN nudge.event_data DROP CONSTRAINT event_data_is_at_most_64_kib;
ALTER DOMAIN nudge.event_data ADD CONSTRAINT event_data_is_at_most_256_kib
  CHECK (pg_column_size(VALUE) <= 262144);

CREATE OR REPLACE FUNCTION nudge.checked_timezone(p_zone text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- A POSIX TZ string has a digit in its first part (its offset, counted west of Greenwich);
  -- no name of the tz database has, but these seven, which mean what they say.
  IF split_part(p_zone, '/', 1) ~ '[0-9<>,:]'
     AND p_zone NOT IN ('GMT0', 'GMT+0', 'GMT-0', 'EST5EDT', 'CST6CDT', 'MST7MDT', 'PST8PDT') THEN
    RAISE EXCEPTION 'timezone: "%" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  BEGIN
    PERFORM now() AT TIME ZONE p_zone;
    IF p_zone IS NULL OR p_zone = '' THEN
      RAISE invalid_parameter_value;
    END IF;
  EXCEPTION WHEN invalid_parameter_value THEN
    RAISE EXCEPTION 'timezone: "%" is not a time zone name', coalesce(p_zone, '')
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END;
  RETURN p_zone;
END $$;
COMMENT ON FUNCTION nudge.checked_timezone(p_zone text) IS 'p_zone itself when it is a name of the tz database that PostgreSQL knows; 22023 with COLUMN = timezone otherwise, naming an offset or POSIX TZ string ("+05:00", "UTC+5") as such.';

CREATE OR REPLACE FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamptz DEFAULT NULL,
                                                     p_interval_seconds integer DEFAULT NULL,
                                                     p_payload jsonb DEFAULT NULL,
                                                     p_max_fires integer DEFAULT NULL,
                                                     p_ends_at timestamptz DEFAULT NULL)
RETURNS nudge.reminders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_row  nudge.reminders := nudge.lock_reminder(p_id);
  v_next timestamptz;  -- the next fire once rescheduled
BEGIN
  IF v_row.status NOT IN ('ACTIVE', 'PAUSED') THEN
    RAISE EXCEPTION 'reminder % is %, only an ACTIVE or PAUSED reminder can be rescheduled',
      p_id, v_row.status USING ERRCODE = 'NU409';
  END IF;
  IF p_interval_seconds IS NOT NULL THEN
    IF v_row.schedule_type <> 'recurring' THEN
      PERFORM nudge.reject('interval_seconds', 'is only for recurring reminders');
    END IF;
    IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
  END IF;
  IF p_payload IS NOT NULL AND jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge.reject('payload', 'must be a JSON object');
  END IF;
  IF p_payload IS NOT NULL AND pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge.reject('payload', 'must be at most 64 KiB');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires <= v_row.fire_count THEN
    PERFORM nudge.reject('max_fires', 'must be more than the fires already made');
  END IF;
  -- A cron reminder keeps to its schedule: its first occurrence at or after run_at.
  v_next := CASE WHEN p_run_at IS NULL THEN v_row.next_run_at
                 ELSE nudge.first_run_at(v_row.schedule_type, p_run_at, v_row.cron_schedule,
                                         v_row.timezone) END;
  IF v_next IS NULL THEN
    PERFORM nudge.reject('run_at', 'has no occurrence of the cron schedule after it');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_next THEN
    PERFORM nudge.reject('ends_at', 'must not be before the next fire');
  END IF;
  IF p_run_at IS NOT NULL AND p_ends_at IS NULL AND v_next > v_row.ends_at THEN
    PERFORM nudge.reject('run_at', 'must not be after ends_at');
  END IF;
  UPDATE nudge.reminders
     SET next_run_at = v_next,
         interval_seconds = coalesce(p_interval_seconds, interval_seconds),
         payload = coalesce(p_payload, payload),
         max_fires = coalesce(p_max_fires, max_fires),
         ends_at = coalesce(p_ends_at, ends_at),
         updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;
COMMENT ON FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamptz, p_interval_seconds integer, p_payload jsonb, p_max_fires integer, p_ends_at timestamptz) IS 'Changes when and how an ACTIVE or PAUSED reminder fires (a NULL argument keeps that setting; identity, channel and status never change): run_at is the next fire, for a cron reminder its schedule''s first occurrence at or after run_at, never after ends_at; a bad value raises 22023 naming the field, another status NU409, a missing reminder NU404; bringing the next fire forward wakes sleeping workers.';

CREATE OR REPLACE FUNCTION nudge.set_flag(p_key text, p_value boolean) RETURNS nudge.status_flags
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_flag nudge.status_flags;
BEGIN
  IF NOT coalesce(length(p_key) BETWEEN 1 AND 200 AND p_value IS NOT NULL, false) THEN
    IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 200 THEN
      PERFORM nudge.reject('key', 'must be 1 to 200 characters');
    END IF;
    PERFORM nudge.reject('value', 'must be true or false');
  END IF;
  LOOP
    INSERT INTO nudge.status_flags AS f (key, value) VALUES (p_key, p_value)
    ON CONFLICT (key) DO NOTHING
    RETURNING f.* INTO v_flag;
    EXIT WHEN FOUND;
    UPDATE nudge.status_flags AS f SET value = p_value
     WHERE f.key = p_key AND f.value IS DISTINCT FROM p_value
    RETURNING f.* INTO v_flag;
    EXIT WHEN FOUND;
    -- Already p_value: nothing to write. Gone meanwhile: insert it again.
    SELECT * INTO v_flag FROM nudge.status_flags AS f WHERE f.key = p_key AND f.value = p_value;
    EXIT WHEN FOUND;
  END LOOP;
  RETURN v_flag;
END $$;
COMMENT ON FUNCTION nudge.set_flag(p_key text, p_value boolean) IS 'Sets a flag: inserts a new key, updates an existing one whose value differs (so a true value completes the reminders waiting on it in the same transaction), and writes nothing (no audit row, no change, same updated_at) when it already has p_value; returns the flag; 22023 naming key or value for bad input.';
