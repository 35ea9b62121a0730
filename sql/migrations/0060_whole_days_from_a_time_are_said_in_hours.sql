-- 0060: a fixed interval of a whole number of days from a start at a time of day is said in
-- hours ("every 48 hours, starting 2027-03-10 at 09:00"). 0058 said one day "every 24 hours" and
-- one week "every 7 days", and two days "every 2 days": the words parser now refuses "every N
-- days/weeks starting <day> at <time>" (the wall time would drift across daylight saving, as
-- "every 2 days at 9" is refused), so such sentences did not read back. Hours read back as the
-- same interval.

CREATE OR REPLACE FUNCTION nudge.schedule_words(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron_words text, p_timezone text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  v_tz    text := coalesce(p_timezone, 'UTC');
  v_words text;
BEGIN
  -- max_fires and ends_at have no effect on a one_time schedule, so its sentence leaves them out.
  IF p_schedule_type = 'one_time' THEN
    RETURN 'once on ' || nudge.words_instant(p_run_at, v_tz, NULL) || ' (' || v_tz || ')'
           || coalesce(', until ' || nudge.words_flag(p_stop_condition_value) || ' is true', '');
  END IF;
  IF p_schedule_type = 'recurring' THEN
    -- Days or weeks from a start at a time of day read back as the calendar schedule that keeps
    -- that time ("every day") or are refused ("every 2 days": rule 8): a fixed whole number of
    -- days from such a start is said in hours, which is what it is.
    v_words := 'every ' || CASE WHEN p_interval_seconds % 86400 = 0
                                     AND (p_run_at AT TIME ZONE v_tz)::time <> '00:00'
                                THEN (p_interval_seconds / 3600) || ' hours'
                                ELSE nudge.words_interval(p_interval_seconds) END;
  ELSE
    v_words := p_cron_words || ' (' || v_tz || ')';
  END IF;
  -- A recurring schedule names its zone once, after the last time it gives.
  IF p_run_at IS NOT NULL THEN
    v_words := v_words || ', starting ' || nudge.words_instant(p_run_at, v_tz, '00:00');
    IF p_schedule_type = 'recurring' AND p_ends_at IS NULL THEN
      v_words := v_words || ' (' || v_tz || ')';
    END IF;
  END IF;
  IF p_stop_condition_value IS NOT NULL THEN
    v_words := v_words || ', until ' || nudge.words_flag(p_stop_condition_value) || ' is true';
  END IF;
  IF p_ends_at IS NOT NULL THEN
    v_words := v_words || ', until ' || nudge.words_instant(p_ends_at, v_tz, '23:59:59');
    IF p_schedule_type = 'recurring' THEN
      v_words := v_words || ' (' || v_tz || ')';
    END IF;
  END IF;
  IF p_max_fires = 1 THEN
    v_words := v_words || ', at most once';
  ELSIF p_max_fires IS NOT NULL THEN
    v_words := v_words || ', at most ' || p_max_fires || ' times';
  END IF;
  RETURN v_words;
END $$;
COMMENT ON FUNCTION nudge.schedule_words(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron_words text, p_timezone text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone) IS 'The canonical sentence of a schedule from its parts, p_cron_words being nudge.cron_words of its cron expression; times in p_timezone (UTC when NULL); max_fires and ends_at are left out of a one_time schedule, on which they have no effect; an interval of whole days from a start at a time of day is said in hours, so that the sentence reads back as that interval.';
