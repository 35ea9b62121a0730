-- 0046: what SQL takes is what REST takes, times included; a bad row cannot stall a worker.
-- Found by an exploratory test of REST and SQL.
--
-- 1. A time of -infinity (or infinity, or one before year 1) was taken from SQL: a recurring
--    reminder at -infinity made every finish of its worker fail ("cannot subtract infinite
--    timestamps") and, since the worker retries that finish with the rest of its batch and
--    claims in the same transaction, nothing else that worker held or would claim fired again,
--    cancelled or not (a cancel keeps the lease, and the finish still computed the next
--    occurrence). Every SQL entry point now refuses a time outside 0001-01-01T00:00:00Z ..
--    9999-12-31T23:59:59Z (nudge.time_problem, with nudge.latest_fire()'s bound at the top) as
--    22023 naming it: run_at, ends_at, occurred_at (items[i].run_at in a batch), from of a
--    preview, and text for a parsed phrase that names such a time. A row written before, or
--    by hand, is contained: an interval counted from -infinity goes on one interval after the
--    fire that ended, a cron catch-up from it takes none, and the due gauges and the worker's
--    wait treat it as due now, so a finish or a claim never fails on it.
-- 2. Items of nudge.create_reminders and nudge.emit_events took any time PostgreSQL reads
--    ("tomorrow", "2030-01-01" in the session's zone, BC dates): their times are now RFC 3339
--    with an offset, the pattern REST uses (nudge.rfc3339_pattern; a batch's times in one match,
--    nudge.are_rfc3339), else 22023
--    "items[i].run_at: must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z".
-- 3. Their values are typed as REST types them: a string must be a JSON string, a number a
--    JSON number (a fraction, or one too long for its column, is refused with the field's real
--    range), an object an object, and an item a JSON object ("items[0]: must be a JSON
--    object"). The set-based paths check this in the pass that reads the items
--    (nudge.item_values_are_plain); the item-by-item paths name the field
--    (nudge.check_item).
-- 4. nudge.is_blank takes every Unicode white space (Zs, \t\n\v\f\r, U+0085, U+2028, U+2029) and
--    the zero-width U+200B, U+200C, U+200D, U+2060 and U+FEFF as blank.
-- 5. A rule's name and event_type, a contact's entity, a flag key (set_flag, a rule's flag key,
--    a reminder's stop_condition_value) and an event key of only white space are refused as the
--    other blank names are.
-- 6. A preview whose occurrences run past 9999-12-31T23:59:59Z lists none there instead of
--    refusing naming run_at (only a run_at, or a from before year 1, given out of range is
--    refused, naming it).
-- 7. nudge.pause_reminders, resume_reminders and cancel_reminders refuse an empty or too long
--    entity_type, entity_id or event_type, and an id that is NULL or not positive
--    (ids[i]: must be a reminder id), as REST does; nudge.reschedule_reminder with nothing to
--    change raises 22023 as REST's PATCH {} answers 400.
-- 8. A payload's (and an event's data's) 64 KiB is its size as PostgreSQL stores it (jsonb),
--    which deep nesting makes larger than its text: the message says so.
-- 9. nudge.emit_events makes its temporary tables without a NOTICE on every later call.
-- 10. A rule template's whole number too long for an integer states the field's own range
--    (delay_seconds: from 0 to 2147483647).

-- 1. The first instant RFC 3339 can write; with nudge.latest_fire() it bounds every time taken.
CREATE FUNCTION nudge.earliest_time() RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT timestamptz '0001-01-01 00:00:00+00'
$$;
COMMENT ON FUNCTION nudge.earliest_time() IS 'The first instant Nudge takes, 0001-01-01T00:00:00Z: an earlier one (a BC date, -infinity) has no RFC 3339 form; nudge.latest_fire() is the last.';

-- Inlined into its callers (no SET): one CASE, no query.
CREATE FUNCTION nudge.time_problem(p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN p_at < nudge.earliest_time() THEN 'must not be before 0001-01-01T00:00:00Z'
              WHEN p_at > nudge.latest_fire() THEN 'must not be after 9999-12-31T23:59:59Z' END
$$;
COMMENT ON FUNCTION nudge.time_problem(p_at timestamp with time zone) IS 'Why a time given to Nudge cannot be taken (before nudge.earliest_time(), -infinity included; after nudge.latest_fire(), infinity included), as the rest of a 22023 message; NULL for a time it takes and for NULL.';

-- 2. REST's pattern (api/input.cpp is_rfc3339): YYYY-MM-DD, T (t or a space), HH:MM:SS, an
-- optional fraction of up to 9 digits, and Z or an offset of at most 23:59. That the date
-- exists and the offset is one PostgreSQL takes is checked by the cast that reads it.
CREATE FUNCTION nudge.rfc3339_pattern() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])'
$$;
COMMENT ON FUNCTION nudge.rfc3339_pattern() IS 'The regular expression (unanchored) of an RFC 3339 date-time with an offset as the REST API reads one: 2026-01-31T09:00:00Z, 2026-01-31 09:00:00.5+01:00.';

CREATE FUNCTION nudge.is_rfc3339(p_text text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT p_text ~ ('^' || nudge.rfc3339_pattern() || '$')
$$;
COMMENT ON FUNCTION nudge.is_rfc3339(p_text text) IS 'Whether p_text is an RFC 3339 date-time with an offset as the REST API reads one (nudge.rfc3339_pattern); NULL for NULL.';

-- The set-based paths check a batch's times in one match: PostgreSQL builds a regular
-- expression's automaton anew for every match, about 4 us for one time; over the batch's times
-- joined by line breaks it is built once (1,000 times: 0.9 ms instead of 7.6). A time holding a
-- line break of its own is caught by the count of lines.
CREATE FUNCTION nudge.are_rfc3339(p_texts text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(x.n, 0) = 0
         OR (x.j ~ ('^' || nudge.rfc3339_pattern() || '(?:\n' || nudge.rfc3339_pattern() || ')*$')
             AND length(x.j) - length(replace(x.j, E'\n', '')) = x.n - 1)
    FROM (SELECT array_to_string(p_texts, E'\n') AS j,
                 cardinality(array_remove(p_texts, NULL)) AS n) x
$$;
COMMENT ON FUNCTION nudge.are_rfc3339(p_texts text[]) IS 'Whether every element of p_texts that is not NULL is an RFC 3339 date-time with an offset as the REST API reads one (nudge.rfc3339_pattern), in one match; true when none is given.';

-- 3. What a JSON value is called in a message, as REST calls it.
CREATE FUNCTION nudge.json_kind(p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE jsonb_typeof(p_value) WHEN 'string' THEN 'a string' WHEN 'number' THEN 'a number'
                                    WHEN 'boolean' THEN 'a boolean' WHEN 'array' THEN 'an array'
                                    WHEN 'object' THEN 'an object' ELSE 'null' END
$$;
COMMENT ON FUNCTION nudge.json_kind(p_value jsonb) IS 'The kind of a JSON value as an error message names it: a string, a number, a boolean, an array, an object or null.';

-- The range of each whole-number field of an item or a remind template, for its messages.
CREATE FUNCTION nudge.whole_number_bounds(p_field text) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE p_field
           WHEN 'interval_seconds' THEN '{1,31622400}'::bigint[]
           WHEN 'interval_minutes' THEN '{1,527040}'::bigint[]
           WHEN 'max_fires' THEN '{1,2147483647}'::bigint[]
           WHEN 'max_attempts' THEN '{1,100}'::bigint[]
           WHEN 'delay_seconds' THEN '{0,2147483647}'::bigint[]
           WHEN 'rule_id' THEN '{1,9223372036854775807}'::bigint[]
           WHEN 'event_id' THEN '{1,9223372036854775807}'::bigint[] END
$$;
COMMENT ON FUNCTION nudge.whole_number_bounds(p_field text) IS 'The least and greatest value of a whole-number field of a create item, an event item or a remind template (interval_seconds, interval_minutes, max_fires, max_attempts, delay_seconds, rule_id, event_id); NULL for any other field.';

-- What a value of a create item or an event item must be, as REST reads it. A whole number
-- inside its column's type but outside the field's range is left to the create, whose message
-- names the range in its own words.
-- STABLE, as format() is: an IMMUTABLE one calling it would never be inlined (sql/README.md).
CREATE FUNCTION nudge.item_value_problem(p_field text, p_value jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT CASE
    WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL  -- as absent, as REST reads it
    WHEN p_field IN ('run_at', 'ends_at', 'occurred_at') THEN
      CASE WHEN jsonb_typeof(p_value) <> 'string'
           THEN 'must be an RFC 3339 time string, not ' || nudge.json_kind(p_value)
           WHEN NOT nudge.is_rfc3339(p_value #>> '{}')
           THEN 'must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z' END
    WHEN nudge.whole_number_bounds(p_field) IS NOT NULL THEN
      CASE WHEN jsonb_typeof(p_value) <> 'number'
           THEN 'must be an integer, not ' || nudge.json_kind(p_value)
           WHEN NOT (p_value::text ~ '^-?[0-9]{1,19}$'
                     AND abs(p_value::text::numeric)
                         <= CASE WHEN p_field IN ('rule_id', 'event_id')
                                 THEN 9223372036854775807 ELSE 2147483647 END)
           THEN format('must be a whole number from %s to %s',
                       (nudge.whole_number_bounds(p_field))[1],
                       (nudge.whole_number_bounds(p_field))[2]) END
    WHEN p_field IN ('payload', 'request', 'data') THEN
      CASE WHEN jsonb_typeof(p_value) <> 'object'
           THEN 'must be a JSON object, not ' || nudge.json_kind(p_value) END
    WHEN jsonb_typeof(p_value) <> 'string' THEN 'must be a string, not ' || nudge.json_kind(p_value)
  END
$$;
COMMENT ON FUNCTION nudge.item_value_problem(p_field text, p_value jsonb) IS 'Why a JSON value cannot be field p_field of a create or event item as the REST API reads it (run_at, ends_at, occurred_at: an RFC 3339 time string with an offset; a whole-number field: a whole number its column holds, else its range; payload, request, data: an object; any other: a string), as the rest of a 22023 message; NULL when it can, and for JSON null (absent).';

-- The item-by-item paths read an item as REST reads one: an object, only known keys, each value
-- of its type; the first bad value, in key order, names its field.
CREATE FUNCTION nudge.check_item(p_item jsonb, p_known text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_field   text;
  v_problem text;
BEGIN
  IF jsonb_typeof(p_item) IS DISTINCT FROM 'object' THEN
    PERFORM nudge.reject('', 'must be a JSON object');  -- '' names the item itself
  END IF;
  PERFORM nudge.check_keys(p_item, p_known, '');
  SELECT x.k, p.problem INTO v_field, v_problem
    FROM jsonb_each(p_item) AS x(k, v),
         LATERAL (SELECT nudge.item_value_problem(x.k, x.v) AS problem) p
   WHERE p.problem IS NOT NULL
   ORDER BY x.k LIMIT 1;
  IF v_problem IS NOT NULL THEN
    PERFORM nudge.reject(v_field, v_problem);
  END IF;
END $$;
COMMENT ON FUNCTION nudge.check_item(p_item jsonb, p_known text[]) IS 'Raises 22023 for an item of a batch REST would refuse: ": must be a JSON object" (COLUMN '''') when it is not an object, else "<key>: is not a known field" for its first key not in p_known, else "<field>: <problem>" for its first value nudge.item_value_problem refuses (in key order); otherwise does nothing.';

-- What an item-by-item path raises for an error of its item p_index: 22023 "items[<i>].<field>:
-- <problem>" ("items[<i>]: <problem>" for the item itself) with that COLUMN, NU422
-- "items[<i>]: rule <id>: ...".
CREATE FUNCTION nudge.reject_item(p_index integer, p_state text, p_field text, p_message text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION '%', CASE WHEN p_state = 'NU422' THEN format('items[%s]: %s', p_index, p_message)
                            WHEN p_field = '' THEN format('items[%s]%s', p_index, p_message)
                            ELSE format('items[%s].%s', p_index, p_message) END
    USING ERRCODE = p_state,
          COLUMN = CASE WHEN p_field = '' THEN format('items[%s]', p_index)
                        ELSE format('items[%s].%s', p_index, p_field) END;
END $$;
COMMENT ON FUNCTION nudge.reject_item(p_index integer, p_state text, p_field text, p_message text) IS 'Always raises p_state (22023 or NU422) for the error "<field>: <problem>" of item p_index of a batch: "items[<index>].<field>: <problem>" (COLUMN items[<index>].<field>; field '''': "items[<index>]: <problem>"), NU422 "items[<index>]: <message>".';

-- The set-based paths: one expression per item, in the pass that reads it, no query. Only the
-- fields whose text a wrong JSON type could pass off as good are looked at: a number or an
-- object given for channel, schedule_type, misfire_policy, stop_condition_type, target, cron,
-- payload, request or data is refused by the create's own checks too, which sends the batch down
-- the item-by-item path, where nudge.check_item names the type.
CREATE FUNCTION nudge.item_values_are_plain(p_item jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(jsonb_typeof(p_item->'entity_type') = 'string', true)
     AND coalesce(jsonb_typeof(p_item->'entity_id') = 'string', true)
     AND coalesce(jsonb_typeof(p_item->'event_type') = 'string', true)
     AND coalesce(jsonb_typeof(p_item->'stop_condition_value') = 'string', true)
     AND coalesce(jsonb_typeof(p_item->'timezone') = 'string', true)
     AND coalesce(jsonb_typeof(p_item->'interval_seconds') = 'number', true)
     AND coalesce(jsonb_typeof(p_item->'interval_minutes') = 'number', true)
     AND coalesce(jsonb_typeof(p_item->'max_fires') = 'number', true)
     AND coalesce(jsonb_typeof(p_item->'max_attempts') = 'number', true)
     AND coalesce(jsonb_typeof(p_item->'rule_id') = 'number', true)
     AND coalesce(jsonb_typeof(p_item->'event_id') = 'number', true)
$$;
COMMENT ON FUNCTION nudge.item_values_are_plain(p_item jsonb) IS 'false when a create or event item holds a value of a JSON type its text could hide (a name, stop_condition_value or timezone not a string; a whole-number field not a number); the set-based paths take only items for which it is true (a fraction or a too long number fails their cast; their times are checked with nudge.are_rfc3339), the others go item by item.';

-- 4. Every Unicode white space, and the zero-width characters, is blank.
CREATE OR REPLACE FUNCTION nudge.is_blank(p_text text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  -- btrim's set: ASCII white space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
  -- U+202F, U+205F, U+3000 (Unicode White_Space), and the zero-width U+200B, U+200C, U+200D,
  -- U+2060, U+FEFF, which show nothing either.
  SELECT btrim(p_text, E' \t\n\r\f\x0B\u0085\u00A0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u2028\u2029\u202F\u205F\u3000\u200B\u200C\u200D\u2060\uFEFF') = ''
$$;
COMMENT ON FUNCTION nudge.is_blank(p_text text) IS 'true when p_text is empty or holds only white space: Unicode''s (spaces of every width, no-break spaces, tabs, line and paragraph breaks, form feeds, vertical tabs, U+0085) and the zero-width U+200B, U+200C, U+200D, U+2060 and U+FEFF; NULL for NULL.';

-- 1. Contained: an infinite anchor or bound never makes a finish (or a claim) raise.
CREATE OR REPLACE FUNCTION nudge.next_interval_occurrence(p_anchor timestamp with time zone, p_interval_seconds integer, p_after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  -- An infinite time cannot be subtracted: one in a row written before 0046 (or by hand) must
  -- not fail the finish of every fire its worker holds. Counted from -infinity, the phase is
  -- unknown: one interval after p_after. After an infinite p_after: none.
  SELECT CASE
    WHEN p_anchor > p_after THEN p_anchor
    WHEN NOT isfinite(p_after) THEN 'infinity'
    WHEN NOT isfinite(p_anchor) THEN p_after + p_interval_seconds * interval '1 second'
    ELSE p_anchor + interval '1 second' * (p_interval_seconds::bigint
           * (floor(extract(epoch FROM p_after - p_anchor) / p_interval_seconds)::bigint + 1))
  END
$$;
COMMENT ON FUNCTION nudge.next_interval_occurrence(p_anchor timestamp with time zone, p_interval_seconds integer, p_after timestamp with time zone) IS 'The first occurrence of "every p_interval_seconds from p_anchor" strictly after p_after (p_anchor itself when it is later; from -infinity, p_after plus one interval; after an infinite p_after, infinity); never raises for an infinite time.';

-- 1. Contained: no cron walk from -infinity.
CREATE OR REPLACE FUNCTION nudge.occurrence_after(r nudge.reminders, p_after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE r.schedule_type
           WHEN 'recurring' THEN nudge.next_interval_occurrence(coalesce(r.occurrence_at, r.next_run_at),
                                                                r.interval_seconds, p_after)
           -- After -infinity (a catch-up from a row written by hand): none to catch up.
           WHEN 'cron' THEN coalesce(CASE WHEN isfinite(p_after)
                                          THEN nudge.cron_next(r.cron_schedule, r.timezone, p_after) END,
                                     'infinity')
           ELSE coalesce(r.occurrence_at, r.next_run_at) END
$$;
COMMENT ON FUNCTION nudge.occurrence_after(r nudge.reminders, p_after timestamp with time zone) IS 'The first occurrence of a recurring or cron reminder strictly after p_after (interval occurrences keep the phase of the current occurrence, nudge.next_interval_occurrence; a cron reminder with none, or after an infinite p_after: infinity); a one_time reminder''s own occurrence; never raises for an infinite time.';

-- 1. Contained: the worker's wait never subtracts an infinite time.
CREATE OR REPLACE FUNCTION nudge.seconds_until_due() RETURNS double precision
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_next timestamptz;
BEGIN
  v_next := least(
    (SELECT r.next_run_at FROM nudge.reminders r
      WHERE r.status = 'ACTIVE' AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
      ORDER BY r.next_run_at LIMIT 1),
    (SELECT min(r.lease_expires_at) FROM nudge.reminders r
      WHERE r.status = 'ACTIVE' AND r.next_run_at <= now() AND r.lease_expires_at > now()));
  -- An infinite time cannot be subtracted: -infinity (a row written by hand) is due now, and a
  -- reminder whose next fire is infinity (a cron schedule with none left) never is.
  IF v_next IS NULL OR v_next = 'infinity' THEN
    RETURN NULL;
  END IF;
  RETURN greatest(0, extract(epoch FROM greatest(v_next, now()) - now()))::double precision;
END $$;
COMMENT ON FUNCTION nudge.seconds_until_due() IS 'Seconds (>= 0, database clock) until a claim could next find work: the earliest due unleased reminder or the earliest lease to expire (0 for a reminder due at -infinity); NULL when nothing is scheduled or the earliest is at infinity.';

-- 1. Contained: the oldest due reminder is counted from year 1 at the earliest.
CREATE OR REPLACE FUNCTION nudge.gauges(p_count_cap integer) RETURNS TABLE(name text, help text, label_name text, label_value text, value double precision)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
  SELECT 'nudge_due_reminders',
         format('Due ACTIVE reminders no worker holds, counted up to %s.', greatest(p_count_cap, 1)),
         NULL, NULL,
         (SELECT count(*) FROM (
            SELECT 1 FROM nudge.reminders r
             WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
               AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
             LIMIT greatest(p_count_cap, 1)) w)::double precision
  UNION ALL
  SELECT 'nudge_oldest_due_seconds',
         'How long the earliest due reminder no worker holds has been due, in seconds (0: none).',
         NULL, NULL,
         -- Counted from year 1 at the earliest: -infinity (a row written by hand) cannot be
         -- subtracted, and jsonb (the overview) holds no infinite number.
         coalesce(extract(epoch FROM now() - (
           SELECT greatest(r.next_run_at, nudge.earliest_time()) FROM nudge.reminders r
            WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
              AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
            ORDER BY r.next_run_at LIMIT 1)), 0)::double precision
  UNION ALL
  SELECT 'nudge_breaker_hosts',
         'Webhook target hosts that have failed, by circuit breaker state (closed, open, probing).',
         'state', s.state,
         (SELECT count(*) FROM nudge.target_hosts h WHERE h.state = s.state)::double precision
    FROM unnest(ARRAY['closed', 'open', 'probing']) AS s(state)
$$;
COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS 'The database''s gauges for the workers'' GET /metrics, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is) and nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing); reads at most p_count_cap + 1 entries of the due index.';

-- 1, 5, 8. run_at and ends_at in range; a stop flag key not only white space; the payload limit as stored.
CREATE OR REPLACE FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_target text DEFAULT NULL::text, p_payload jsonb DEFAULT '{}'::jsonb, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_misfire_policy text DEFAULT NULL::text, p_max_attempts integer DEFAULT NULL::integer, p_request jsonb DEFAULT NULL::jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_row     nudge.reminders;
  v_run_at  timestamptz;
  v_stopped boolean := false;
  v_parsed  nudge.cron;
  v_zone    text;
BEGIN
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_type) THEN
    PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_id) THEN
    PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_event_type) THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF p_channel = 'log' AND p_target IS NOT NULL THEN
    PERFORM nudge.reject('target',
                         'a log reminder has no target (its fires go to the worker''s log)');
  END IF;
  IF length(p_target) > 2048 THEN
    PERFORM nudge.reject('target', 'must be at most 2048 characters');
  END IF;
  IF nudge.address_problem(p_channel, p_target) IS NOT NULL THEN
    PERFORM nudge.reject('target', nudge.address_problem(p_channel, p_target));
  END IF;
  IF p_misfire_policy IS NOT NULL AND p_misfire_policy NOT IN ('fire_once', 'skip', 'fire_all') THEN
    PERFORM nudge.reject('misfire_policy', 'must be one of fire_once, skip, fire_all');
  END IF;
  IF p_misfire_policy IN ('skip', 'fire_all') AND p_schedule_type = 'one_time' THEN
    PERFORM nudge.reject('misfire_policy', 'is only for recurring and cron reminders');
  END IF;
  IF p_max_attempts IS NOT NULL AND p_max_attempts NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge.reject('max_attempts', 'must be 1 to 100');
  END IF;
  IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge.reject('payload', 'must be a JSON object');
  END IF;
  IF pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge.reject('payload', 'must be at most 64 KiB as stored (jsonb: deep nesting makes it larger than its text)');
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
  END IF;
  IF nudge.time_problem(p_ends_at) IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', nudge.time_problem(p_ends_at));
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is only for recurring reminders');
    END IF;
  ELSIF p_schedule_type = 'recurring' THEN
    IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
  ELSIF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge.reject('cron', 'is required for cron'); END IF;
    IF length(p_cron) > 200 THEN PERFORM nudge.reject('cron', 'must be at most 200 characters'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is not for cron reminders');
    END IF;
    v_zone := nudge.checked_timezone(coalesce(p_timezone, 'UTC'));
    v_parsed := nudge.cron_parse(p_cron);
  ELSE
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_schedule_type <> 'cron' AND (p_cron IS NOT NULL OR p_timezone IS NOT NULL) THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron reminders');
  END IF;
  v_run_at := nudge.first_run_at(p_schedule_type, p_run_at, v_parsed, v_zone);
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject('run_at', 'the first fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  IF p_stop_condition_type IS NULL AND p_stop_condition_value IS NOT NULL THEN
    PERFORM nudge.reject('stop_condition_type', 'is required with stop_condition_value');
  ELSIF p_stop_condition_type IS NOT NULL AND p_stop_condition_type <> 'db_check' THEN
    PERFORM nudge.reject('stop_condition_type', 'must be db_check');
  ELSIF p_stop_condition_type = 'db_check'
        AND (p_stop_condition_value IS NULL OR length(p_stop_condition_value) NOT BETWEEN 1 AND 200
             OR nudge.is_blank(p_stop_condition_value)) THEN
    PERFORM nudge.reject('stop_condition_value',
                         'must be a flag key of 1 to 200 characters, not only white space');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_run_at THEN
    PERFORM nudge.reject('ends_at', 'must not be before the first fire (run_at)');
  END IF;
  -- The request is checked by the trigger reminder_request_is_checked as the row is written.

  IF p_stop_condition_type = 'db_check' THEN
    SELECT coalesce(f.value, false) INTO v_stopped
      FROM nudge.status_flags f WHERE f.key = p_stop_condition_value;
    v_stopped := coalesce(v_stopped, false);
  END IF;

  LOOP
    -- A stopped reminder is inserted COMPLETED, which the identity index does not cover: look
    -- for the live one ourselves. Two such racing creates can only add finished rows.
    IF v_stopped THEN
      SELECT r.* INTO v_row FROM nudge.reminders r
       WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
         AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
      IF FOUND THEN
        RETURN QUERY SELECT false, v_row;
        RETURN;
      END IF;
    END IF;
    INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target, payload,
                                      schedule_type, interval_seconds, next_run_at,
                                      stop_condition_type, stop_condition_value, max_fires, ends_at,
                                      cron, timezone, cron_schedule, misfire_policy, max_attempts,
                                      status, completed_reason, finished_at, request)
    VALUES (p_entity_type, p_entity_id, p_event_type, p_channel, p_target, p_payload,
            p_schedule_type, p_interval_seconds, v_run_at,
            p_stop_condition_type, p_stop_condition_value, p_max_fires, p_ends_at,
            CASE WHEN p_schedule_type = 'cron' THEN p_cron END, v_zone, v_parsed,
            coalesce(p_misfire_policy, 'fire_once'), p_max_attempts,
            CASE WHEN v_stopped THEN 'COMPLETED' ELSE 'ACTIVE' END,
            CASE WHEN v_stopped THEN 'stop_condition' END,
            CASE WHEN v_stopped THEN now() END,
            nullif(p_request, 'null'::jsonb))
    ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
    RETURNING r.* INTO v_row;
    IF FOUND THEN
      RETURN QUERY SELECT true, v_row;
      RETURN;
    END IF;
    -- Someone holds this identity: return their reminder. If it finished in between, insert again.
    SELECT r.* INTO v_row FROM nudge.reminders r
     WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
       AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
    IF FOUND THEN
      RETURN QUERY SELECT false, v_row;
      RETURN;
    END IF;
  END LOOP;
END $$;
COMMENT ON FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_target text, p_payload jsonb, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone, p_cron text, p_timezone text, p_misfire_policy text, p_max_attempts integer, p_request jsonb) IS 'Creates a one_time, recurring or cron reminder (a webhook one optionally with its own request, nudge.check_request; a log one without a target), or returns the live (ACTIVE or PAUSED) one with the same (entity_type, entity_id, event_type) with created = false, even under concurrent identical calls; bad input (a name or stop flag key empty, over 200 characters or only white space, a target a log reminder cannot have, a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included, or a first fire after it, a payload over 64 KiB as stored, ...) raises 22023 naming the field and writes nothing; a reminder whose stop flag is already true is created COMPLETED and never fires.';

-- 2, 3. Items typed as REST types them, in the pass that reads them.
CREATE OR REPLACE FUNCTION nudge.create_reminders(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder jsonb)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_plain boolean;
  v_rows  bigint;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  PERFORM nudge.new_reminder_stage();
  BEGIN
    INSERT INTO pg_temp.nudge_new_reminder
    SELECT (e.ord - 1)::integer, e.v->>'entity_type', e.v->>'entity_id', e.v->>'event_type',
           e.v->>'channel', e.v->>'schedule_type', (e.v->>'run_at')::timestamptz,
           coalesce((e.v->>'interval_seconds')::integer,
                    (e.v->>'interval_minutes')::integer * 60), e.v->>'target',
           coalesce(e.v->'payload', '{}'::jsonb), e.v->>'stop_condition_type',
           e.v->>'stop_condition_value', (e.v->>'max_fires')::integer,
           (e.v->>'ends_at')::timestamptz, e.v->>'cron', e.v->>'timezone', NULL, NULL,
           coalesce(e.v->>'misfire_policy', 'fire_once'), (e.v->>'max_attempts')::integer,
           (e.v->>'rule_id')::bigint, (e.v->>'event_id')::bigint,
           nullif(e.v->'request', 'null'::jsonb), NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord)
     -- An item with a key it should not have is left out, which sends the batch down the exact
     -- path: one that is not known, or both intervals. (A bad interval_minutes, like a bad
     -- interval_seconds, fails a constraint.) So is one with a value REST would not take as
     -- it is typed.
     WHERE e.v - nudge.create_item_fields() = '{}'::jsonb
       AND NOT e.v ?& ARRAY['interval_seconds', 'interval_minutes']
       AND nudge.item_values_are_plain(e.v);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    -- Every time as REST writes one: one match over the batch's times.
    v_plain := v_rows = jsonb_array_length(p_items)
               AND (SELECT nudge.are_rfc3339(array_agg(e.v->>'run_at') || array_agg(e.v->>'ends_at'))
                      FROM jsonb_array_elements(p_items) AS e(v))
               AND nudge.create_staged_reminders();
  EXCEPTION WHEN invalid_parameter_value OR check_violation OR not_null_violation
                 OR invalid_datetime_format OR datetime_field_overflow
                 OR invalid_time_zone_displacement_value
                 OR invalid_text_representation OR numeric_value_out_of_range THEN
    v_plain := false;  -- rolled back to the block's start: the exact path says what was wrong
  END;

  IF NOT v_plain THEN
    RETURN QUERY SELECT * FROM nudge.create_reminders_one_by_one(p_items);
    RETURN;
  END IF;
  RETURN QUERY
    SELECT b.item, b.created, nudge.reminder_json(r)
      FROM pg_temp.nudge_new_reminder b JOIN nudge.reminders r ON r.id = b.id
     ORDER BY b.item;
END $$;
COMMENT ON FUNCTION nudge.create_reminders(p_items jsonb) IS 'Creates (or finds) every item of p_items (JSON objects with the fields of nudge.create_reminder, without the p_ prefix, or interval_minutes for interval_seconds, plus rule_id and event_id for reminders rules create) in one transaction and answers exactly as nudge.create_reminders_one_by_one would (an item that is not an object, an unknown key, a value of the wrong JSON type or a time that is not RFC 3339 with an offset raises 22023 naming items[<index>] or items[<index>].<field>), with one set-based INSERT when every item is plainly valid, new and distinct.';

-- 2, 3. An item is an object; each value typed, named by its field.
CREATE OR REPLACE FUNCTION nudge.create_reminders_one_by_one(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder jsonb)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_field  text;
  v_detail text;
BEGIN
  -- One exception block around the loop (one subtransaction per batch, not per item) so an
  -- error can say which item it came from.
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      -- Typos are refused, not ignored, and values are typed, as by the REST API.
      PERFORM nudge.check_item(v_item, nudge.create_item_fields());
      IF v_item ? 'rule_id' THEN
        -- A reminder a rule creates records it and its event through the column defaults.
        PERFORM set_config('nudge.rule_id', v_item->>'rule_id', true),
                set_config('nudge.event_id', v_item->>'event_id', true);
      END IF;
      RETURN QUERY
        SELECT v_index, c.created, nudge.reminder_json(c.reminder)
          FROM nudge.create_reminder_from_item(v_item) c;
      IF v_item ? 'rule_id' THEN
        PERFORM set_config('nudge.rule_id', '', true), set_config('nudge.event_id', '', true);
      END IF;
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION
    WHEN invalid_parameter_value THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
      PERFORM nudge.reject_item(v_index, '22023', v_field, v_detail);
    WHEN data_exception THEN  -- a time PostgreSQL cannot read (February 30, +20:00): say which
      v_detail := nudge.item_type_problem(v_item);
      IF v_detail IS NULL THEN
        RAISE;
      END IF;
      PERFORM nudge.reject_item(v_index, '22023', split_part(v_detail, ':', 1), v_detail);
  END;
END $$;
COMMENT ON FUNCTION nudge.create_reminders_one_by_one(p_items jsonb) IS 'Creates (or finds) every item of p_items with nudge.create_reminder_from_item, in order, in one transaction, one row per item; if any item is not a JSON object ("items[<index>]: must be a JSON object"), holds a key nudge.create_item_fields does not name, a value nudge.item_value_problem refuses (a wrong JSON type, a time that is not RFC 3339 with an offset, a fraction) or a time PostgreSQL cannot read, or is rejected, nothing is created and the 22023 error names it: "items[<index>].<field>: <problem>".';

-- 2. What a cast can still refuse after the item is typed: a time PostgreSQL cannot read.
CREATE OR REPLACE FUNCTION nudge.item_type_problem(p_item jsonb) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_field text;
BEGIN
  -- Its values passed nudge.check_item: what is left to fail is a time of the right
  -- pattern PostgreSQL cannot read (February 30, an offset of +20:00).
  FOREACH v_field IN ARRAY ARRAY['run_at', 'ends_at', 'occurred_at'] LOOP
    BEGIN
      PERFORM (p_item->>v_field)::timestamptz;
    EXCEPTION WHEN data_exception THEN
      RETURN v_field || ': must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z';
    END;
  END LOOP;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.item_type_problem(p_item jsonb) IS 'For a create or event item that failed in a cast: "<field>: must be an RFC 3339 time with an offset, ..." for its first time field (run_at, ends_at, occurred_at) PostgreSQL cannot read, or NULL when it reads each.';

-- 1, 5. The set-based create refuses what the single one refuses.
CREATE OR REPLACE FUNCTION nudge.create_staged_reminders() RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- A cron's zone, parsed expression and first fire, and a recurring reminder's default start:
  -- a bad expression or zone raises 22023 and sends the batch down the exact path.
  UPDATE pg_temp.nudge_new_reminder b
     SET zone = s.zone, cron_schedule = s.parsed,
         run_at = nudge.first_run_at(b.schedule_type, b.run_at, s.parsed, s.zone)
    FROM (SELECT b2.item,
                 CASE WHEN b2.schedule_type = 'cron'
                      THEN nudge.checked_timezone(coalesce(b2.timezone, 'UTC')) END AS zone,
                 CASE WHEN b2.schedule_type = 'cron' THEN nudge.cron_parse(b2.cron) END AS parsed
            FROM pg_temp.nudge_new_reminder b2
           -- (a run_at out of range is not looked at: the check below refuses it)
           WHERE (b2.schedule_type = 'cron' AND nudge.time_problem(b2.run_at) IS NULL)
              OR (b2.schedule_type = 'recurring' AND b2.run_at IS NULL)
          OFFSET 0) s
   WHERE b.item = s.item;

  IF EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
              WHERE b.ends_at < b.run_at OR b.run_at IS NULL
                 OR nudge.time_problem(b.run_at) IS NOT NULL
                 OR nudge.time_problem(b.ends_at) IS NOT NULL
                 OR jsonb_typeof(b.payload) <> 'object'
                 OR nudge.is_blank(b.entity_type) OR nudge.is_blank(b.entity_id)
                 OR nudge.is_blank(b.event_type) OR nudge.is_blank(b.stop_condition_value)
                 OR (b.channel = 'log' AND b.target IS NOT NULL)
                 -- rules the create function checks and no constraint does
                 OR (b.schedule_type <> 'cron' AND (b.cron IS NOT NULL OR b.timezone IS NOT NULL))
                 OR (b.schedule_type = 'cron' AND length(b.cron) > 200))
     -- The stop flags looked up by key in one index scan: as a correlated EXISTS, the planner
     -- (no statistics on the temporary table) hashed every true flag instead.
     OR EXISTS (SELECT 1 FROM nudge.status_flags f
                 WHERE f.key = ANY (ARRAY(SELECT b.stop_condition_value
                                            FROM pg_temp.nudge_new_reminder b
                                           WHERE b.stop_condition_value IS NOT NULL))
                   AND f.value)
     OR EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
                 GROUP BY b.entity_type, b.entity_id, b.event_type HAVING count(*) > 1) THEN
    RETURN false;
  END IF;

  WITH inserted AS (
    INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target,
                                      payload, schedule_type, interval_seconds, next_run_at,
                                      stop_condition_type, stop_condition_value, max_fires,
                                      ends_at, cron, timezone, cron_schedule, misfire_policy,
                                      max_attempts, rule_id, event_id, request)
    SELECT b.entity_type, b.entity_id, b.event_type, b.channel, b.target, b.payload,
           b.schedule_type, b.interval_seconds, b.run_at, b.stop_condition_type,
           b.stop_condition_value, b.max_fires, b.ends_at, b.cron, b.zone,
           b.cron_schedule, b.misfire_policy, b.max_attempts, b.rule_id, b.event_id,
           b.request
      FROM pg_temp.nudge_new_reminder b ORDER BY b.item
    ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED')
    DO NOTHING
    RETURNING r.id, r.entity_type, r.entity_id, r.event_type)
  UPDATE pg_temp.nudge_new_reminder b SET id = i.id, created = true
    FROM inserted i
   WHERE (b.entity_type, b.entity_id, b.event_type) = (i.entity_type, i.entity_id, i.event_type);
  -- Items whose identity is already live: that reminder is the answer.
  UPDATE pg_temp.nudge_new_reminder b SET id = r.id, created = false
    FROM nudge.reminders r
   WHERE b.id IS NULL AND r.status IN ('ACTIVE', 'PAUSED')
     AND (r.entity_type, r.entity_id, r.event_type) = (b.entity_type, b.entity_id, b.event_type);
  RETURN NOT EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b WHERE b.id IS NULL);
END $$;
COMMENT ON FUNCTION nudge.create_staged_reminders() IS 'Creates (or finds, by identity) the reminders staged in pg_temp.nudge_new_reminder with one set-based INSERT and sets each row''s id and created; false when a row is not plainly valid, new and distinct (its stop flag already true, two rows of one identity, a name or stop flag key of only white space, a log reminder''s target, a first fire or ends_at nudge.time_problem refuses, a bound the create function checks: nothing is written) or was neither inserted nor found live (a concurrent create), so the caller takes the item-by-item path; a value a constraint refuses raises its error.';

-- 1, 7, 8. Times in range; nothing to change is refused as REST refuses it.
CREATE OR REPLACE FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_payload jsonb DEFAULT NULL::jsonb, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_row     nudge.reminders;
  v_next    timestamptz;  -- the next fire once rescheduled
  v_field   text;         -- what the reminder's request check named
  v_problem text;
BEGIN
  -- As REST's PATCH {} (before the reminder is looked up, as there).
  IF p_run_at IS NULL AND p_interval_seconds IS NULL AND p_payload IS NULL AND p_max_fires IS NULL
     AND p_ends_at IS NULL THEN
    PERFORM nudge.reject('change', 'nothing to change: give run_at, interval_seconds, payload, '
                                   'max_fires or ends_at');
  END IF;
  v_row := nudge.lock_reminder(p_id);
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
    PERFORM nudge.reject('payload', 'must be at most 64 KiB as stored (jsonb: deep nesting makes it larger than its text)');
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
  END IF;
  IF nudge.time_problem(p_ends_at) IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', nudge.time_problem(p_ends_at));
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
  IF v_next > nudge.latest_fire() THEN
    PERFORM nudge.reject('run_at', 'the next fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  -- The request is checked again by its trigger when the payload changes; name the payload,
  -- which is what this call changed, not the request it left as it was.
  IF p_payload IS NOT NULL AND v_row.request IS NOT NULL THEN
    BEGIN
      PERFORM nudge.check_request(v_row.request, v_row.channel, p_payload);
    EXCEPTION WHEN invalid_parameter_value THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_problem = MESSAGE_TEXT;
      PERFORM nudge.reject('payload', format('%s (read by the reminder''s %s)',
                                             substr(v_problem, length(v_field) + 3), v_field));
    END;
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
COMMENT ON FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone, p_interval_seconds integer, p_payload jsonb, p_max_fires integer, p_ends_at timestamp with time zone) IS 'Changes when and how an ACTIVE or PAUSED reminder fires (a NULL argument keeps that setting; identity, channel and status never change): run_at is the next fire, for a cron reminder its schedule''s first occurrence at or after run_at, never after ends_at nor after 9999-12-31T23:59:59Z; nothing to change (every argument NULL) raises 22023 naming change, a bad value 22023 naming the field (a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included; payload when the new payload lacks a value the reminder''s request reads), another status NU409, a missing reminder NU404; bringing the next fire forward wakes sleeping workers.';

-- 6. Given times in range; occurrences past the end are not listed, not refused.
CREATE OR REPLACE FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer DEFAULT 5, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_at     timestamptz;
  v_zone   text;
  v_parsed nudge.cron;
BEGIN
  IF p_count IS NULL OR p_count NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge.reject('count', 'must be 1 to 100');
  END IF;
  -- Given times out of range are refused; occurrences past the end are not listed (a reminder
  -- ends there), so a from at or past it lists none.
  IF p_from < nudge.earliest_time() THEN
    PERFORM nudge.reject('from', nudge.time_problem(p_from));
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
  END IF;
  IF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge.reject('cron', 'is required for cron'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is not for cron schedules');
    END IF;
    v_zone := nudge.checked_timezone(coalesce(p_timezone, 'UTC'));
    v_parsed := nudge.cron_parse(p_cron);
    -- The first occurrence at or after run_at, as a create takes it.
    v_at := greatest(p_from, coalesce(p_run_at - interval '1 microsecond', p_from));
    FOR i IN 1..p_count LOOP
      -- A reminder ends at the end of time (nudge.end_after_attempt): so does its preview.
      EXIT WHEN v_at >= nudge.latest_fire();
      v_at := nudge.cron_next(v_parsed, v_zone, v_at);
      EXIT WHEN v_at IS NULL OR v_at > nudge.latest_fire();
      RETURN NEXT nudge.rfc3339_in_zone(v_at, v_zone);
    END LOOP;
    RETURN;
  END IF;
  IF p_cron IS NOT NULL OR p_timezone IS NOT NULL THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron schedules');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_run_at > p_from THEN RETURN NEXT nudge.rfc3339_in_zone(p_run_at, 'UTC'); END IF;
    RETURN;
  END IF;
  IF p_schedule_type IS DISTINCT FROM 'recurring' THEN
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
    PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
  END IF;
  v_at := coalesce(p_run_at, p_from);
  IF v_at <= p_from THEN
    v_at := nudge.next_interval_occurrence(v_at, p_interval_seconds, p_from);
  END IF;
  FOR i IN 1..p_count LOOP
    EXIT WHEN v_at > nudge.latest_fire();
    RETURN NEXT nudge.rfc3339_in_zone(v_at, 'UTC');
    v_at := v_at + p_interval_seconds * interval '1 second';
  END LOOP;
END $$;
COMMENT ON FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text) IS 'The next p_count (1..100) fire times strictly after p_from of a schedule as a create would take it (one_time: run_at; recurring: every interval from run_at, or from p_from; cron: the expression''s occurrences at or after run_at in its zone, under the cron daylight-saving rules), as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given), none after 9999-12-31T23:59:59Z (where a reminder ends: a from at or past it lists none); the 22023 errors a create would give for the schedule itself, and for a run_at, or a from, before 0001-01-01T00:00:00Z (a run_at after 9999-12-31T23:59:59Z too), naming it.';

-- 1. Given times in range.
CREATE OR REPLACE FUNCTION nudge.describe_schedule(p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF p_schedule_type = 'one_time' AND p_run_at IS NULL THEN
    PERFORM nudge.reject('run_at', 'is required for one_time');
  ELSIF p_schedule_type = 'recurring'
        AND (p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400) THEN
    PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
  ELSIF p_schedule_type = 'cron' AND p_cron IS NULL THEN
    PERFORM nudge.reject('cron', 'is required for cron');
  ELSIF p_schedule_type IS NULL OR p_schedule_type NOT IN ('one_time', 'recurring', 'cron') THEN
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_stop_condition_value IS NOT NULL AND p_stop_condition_type IS DISTINCT FROM 'db_check' THEN
    PERFORM nudge.reject('stop_condition_type', 'must be db_check');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
  END IF;
  IF nudge.time_problem(p_ends_at) IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', nudge.time_problem(p_ends_at));
  END IF;
  RETURN nudge.schedule_words(
    p_schedule_type, p_run_at, p_interval_seconds,
    CASE WHEN p_schedule_type = 'cron' THEN nudge.cron_words(nudge.cron_parse(p_cron), p_cron) END,
    nudge.checked_timezone(coalesce(p_timezone, 'UTC')), p_stop_condition_value, p_max_fires,
    p_ends_at);
END $$;
COMMENT ON FUNCTION nudge.describe_schedule(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone) IS 'The canonical sentence of a schedule given as a create takes it ("every weekday at 09:00 (Europe/Berlin), until feedback_submitted is true, at most 5 times"), which POST /v1/schedules/parse reads back into the same schedule; times in p_timezone, also for one_time and recurring schedules (UTC by default); run_at of a recurring or cron schedule is its start; 22023 naming the field for a schedule a create would refuse for its type, interval, cron expression, zone, stop condition, max_fires, or a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z.';

-- 6. Words that name a time out of range name the text.
CREATE OR REPLACE FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_today date := (p_now AT TIME ZONE p_tz)::date;
  v_at    timestamptz;
BEGIN
  IF p_moment IS NULL OR jsonb_typeof(p_moment) = 'null' THEN
    RETURN NULL;
  END IF;
  CASE p_moment->>'kind'
    WHEN 'instant' THEN  -- RFC 3339 text, offset included
      v_at := (p_moment->>'at')::timestamptz;
    WHEN 'after' THEN    -- "in 10 minutes", "for 2 hours": real seconds after the base
      v_at := p_base + make_interval(secs => (p_moment->>'seconds')::double precision);
    WHEN 'days' THEN     -- "in 3 days": the same wall-clock time that many days later
      v_at := (nudge.local_instants((p_base AT TIME ZONE p_tz)
                                    + make_interval(days => (p_moment->>'days')::integer),
                                    p_tz))[1];
    WHEN 'local' THEN    -- "tomorrow at 9", "on 2026-12-24 at 18:00": a date and a wall time
      v_at := (nudge.local_instants(coalesce((p_moment->>'date')::date,
                                             v_today + (p_moment->>'day')::integer)
                                    + (p_moment->>'time')::time, p_tz))[1];
    WHEN 'next' THEN     -- "at 9am", "next monday": the pattern's next occurrence after the base
                         -- (or after the start of today + day), plus seconds
      v_at := nudge.cron_next(
                nudge.cron_parse(p_moment->>'cron'), p_tz,
                CASE WHEN p_moment ? 'day'
                     THEN (nudge.local_instants(v_today + (p_moment->>'day')::integer, p_tz))[1]
                          - interval '1 microsecond'
                     ELSE p_base END)
              + make_interval(secs => coalesce((p_moment->>'seconds')::integer, 0));
    ELSE
      RAISE EXCEPTION 'moment: unknown kind in %', p_moment USING ERRCODE = '22023';
  END CASE;
  -- "starting today": a start that is not ahead means from now, which is no start at all.
  IF coalesce((p_moment->>'or_now')::boolean, false) AND v_at <= p_now THEN
    RETURN NULL;
  END IF;
  -- "tomorrow at 9" on 9999-12-31: the words name a time no reminder can have.
  IF nudge.time_problem(v_at) IS NOT NULL THEN
    PERFORM nudge.reject('text', CASE WHEN v_at > nudge.latest_fire()
                                      THEN 'names a time after 9999-12-31T23:59:59Z, the last a '
                                           'reminder can fire at'
                                      ELSE 'names a time before 0001-01-01T00:00:00Z' END);
  END IF;
  RETURN v_at;
END $$;
COMMENT ON FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) IS 'The instant a parsed moment names in zone p_tz (kinds instant, after, days, local and next, as api/schedule_words.hpp writes them; "today" is p_now''s date there, and relative ones count from p_base), wall times resolved as cron resolves them (a gap to its end, a repeated time to its first instant); NULL for no moment, and for an or_now moment that is not after p_now; an instant before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z raises 22023 naming text (the words that named it).';

-- 1, 5, 8. occurred_at in range, a key not only white space, the data limit as stored.
CREATE OR REPLACE FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb DEFAULT '{}'::jsonb, p_key text DEFAULT NULL::text, p_occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF NOT coalesce(length(p_event_type) BETWEEN 1 AND 200 AND p_event_type NOT LIKE 'nudge.%'
                  AND length(p_entity_type) BETWEEN 1 AND 200
                  AND length(p_entity_id) BETWEEN 1 AND 200
                  AND NOT (nudge.is_blank(p_event_type) OR nudge.is_blank(p_entity_type)
                           OR nudge.is_blank(p_entity_id))
                  AND jsonb_typeof(p_data) = 'object' AND pg_column_size(p_data) <= 65536
                  AND coalesce(length(p_key) BETWEEN 1 AND 200 AND NOT nudge.is_blank(p_key), true)
                  AND nudge.time_problem(p_occurred_at) IS NULL, false) THEN
    IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_event_type) THEN
      PERFORM nudge.reject('event_type', 'must be 1 to 200 characters, not only white space');
    END IF;
    IF p_event_type LIKE 'nudge.%' THEN
      PERFORM nudge.reject('event_type', 'must not start with "nudge.": those are Nudge''s own');
    END IF;
    IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_entity_type) THEN
      PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters, not only white space');
    END IF;
    IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_entity_id) THEN
      PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters, not only white space');
    END IF;
    IF p_data IS NULL OR jsonb_typeof(p_data) <> 'object' THEN
      PERFORM nudge.reject('data', 'must be a JSON object');
    END IF;
    IF pg_column_size(p_data) > 65536 THEN
      PERFORM nudge.reject('data', 'must be at most 64 KiB as stored (jsonb: deep nesting makes it larger than its text)');
    END IF;
    IF length(p_key) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_key) THEN
      PERFORM nudge.reject('key', 'must be 1 to 200 characters, not only white space');
    END IF;
    IF nudge.time_problem(p_occurred_at) IS NOT NULL THEN
      PERFORM nudge.reject('occurred_at', nudge.time_problem(p_occurred_at));
    END IF;
  END IF;
  RETURN nudge.record_event(p_event_type, p_entity_type, p_entity_id, p_data, p_key,
                            p_occurred_at, false);
END $$;
COMMENT ON FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone) IS 'Records an event and runs every enabled rule of its type whose conditions hold, in the caller''s transaction; answers {created, event, effects}; an event_type, entity_type, entity_id or key empty, over 200 characters or only white space, data over 64 KiB as stored, or an occurred_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z (infinities included) raises 22023 naming it. The same key again answers the first event and effects with created = false and changes nothing, even when sent concurrently. A rule that cannot be rendered for a posted event raises NU422 (nothing is written); for Nudge''s own events it is recorded in the effects. A chain deeper than 8 events is recorded as refused and its rules are not run.';

-- 1, 2, 3, 5, 9. The set-based path refuses what the single one refuses; its tables are made without a NOTICE.
CREATE OR REPLACE FUNCTION nudge.record_events(p_items jsonb) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rule     nudge.rules;
  v_items    jsonb;
  v_ords     integer[];
  v_count    bigint;
  v_missing  boolean;
  v_rendered text;     -- a remind rule's templated fields, rendered as jsonb
  v_unfilled text;     -- whether one of them lacks a value
  v_values   text;     -- every field of the staging table, from them
  v_keys     text[];
  v_out      text;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  -- Made once per session; asked first, as CREATE ... IF NOT EXISTS tells the client each time
  -- (a NOTICE) that it exists. Keyed: without statistics the planner would join these row by
  -- row against each other.
  IF to_regclass('pg_temp.nudge_batch_event') IS NULL THEN
    CREATE TEMP TABLE nudge_batch_event (
      ord integer PRIMARY KEY, id bigint, event_type text, entity_type text, entity_id text,
      data jsonb, occurred_at timestamptz) ON COMMIT DELETE ROWS;
  END IF;
  -- i: the effect's place among its rule's items (the item index of nudge.create_reminders).
  IF to_regclass('pg_temp.nudge_batch_effect') IS NULL THEN
    CREATE TEMP TABLE nudge_batch_effect (
      rule_id bigint, ord integer, i integer, item jsonb, effect jsonb,
      PRIMARY KEY (rule_id, i)) ON COMMIT DELETE ROWS;
  END IF;
  DELETE FROM pg_temp.nudge_batch_event;
  DELETE FROM pg_temp.nudge_batch_effect;
  -- Each rule runs once over all its events, in rule order, so each event sees its own rules in
  -- the order one event would. Anything out of the ordinary takes the item-by-item path, which
  -- gives the exact error or the same answer: a bad item, a key (its first answer is replayed),
  -- two events of one entity (their order matters), a value an event lacks.
  BEGIN
    INSERT INTO pg_temp.nudge_batch_event
    SELECT (x.ord - 1)::integer, nextval('nudge.events_id_seq'), x.v->>'event_type',
           x.v->>'entity_type', x.v->>'entity_id', coalesce(x.v->'data', '{}'::jsonb),
           coalesce((x.v->>'occurred_at')::timestamptz, now())
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(v, ord)
     -- An unknown key is left out too, and a value REST would not take as it is typed: the
     -- item-by-item path names it.
     WHERE NOT x.v ? 'key' AND x.v - nudge.event_item_fields() = '{}'::jsonb
       AND nudge.item_values_are_plain(x.v);
    IF (SELECT count(*) FROM pg_temp.nudge_batch_event) <> jsonb_array_length(p_items)
       -- every occurred_at as REST writes one, in one match over the batch's
       OR NOT (SELECT nudge.are_rfc3339(array_agg(x.v->>'occurred_at'))
                 FROM jsonb_array_elements(p_items) AS x(v))
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   WHERE length(e.event_type) NOT BETWEEN 1 AND 200 OR e.event_type LIKE 'nudge.%'
                      OR length(e.entity_type) NOT BETWEEN 1 AND 200
                      OR length(e.entity_id) NOT BETWEEN 1 AND 200 OR e.event_type IS NULL
                      OR nudge.is_blank(e.event_type) OR nudge.is_blank(e.entity_type)
                      OR nudge.is_blank(e.entity_id)
                      OR e.entity_type IS NULL OR e.entity_id IS NULL
                      OR nudge.time_problem(e.occurred_at) IS NOT NULL
                      OR jsonb_typeof(e.data) <> 'object' OR pg_column_size(e.data) > 65536)
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   GROUP BY e.entity_type, e.entity_id HAVING count(*) > 1) THEN
      RAISE EXCEPTION USING ERRCODE = 'NU000';
    END IF;
    PERFORM set_config('nudge.event_depth', '1', true);
    FOR v_rule IN SELECT * FROM nudge.rules r
                   WHERE r.enabled
                     AND r.event_type IN (SELECT DISTINCT e.event_type FROM pg_temp.nudge_batch_event e)
                   ORDER BY r.id LOOP
      CASE v_rule.action->>'type'
        WHEN 'remind' THEN
          -- The rule's reminders go straight into the create's staging table, one row per event,
          -- each template rendered once (a MATERIALIZED row); the same statement says whether
          -- the events filled every field. A field the template does not give is NULL (the
          -- entity: the event's), as a create item without it.
          SELECT string_agg(format('%s AS %I', v_rule.compiled->'columns'->>c.name, c.name), ', ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 string_agg(format('x.%I IS NULL', c.name), ' OR ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 string_agg(CASE c.name WHEN 'misfire_policy'
                                 THEN format('coalesce(%s, ''fire_once'')', v.value)
                                 ELSE v.value END, ', ' ORDER BY c.ord)
            INTO v_rendered, v_unfilled, v_values
            FROM unnest(ARRAY['entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type',
                              'interval_seconds', 'target', 'stop_condition_type',
                              'stop_condition_value', 'max_fires', 'ends_at', 'cron', 'timezone',
                              'misfire_policy', 'max_attempts'],
                        ARRAY['text', 'text', 'text', 'text', 'text', 'integer', 'text', 'text',
                              'text', 'integer', 'timestamptz', 'text', 'text', 'text', 'integer'])
                 WITH ORDINALITY AS c(name, type, ord)
           CROSS JOIN LATERAL (
                 SELECT CASE WHEN v_rule.compiled->'columns' ? c.name
                             THEN format('(x.%I #>> ''{}'')::%s', c.name, c.type)
                             WHEN c.name IN ('entity_type', 'entity_id')
                             THEN format('x.event_%s', c.name)
                             ELSE format('NULL::%s', c.type) END AS value) v;
          PERFORM nudge.new_reminder_stage();
          EXECUTE format(
            'WITH x AS MATERIALIZED (
               SELECT e.ord, e.id, e.entity_type AS event_entity_type,
                      e.entity_id AS event_entity_id, %s AS run_at, %s::jsonb AS payload%s
                 FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s
             ), staged AS (
               INSERT INTO pg_temp.nudge_new_reminder (
                 entity_type, entity_id, event_type, channel, schedule_type, interval_seconds,
                 target, stop_condition_type, stop_condition_value, max_fires, ends_at, cron,
                 timezone, misfire_policy, max_attempts, item, run_at, payload, rule_id,
                 event_id, request)
               SELECT %s, x.ord, x.run_at, coalesce(x.payload, ''{}''), %s, x.id, %L::jsonb
                 FROM x)
             SELECT count(*), coalesce(bool_or(%s OR (%L AND x.payload IS NULL)), false) FROM x',
            v_rule.compiled->>'run_at', coalesce(v_rule.compiled->>'payload', 'NULL'),
            coalesce(', ' || v_rendered, ''), v_rule.event_type, v_rule.compiled->>'when',
            v_values,
            v_rule.id, nullif(v_rule.compiled->'request', 'null'::jsonb),
            coalesce(v_unfilled, 'false'), v_rule.action->'reminder' ? 'payload')
            INTO v_count, v_missing;
          IF v_missing THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';  -- the item-by-item path names the value
          ELSIF v_count = 0 THEN
            NULL;
          ELSIF nudge.create_staged_reminders() THEN
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, b.item, b.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', nudge.reminder_json(r), 'created', b.created)
              FROM pg_temp.nudge_new_reminder b JOIN nudge.reminders r ON r.id = b.id;
          ELSE
            -- Not plainly new and distinct (a stop flag already true, say): this rule's
            -- reminders are created one by one, as nudge.create_reminders would.
            SELECT array_agg(b.item ORDER BY b.item),
                   jsonb_agg(jsonb_build_object(
                     'entity_type', b.entity_type, 'entity_id', b.entity_id,
                     'event_type', b.event_type, 'channel', b.channel,
                     -- Times as RFC 3339 in UTC, which the items' check takes in any
                     -- session zone (jsonb writes the session's offset, to the second).
                     'schedule_type', b.schedule_type,
                     'run_at', nudge.rfc3339_in_zone(b.run_at, 'UTC'),
                     'interval_seconds', b.interval_seconds, 'target', b.target,
                     'payload', b.payload, 'stop_condition_type', b.stop_condition_type,
                     'stop_condition_value', b.stop_condition_value, 'max_fires', b.max_fires,
                     'ends_at', nudge.rfc3339_in_zone(b.ends_at, 'UTC'), 'cron', b.cron,
                     'timezone', b.timezone,
                     'misfire_policy', b.misfire_policy, 'max_attempts', b.max_attempts,
                     'rule_id', b.rule_id, 'event_id', b.event_id, 'request', b.request)
                     ORDER BY b.item)
              INTO v_ords, v_items
              FROM pg_temp.nudge_new_reminder b;
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, v_ords[c.item + 1], c.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', c.reminder, 'created', c.created)
              FROM nudge.create_reminders_one_by_one(v_items) c;
          END IF;
        WHEN 'set_flag' THEN
          EXECUTE format(
            'SELECT array_agg(e.ord ORDER BY e.ord), array_agg((%s) #>> ''{}'' ORDER BY e.ord)
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.compiled->>'key', v_rule.event_type, v_rule.compiled->>'when')
            INTO v_ords, v_keys;
          IF EXISTS (SELECT 1 FROM unnest(v_keys) AS k(key)
                      WHERE coalesce(length(k.key), 0) NOT BETWEEN 1 AND 200
                         OR nudge.is_blank(k.key)) THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';
          END IF;
          -- One row per key: every event that sets a key sets it to the rule's one value.
          WITH set AS (
            INSERT INTO nudge.status_flags AS sf (key, value)
            SELECT DISTINCT k.key, (v_rule.action->'flag'->>'value')::boolean
              FROM unnest(v_keys) AS k(key)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
            RETURNING sf.*)
          INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
          SELECT v_rule.id, o.ord, o.ord,
                 jsonb_build_object('rule_id', v_rule.id, 'type', 'set_flag', 'flag', to_jsonb(s))
            FROM unnest(v_ords, v_keys) AS o(ord, key) JOIN set s ON s.key = o.key;
        ELSE
          EXECUTE format(
            'INSERT INTO pg_temp.nudge_batch_effect (ord, i, rule_id, item)
             SELECT e.ord, e.ord, %s, jsonb_build_object(''event_type'', (%s) #>> ''{}'',
                                                  ''entity_type'', (%s) #>> ''{}'',
                                                  ''entity_id'', (%s) #>> ''{}'')
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.id, v_rule.compiled->>'event_type', v_rule.compiled->>'entity_type',
            v_rule.compiled->>'entity_id', v_rule.event_type, v_rule.compiled->>'when');
          UPDATE pg_temp.nudge_batch_effect f
             SET effect = jsonb_build_object('rule_id', v_rule.id, 'type', 'cancel',
                                             'cancelled', to_jsonb(coalesce(c.ids, '{}')))
            FROM (SELECT f2.ord, array_agg((nudge.cancel_reminder(r.id)).id ORDER BY r.id) AS ids
                    FROM pg_temp.nudge_batch_effect f2
                    LEFT JOIN nudge.reminders r
                      ON r.entity_type = f2.item->>'entity_type' AND r.entity_id = f2.item->>'entity_id'
                     AND r.event_type = f2.item->>'event_type' AND r.status IN ('ACTIVE', 'PAUSED')
                   WHERE f2.rule_id = v_rule.id
                   GROUP BY f2.ord) c
           WHERE f.rule_id = v_rule.id AND f.ord = c.ord;
      END CASE;
    END LOOP;
    PERFORM set_config('nudge.event_depth', '', true);

    -- to_jsonb(array_agg(...)), not jsonb_agg: jsonb_agg takes each value apart token by token
    -- (about 15% slower for a batch's effects). The answer is written as text, in jsonb's own
    -- order and spacing: building it as jsonb copied every effect twice more, token by token.
    WITH effects AS (
      SELECT f.ord, to_jsonb(array_agg(f.effect ORDER BY f.rule_id)) AS effects
        FROM pg_temp.nudge_batch_effect f GROUP BY f.ord
    ), recorded AS (
      INSERT INTO nudge.events AS ev OVERRIDING SYSTEM VALUE
      SELECT e.id, e.event_type, e.entity_type, e.entity_id, e.data, NULL, e.occurred_at, now(),
             NULL, 0, coalesce(x.effects, '[]'), NULL
        FROM pg_temp.nudge_batch_event e LEFT JOIN effects x ON x.ord = e.ord ORDER BY e.ord
      RETURNING ev.*)
    SELECT '[' || coalesce(string_agg(
             '{"event": ' || nudge.event_json(r)::text || ', "created": true, "effects": '
             || r.effects::text || '}', ', ' ORDER BY e.ord), '') || ']'
      INTO v_out
      FROM recorded r JOIN pg_temp.nudge_batch_event e ON e.id = r.id;
    RETURN v_out;
  EXCEPTION WHEN SQLSTATE 'NU000' OR SQLSTATE 'NU422' OR data_exception
                 OR integrity_constraint_violation THEN
    NULL;  -- rolled back to the block's start: the item-by-item path answers
  END;
  RETURN nudge.emit_events_one_by_one(p_items)::text;
END $$;
COMMENT ON FUNCTION nudge.record_events(p_items jsonb) IS 'nudge.emit_events answered as the text of its jsonb (the same key order and spacing), for the API: records every item of p_items and runs their rules in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value of the wrong JSON type, an occurred_at that is not RFC 3339 with an offset) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause.';

-- 2, 3. An item is an object; each value typed, named by its field.
CREATE OR REPLACE FUNCTION nudge.emit_events_one_by_one(p_items jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_out    jsonb[] := '{}';  -- appended in place; a jsonb array would be copied whole each time
  v_field  text;
  v_detail text;
  v_state  text;
BEGIN
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      PERFORM nudge.check_item(v_item, nudge.event_item_fields());
      v_out := v_out || nudge.emit_event(
                 p_event_type => v_item->>'event_type', p_entity_type => v_item->>'entity_type',
                 p_entity_id => v_item->>'entity_id',
                 p_data => coalesce(v_item->'data', '{}'::jsonb), p_key => v_item->>'key',
                 p_occurred_at => (v_item->>'occurred_at')::timestamptz);
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION
    WHEN invalid_parameter_value OR SQLSTATE 'NU422' THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT,
                              v_state = RETURNED_SQLSTATE;
      PERFORM nudge.reject_item(v_index, v_state, v_field, v_detail);
    WHEN data_exception THEN  -- an occurred_at PostgreSQL cannot read (February 30, +20:00)
      v_detail := nudge.item_type_problem(v_item);
      IF v_detail IS NULL THEN
        RAISE;
      END IF;
      PERFORM nudge.reject_item(v_index, '22023', split_part(v_detail, ':', 1), v_detail);
  END;
  RETURN to_jsonb(v_out);
END $$;
COMMENT ON FUNCTION nudge.emit_events_one_by_one(p_items jsonb) IS 'nudge.emit_event for every item of p_items, in order, all or nothing; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value nudge.item_value_problem refuses, an occurred_at PostgreSQL cannot read) or NU422 "items[<index>]: rule <id>: <field path>: <problem>".';

-- 1, 5. A rule's plain reminder is checked as a create.
CREATE OR REPLACE FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) RETURNS nudge.reminders
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_item     jsonb;
  v_payload  jsonb;
  v_interval integer;
  v_run_at   timestamptz;
  v_row      nudge.reminders;
BEGIN
  IF p_template ?| ARRAY['request', 'cron', 'timezone'] THEN
    RETURN NULL;
  END IF;
  v_item := jsonb_build_object('entity_type', p_event.entity_type, 'entity_id', p_event.entity_id)
            || nudge.render_template(p_template - 'payload' - 'delay_seconds' - 'interval_minutes',
                                     p_event, false);
  v_payload := CASE WHEN p_template ? 'payload'
                    THEN nudge.render_template(p_template->'payload', p_event, true)
                    ELSE '{}'::jsonb END;
  v_interval := coalesce((v_item->>'interval_seconds')::integer,
                         (p_template->>'interval_minutes')::integer * 60);
  v_run_at := p_event.occurred_at + interval '1 second' *
                CASE WHEN v_item->>'schedule_type' = 'recurring'
                     THEN coalesce((p_template->>'delay_seconds')::integer, v_interval, 0)
                     ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  -- Every check of nudge.create_reminder, in one simple expression (no query); NULL fails, and
  -- so does an event that lacks a value (the exact path names the field).
  IF NOT coalesce(
       v_item IS NOT NULL AND v_payload IS NOT NULL
       AND length(v_item->>'entity_type') BETWEEN 1 AND 200 AND length(v_item->>'entity_id') BETWEEN 1 AND 200
       AND length(v_item->>'event_type') BETWEEN 1 AND 200 AND v_item->>'channel' IN ('log', 'webhook', 'email')
       AND NOT (nudge.is_blank(v_item->>'entity_type') OR nudge.is_blank(v_item->>'entity_id')
                OR nudge.is_blank(v_item->>'event_type'))
       AND (v_item->>'channel' <> 'log' OR NOT v_item ? 'target')
       AND coalesce(length(v_item->>'target') <= 2048
                    AND nudge.address_problem(v_item->>'channel', v_item->>'target') IS NULL, true)
       AND (NOT v_item ? 'misfire_policy' OR v_item->>'misfire_policy' = 'fire_once'
            OR (v_item->>'misfire_policy' IN ('skip', 'fire_all') AND v_item->>'schedule_type' <> 'one_time'))
       AND coalesce((v_item->>'max_attempts')::integer BETWEEN 1 AND 100, true)
       AND jsonb_typeof(v_payload) = 'object' AND pg_column_size(v_payload) <= 65536
       AND ((v_item->>'schedule_type' = 'one_time' AND v_interval IS NULL)
            OR (v_item->>'schedule_type' = 'recurring' AND v_interval BETWEEN 1 AND 31622400))
       AND ((NOT v_item ? 'stop_condition_type' AND NOT v_item ? 'stop_condition_value')
            OR (v_item->>'stop_condition_type' = 'db_check'
                AND length(v_item->>'stop_condition_value') BETWEEN 1 AND 200))
       AND coalesce((v_item->>'max_fires')::integer >= 1, true)
       AND coalesce((v_item->>'ends_at')::timestamptz >= v_run_at, true)
       AND nudge.time_problem((v_item->>'ends_at')::timestamptz) IS NULL
       AND NOT coalesce(nudge.is_blank(v_item->>'stop_condition_value'), false)
       AND v_run_at <= nudge.latest_fire(), false) THEN
    RETURN NULL;
  END IF;
  INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target, payload,
                                    schedule_type, interval_seconds, next_run_at,
                                    stop_condition_type, stop_condition_value, max_fires, ends_at,
                                    misfire_policy, max_attempts)
  SELECT v_item->>'entity_type', v_item->>'entity_id', v_item->>'event_type', v_item->>'channel',
         v_item->>'target', v_payload, v_item->>'schedule_type', v_interval, v_run_at,
         v_item->>'stop_condition_type', v_item->>'stop_condition_value',
         (v_item->>'max_fires')::integer, (v_item->>'ends_at')::timestamptz,
         coalesce(v_item->>'misfire_policy', 'fire_once'), (v_item->>'max_attempts')::integer
   WHERE NOT EXISTS (SELECT 1 FROM nudge.status_flags f
                      WHERE f.key = v_item->>'stop_condition_value' AND f.value)
  ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
  RETURNING r.* INTO v_row;
  RETURN v_row;  -- all NULL when the identity is live or its stop flag is true
END $$;
COMMENT ON FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) IS 'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true and its identity is not live, and the template has no cron, timezone or request; otherwise writes nothing and returns a row of NULLs.';

-- 10. A number too long states the field's range.
CREATE OR REPLACE FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_key    text;
  v_value  jsonb;
  v_type   text;
  v_sample nudge.events;
  v_item   jsonb;
  v_field  text;
  v_detail text;
BEGIN
  IF jsonb_typeof(p_template) IS DISTINCT FROM 'object' THEN
    PERFORM nudge.reject('action.reminder', 'must be a JSON object (a reminder template)');
  END IF;
  FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_template) AS x(k, v) ORDER BY k LOOP
    v_type := nudge.template_field_type(v_key);
    IF v_type IS NULL THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
        CASE WHEN v_key = 'run_at' THEN 'is not for templates: the first fire comes from delay_seconds'
             ELSE 'is not a known field' END);
    END IF;
    IF jsonb_typeof(v_value) IS DISTINCT FROM v_type THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'must be a JSON ' || v_type);
    END IF;
    IF v_type = 'number' AND NOT (v_value::text ~ '^-?[0-9]+$') THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'must be a whole number');
    END IF;
    -- A whole number too long for an integer is out of the field's own range.
    IF v_type = 'number' AND v_value::text::numeric NOT BETWEEN -2147483648 AND 2147483647 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           format('must be a whole number from %s to %s',
                                  (nudge.whole_number_bounds(v_key))[1],
                                  (nudge.whole_number_bounds(v_key))[2]));
    END IF;
    IF v_type = 'string' THEN
      PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.reminder.' || v_key);
    END IF;
  END LOOP;
  IF p_template ? 'payload' THEN
    PERFORM nudge.check_placeholders(s, 'action.reminder.payload')
       FROM jsonb_path_query(p_template->'payload', '$.**') j,
            LATERAL (SELECT j #>> '{}' AS s) x
      WHERE jsonb_typeof(j) = 'string';
    -- Keys are names, not templates.
    IF EXISTS (SELECT 1 FROM jsonb_path_query(p_template->'payload', '$.**') j
                WHERE jsonb_typeof(j) = 'object'
                  AND EXISTS (SELECT 1 FROM jsonb_object_keys(j) k WHERE k ~ '\{\{|\}\}')) THEN
      PERFORM nudge.reject('action.reminder.payload', 'keys cannot hold {{ or }}');
    END IF;
  END IF;
  IF (p_template->>'delay_seconds')::bigint < 0 THEN
    PERFORM nudge.reject('action.reminder.delay_seconds', 'must be 0 or more');
  END IF;
  IF p_template ? 'interval_seconds' AND p_template ? 'interval_minutes' THEN
    PERFORM nudge.reject('action.reminder.interval_minutes',
                         'give interval_seconds or interval_minutes, not both');
  END IF;
  FOR v_key IN SELECT unnest(ARRAY['event_type', 'channel', 'schedule_type']) LOOP
    IF NOT p_template ? v_key THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'is required');
    END IF;
  END LOOP;

  -- Rendered for a sample event and created as a create would be, then rolled back: the
  -- template is checked like a create. Data placeholders stand for sample values; a target
  -- that is only data stands for an address that suits the channel.
  v_sample := ROW(0, p_event_type, 'sample', 'sample', '{}'::jsonb, NULL, now(), now(), NULL, 0,
                  '[]'::jsonb, NULL)::nudge.events;
  v_item := nudge.reminder_item(nudge.sample_template(p_template), v_sample);
  BEGIN
    PERFORM * FROM nudge.create_reminder_from_item(v_item);
    RAISE EXCEPTION USING ERRCODE = 'NU000';  -- undo the sample reminder
  EXCEPTION
    WHEN SQLSTATE 'NU000' THEN NULL;
    WHEN invalid_parameter_value THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
      RAISE EXCEPTION 'action.reminder.%', v_detail
        USING ERRCODE = '22023', COLUMN = 'action.reminder.' || v_field;
  END;
END $_$;
COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, a whole number out of its field''s range (too long for an integer: the range is stated), an unknown placeholder, or anything a create would refuse for a sample event; otherwise does nothing.';

-- 5. A rule's name, event_type and flag key not only white space.
CREATE OR REPLACE FUNCTION nudge.check_rule(p_rule nudge.rules) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_type  text := p_rule.action->>'type';
  v_key   text;
  v_value jsonb;
BEGIN
  IF p_rule.name IS NULL OR length(p_rule.name) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_rule.name) THEN
    PERFORM nudge.reject('name', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_rule.event_type IS NULL OR length(p_rule.event_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_rule.event_type) THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF jsonb_typeof(p_rule."when") IS DISTINCT FROM 'object' THEN
    PERFORM nudge.reject('when', 'must be a JSON object of conditions');
  END IF;
  FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_rule."when") AS x(k, v) ORDER BY k LOOP
    IF nudge.placeholder_problem(v_key) IS NOT NULL THEN
      PERFORM nudge.reject('when.' || v_key,
        'is not an event field (entity_type, entity_id, event_type, event_id, data.<path>)');
    END IF;
    IF jsonb_typeof(v_value) IN ('object', 'array') THEN
      PERFORM nudge.reject('when.' || v_key, 'must be a string, number, boolean or null');
    END IF;
  END LOOP;
  IF jsonb_typeof(p_rule.action) IS DISTINCT FROM 'object' THEN
    PERFORM nudge.reject('action', 'must be a JSON object');
  END IF;
  IF v_type IS NULL OR v_type NOT IN ('remind', 'set_flag', 'cancel') THEN
    PERFORM nudge.reject('action.type', 'must be one of remind, set_flag, cancel');
  END IF;
  -- {"type": "remind", "reminder": {...}}, {"type": "set_flag", "flag": {...}},
  -- {"type": "cancel", "cancel": {...}}
  PERFORM nudge.check_keys(p_rule.action,
    ARRAY['type', CASE v_type WHEN 'remind' THEN 'reminder' WHEN 'set_flag' THEN 'flag'
                              ELSE 'cancel' END], 'action.');
  CASE v_type
    WHEN 'remind' THEN
      PERFORM nudge.check_remind_template(p_rule.action->'reminder', p_rule.event_type);
    WHEN 'set_flag' THEN
      IF jsonb_typeof(p_rule.action->'flag') IS DISTINCT FROM 'object' THEN
        PERFORM nudge.reject('action.flag', 'must be a JSON object: {"key": ..., "value": true}');
      END IF;
      PERFORM nudge.check_keys(p_rule.action->'flag', ARRAY['key', 'value'], 'action.flag.');
      IF jsonb_typeof(p_rule.action->'flag'->'key') IS DISTINCT FROM 'string'
         OR length(p_rule.action->'flag'->>'key') NOT BETWEEN 1 AND 200
         OR nudge.is_blank(p_rule.action->'flag'->>'key') THEN
        PERFORM nudge.reject('action.flag.key',
                             'must be a flag key of 1 to 200 characters, not only white space');
      END IF;
      PERFORM nudge.check_placeholders(p_rule.action->'flag'->>'key', 'action.flag.key');
      IF jsonb_typeof(p_rule.action->'flag'->'value') IS DISTINCT FROM 'boolean' THEN
        PERFORM nudge.reject('action.flag.value', 'must be true or false');
      END IF;
    ELSE
      IF jsonb_typeof(p_rule.action->'cancel') IS DISTINCT FROM 'object' THEN
        PERFORM nudge.reject('action.cancel', 'must be a JSON object: {"event_type": ...}');
      END IF;
      PERFORM nudge.check_keys(p_rule.action->'cancel',
                               ARRAY['event_type', 'entity_type', 'entity_id'], 'action.cancel.');
      IF jsonb_typeof(p_rule.action->'cancel'->'event_type') IS DISTINCT FROM 'string' THEN
        PERFORM nudge.reject('action.cancel.event_type', 'is required: the event_type of the '
                             'reminders to cancel');
      END IF;
      FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_rule.action->'cancel') AS x(k, v) LOOP
        IF jsonb_typeof(v_value) IS DISTINCT FROM 'string'
           OR length(v_value #>> '{}') NOT BETWEEN 1 AND 200 THEN
          PERFORM nudge.reject('action.cancel.' || v_key, 'must be 1 to 200 characters');
        END IF;
        PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.cancel.' || v_key);
      END LOOP;
  END CASE;
END $$;
COMMENT ON FUNCTION nudge.check_rule(p_rule nudge.rules) IS 'Raises 22023 naming the field (name, event_type, when.<path>, action.<path>) when a rule cannot be saved: a name, event_type or flag key empty, over 200 characters or only white space, an unknown field or placeholder, a wrong type, or a template a create would refuse; otherwise does nothing.';

-- 5. A contact's entity not only white space.
CREATE OR REPLACE FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) RETURNS nudge.contacts
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_contact nudge.contacts;
  v_problem text;
BEGIN
  -- As a reminder's: a contact no reminder can use is refused.
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_type) THEN
    PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_id) THEN
    PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be webhook or email');
  END IF;
  IF p_address IS NULL THEN
    PERFORM nudge.reject('address', 'is required');
  END IF;
  v_problem := nudge.address_problem(p_channel, p_address);
  IF v_problem IS NOT NULL THEN
    PERFORM nudge.reject('address', v_problem);
  END IF;
  INSERT INTO nudge.contacts AS c (entity_type, entity_id, channel, address)
  VALUES (p_entity_type, p_entity_id, p_channel, p_address)
  ON CONFLICT ON CONSTRAINT one_address_per_entity_and_channel
  DO UPDATE SET address = EXCLUDED.address
  RETURNING c.* INTO v_contact;
  RETURN v_contact;
END $$;
COMMENT ON FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) IS 'Sets where (p_entity_type, p_entity_id) is reached on p_channel (webhook or email), replacing the old address from the next claim on; 22023 naming the field for bad input (an entity_type or entity_id empty, over 200 characters or only white space, a channel or address that is not one); returns the contact.';

-- 5. A flag key not only white space.
CREATE OR REPLACE FUNCTION nudge.set_flag(p_key text, p_value boolean) RETURNS nudge.status_flags
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE v_flag nudge.status_flags;
BEGIN
  IF NOT coalesce(length(p_key) BETWEEN 1 AND 200 AND NOT nudge.is_blank(p_key)
                  AND p_value IS NOT NULL, false) THEN
    IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_key) THEN
      PERFORM nudge.reject('key', 'must be 1 to 200 characters, not only white space');
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
COMMENT ON FUNCTION nudge.set_flag(p_key text, p_value boolean) IS 'Sets a flag: inserts a new key, updates an existing one whose value differs (so a true value completes the reminders waiting on it in the same transaction), and writes nothing (no audit row, no change, same updated_at) when it already has p_value; returns the flag; 22023 naming key (empty, over 200 characters or only white space) or value (NULL) for bad input.';

-- 7. Filters refused as REST refuses them.
CREATE OR REPLACE FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  -- At most this many change per call; "more" tells the caller to call again.
  c_limit   constant integer := 10000;
  v_from    text[] := CASE p_change WHEN 'pause' THEN '{ACTIVE}'
                                    WHEN 'resume' THEN '{PAUSED}'
                                    ELSE '{ACTIVE,PAUSED}' END;
  v_ids     bigint[];
  v_more    boolean;
BEGIN
  IF p_ids IS NULL AND p_status IS NULL AND p_entity_type IS NULL AND p_entity_id IS NULL
     AND p_event_type IS NULL AND p_channel IS NULL THEN
    PERFORM nudge.reject('filter', 'name ids or at least one of status, entity_type, entity_id, '
                                   'event_type, channel (status ACTIVE matches every active reminder)');
  END IF;
  IF cardinality(p_ids) NOT BETWEEN 1 AND 1000 THEN
    PERFORM nudge.reject('ids', 'must hold 1 to 1000 reminder ids');
  END IF;
  -- As REST reads them: an id that is none, and a name filter that matches nothing by its form.
  PERFORM nudge.reject(format('ids[%s]', u.n - 1), 'must be a reminder id (a positive integer)')
     FROM (SELECT i.n FROM unnest(p_ids) WITH ORDINALITY AS i(id, n)
            WHERE i.id IS NULL OR i.id < 1 ORDER BY i.n LIMIT 1) u;
  PERFORM nudge.reject(f.field, CASE WHEN f.value = '' THEN 'must not be empty'
                                     ELSE 'must be at most 200 characters' END)
     FROM (SELECT x.field, x.value
             FROM unnest(ARRAY['entity_type', 'entity_id', 'event_type'],
                         ARRAY[p_entity_type, p_entity_id, p_event_type]) WITH ORDINALITY
                  AS x(field, value, n)
            WHERE x.value = '' OR length(x.value) > 200 ORDER BY x.n LIMIT 1) f;
  IF p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF p_status IS NOT NULL
     AND p_status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED') THEN
    PERFORM nudge.reject('status', 'must be one of ACTIVE, PAUSED, COMPLETED, CANCELLED, FAILED');
  END IF;

  SELECT array_agg(m.id ORDER BY m.id) INTO v_ids
    FROM (SELECT r.id FROM nudge.reminders r
           WHERE r.status = ANY (v_from)
             AND (p_ids IS NULL OR r.id = ANY (p_ids))
             AND (p_status IS NULL OR r.status = p_status)
             AND (p_entity_type IS NULL OR r.entity_type = p_entity_type)
             AND (p_entity_id IS NULL OR r.entity_id = p_entity_id)
             AND (p_event_type IS NULL OR r.event_type = p_event_type)
             AND (p_channel IS NULL OR r.channel = p_channel)
           ORDER BY r.id LIMIT c_limit + 1
             FOR UPDATE) m;
  v_ids := coalesce(v_ids, '{}');
  v_more := cardinality(v_ids) > c_limit;
  v_ids := v_ids[1:c_limit];

  PERFORM CASE p_change WHEN 'pause' THEN nudge.pause_reminder(i.id)
                        WHEN 'resume' THEN nudge.resume_reminder(i.id)
                        ELSE nudge.cancel_reminder(i.id) END
     FROM unnest(v_ids) WITH ORDINALITY AS i(id, n) ORDER BY i.n;
  RETURN jsonb_build_object('count', cardinality(v_ids), 'ids', to_jsonb(v_ids), 'more', v_more);
END $$;
COMMENT ON FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses, resumes or cancels (p_change) up to 10,000 reminders that can take that change and match every given filter, in id order, each through the single-reminder function; answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

-- 7. The bulk changes' guarantees name the filters they now refuse; 2 and 3: emit_events'.
COMMENT ON FUNCTION nudge.pause_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses up to 10,000 ACTIVE reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.pause_reminder would each; answers {count, ids, more}; more = true when others still match; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';
COMMENT ON FUNCTION nudge.resume_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Resumes up to 10,000 PAUSED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.resume_reminder would each (missed occurrences follow the misfire policy); answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';
COMMENT ON FUNCTION nudge.cancel_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Cancels up to 10,000 ACTIVE or PAUSED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.cancel_reminder would each (each emits nudge.reminder_completed with reason cancelled); answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';
COMMENT ON FUNCTION nudge.emit_events(p_items jsonb) IS 'Records every item of p_items (objects with event_type, entity_type, entity_id, data, key, occurred_at, and no other key) and runs their rules as nudge.emit_event would, in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (an unknown key: "items[<index>].<key>: is not a known field"; a value of the wrong JSON type: "must be a string, not a number"; an occurred_at that is not RFC 3339 with an offset) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause.';
