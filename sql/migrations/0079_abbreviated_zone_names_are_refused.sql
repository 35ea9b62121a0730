-- 0079: the zone names CET, MET, EET, WET, EST, MST and HST are refused as abbreviations.
-- PostgreSQL applies them (AT TIME ZONE) as its abbreviations, one offset all year, while the
-- tz database's CET, EET, MET and WET keep summer time: a cron at 09:00 CET fired at 08:00Z all
-- summer, an hour off what the zone says; and EST, MST and HST (fixed offsets in both) are
-- mistaken for New York's, Denver's and Honolulu's time. The message names the zone to use and
-- the Etc/GMT name of the fixed offset.

CREATE OR REPLACE FUNCTION nudge.checked_timezone(p_zone text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    AS $_$
DECLARE
  v_set text;  -- set_config's answer: the zone's name as the tz database spells it
BEGIN
  IF p_zone IS NULL OR p_zone = '' THEN
    PERFORM nudge.reject('timezone', '"" is not a time zone name');
  END IF;
  -- A POSIX TZ string has a digit in its first part (its offset, counted west of Greenwich);
  -- no name of the tz database has, but these seven, which mean what they say.
  IF split_part(p_zone, '/', 1) ~ '[0-9<>,:]'
     AND p_zone NOT IN ('GMT0', 'GMT+0', 'GMT-0', 'EST5EDT', 'CST6CDT', 'MST7MDT', 'PST8PDT') THEN
    PERFORM nudge.reject('timezone', format('"%s" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone));
  END IF;
  IF lower(p_zone) IN ('localtime', 'posixrules', 'factory') THEN
    PERFORM nudge.reject('timezone', format('"%s" is not a time zone of its own (localtime is the database '
                    'server''s setting): name one, such as Europe/Berlin', p_zone));
  END IF;
  BEGIN
    v_set := set_config('timezone', p_zone, true);
  EXCEPTION WHEN invalid_parameter_value THEN
    IF EXISTS (SELECT 1 FROM pg_timezone_abbrevs a WHERE a.abbrev = upper(p_zone)) THEN
      PERFORM nudge.reject('timezone', format('"%s" is an abbreviation, one offset all year: name the zone, '
                      'such as Europe/Berlin or America/Los_Angeles', p_zone));
    END IF;
    PERFORM nudge.reject('timezone', format('"%s" is not a time zone name', p_zone));
  END;
  -- A name with a "/" the tz database lacks (Etc/GMT+14, Etc/GMT-16, Foo/Bar+3) still reads as
  -- a POSIX TZ string, upper-cased, its offset after the slash. The tz database's own names with
  -- a digit are only these (pg_timezone_names, without its posix/ copies); a regular expression
  -- costs 1 us where looking the name up in pg_timezone_names reads every zone file (175 ms).
  IF v_set ~ '[0-9]'
     AND v_set !~ '^(posix/)?((Etc/)?GMT[+-]?0|Etc/GMT(\+([1-9]|1[0-2])|-([1-9]|1[0-4]))|EST5EDT|CST6CDT|MST7MDT|PST8PDT)$' THEN
    PERFORM nudge.reject('timezone', format('"%s" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone));
  END IF;
  -- PostgreSQL reads these seven as abbreviations wherever a zone is applied (AT TIME ZONE):
  -- one offset all year, though the tz database's CET, EET, MET and WET keep summer time, and
  -- EST, MST and HST are taken for New York's, Denver's and Honolulu's time. A schedule must
  -- follow the rules its zone says.
  IF v_set IN ('CET', 'MET', 'EET', 'WET', 'EST', 'MST', 'HST') THEN
    PERFORM nudge.reject('timezone', format(
      '"%s" is read as an abbreviation, UTC%s all year: name the zone, such as %s, or %s for that '
      'offset all year', p_zone,
      CASE v_set WHEN 'CET' THEN '+01:00' WHEN 'MET' THEN '+01:00' WHEN 'EET' THEN '+02:00'
                 WHEN 'WET' THEN '+00:00' WHEN 'EST' THEN '-05:00' WHEN 'MST' THEN '-07:00'
                 ELSE '-10:00' END,
      CASE v_set WHEN 'CET' THEN 'Europe/Paris' WHEN 'MET' THEN 'Europe/Paris'
                 WHEN 'EET' THEN 'Europe/Athens' WHEN 'WET' THEN 'Europe/Lisbon'
                 WHEN 'EST' THEN 'America/New_York' WHEN 'MST' THEN 'America/Denver'
                 ELSE 'Pacific/Honolulu' END,
      CASE v_set WHEN 'CET' THEN 'Etc/GMT-1' WHEN 'MET' THEN 'Etc/GMT-1' WHEN 'EET' THEN 'Etc/GMT-2'
                 WHEN 'WET' THEN 'UTC' WHEN 'EST' THEN 'Etc/GMT+5' WHEN 'MST' THEN 'Etc/GMT+7'
                 ELSE 'Etc/GMT+10' END));
  END IF;
  RETURN v_set;
END $_$;

COMMENT ON FUNCTION nudge.checked_timezone(p_zone text) IS 'p_zone as the tz database spells it (europe/berlin: Europe/Berlin) when it is a zone of the tz database that PostgreSQL knows (not localtime, posixrules or Factory) and applies by its rules (not CET, MET, EET, WET, EST, MST or HST, which PostgreSQL applies as abbreviations); otherwise raises through nudge.reject (22023 naming timezone, or while a rule''s action runs NU422 naming the template''s field), naming an offset or POSIX TZ string ("+05:00", "UTC+5", "Etc/GMT+14") or an abbreviation ("CEST", "PDT", "CET") as such.';
