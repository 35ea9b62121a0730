-- 0043: what a create takes is what a worker can deliver, and SQL batches name a value of the
-- wrong type. Found by trying Nudge as a new user.
--
-- 1. A create took targets every fire then failed on: an email address with non-ASCII
--    characters or a misplaced dot ("a..b@example.com"), which the worker's mail check refuses,
--    and a webhook URL with a port over 65535 or a host with a bare colon, which libcurl
--    refuses. nudge.address_problem (the reminders' and contacts' CHECK, and the create's
--    check) now refuses them as the worker would.
-- 2. nudge.create_reminders (and so nudge.create_reminders_one_by_one) given
--    "run_at": "not a time" or "max_fires": "abc" raised PostgreSQL's cast error, without the
--    item or the field; it now raises 22023 "items[<index>].<field>: ...", as for every other
--    bad value.
-- 3. The second batch in a session printed NOTICE "relation nudge_new_reminder already exists".

CREATE OR REPLACE FUNCTION nudge.address_problem(p_channel text, p_address text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $_$
DECLARE
  v_port text;
BEGIN
  IF p_address IS NULL THEN
    RETURN NULL;
  END IF;
  IF p_channel = 'webhook' THEN
    -- The host is a name or an IPv4 address, or an IPv6 address in brackets.
    IF NOT (p_address ~* '^https?://([^/?#@\s]+@)?([a-z0-9.\-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$'
            AND length(p_address) <= 2048) THEN
      RETURN 'must be an http:// or https:// URL without spaces (a port from 1 to 65535)';
    END IF;
    -- A port is 1 to 65535; read only when there may be one (a regexp_match on every URL cost
    -- a create 190k instructions, three times the check above).
    IF strpos(substr(p_address, 9), ':') > 0 THEN
      v_port := substring(p_address from '^[^/]*//(?:[^/?#@]*@)?(?:\[[^\]]*\]|[^/?#:]*):([0-9]+)');
      IF v_port::integer NOT BETWEEN 1 AND 65535 THEN
        RETURN 'must be an http:// or https:// URL without spaces (a port from 1 to 65535)';
      END IF;
    END IF;
  END IF;
  IF p_channel = 'email'
     AND NOT (p_address ~ '^[!-~]+$'
              AND p_address ~ '^[^@<>(),;:"\[\]\\]+@[^@<>(),;:"\[\]\\]+\.[^@<>(),;:"\[\]\\]+$'
              AND p_address !~ '(^\.|\.@|@\.|\.\.|\.$)'
              AND length(p_address) <= 254) THEN
    RETURN 'must be an email address like someone@example.com, in plain ASCII';
  END IF;
  RETURN NULL;
END $_$;
COMMENT ON FUNCTION nudge.address_problem(p_channel text, p_address text) IS 'NULL when the address suits the channel as a worker will deliver it (webhook: an http(s) URL of at most 2048 characters without spaces whose host is a name, an IPv4 or a bracketed IPv6 address and whose port, if any, is 1 to 65535; email: one plain ASCII address of at most 254 characters, no dot at either end of its two parts nor two in a row; other channels: anything), else the problem in words.';

-- Which field of a create item is not of its type, with the problem; NULL when each is.
CREATE FUNCTION nudge.item_type_problem(p_item jsonb) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_field text;
BEGIN
  FOREACH v_field IN ARRAY ARRAY['run_at', 'ends_at'] LOOP
    BEGIN
      PERFORM (p_item->>v_field)::timestamptz;
    EXCEPTION WHEN data_exception THEN
      RETURN v_field || ': must be an RFC 3339 time such as 2027-01-01T09:00:00Z';
    END;
  END LOOP;
  FOREACH v_field IN ARRAY ARRAY['interval_seconds', 'max_fires', 'max_attempts'] LOOP
    BEGIN
      PERFORM (p_item->>v_field)::integer;
    EXCEPTION WHEN data_exception THEN
      RETURN v_field || ': must be a whole number from -2147483648 to 2147483647';
    END;
  END LOOP;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.item_type_problem(p_item jsonb) IS 'For a create item that failed: "<field>: <problem>" for its first time field (run_at, ends_at) or whole-number field (interval_seconds, max_fires, max_attempts) whose text is not of that type, or NULL when each is.';

CREATE OR REPLACE FUNCTION nudge.create_reminders_one_by_one(p_items jsonb)
RETURNS TABLE(item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
      RAISE EXCEPTION 'items[%].%', v_index, v_detail
        USING ERRCODE = '22023', COLUMN = format('items[%s].%s', v_index, v_field);
    WHEN data_exception THEN  -- a cast of the item's text: say which field
      v_detail := nudge.item_type_problem(v_item);
      IF v_detail IS NULL THEN
        RAISE;
      END IF;
      RAISE EXCEPTION 'items[%].%', v_index, v_detail
        USING ERRCODE = '22023',
              COLUMN = format('items[%s].%s', v_index, split_part(v_detail, ':', 1));
  END;
END $$;
COMMENT ON FUNCTION nudge.create_reminders_one_by_one(p_items jsonb) IS 'Creates (or finds) every item of p_items with nudge.create_reminder, in order, in one transaction, one row per item; if any item is rejected, or holds a time or whole number that is not one, nothing is created and the 22023 error names it: "items[<index>].<field>: <problem>".';

CREATE OR REPLACE FUNCTION nudge.new_reminder_stage() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- Made once per session; asked first, as CREATE ... IF NOT EXISTS tells the client each time.
  IF to_regclass('pg_temp.nudge_new_reminder') IS NULL THEN
    -- Renamed with its new columns: a session that made the old table keeps it.
    CREATE TEMP TABLE nudge_new_reminder (
      item integer, entity_type text, entity_id text, event_type text, channel text,
      schedule_type text, run_at timestamptz, interval_seconds integer, target text,
      payload jsonb, stop_condition_type text, stop_condition_value text, max_fires integer,
      ends_at timestamptz, cron text, timezone text, zone text, cron_schedule nudge.cron,
      misfire_policy text, max_attempts integer, rule_id bigint, event_id bigint, request jsonb,
      id bigint, created boolean) ON COMMIT DELETE ROWS;
  END IF;
  DELETE FROM pg_temp.nudge_new_reminder;  -- a second batch in the same transaction
END $$;
COMMENT ON FUNCTION nudge.new_reminder_stage() IS 'Makes the session''s staging table of new reminders (pg_temp.nudge_new_reminder, emptied at commit) exist and empty, for nudge.create_staged_reminders, without a notice when it exists.';
