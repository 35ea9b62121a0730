-- 0124: an RFC 3339 time may name a leap second, 23:59:60Z (explore20a: occurred_at
-- "2016-12-31T23:59:60Z" was refused as not RFC 3339). PostgreSQL reads second 60 as the next
-- minute's 00 and refuses a fraction past it, so :59:60 is taken with no fraction or a zero one,
-- at any hour (the local time of a leap second under a whole-hour offset). Same signature.

CREATE OR REPLACE FUNCTION nudge.rfc3339_pattern() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ](?:[01][0-9]|2[0-3]):(?:[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?|59:60(?:\.0{1,9})?)(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])'
$$;

COMMENT ON FUNCTION nudge.rfc3339_pattern() IS 'The regular expression (unanchored) of an RFC 3339 date-time with an offset as the REST API reads one: 2026-01-31T09:00:00Z, 2026-01-31 09:00:00.5+01:00, and a leap second as HH:59:60 with no fraction or a zero one (read as the next minute''s 00, as PostgreSQL reads it).';
