-- 0048: a reminder's time zone is a zone of the tz database, and its sentence names it so that
-- it reads back. Found by trying it.
--
-- nudge.checked_timezone tested a name with AT TIME ZONE, which also reads abbreviations: a
-- cron reminder "in CEST" or "in PDT" was taken and fired at a fixed offset all year, an hour
-- off for half of it, and "localtime" (the database server's own setting), "posixrules" and
-- "Factory" were taken too. It now asks SET TIME ZONE, which takes only what the tz database
-- defines, inside the function (its SET clause undoes the change when it returns), and refuses
-- those three by name. It answers the name as the tz database spells it: "europe/BERLIN" was
-- stored and shown as typed, so one zone could look like two. Reminders already stored keep
-- their zone.

CREATE OR REPLACE FUNCTION nudge.checked_timezone(p_zone text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
  v_set text;  -- set_config's answer: the zone's name as the tz database spells it
BEGIN
  IF p_zone IS NULL OR p_zone = '' THEN
    RAISE EXCEPTION 'timezone: "" is not a time zone name' USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  -- A POSIX TZ string has a digit in its first part (its offset, counted west of Greenwich);
  -- no name of the tz database has, but these seven, which mean what they say.
  IF split_part(p_zone, '/', 1) ~ '[0-9<>,:]'
     AND p_zone NOT IN ('GMT0', 'GMT+0', 'GMT-0', 'EST5EDT', 'CST6CDT', 'MST7MDT', 'PST8PDT') THEN
    RAISE EXCEPTION 'timezone: "%" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  IF lower(p_zone) IN ('localtime', 'posixrules', 'factory') THEN
    RAISE EXCEPTION 'timezone: "%" is not a time zone of its own (localtime is the database '
                    'server''s setting): name one, such as Europe/Berlin', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  BEGIN
    v_set := set_config('timezone', p_zone, true);
  EXCEPTION WHEN invalid_parameter_value THEN
    IF EXISTS (SELECT 1 FROM pg_timezone_abbrevs a WHERE a.abbrev = upper(p_zone)) THEN
      RAISE EXCEPTION 'timezone: "%" is an abbreviation, one offset all year: name the zone, '
                      'such as Europe/Berlin or America/Los_Angeles', p_zone
        USING ERRCODE = '22023', COLUMN = 'timezone';
    END IF;
    RAISE EXCEPTION 'timezone: "%" is not a time zone name', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END;
  RETURN v_set;
END $$;
COMMENT ON FUNCTION nudge.checked_timezone(p_zone text) IS 'p_zone as the tz database spells it (europe/berlin: Europe/Berlin) when it is a zone of the tz database that PostgreSQL knows (not localtime, posixrules or Factory); 22023 with COLUMN = timezone otherwise, naming an offset or POSIX TZ string ("+05:00", "UTC+5") or an abbreviation ("CEST", "PDT") as such.';
