-- The current state of schema nudge, generated from sql/migrations by scripts/schema.sh (a
-- normalised pg_dump --schema-only). Do not edit: change the schema with a new migration, then
-- run scripts/schema.sh write. scripts/test.sh fails when this file is stale.

-- Name: nudge; Type: SCHEMA; Schema: -; Owner: -

CREATE SCHEMA nudge;

-- Name: SCHEMA nudge; Type: COMMENT; Schema: -; Owner: -

COMMENT ON SCHEMA nudge IS 'Nudge, the reminder engine: tables, lifecycle functions and triggers.';

-- Name: attempt_result; Type: TYPE; Schema: nudge; Owner: -

CREATE TYPE nudge.attempt_result AS (
	occurrence_at timestamp with time zone,
	next_run_at timestamp with time zone,
	status text,
	completed_reason text,
	finished_at timestamp with time zone,
	fire_count integer,
	catch_up_fires integer,
	attempt integer,
	rate_limited integer
);

-- Name: TYPE attempt_result; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TYPE nudge.attempt_result IS 'The columns of a reminder that nudge.after_attempt decides when an attempt ends.';

-- Name: change_kind; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.change_kind AS text
	CONSTRAINT change_kind_is_known CHECK ((VALUE = ANY (ARRAY['reminder'::text, 'flag'::text, 'event'::text, 'rule'::text])));

-- Name: reminder_attempt; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_attempt AS integer
	CONSTRAINT attempt_is_not_negative CHECK ((VALUE >= 0));

-- Name: reminder_channel; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_channel AS text
	CONSTRAINT channel_is_known CHECK ((VALUE = ANY (ARRAY['log'::text, 'webhook'::text, 'email'::text])));

-- Name: reminder_entity_id; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_entity_id AS text
	CONSTRAINT entity_id_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: reminder_entity_type; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_entity_type AS text
	CONSTRAINT entity_type_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: reminder_event_type; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_event_type AS text
	CONSTRAINT event_type_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: reminder_fire_count; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_fire_count AS integer
	CONSTRAINT fire_count_is_not_negative CHECK ((VALUE >= 0));

-- Name: reminder_payload; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_payload AS jsonb
	CONSTRAINT payload_is_at_most_64_kib CHECK ((pg_column_size(VALUE) <= 65536))
	CONSTRAINT payload_is_object CHECK ((jsonb_typeof(VALUE) = 'object'::text));

-- Name: reminder_schedule_type; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_schedule_type AS text
	CONSTRAINT schedule_type_is_known CHECK ((VALUE = ANY (ARRAY['one_time'::text, 'recurring'::text, 'cron'::text])));

-- Name: claimed_fire; Type: TYPE; Schema: nudge; Owner: -

CREATE TYPE nudge.claimed_fire AS (
	id bigint,
	entity_type nudge.reminder_entity_type,
	entity_id nudge.reminder_entity_id,
	event_type nudge.reminder_event_type,
	channel nudge.reminder_channel,
	target text,
	payload nudge.reminder_payload,
	schedule_type nudge.reminder_schedule_type,
	scheduled_for timestamp with time zone,
	attempt nudge.reminder_attempt,
	max_attempts integer,
	fire_count nudge.reminder_fire_count,
	request jsonb,
	rescued boolean,
	rate_limits_left integer
);

-- Name: TYPE claimed_fire; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TYPE nudge.claimed_fire IS 'One claimed attempt as a worker delivers it: the reminder, its address (target, else contacts), the occurrence, the attempt number, the attempt number at which a failure ends the occurrence (max_attempts: its attempts plus the free tries, 429s and unreachable hosts, that used none), for a reminder with its own request that request rendered for this attempt, whether the claim took it over from an expired lease (rescued), and how many more free tries (429s, unreachable hosts) would use no attempt (rate_limits_left).';

-- Name: cron; Type: TYPE; Schema: nudge; Owner: -

CREATE TYPE nudge.cron AS (
	minutes bigint,
	hours integer,
	days bigint,
	months integer,
	weekdays integer,
	dom_star boolean,
	dow_star boolean,
	hour_star boolean
);

-- Name: TYPE cron; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TYPE nudge.cron IS 'A parsed five-field cron expression: one bit mask per field.';

-- Name: event_data; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.event_data AS jsonb
	CONSTRAINT event_data_is_at_most_256_kib CHECK ((pg_column_size(VALUE) <= 262144))
	CONSTRAINT event_data_is_object CHECK ((jsonb_typeof(VALUE) = 'object'::text));

-- Name: event_depth; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.event_depth AS integer
	CONSTRAINT event_depth_is_not_negative CHECK ((VALUE >= 0));

-- Name: event_entity_id; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.event_entity_id AS text
	CONSTRAINT event_entity_id_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: event_entity_type; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.event_entity_type AS text
	CONSTRAINT event_entity_type_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: event_key; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.event_key AS text
	CONSTRAINT event_key_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: event_type_of_event; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.event_type_of_event AS text
	CONSTRAINT event_type_of_event_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: flag_key; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.flag_key AS text
	CONSTRAINT flag_key_is_1_to_200_chars CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: reminder_catch_up_fires; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_catch_up_fires AS integer
	CONSTRAINT catch_up_fires_is_not_negative CHECK ((VALUE >= 0));

-- Name: reminder_completed_reason; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_completed_reason AS text
	CONSTRAINT completed_reason_fits_status CHECK ((VALUE = ANY (ARRAY['fired'::text, 'max_fires'::text, 'ends_at'::text, 'stop_condition'::text, 'cancelled'::text, 'attempts_exhausted'::text])));

-- Name: reminder_cron; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_cron AS text
	CONSTRAINT cron_is_at_most_200_chars CHECK ((length(VALUE) <= 200));

-- Name: reminder_interval_seconds; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_interval_seconds AS integer
	CONSTRAINT recurring_has_interval_of_1s_to_366_days CHECK (((VALUE >= 1) AND (VALUE <= 31622400)));

-- Name: reminder_last_error; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_last_error AS text
	CONSTRAINT last_error_is_at_most_2000_chars CHECK ((length(VALUE) <= 2000));

-- Name: reminder_max_attempts; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_max_attempts AS integer
	CONSTRAINT max_attempts_is_1_to_100 CHECK (((VALUE >= 1) AND (VALUE <= 100)));

-- Name: reminder_max_fires; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_max_fires AS integer
	CONSTRAINT max_fires_is_positive CHECK ((VALUE >= 1));

-- Name: reminder_misfire_policy; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_misfire_policy AS text
	CONSTRAINT misfire_policy_is_known CHECK ((VALUE = ANY (ARRAY['fire_once'::text, 'skip'::text, 'fire_all'::text])));

-- Name: reminder_status; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_status AS text
	CONSTRAINT status_is_known CHECK ((VALUE = ANY (ARRAY['ACTIVE'::text, 'PAUSED'::text, 'COMPLETED'::text, 'CANCELLED'::text, 'FAILED'::text])));

-- Name: reminder_stop_condition_type; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_stop_condition_type AS text
	CONSTRAINT stop_condition_is_db_check_with_flag_key CHECK ((VALUE = 'db_check'::text));

-- Name: reminder_stop_condition_value; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_stop_condition_value AS text
	CONSTRAINT stop_condition_is_db_check_with_flag_key CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));

-- Name: reminder_target; Type: DOMAIN; Schema: nudge; Owner: -

CREATE DOMAIN nudge.reminder_target AS text
	CONSTRAINT target_is_at_most_2048_chars CHECK ((length(VALUE) <= 2048));

-- Name: worker_policy; Type: TYPE; Schema: nudge; Owner: -

CREATE TYPE nudge.worker_policy AS (
	lease_seconds integer,
	max_attempts integer,
	retry_base_ms integer,
	retry_max_ms integer,
	misfire_threshold_seconds integer,
	fire_all_cap integer,
	breaker_failures integer,
	breaker_open_seconds integer,
	breaker_max_open_seconds integer
);

-- Name: TYPE worker_policy; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TYPE nudge.worker_policy IS 'What a worker''s configuration decides for it: lease, default attempts, backoff, misfire threshold, fire_all cap and circuit breaker (failures that open it, 0: not counted; first open time; cap of the doubled open time).';

-- Name: address_problem(text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.address_problem(p_channel text, p_address text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $_$
DECLARE
  v_port text;
BEGIN
  IF p_address IS NULL THEN
    RETURN NULL;
  END IF;
  -- A webhook's URL kept whole in a secret the worker holds (the operator chose where it goes).
  IF p_channel = 'webhook' AND nudge.secret_address_name(p_address) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  IF p_channel = 'webhook' THEN
    -- The host is a name or an IPv4 address, or an IPv6 address in brackets.
    IF NOT (p_address ~* '^https?://([^/?#@\s]+@)?([a-z0-9.\-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$'
            AND length(p_address) <= 2048) THEN
      RETURN 'must be an http:// or https:// URL without spaces (a port from 1 to 65535), '
             'or {{secret.NAME}} alone for a URL kept in the worker''s secrets';
    END IF;
    -- A port is 1 to 65535; read only when there may be one (a regexp_match on every URL cost
    -- a create 190k instructions, three times the check above).
    IF strpos(substr(p_address, 9), ':') > 0 THEN
      v_port := substring(p_address from '^[^/]*//(?:[^/?#@]*@)?(?:\[[^\]]*\]|[^/?#:]*):([0-9]+)');
      IF v_port::integer NOT BETWEEN 1 AND 65535 THEN
        RETURN 'must be an http:// or https:// URL without spaces (a port from 1 to 65535), '
             'or {{secret.NAME}} alone for a URL kept in the worker''s secrets';
      END IF;
    END IF;
  END IF;
  IF p_channel = 'email'
     AND NOT (p_address ~ '^[!-~]+$'
              AND p_address ~ '^[^@<>(),;:"\[\]\\]+@[^@<>(),;:"\[\]\\]+\.[^@<>(),;:"\[\]\\]+$'
              AND p_address !~ '(^\.|\.@|@\.|\.\.|\.$)'
              AND strpos(p_address, '@') <= 65
              AND length(p_address) <= 254) THEN
    RETURN 'must be an email address like someone@example.com: plain ASCII, one @, a domain with '
           'a dot, at most 64 characters before the @ and 254 in all';
  END IF;
  RETURN NULL;
END $_$;

-- Name: FUNCTION address_problem(p_channel text, p_address text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.address_problem(p_channel text, p_address text) IS 'NULL when the address suits the channel as a worker will deliver it (webhook: {{secret.NAME}} alone (NAME: 1 to 64 of a-z, 0-9 and _), for a URL the worker keeps as a secret, or an http(s) URL of at most 2048 characters without spaces whose host is a name, an IPv4 or a bracketed IPv6 address and whose port, if any, is 1 to 65535; email: one plain ASCII address of at most 254 characters, at most 64 before its @, a dot in its domain, no dot at either end of its two parts nor two in a row; other channels: anything), else the problem in words.';

-- Name: reminders; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.reminders (
    id bigint NOT NULL,
    entity_type nudge.reminder_entity_type NOT NULL,
    entity_id nudge.reminder_entity_id NOT NULL,
    event_type nudge.reminder_event_type NOT NULL,
    channel nudge.reminder_channel NOT NULL,
    target nudge.reminder_target,
    payload nudge.reminder_payload DEFAULT '{}'::jsonb NOT NULL,
    schedule_type nudge.reminder_schedule_type NOT NULL,
    interval_seconds nudge.reminder_interval_seconds,
    cron nudge.reminder_cron,
    timezone text,
    cron_schedule nudge.cron,
    misfire_policy nudge.reminder_misfire_policy DEFAULT 'fire_once'::text NOT NULL,
    next_run_at timestamp with time zone NOT NULL,
    occurrence_at timestamp with time zone,
    stop_condition_type nudge.reminder_stop_condition_type,
    stop_condition_value nudge.reminder_stop_condition_value,
    max_fires nudge.reminder_max_fires,
    ends_at timestamp with time zone,
    max_attempts nudge.reminder_max_attempts,
    fire_count nudge.reminder_fire_count DEFAULT 0 NOT NULL,
    catch_up_fires nudge.reminder_catch_up_fires DEFAULT 0 NOT NULL,
    status nudge.reminder_status DEFAULT 'ACTIVE'::text NOT NULL,
    completed_reason nudge.reminder_completed_reason,
    last_error nudge.reminder_last_error,
    attempt nudge.reminder_attempt DEFAULT 0 NOT NULL,
    leased_by text,
    lease_expires_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    rule_id bigint DEFAULT (NULLIF(current_setting('nudge.rule_id'::text, true), ''::text))::bigint,
    event_id bigint DEFAULT (NULLIF(current_setting('nudge.event_id'::text, true), ''::text))::bigint,
    request jsonb,
    cron_words text,
    rate_limited nudge.reminder_attempt DEFAULT 0 NOT NULL,
    lease_lost boolean DEFAULT false NOT NULL,
    CONSTRAINT completed_reason_fits_status CHECK (
CASE
    WHEN (completed_reason IS NULL) THEN ((status)::text = ANY (ARRAY['ACTIVE'::text, 'PAUSED'::text]))
    ELSE ((status)::text =
    CASE completed_reason
        WHEN 'cancelled'::text THEN 'CANCELLED'::text
        WHEN 'attempts_exhausted'::text THEN 'FAILED'::text
        ELSE 'COMPLETED'::text
    END)
END),
    CONSTRAINT cron_has_no_interval CHECK ((((schedule_type)::text <> 'cron'::text) OR (interval_seconds IS NULL))),
    CONSTRAINT finished_at_set_once_finished CHECK (((finished_at IS NULL) = (completed_reason IS NULL))),
    CONSTRAINT lease_has_owner_and_expiry CHECK (((leased_by IS NULL) = (lease_expires_at IS NULL))),
    CONSTRAINT one_time_has_no_interval CHECK ((((schedule_type)::text <> 'one_time'::text) OR (interval_seconds IS NULL))),
    CONSTRAINT one_time_misfire_policy_is_fire_once CHECK ((((schedule_type)::text <> 'one_time'::text) OR ((misfire_policy)::text = 'fire_once'::text))),
    CONSTRAINT only_cron_has_expression_and_zone CHECK ((((schedule_type)::text = 'cron'::text) = ((cron IS NOT NULL) AND (timezone IS NOT NULL) AND (cron_schedule IS NOT NULL)))),
    CONSTRAINT recurring_has_interval_of_1s_to_366_days CHECK ((((schedule_type)::text <> 'recurring'::text) OR (interval_seconds IS NOT NULL))),
    CONSTRAINT stop_condition_is_db_check_with_flag_key CHECK (((stop_condition_type IS NULL) = (stop_condition_value IS NULL)))
)
WITH (fillfactor='40', autovacuum_vacuum_scale_factor='0.02', autovacuum_analyze_scale_factor='0.02', autovacuum_vacuum_cost_delay='0');

-- Name: TABLE reminders; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.reminders IS 'One row per reminder: what to send, when, and where it stands. Change it through the nudge.* functions (or nudge.status_flags), never by hand.';

-- Name: COLUMN reminders.next_run_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.next_run_at IS 'When a worker may next claim it: the next occurrence, or the time of the next retry of occurrence_at.';

-- Name: COLUMN reminders.occurrence_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.occurrence_at IS 'The occurrence a retry is waiting to deliver again; NULL when next_run_at is itself the occurrence.';

-- Name: COLUMN reminders.max_attempts; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.max_attempts IS 'Attempts per occurrence; NULL means the worker''s [retry] max_attempts.';

-- Name: COLUMN reminders.catch_up_fires; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.catch_up_fires IS 'Missed occurrences fired so far in the current catch-up (misfire_policy fire_all).';

-- Name: COLUMN reminders.attempt; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.attempt IS 'Claims of the current occurrence so far; with leased_by and the occurrence it is the lease token.';

-- Name: COLUMN reminders.request; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.request IS 'How a webhook reminder''s request looks ({"method", "headers", "body", "content_type"}, checked by nudge.check_request); NULL for Nudge''s own POST of the fire as JSON.';

-- Name: COLUMN reminders.cron_words; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.cron_words IS 'nudge.cron_words of the cron expression, kept by triggers reminder_cron_is_described (insert) and reminder_cron_change_is_described (update); NULL unless cron.';

-- Name: COLUMN reminders.rate_limited; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.rate_limited IS 'Tries of the current occurrence that used none of its attempts: answered 429, or to a webhook host that could not be reached (up to nudge.free_rate_limited_tries()); the attempts used are attempt - rate_limited.';

-- Name: COLUMN reminders.lease_lost; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.reminders.lease_lost IS 'Whether the occurrence''s last lease ran out (its worker died or stalled) and a breaker or pace has held it since, so that the claim taking it reports it as rescued; cleared when a claim takes it.';

-- Name: after_attempt(nudge.reminders, text, nudge.worker_policy, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS nudge.attempt_result
    LANGUAGE sql STABLE
    AS $$
  SELECT ROW(
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
         THEN coalesce(r.occurrence_at, r.next_run_at) END,
    nudge.next_run_after_attempt(r, p_outcome, p_policy, p_now),
    nudge.status_after_attempt(r, p_outcome, p_policy, p_now),
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
              OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN r.completed_reason
         ELSE nudge.end_after_attempt(r, p_outcome, p_policy, p_now) END,
    CASE WHEN nudge.status_after_attempt(r, p_outcome, p_policy, p_now) IN ('ACTIVE', 'PAUSED')
         THEN NULL ELSE coalesce(r.finished_at, p_now) END,
    r.fire_count + CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy) THEN 0 ELSE 1 END,
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy) THEN r.catch_up_fires
         WHEN nudge.attempt_catches_up(r, p_outcome, p_policy, p_now) THEN r.catch_up_fires + 1
         ELSE 0 END,
    CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy) THEN r.attempt ELSE 0 END,
    CASE WHEN NOT nudge.attempt_is_retried(r, p_outcome, p_policy) THEN 0
         WHEN p_outcome IN ('rate_limited', 'unreachable')
              AND r.rate_limited < nudge.free_rate_limited_tries()
           THEN r.rate_limited + 1
         ELSE r.rate_limited END
  )::nudge.attempt_result
$$;

-- Name: FUNCTION after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'What a reminder becomes when an attempt ended with p_outcome at p_now: a failed attempt with attempts left, or one its receiver answered 429 (rate_limited) or whose webhook host could not be reached (unreachable) while its free tries last, keeps its occurrence and waits a jittered backoff, the latter two counted in rate_limited and using no attempt; otherwise the occurrence ends and the reminder moves to its next one (missed ones collapse into this fire; fire_all takes each missed one, up to the cap) or ends (one_time: COMPLETED or FAILED; max_fires; a next run after ends_at), its count of free tries back to 0; a status other than ACTIVE or PAUSED is never changed.';

-- Name: announce_token_change(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.announce_token_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM pg_notify('nudge_tokens', OLD.name);
  RETURN NULL;
END $$;

-- Name: FUNCTION announce_token_change(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.announce_token_change() IS 'Trigger: a token revoked, deleted or changed in name, hash or scopes is announced on channel nudge_tokens (payload: its old name) when the transaction commits.';

-- Name: events; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.events (
    id bigint NOT NULL,
    event_type nudge.event_type_of_event NOT NULL,
    entity_type nudge.event_entity_type NOT NULL,
    entity_id nudge.event_entity_id NOT NULL,
    data nudge.event_data DEFAULT '{}'::jsonb NOT NULL,
    key nudge.event_key,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    cause_event_id bigint,
    depth nudge.event_depth DEFAULT 0 NOT NULL,
    effects jsonb DEFAULT '[]'::jsonb NOT NULL,
    refused text
);

-- Name: TABLE events; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.events IS 'Every event, posted or emitted by Nudge itself, with the effects its rules had; pruned after [history] retention_days.';

-- Name: rules; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.rules (
    id bigint NOT NULL,
    name text NOT NULL,
    event_type text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    "when" jsonb DEFAULT '{}'::jsonb NOT NULL,
    action jsonb NOT NULL,
    compiled jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rule_action_is_at_most_64_kib CHECK ((pg_column_size(action) <= 65536)),
    CONSTRAINT rule_action_is_object CHECK ((jsonb_typeof(action) = 'object'::text)),
    CONSTRAINT rule_event_type_is_1_to_200_chars CHECK (((length(event_type) >= 1) AND (length(event_type) <= 200))),
    CONSTRAINT rule_name_is_1_to_200_chars CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT rule_when_is_object CHECK ((jsonb_typeof("when") = 'object'::text))
);

-- Name: TABLE rules; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.rules IS 'How events are answered: each enabled rule of an event''s type whose "when" holds runs its action (remind, set_flag or cancel); checked whenever it is saved.';

-- Name: COLUMN rules."when"; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.rules."when" IS 'Equality conditions, all of which must hold: {"data.priority": "high", "entity_type": "interviewer"}.';

-- Name: apply_rule(nudge.rules, nudge.events); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.apply_rule(p_rule nudge.rules, p_event nudge.events) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_made      record;
  v_created   boolean := true;
  v_reminder  nudge.reminders;
  v_flag      nudge.status_flags;
  v_cancelled bigint[];
  v_effect    jsonb;
  v_set       text;  -- set_config's answer, unused: an assignment is cheaper than PERFORM's query
BEGIN
  CASE p_rule.action->>'type'
    WHEN 'remind' THEN
      v_set := set_config('nudge.rule_id', p_rule.id::text, true)
               || set_config('nudge.rule_path', 'action.reminder.', true);
      v_reminder := nudge.remind_plainly(p_rule.action->'reminder', p_event);
      IF v_reminder.id IS NULL THEN
        SELECT c.created, c.reminder INTO v_made
          FROM nudge.create_reminder_from_item(
                 nudge.reminder_item(p_rule.action->'reminder', p_event)) c;
        v_created := v_made.created;
        v_reminder := v_made.reminder;
      END IF;
      -- rule_id and event_id: the columns' defaults
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'remind',
                                     'reminder', nudge.reminder_json(v_reminder),
                                     'created', v_created);
    WHEN 'set_flag' THEN
      v_set := set_config('nudge.rule_id', p_rule.id::text, true)
               || set_config('nudge.rule_path', 'action.flag.', true);
      v_flag := nudge.set_flag(nudge.render_text(p_rule.action->'flag'->>'key', p_event,
                                                 'action.flag.key') #>> '{}',
                               (p_rule.action->'flag'->>'value')::boolean);
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'set_flag',
                                     'flag', to_jsonb(v_flag));
    ELSE
      v_set := set_config('nudge.rule_id', p_rule.id::text, true)
               || set_config('nudge.rule_path', 'action.cancel.', true);
      -- Those still live once locked: one that a flag or a worker ended meanwhile is left as it
      -- is, not an error that refuses the event.
      SELECT coalesce(array_agg(c.id ORDER BY c.id) FILTER (WHERE c.id IS NOT NULL), '{}')
        INTO v_cancelled
        FROM (SELECT nudge.cancel_if_live(r.id) AS id
        FROM nudge.reminders r
       WHERE r.entity_type = coalesce(nudge.render_text(p_rule.action->'cancel'->>'entity_type',
                                                        p_event, 'action.cancel.entity_type') #>> '{}',
                                      p_event.entity_type)
         AND r.entity_id = coalesce(nudge.render_text(p_rule.action->'cancel'->>'entity_id',
                                                      p_event, 'action.cancel.entity_id') #>> '{}',
                                    p_event.entity_id)
         AND r.event_type = nudge.render_text(p_rule.action->'cancel'->>'event_type', p_event,
                                              'action.cancel.event_type') #>> '{}'
         AND r.status IN ('ACTIVE', 'PAUSED')
       ORDER BY r.id) c;
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'cancel',
                                     'cancelled', to_jsonb(v_cancelled));
  END CASE;
  RETURN v_effect;
END $$;

-- Name: FUNCTION apply_rule(p_rule nudge.rules, p_event nudge.events); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.apply_rule(p_rule nudge.rules, p_event nudge.events) IS 'Runs one rule''s action for an event (leaving the rule named in nudge.rule_id for the caller to restore) and returns its effect ({rule_id, type, reminder, created} | {rule_id, type, flag} | {rule_id, type, cancelled}: the matching reminders still live once locked, one that ended meanwhile left as it is); a template the event cannot fill, or that fills to a value a create or a flag refuses, raises NU422 "rule <id>: <field path>: <problem>".';

-- Name: are_rfc3339(text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.are_rfc3339(p_texts text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT coalesce(x.n, 0) = 0
         OR (x.j ~ ('^' || nudge.rfc3339_pattern() || '(?:\n' || nudge.rfc3339_pattern() || ')*$')
             AND length(x.j) - length(replace(x.j, E'\n', '')) = x.n - 1)
    FROM (SELECT array_to_string(p_texts, E'\n') AS j,
                 cardinality(array_remove(p_texts, NULL)) AS n) x
$_$;

-- Name: FUNCTION are_rfc3339(p_texts text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.are_rfc3339(p_texts text[]) IS 'Whether every element of p_texts that is not NULL is an RFC 3339 date-time with an offset as the REST API reads one (nudge.rfc3339_pattern), in one match; true when none is given.';

-- Name: attempt_catches_up(nudge.reminders, text, nudge.worker_policy, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.attempt_catches_up(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  SELECT NOT nudge.attempt_is_retried(r, p_outcome, p_policy)
         AND r.misfire_policy = 'fire_all' AND r.catch_up_fires + 1 < p_policy.fire_all_cap
         AND nudge.occurrence_after(r, coalesce(r.occurrence_at, r.next_run_at)) <= p_now
$$;

-- Name: FUNCTION attempt_catches_up(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.attempt_catches_up(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'Whether a fire_all reminder whose occurrence ended takes the next occurrence even though it is not ahead of p_now (a missed one), while its catch-up is under the policy''s fire_all_cap.';

-- Name: attempt_is_retried(nudge.reminders, text, nudge.worker_policy); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.attempt_is_retried(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT p_outcome IN ('failed', 'rate_limited', 'unreachable') AND r.status IN ('ACTIVE', 'PAUSED')
         AND (r.attempt - r.rate_limited < coalesce(r.max_attempts, p_policy.max_attempts)
              OR (p_outcome IN ('rate_limited', 'unreachable')
                  AND r.rate_limited < nudge.free_rate_limited_tries()))
$$;

-- Name: FUNCTION attempt_is_retried(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.attempt_is_retried(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy) IS 'Whether an attempt of a live reminder that ended with p_outcome is tried again: it failed, its receiver answered 429 (rate_limited) or its webhook host could not be reached (unreachable), and attempts of its occurrence are left (attempt - rate_limited under the reminder''s max_attempts, else the policy''s); or it was rate-limited or unreachable while fewer than nudge.free_rate_limited_tries() tries of the occurrence were.';

-- Name: delivery_attempts; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.delivery_attempts (
    reminder_id bigint NOT NULL,
    scheduled_for timestamp with time zone NOT NULL,
    attempt integer NOT NULL,
    attempted_at timestamp with time zone DEFAULT now() NOT NULL,
    outcome text NOT NULL,
    status_code integer,
    error text,
    response text,
    duration_ms integer,
    worker text NOT NULL,
    request jsonb,
    CONSTRAINT attempt_duration_is_not_negative CHECK ((duration_ms >= 0)),
    CONSTRAINT attempt_error_is_at_most_2000_chars CHECK ((length(error) <= 2000)),
    CONSTRAINT attempt_number_is_positive CHECK ((attempt >= 1)),
    CONSTRAINT attempt_outcome_is_known CHECK ((outcome = ANY (ARRAY['delivered'::text, 'failed'::text, 'skipped'::text]))),
    CONSTRAINT attempt_response_is_at_most_1024_chars CHECK ((length(response) <= 1024))
);

-- Name: TABLE delivery_attempts; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.delivery_attempts IS 'One row per delivery attempt (status code, error, start of the response, duration, worker), except a log line written, which its execution row tells in full; pruned like executions.';

-- Name: COLUMN delivery_attempts.request; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.delivery_attempts.request IS 'The request of an attempt at a reminder with its own: method, headers with {{secret.NAME}} standing (values are never stored), content type and the first KiB of the rendered body.';

-- Name: attempt_json(nudge.delivery_attempts); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.attempt_json(a nudge.delivery_attempts) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'attempt', a.attempt, 'attempted_at', a.attempted_at, 'outcome', a.outcome,
    'status_code', a.status_code, 'error', a.error, 'response', a.response,
    'duration_ms', a.duration_ms, 'worker', a.worker, 'request', a.request))
$$;

-- Name: FUNCTION attempt_json(a nudge.delivery_attempts); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.attempt_json(a nudge.delivery_attempts) IS 'The public JSON form of one delivery attempt, with the request it sent when its reminder has its own.';

-- Name: audit_changed_rows(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.audit_changed_rows() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- As the other audits: what a statement asked for directly, in a session that audits,
  -- outside rules. Tested here, not in a WHEN clause: PostgreSQL reads a trigger's WHEN back
  -- from its text for every statement (about 40k instructions), and an upsert fires both its
  -- INSERT and its UPDATE trigger.
  IF pg_trigger_depth() <> 1 OR current_setting('nudge.audit', true) = 'off'
     OR coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') <> '0' THEN
    RETURN NULL;
  END IF;
  -- One branch per subject: each statement is planned for the row type of its table.
  IF TG_TABLE_NAME = 'contacts' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), TG_ARGV[0],
           -- Written as the contact's path: a name holding / or % cannot pass for another's.
           replace(replace(r.entity_type, '%', '%25'), '/', '%2F') || '/'
             || replace(replace(r.entity_id, '%', '%25'), '/', '%2F') || '/' || r.channel,
           lower(TG_OP)
      FROM changed_rows r;
  ELSE
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), TG_ARGV[0], r.id::text, lower(TG_OP)
      FROM changed_rows r;
  END IF;
  RETURN NULL;
END $$;

-- Name: FUNCTION audit_changed_rows(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.audit_changed_rows() IS 'Statement trigger (argument: the subject type) with the transition table changed_rows: records every row the statement inserted, updated or deleted in nudge.audit in one insert (subject: the id, or entity_type/entity_id/channel for a contact, each name''s % and / written %25 and %2F as in its path), with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run.';

-- Name: audit_row_change(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.audit_row_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_row     record;
  v_subject text;
BEGIN
  IF coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') <> '0' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN v_row := OLD; ELSE v_row := NEW; END IF;
  -- One branch per table: each is planned for the row type of the table it runs for.
  IF TG_TABLE_NAME = 'api_tokens' THEN
    v_subject := v_row.name;
  ELSE
    v_subject := v_row.id::text;
  END IF;
  INSERT INTO nudge.audit (token, route, subject_type, subject, change)
  VALUES (nullif(current_setting('nudge.actor', true), ''),
          nullif(current_setting('nudge.route', true), ''), TG_ARGV[0], v_subject, lower(TG_OP));
  RETURN NULL;
END $$;

-- Name: FUNCTION audit_row_change(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.audit_row_change() IS 'Row trigger (argument: the subject type), for tables whose audit fires only for some columns (tokens): records the changed row in nudge.audit (subject: a token''s name, else the id) with the session''s nudge.actor and nudge.route (or none: an SQL session) and session_user, unless rules are running.';

-- Name: bare_cron(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.bare_cron(p_expr text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
  SELECT regexp_replace(p_expr, E'^[\\s\u00a0\u0085]+|[\\s\u00a0\u0085]+$', '', 'g')
$_$;

-- Name: FUNCTION bare_cron(p_expr text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.bare_cron(p_expr text) IS 'p_expr without the white space before and after it (a newline, a tab, \v, \f, a no-break space, NEL), which nudge.cron_parse reads as none; NULL for NULL.';

-- Name: target_hosts; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.target_hosts (
    host text NOT NULL,
    state text DEFAULT 'closed'::text NOT NULL,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    opened_at timestamp with time zone,
    next_probe_at timestamp with time zone,
    open_seconds integer,
    probe_worker text,
    probe_reminder_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    last_error text,
    pace double precision,
    limited_at timestamp with time zone,
    paced_until timestamp with time zone,
    next_send_at timestamp with time zone,
    CONSTRAINT a_paced_host_has_a_positive_pace_and_its_times CHECK (
CASE
    WHEN (pace IS NULL) THEN ((limited_at IS NULL) AND (paced_until IS NULL))
    ELSE ((pace > (0)::double precision) AND (limited_at IS NOT NULL) AND (paced_until IS NOT NULL))
END),
    CONSTRAINT breaker_state_is_known CHECK ((state = ANY (ARRAY['closed'::text, 'open'::text, 'probing'::text]))),
    CONSTRAINT failures_are_not_negative CHECK ((consecutive_failures >= 0)),
    CONSTRAINT only_a_closed_breaker_has_no_probe_time CHECK (((state = 'closed'::text) = ((next_probe_at IS NULL) AND (opened_at IS NULL) AND (open_seconds IS NULL)))),
    CONSTRAINT only_a_failing_breaker_has_a_last_error CHECK (((last_error IS NULL) OR ((consecutive_failures > 0) AND (length(last_error) <= 500)))),
    CONSTRAINT only_a_probing_breaker_has_a_prober CHECK (((state = 'probing'::text) = ((probe_worker IS NOT NULL) AND (probe_reminder_id IS NOT NULL))))
);

-- Name: TABLE target_hosts; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.target_hosts IS 'Each webhook host (scheme://host:port) that has failed or answered 429: its circuit breaker, closed (failures counted), open (deliveries held until next_probe_at) or probing (one delivery out as the probe, leased to probe_worker until next_probe_at), and its pace while it is paced (paced_until). Changed only by the workers'' claims and finishes.';

-- Name: COLUMN target_hosts.next_probe_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.target_hosts.next_probe_at IS 'Open: when the probe may go, and until when held deliveries wait. Probing: when the probe''s lease ends (another may go then).';

-- Name: COLUMN target_hosts.open_seconds; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.target_hosts.open_seconds IS 'How long the breaker stays open this time: [breaker] open_seconds, doubled by each failed probe up to max_open_seconds.';

-- Name: COLUMN target_hosts.pace; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.target_hosts.pace IS 'Deliveries a second the host may be sent at limited_at: 0.7 of the pace it had at its last 429 (nudge.pace_after_429); nudge.host_pace tells the pace now.';

-- Name: COLUMN target_hosts.limited_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.target_hosts.limited_at IS 'When the host may be sent to again after its last 429 that cut the pace (that 429, plus the Retry-After of its batch): its pace grows from then.';

-- Name: COLUMN target_hosts.paced_until; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.target_hosts.paced_until IS 'When the pace, growing from limited_at as nudge.pace_at says, passes 1,000 a second (nudge.paced_until): the host is no longer paced.';

-- Name: COLUMN target_hosts.next_send_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.target_hosts.next_send_at IS 'While paced: no delivery goes to the host before it (its last Retry-After, then one pace after the last delivery sent).';

-- Name: breaker_change(nudge.target_hosts, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.breaker_change(h nudge.target_hosts, p_from text, p_worker text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('host', h.host, 'from', p_from, 'to', h.state,
                            'failures', h.consecutive_failures, 'opened_at', h.opened_at,
                            'next_probe_at', h.next_probe_at, 'last_error', h.last_error,
                            'worker', p_worker)::text
$$;

-- Name: FUNCTION breaker_change(h nudge.target_hosts, p_from text, p_worker text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.breaker_change(h nudge.target_hosts, p_from text, p_worker text) IS 'The nudge_breaker notification of a breaker that p_worker moved from state p_from to h: host, from, to, failures, opened_at, next_probe_at, last_error (the last failed attempt''s error while it has failures) and worker, as JSON.';

-- Name: busy_hosts(integer, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.busy_hosts(p_limit integer DEFAULT 20, p_read_cap integer DEFAULT 10000) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
  WITH earliest AS (
    -- The earliest due rows on the due index, leased or not, whatever their channel: the cap
    -- bounds the rows read, not the webhooks found.
    SELECT r.channel, r.target, r.entity_type, r.entity_id, r.next_run_at,
           r.lease_expires_at IS NOT NULL AND r.lease_expires_at > now() AS leased
      FROM nudge.reminders r
     WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
     ORDER BY r.next_run_at
     LIMIT greatest(p_read_cap, 1)),
  -- By address first: an address is parsed into its host once, not once a row.
  by_address AS (
    SELECT coalesce(e.target,
                    (SELECT c.address FROM nudge.contacts c
                      WHERE c.entity_type = e.entity_type AND c.entity_id = e.entity_id
                        AND c.channel = 'webhook')) AS address,
           count(*) FILTER (WHERE e.leased) AS in_flight,
           count(*) FILTER (WHERE NOT e.leased) AS due,
           min(e.next_run_at) FILTER (WHERE NOT e.leased) AS oldest_due_at
      FROM earliest e
     WHERE e.channel = 'webhook'
     GROUP BY 1),
  by_host AS (
    SELECT nudge.target_host(a.address) AS host, sum(a.in_flight) AS in_flight,
           sum(a.due) AS due, min(a.oldest_due_at) AS oldest_due_at
      FROM by_address a
     WHERE a.address IS NOT NULL
     GROUP BY 1)
  SELECT jsonb_build_object(
    'hosts', coalesce((
      SELECT jsonb_agg(jsonb_build_object(
               'host', b.host, 'in_flight', b.in_flight, 'due', b.due,
               -- From year 1 at the earliest (-infinity cannot be subtracted); 0 when none is due.
               'oldest_due_seconds',
               CASE WHEN b.oldest_due_at IS NULL THEN 0
                    ELSE round(extract(epoch FROM now() - greatest(b.oldest_due_at,
                                                                   nudge.earliest_time())), 3) END,
               'breaker', coalesce(h.state, 'closed'))
             ORDER BY b.in_flight + b.due DESC, b.host)
        FROM (SELECT * FROM by_host
               ORDER BY in_flight + due DESC, host LIMIT greatest(p_limit, 0)) b
        LEFT JOIN nudge.target_hosts h ON h.host = b.host), '[]'::jsonb),
    'read', (SELECT count(*) FROM earliest),
    'read_cap', greatest(p_read_cap, 1))
$$;

-- Name: FUNCTION busy_hosts(p_limit integer, p_read_cap integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.busy_hosts(p_limit integer, p_read_cap integer) IS 'The webhook hosts (nudge.target_host of the target, else of the contact''s address) with the most deliveries due or under way now, up to p_limit of them, busiest first: for each, in_flight (leased to a worker), due (no live lease), the seconds its earliest due one has waited and its circuit breaker''s state (closed when it has none), counted among the p_read_cap earliest due ACTIVE reminders of any channel (read, the rows read, says whether the cap cut the count); deliveries a breaker holds or a retry waits for are not due and are not counted.';

-- Name: cancel_if_live(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cancel_if_live(p_id bigint) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- Decided on the row once locked: a flag or a worker may have ended it since it was found.
  IF (nudge.lock_reminder(p_id)).status NOT IN ('ACTIVE', 'PAUSED') THEN
    RETURN NULL;
  END IF;
  RETURN (nudge.cancel_reminder(p_id)).id;
END $$;

-- Name: FUNCTION cancel_if_live(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cancel_if_live(p_id bigint) IS 'Cancels reminder p_id as nudge.cancel_reminder does if it is ACTIVE or PAUSED once locked, and returns its id; NULL, changing nothing, when it has ended meanwhile; NU404 when it does not exist.';

-- Name: cancel_reminder(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cancel_reminder(p_id bigint) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE v_row nudge.reminders := nudge.lock_reminder(p_id);
BEGIN
  IF v_row.status = 'CANCELLED' THEN RETURN v_row; END IF;
  IF v_row.status NOT IN ('ACTIVE', 'PAUSED') THEN
    RAISE EXCEPTION 'reminder % is %, it can no longer be cancelled', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE nudge.reminders
     SET status = 'CANCELLED', completed_reason = 'cancelled', finished_at = now(), updated_at = now()
   WHERE id = p_id RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Name: FUNCTION cancel_reminder(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cancel_reminder(p_id bigint) IS 'ACTIVE or PAUSED becomes CANCELLED for good (a fire in flight is recorded but never revives it); cancelling a CANCELLED reminder changes nothing; COMPLETED or FAILED raises NU409, a missing reminder NU404.';

-- Name: cancel_reminders(bigint[], text, text, text, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cancel_reminders(p_ids bigint[] DEFAULT NULL::bigint[], p_status text DEFAULT NULL::text, p_entity_type text DEFAULT NULL::text, p_entity_id text DEFAULT NULL::text, p_event_type text DEFAULT NULL::text, p_channel text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql
    AS $$
  SELECT nudge.change_matching_reminders('cancel', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;

-- Name: FUNCTION cancel_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cancel_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Cancels up to 10,000 ACTIVE or PAUSED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.cancel_reminder would each (each emits nudge.reminder_completed with reason cancelled); answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

-- Name: catch_up_kept(nudge.reminders, integer, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamp with time zone, OUT first_kept timestamp with time zone, OUT last_dropped timestamp with time zone, OUT dropped bigint) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_n     bigint;
  v_lo    timestamp;  -- the missed stretch on the zone's clock
  v_hi    timestamp;
  v_hours integer[];
  v_mins  integer[];
  v_per_day bigint;   -- a whole day's occurrences on the clock
  v_d     date;       -- the day counted, from now back
  v_c     bigint;     -- occurrences on day v_d within the stretch
  v_kept  bigint := 0;
  v_day   date;       -- the day of the first kept occurrence,
  v_on    bigint;     -- its occurrences,
  v_rank  bigint;     -- its place among them counted back from the newest,
  v_prev  date;       -- and the matching day before it
  v_times timestamptz[];
BEGIN
  -- (a row written by hand at -infinity has nothing to catch up: nudge.occurrence_after)
  IF NOT isfinite(r.next_run_at) OR NOT isfinite(p_through) THEN RETURN; END IF;
  IF r.schedule_type = 'recurring' THEN
    v_n := floor(extract(epoch FROM p_through - r.next_run_at) / r.interval_seconds)::bigint + 1;
    IF v_n > p_cap THEN
      dropped := v_n - p_cap;
      first_kept := r.next_run_at + make_interval(secs => dropped::float8 * r.interval_seconds);
      last_dropped := first_kept - make_interval(secs => r.interval_seconds);
    END IF;
    RETURN;
  END IF;
  IF r.schedule_type <> 'cron' THEN RETURN; END IF;
  -- Walking back from now by occurrence has no helper (cron_next only walks forward) and walking
  -- forward from the oldest costs one cron_next per missed occurrence (thousands). So count a
  -- day at a time back from now until the cap is reached: a whole day has hours x minutes
  -- occurrences, the first and the last day of the stretch are counted time by time, and a day
  -- whose offset changes (a gap fires once, a repeated hour once or twice) by walking it.
  v_lo := r.next_run_at AT TIME ZONE r.timezone;
  v_hi := p_through AT TIME ZONE r.timezone;
  v_hours := nudge.cron_bits((r.cron_schedule).hours, 24);
  v_mins := nudge.cron_bits((r.cron_schedule).minutes, 60);
  v_per_day := cardinality(v_hours)::bigint * cardinality(v_mins);
  v_d := v_hi::date;
  WHILE v_d >= v_lo::date LOOP
    IF (r.cron_schedule).months & (1 << date_part('month', v_d)::integer) = 0 THEN
      v_d := date_trunc('month', v_d::timestamp)::date - 1;  -- skip the month
      CONTINUE;
    END IF;
    v_c := CASE WHEN NOT nudge.cron_day_matches(r.cron_schedule, v_d) THEN 0
                WHEN nudge.is_clock_change_day(v_d, r.timezone)
                THEN cardinality(nudge.cron_day_instants(r, v_d, r.next_run_at, p_through))
                ELSE nudge.cron_times_between(v_hours, v_mins, v_d, v_lo, v_hi) END;
    IF v_c > 0 THEN
      IF v_day IS NOT NULL THEN
        v_prev := v_d;
        EXIT;
      END IF;
      IF v_kept + v_c >= p_cap THEN
        v_day := v_d;
        v_on := v_c;
        v_rank := p_cap - v_kept;
      END IF;
      v_kept := v_kept + v_c;
    END IF;
    v_d := v_d - 1;
  END LOOP;
  IF v_day IS NULL OR (v_rank = v_on AND v_prev IS NULL) THEN RETURN; END IF;  -- none to drop
  -- The occurrences of that day and the one before, newest first: the v_rank-th is the first kept.
  v_times := ARRAY(SELECT t FROM unnest(nudge.cron_day_instants(r, v_day, r.next_run_at, p_through)
                                        || CASE WHEN v_prev IS NULL THEN '{}'::timestamptz[]
                                                ELSE nudge.cron_day_instants(r, v_prev, r.next_run_at, p_through) END) t
                    ORDER BY t DESC);
  first_kept := v_times[v_rank];
  last_dropped := v_times[v_rank + 1];
  -- The dropped ones: the rest of that day, the first day's from next_run_at on, and every
  -- whole day between, those whose offset changes as they fire.
  dropped := v_on - v_rank;
  IF v_lo::date < v_day THEN
    dropped := dropped
               + cardinality(nudge.cron_day_instants(r, v_lo::date, r.next_run_at, p_through))
               + v_per_day * nudge.cron_day_count(r.cron_schedule, v_lo::date + 1, v_day - 1)
               + coalesce((SELECT sum(cardinality(nudge.cron_day_instants(r, d::date, r.next_run_at, p_through)) - v_per_day)
                             FROM generate_series(v_lo::date + 1, v_day - 1, interval '1 day') d
                            WHERE nudge.is_clock_change_day(d::date, r.timezone)
                              AND nudge.cron_day_matches(r.cron_schedule, d::date)), 0);
  END IF;
END $$;

-- Name: FUNCTION catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamp with time zone, OUT first_kept timestamp with time zone, OUT last_dropped timestamp with time zone, OUT dropped bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamp with time zone, OUT first_kept timestamp with time zone, OUT last_dropped timestamp with time zone, OUT dropped bigint) IS 'When a recurring or cron reminder has more than p_cap occurrences from its next_run_at through p_through, the first of the newest p_cap (first_kept), the one before it (last_dropped) and how many come before it (dropped); NULLs otherwise. Exact, across daylight-saving changes too: a cron''s occurrences are counted as nudge.cron_next fires them (a gap''s times once, an hour a fall-back repeats once or twice).';

-- Name: change_matching_reminders(text, bigint[], text, text, text, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  -- At most this many change per call; "more" tells the caller to call again.
  c_limit   constant integer := 10000;
  v_from    text[] := CASE p_change WHEN 'pause' THEN '{ACTIVE}'
                                    WHEN 'resume' THEN '{PAUSED}'
                                    WHEN 'retry' THEN '{FAILED}'
                                    ELSE '{ACTIVE,PAUSED}' END;
  v_ids     bigint[];
  v_more    boolean;
  v_id      bigint;
  v_done    bigint[] := '{}';
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
             -- A failed reminder whose identity is live again cannot take a retry (one live
             -- reminder per identity; a lookup in the live identities' index).
             AND (p_change <> 'retry'
                  OR NOT EXISTS (SELECT 1 FROM nudge.reminders t
                                  WHERE t.entity_type = r.entity_type
                                    AND t.entity_id = r.entity_id
                                    AND t.event_type = r.event_type
                                    AND t.status IN ('ACTIVE', 'PAUSED')))
           ORDER BY r.id LIMIT c_limit + 1
             FOR UPDATE) m;
  v_ids := coalesce(v_ids, '{}');
  v_more := cardinality(v_ids) > c_limit;
  v_ids := v_ids[1:c_limit];

  IF p_change = 'retry' THEN
    -- Newest first: of the matching failed reminders of one identity, the newest is retried and
    -- the older ones, whose identity it then makes live, are left as they are.
    FOR v_id IN SELECT i.id FROM unnest(v_ids) AS i(id) ORDER BY i.id DESC LOOP
      IF nudge.retry_if_no_live_twin(v_id) THEN
        v_done := v_done || v_id;
      END IF;
    END LOOP;
    v_ids := ARRAY(SELECT d.id FROM unnest(v_done) AS d(id) ORDER BY d.id);
  ELSE
    PERFORM CASE p_change WHEN 'pause' THEN nudge.pause_reminder(i.id)
                          WHEN 'resume' THEN nudge.resume_reminder(i.id)
                          ELSE nudge.cancel_reminder(i.id) END
       FROM unnest(v_ids) WITH ORDINALITY AS i(id, n) ORDER BY i.n;
  END IF;
  RETURN jsonb_build_object('count', cardinality(v_ids), 'ids', to_jsonb(v_ids), 'more', v_more);
END $$;

-- Name: FUNCTION change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses, resumes, cancels or retries (p_change) up to 10,000 reminders that can take that change and match every given filter, each through the single-reminder function (a retry only of a FAILED reminder whose identity no live reminder holds, newest first, so that of one identity''s matching failed reminders the newest is retried); answers {count, ids, more} (ids ascending); ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

-- Name: check_item(jsonb, text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_item(p_item jsonb, p_known text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
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

-- Name: FUNCTION check_item(p_item jsonb, p_known text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_item(p_item jsonb, p_known text[]) IS 'Raises 22023 for an item of a batch REST would refuse: ": must be a JSON object" (COLUMN '''') when it is not an object, else "<key>: is not a known field" for its first key not in p_known, else "<field>: <problem>" for its first value nudge.item_value_problem refuses (in key order); otherwise does nothing.';

-- Name: check_keys(jsonb, text[], text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_keys(p_object jsonb, p_known text[], p_prefix text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_key text;
BEGIN
  IF p_object - p_known = '{}'::jsonb THEN
    RETURN;  -- every key is known: one operator, no query
  END IF;
  FOR v_key IN SELECT k FROM jsonb_object_keys(p_object) k ORDER BY k LOOP
    IF NOT v_key = ANY (p_known) THEN
      PERFORM nudge.reject(p_prefix || v_key, 'is not a known field');
    END IF;
  END LOOP;
END $$;

-- Name: FUNCTION check_keys(p_object jsonb, p_known text[], p_prefix text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_keys(p_object jsonb, p_known text[], p_prefix text) IS 'Raises 22023 naming p_prefix||key for the first key of p_object (in key order) that is not in p_known; otherwise does nothing.';

-- Name: check_own_event_paths(nudge.rules); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_own_event_paths(p_rule nudge.rules) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_field   text;
  v_path    text;
  v_problem text;
BEGIN
  IF p_rule.event_type NOT IN ('nudge.reminder_completed', 'nudge.reminder_failed') THEN
    RETURN;
  END IF;
  -- Every data path the rule reads: its conditions, and the placeholders of every string of its
  -- action but a template's request (whose placeholders are the reminder's), named by their place.
  FOR v_field, v_path IN
    SELECT 'when.' || w.key, w.key FROM jsonb_each(p_rule."when") w
    UNION ALL
    SELECT s.place, m[1]
      FROM nudge.json_strings(p_rule.action, 'action', 'action.reminder.request') s,
           regexp_matches(s.value, '\{\{\s*([^{}]*?)\s*\}\}', 'g') m
  LOOP
    v_problem := nudge.own_event_path_problem(p_rule.event_type, v_path);
    IF v_problem IS NOT NULL THEN
      PERFORM nudge.reject(v_field, v_problem);
    END IF;
  END LOOP;
END $$;

-- Name: FUNCTION check_own_event_paths(p_rule nudge.rules); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_own_event_paths(p_rule nudge.rules) IS 'Raises 22023 naming the field (when.<path>, action.<path>) when a rule on one of Nudge''s own events reads a data path those events never have (nudge.own_event_path_problem), in a condition or a placeholder of its action (a template''s request aside); otherwise does nothing.';

-- Name: check_placeholders(text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_placeholders(p_text text, p_field text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_name text;
BEGIN
  IF position('{{' IN p_text) = 0 AND position('}}' IN p_text) = 0 THEN
    RETURN;
  END IF;
  FOR v_name IN SELECT m[2] FROM regexp_matches(p_text, '(\{\{\s*([^{}]*?)\s*\}\})', 'g') m LOOP
    IF nudge.placeholder_problem(v_name) IS NOT NULL THEN
      PERFORM nudge.reject(p_field, nudge.placeholder_problem(v_name));
    END IF;
  END LOOP;
  -- Which one, with what follows it: in a long template "a {{ that does not close" is a search.
  PERFORM nudge.reject(p_field, format('has a {{ or }} that does not close a placeholder: "%s"',
                                       substring(x.rest from '(?:\{\{|\}\})[^{}]{0,20}')))
     FROM (SELECT regexp_replace(p_text, '\{\{\s*[^{}]*?\s*\}\}', '', 'g') AS rest) x
    WHERE x.rest ~ '\{\{|\}\}';
END $$;

-- Name: FUNCTION check_placeholders(p_text text, p_field text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_placeholders(p_text text, p_field text) IS 'Raises 22023 naming p_field when p_text holds an unknown placeholder or a brace pair that is not one (quoted with what follows it); otherwise does nothing.';

-- Name: check_remind_template(jsonb, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) RETURNS void
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
      PERFORM nudge.reject('action.reminder.' || v_key, 'is not a known field');
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
    -- A target may be a URL the worker keeps as a secret, named whole; a secret is nothing else.
    IF v_type = 'string' AND v_value #>> '{}' ~ '\{\{\s*secret\.'
       AND NOT (v_key = 'target' AND nudge.secret_address_name(v_value #>> '{}') IS NOT NULL) THEN
      PERFORM nudge.reject('action.reminder.' || v_key, CASE WHEN v_key = 'target'
        THEN 'a secret stands for a whole target: {{secret.NAME}} alone, the URL its value'
        ELSE 'cannot hold a secret: {{secret.NAME}} stands only for a whole webhook target or '
             'in request.headers' END);
    END IF;
    IF v_type = 'string'
       AND NOT (v_key = 'target' AND nudge.secret_address_name(v_value #>> '{}') IS NOT NULL) THEN
      PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.reminder.' || v_key);
    END IF;
    -- These decide how every reminder of the rule is checked, when it is saved: one event's
    -- data cannot choose them (a timezone can: it is checked again at each event).
    IF v_key IN ('channel', 'schedule_type', 'cron', 'misfire_policy', 'stop_condition_type')
       AND strpos(v_value #>> '{}', '{{') > 0 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           'cannot hold placeholders: it is the same for every reminder the rule creates');
    END IF;
    -- A time is one value, never pieced together, and always with its offset: read in each
    -- session's zone, "2030-01-01" was a different instant over REST and from SQL (explore26a #3).
    IF v_key IN ('run_at', 'ends_at') AND strpos(v_value #>> '{}', '{{') > 0
       AND NOT v_value #>> '{}' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$' THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
        format('a placeholder stands for the whole time ({{data.%s}}), whose value is an RFC 3339 time with an offset',
               CASE v_key WHEN 'run_at' THEN 'interview_at' ELSE 'deadline' END));
    ELSIF v_key IN ('run_at', 'ends_at') AND strpos(v_value #>> '{}', '{{') = 0
          AND nudge.item_value_problem(v_key, v_value) IS NOT NULL THEN
      PERFORM nudge.reject('action.reminder.' || v_key, nudge.item_value_problem(v_key, v_value));
    END IF;
  END LOOP;
  IF p_template ? 'payload' THEN
    -- Each string named by its place (action.reminder.payload.a[1]), as an event's missing
    -- value is named.
    PERFORM nudge.check_placeholders(s.value, s.place)
       FROM nudge.json_strings(p_template->'payload', 'action.reminder.payload') s;
    -- Keys are names, not templates.
    IF EXISTS (SELECT 1 FROM jsonb_path_query(p_template->'payload', '$.**') j
                WHERE jsonb_typeof(j) = 'object'
                  AND EXISTS (SELECT 1 FROM jsonb_object_keys(j) k WHERE k ~ '\{\{|\}\}')) THEN
      PERFORM nudge.reject('action.reminder.payload', 'keys cannot hold {{ or }}');
    END IF;
  END IF;
  -- Before a time the event gives ("1 day before the interview"), never before the event.
  IF (p_template->>'delay_seconds')::bigint < 0 AND NOT p_template ? 'run_at' THEN
    PERFORM nudge.reject('action.reminder.delay_seconds',
                         'must be 0 or more (it counts from the event; with run_at, from that time, before it too)');
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
  -- Said as REST's create says it (the sample create would state the range of a NULL).
  IF p_template->>'schedule_type' = 'recurring'
     AND NOT p_template ?| ARRAY['interval_seconds', 'interval_minutes'] THEN
    PERFORM nudge.reject('action.reminder.interval_seconds',
                         'is required for recurring (or interval_minutes)');
  END IF;

  -- Rendered for a sample event and created as a create would be, then rolled back: the
  -- template is checked like a create. Data placeholders stand for sample values; a target
  -- that is only data stands for an address that suits the channel.
  v_sample := ROW(0, p_event_type, 'sample', 'sample', '{}'::jsonb, NULL, now(), now(), NULL, 0,
                  '[]'::jsonb, NULL)::nudge.events;
  v_item := nudge.reminder_item(
              nudge.sample_template(p_template)
              || CASE WHEN p_template->>'run_at' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                      THEN jsonb_build_object('run_at', nudge.rfc3339_in_zone(now(), 'UTC'))
                      ELSE '{}'::jsonb END,
              v_sample);
  BEGIN
    -- Its end, were it created ended, is no event (nudge.emit_reminder_event); undone with it.
    PERFORM set_config('nudge.checking_rule', 'on', true);
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

-- Name: FUNCTION check_remind_template(p_template jsonb, p_event_type text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, a whole number out of its field''s range (too long for an integer: the range is stated), an unknown placeholder (in the payload, named by its place: action.reminder.payload.a[1]), a {{secret.NAME}} anywhere but alone in target, a placeholder in channel, schedule_type, cron, misfire_policy or stop_condition_type, a run_at or ends_at that is neither an RFC 3339 time with an offset nor one data placeholder alone, a negative delay_seconds without run_at, or anything a create would refuse for a sample event; otherwise does nothing.';

-- Name: check_request(jsonb, text, jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_request(p_request jsonb, p_channel text, p_payload jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_method  text := coalesce(p_request->>'method', 'POST');
  v_body    jsonb := p_request->'body';
  v_type    text := p_request->>'content_type';
  v_name    text;
  v_value   jsonb;
  v_field   text;
  v_seen    text[] := '{}';
BEGIN
  IF p_request IS NULL THEN
    RETURN;
  END IF;
  IF jsonb_typeof(p_request) <> 'object' THEN
    PERFORM nudge.reject('request', 'must be a JSON object: {"method", "headers", "body", "content_type"}');
  END IF;
  IF p_channel IS DISTINCT FROM 'webhook' THEN
    PERFORM nudge.reject('request', 'is only for webhook reminders');
  END IF;
  PERFORM nudge.check_keys(p_request,
                           ARRAY['method', 'headers', 'body', 'content_type', 'timeout_ms'],
                           'request.');
  -- A handler slower than the workers' [webhook] timeout_ms was called again on every attempt
  -- and the reminder failed (explore18b #4): a reminder can wait longer, or less, for its own.
  IF p_request ? 'timeout_ms'
     AND NOT coalesce(jsonb_typeof(p_request->'timeout_ms') = 'number'
                      AND p_request->>'timeout_ms' ~ '^[0-9]{1,6}$'
                      AND (p_request->>'timeout_ms')::integer BETWEEN 1 AND 600000, false) THEN
    PERFORM nudge.reject('request.timeout_ms',
                         'must be a whole number of milliseconds from 1 to 600000');
  END IF;
  IF p_request ? 'method' AND (jsonb_typeof(p_request->'method') <> 'string'
                               OR v_method NOT IN ('POST', 'PUT', 'PATCH', 'GET', 'DELETE')) THEN
    PERFORM nudge.reject('request.method', 'must be one of POST, PUT, PATCH, GET, DELETE');
  END IF;

  -- Headers: names are RFC 7230 tokens Nudge does not set itself; values are one line of text.
  IF p_request ? 'headers' THEN
    IF jsonb_typeof(p_request->'headers') <> 'object' THEN
      PERFORM nudge.reject('request.headers', 'must be a JSON object of header names and values');
    END IF;
    IF (SELECT count(*) FROM jsonb_object_keys(p_request->'headers')) > 20 THEN
      PERFORM nudge.reject('request.headers', 'must hold at most 20 headers');
    END IF;
    FOR v_name, v_value IN SELECT k, v FROM jsonb_each(p_request->'headers') AS x(k, v) ORDER BY k
    LOOP
      v_field := 'request.headers.' || v_name;
      IF v_name !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]{1,100}$' THEN
        -- Not named in the field: a name may hold a line break. Quoted as JSON instead.
        PERFORM nudge.reject('request.headers', format(
          '%s is not a header name: 1 to 100 letters, digits and !#$%%&''*+-.^_`|~ (an RFC 7230 token)',
          to_jsonb(left(v_name, 100))));
      END IF;
      IF lower(v_name) IN ('host', 'content-length', 'transfer-encoding', 'connection',
                           'idempotency-key') OR lower(v_name) LIKE 'nudge-%' THEN
        PERFORM nudge.reject(v_field, 'is set by Nudge and cannot be given');
      END IF;
      IF lower(v_name) = 'content-type' THEN
        PERFORM nudge.reject(v_field, 'is set from request.content_type');
      END IF;
      IF lower(v_name) = ANY (v_seen) THEN
        PERFORM nudge.reject(v_field, 'is given twice (header names ignore case)');
      END IF;
      v_seen := v_seen || lower(v_name);
      IF jsonb_typeof(v_value) <> 'string' THEN
        PERFORM nudge.reject(v_field, 'must be a string');
      END IF;
      IF length(v_value #>> '{}') > 2048 THEN
        PERFORM nudge.reject(v_field, 'must be at most 2048 characters');
      END IF;
      IF (v_value #>> '{}') ~ '[\x01-\x08\x0a-\x1f\x7f]' THEN
        PERFORM nudge.reject(v_field, 'must not hold line breaks or other control characters');
      END IF;
      PERFORM nudge.check_request_text(v_value #>> '{}', v_field, true, p_payload);
    END LOOP;
  END IF;

  IF p_request ? 'content_type' AND (jsonb_typeof(p_request->'content_type') <> 'string'
       OR length(v_type) > 200
       OR v_type !~ '^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+\s*(;[^\x01-\x1f\x7f]*)?$') THEN
    PERFORM nudge.reject('request.content_type',
                         'must be a media type of at most 200 characters, e.g. text/plain; charset=utf-8');
  END IF;

  -- The body: a JSON template, or a string template with its content type.
  IF p_request ? 'body' THEN
    IF v_method IN ('GET', 'DELETE') THEN
      PERFORM nudge.reject('request.body', 'is not for ' || v_method || ': GET and DELETE send no body');
    END IF;
    IF jsonb_typeof(v_body) = 'null' THEN
      PERFORM nudge.reject('request.body', 'must be a JSON template or a string with content_type');
    END IF;
    IF octet_length(CASE WHEN jsonb_typeof(v_body) = 'string' THEN v_body #>> '{}'
                         ELSE v_body::text END) > 16384 THEN
      PERFORM nudge.reject('request.body', 'must be at most 16 KiB');
    END IF;
    IF jsonb_typeof(v_body) = 'string' THEN
      IF v_type IS NULL THEN
        PERFORM nudge.reject('request.content_type', 'is required with a string body '
                             '(e.g. text/plain, application/x-www-form-urlencoded)');
      END IF;
      -- A value written as text into JSON could end its string and add keys of its own.
      IF nudge.is_json_media_type(v_type) AND strpos(v_body #>> '{}', '{{') > 0 THEN
        PERFORM nudge.reject('request.body', 'with a JSON content_type, give the body as JSON (an '
                             'object or array), whose placeholders are escaped for where they '
                             'are; a string body''s values are written as text');
      END IF;
      PERFORM nudge.check_request_text(v_body #>> '{}', 'request.body', false, p_payload);
    ELSE
      IF EXISTS (SELECT 1 FROM jsonb_path_query(v_body, '$.**') j
                  WHERE jsonb_typeof(j) = 'object'
                    AND EXISTS (SELECT 1 FROM jsonb_object_keys(j) k WHERE k ~ '\{\{|\}\}')) THEN
        PERFORM nudge.reject('request.body', 'keys cannot hold {{ or }}');
      END IF;
      PERFORM nudge.check_request_text(j #>> '{}', 'request.body', false, p_payload, true)
         FROM jsonb_path_query(v_body, '$.**') j
        WHERE jsonb_typeof(j) = 'string';
      IF v_type IS NOT NULL AND NOT nudge.is_json_media_type(v_type) THEN
        PERFORM nudge.reject('request.content_type', 'must be a JSON type (application/json, '
                             'application/...+json, text/json) for a JSON body; a string body '
                             'takes any');
      END IF;
    END IF;
  ELSIF p_request ? 'content_type' THEN
    PERFORM nudge.reject('request.content_type', 'is only for a request with a body');
  END IF;
END $_$;

-- Name: FUNCTION check_request(p_request jsonb, p_channel text, p_payload jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_request(p_request jsonb, p_channel text, p_payload jsonb) IS 'Raises 22023 naming the field (request, request.method, request.headers.<name>, request.body, request.content_type, request.timeout_ms) when a request cannot be sent for a reminder of channel p_channel with payload p_payload: only webhooks; method POST, PUT, PATCH, GET or DELETE; timeout_ms a whole number from 1 to 600000; at most 20 headers, named by RFC 7230 tokens other than Host, Content-Length, Transfer-Encoding, Connection, Idempotency-Key, Nudge-* and Content-Type (request.content_type), once each, with values of at most 2048 characters without control characters whose only placeholders are {{secret.NAME}}; a body of at most 16 KiB (none for GET and DELETE), JSON or a string with content_type (with placeholders, not of a JSON type: nudge.is_json_media_type), whose placeholders are a request''s and whose payload paths exist and, where put in text, are not null; otherwise does nothing.';

-- Name: check_request_text(text, text, boolean, jsonb, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_request_text(p_text text, p_field text, p_in_header boolean, p_payload jsonb, p_whole_value_typed boolean DEFAULT false) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_name text;
BEGIN
  IF position('{{' IN p_text) = 0 AND position('}}' IN p_text) = 0 THEN
    RETURN;
  END IF;
  IF p_text ~ '\{\{\{|\}\}\}' THEN
    PERFORM nudge.reject(p_field, 'has three braces in a row: a placeholder is {{name}}');
  END IF;
  FOR v_name IN SELECT m[1] FROM regexp_matches(p_text, '\{\{\s*([^{}]*?)\s*\}\}', 'g') m LOOP
    IF nudge.request_placeholder_problem(v_name, p_in_header) IS NOT NULL THEN
      PERFORM nudge.reject(p_field, nudge.request_placeholder_problem(v_name, p_in_header));
    END IF;
    IF v_name LIKE 'payload.%'
       AND p_payload #> string_to_array(substr(v_name, 9), '.') IS NULL THEN
      PERFORM nudge.reject(p_field, format('the payload has no %s for {{%s}}',
                                           substr(v_name, 9), v_name));
    END IF;
    -- As a rule refuses a null in text: "Hi null!" is not what anyone meant to send.
    IF v_name LIKE 'payload.%'
       AND jsonb_typeof(p_payload #> string_to_array(substr(v_name, 9), '.')) = 'null'
       AND NOT (p_whole_value_typed AND p_text ~ '^\{\{[^{}]*\}\}$') THEN
      PERFORM nudge.reject(p_field, format(
        'the payload''s %s is null, which cannot be put in text for {{%s}}: give it a value%s',
        substr(v_name, 9), v_name,
        CASE WHEN p_whole_value_typed THEN ', or make this string that placeholder alone (then '
                                           'the value is sent as JSON null)' ELSE '' END));
    END IF;
  END LOOP;
  IF regexp_replace(p_text, '\{\{\s*[^{}]*?\s*\}\}', '', 'g') ~ '\{\{|\}\}' THEN
    PERFORM nudge.reject(p_field, 'has a {{ or }} that does not close a placeholder');
  END IF;
END $_$;

-- Name: FUNCTION check_request_text(p_text text, p_field text, p_in_header boolean, p_payload jsonb, p_whole_value_typed boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_request_text(p_text text, p_field text, p_in_header boolean, p_payload jsonb, p_whole_value_typed boolean) IS 'Raises 22023 naming p_field when a text of a request holds a placeholder that cannot stand there, reads a path p_payload lacks or holds null (unless p_whole_value_typed and the text is that placeholder alone, a JSON body''s typed value), or has a brace pair that is not a placeholder; otherwise does nothing.';

-- Name: check_rule(nudge.rules); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_rule(p_rule nudge.rules) RETURNS void
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
  -- Nobody can post a nudge.* event: a rule on one Nudge does not emit could never run.
  IF p_rule.event_type LIKE 'nudge.%'
     AND p_rule.event_type NOT IN ('nudge.reminder_completed', 'nudge.reminder_failed') THEN
    PERFORM nudge.reject('event_type', format(
      '%s is not an event Nudge emits: of Nudge''s own, there are nudge.reminder_completed and '
      'nudge.reminder_failed (and events posted cannot start with "nudge.")', p_rule.event_type));
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
    -- An event's own fields are each of one type, never null: a condition of another type never
    -- held, and nothing said so (explore26a: {"event_id": "5"}).
    IF v_key IN ('entity_type', 'entity_id', 'event_type') AND jsonb_typeof(v_value) <> 'string' THEN
      PERFORM nudge.reject('when.' || v_key, format('must be a string: an event''s %s is one', v_key));
    ELSIF v_key = 'event_id' AND jsonb_typeof(v_value) <> 'number' THEN
      PERFORM nudge.reject('when.event_id', 'must be a number: an event''s id is one');
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
      IF NOT p_rule.action->'cancel' ? 'event_type' THEN
        PERFORM nudge.reject('action.cancel.event_type', 'is required: the event_type of the '
                             'reminders to cancel');
      END IF;
      FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_rule.action->'cancel') AS x(k, v) LOOP
        IF jsonb_typeof(v_value) IS DISTINCT FROM 'string' THEN
          PERFORM nudge.reject('action.cancel.' || v_key, 'must be a string of 1 to 200 characters');
        END IF;
        IF length(v_value #>> '{}') NOT BETWEEN 1 AND 200 THEN
          PERFORM nudge.reject('action.cancel.' || v_key, 'must be 1 to 200 characters');
        END IF;
        PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.cancel.' || v_key);
      END LOOP;
  END CASE;
  PERFORM nudge.check_own_event_paths(p_rule);
END $$;

-- Name: FUNCTION check_rule(p_rule nudge.rules); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_rule(p_rule nudge.rules) IS 'Raises 22023 naming the field (name, event_type, when.<path>, action.<path>) when a rule cannot be saved: a name, event_type or flag key empty, over 200 characters or only white space, an event_type starting with nudge. other than nudge.reminder_completed and nudge.reminder_failed (the only ones Nudge emits), an unknown field or placeholder, a wrong type, or a template a create would refuse, or, on Nudge''s own events, a data path they never have; otherwise does nothing.';

-- Name: check_template_time(text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.check_template_time(p_text text, p_field text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_at timestamptz;
BEGIN
  v_at := p_text::timestamptz;
EXCEPTION WHEN data_exception THEN
  PERFORM nudge.reject(p_field, 'must be an RFC 3339 time that exists, with an offset within '
                                '±15:59, e.g. 2026-01-31T09:00:00Z');
END $$;

-- Name: FUNCTION check_template_time(p_text text, p_field text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.check_template_time(p_text text, p_field text) IS 'Raises as nudge.reject does, naming p_field, when p_text (an RFC 3339 time a rule rendered from an event) is not a time PostgreSQL can read (a date that does not exist, an offset past 15:59); otherwise does nothing.';

-- Name: checked_timezone(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.checked_timezone(p_zone text) RETURNS text
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

-- Name: FUNCTION checked_timezone(p_zone text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.checked_timezone(p_zone text) IS 'p_zone as the tz database spells it (europe/berlin: Europe/Berlin) when it is a zone of the tz database that PostgreSQL knows (not localtime, posixrules or Factory) and applies by its rules (not CET, MET, EET, WET, EST, MST or HST, which PostgreSQL applies as abbreviations); otherwise raises through nudge.reject (22023 naming timezone, or while a rule''s action runs NU422 naming the template''s field), naming an offset or POSIX TZ string ("+05:00", "UTC+5", "Etc/GMT+14") or an abbreviation ("CEST", "PDT", "CET") as such.';

-- Name: claim_due(text, integer, nudge.worker_policy, integer, integer, text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer DEFAULT NULL::integer, p_email_slots integer DEFAULT NULL::integer, p_pass_over text[] DEFAULT NULL::text[]) RETURNS SETOF nudge.claimed_fire
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  -- Rows are found once through the due index and then revisited by ctid, which cannot change
  -- while this transaction holds their row locks.
  v_take      tid[];
  v_stop      tid[];
  v_exhausted tid[];
  v_missed    tid[];
  v_crowded   tid[];     -- fire_all rows with more missed occurrences than the cap
  v_rescued   bigint[];  -- ids taken over from a lease that expired
  v_ids       bigint[];
  v_at        timestamptz[];
  v_attempts  integer[];
  v_count     integer;
  v_blocked   tid[];     -- rows to take whose host's breaker is not closed,
  v_hosts     text[];    -- their hosts,
  v_blocked_ids bigint[];
  v_used      integer[];  -- their attempts used,
  v_probes    tid[];     -- and of those, the probes this claim sends
  v_changes   text[];
  v_paced     tid[];     -- rows to take whose host or URL is paced,
  v_pacers    text[];    -- what paces each (its host, else its URL),
  v_paced_ids bigint[];
  v_paced_due timestamptz[];
  v_sent      tid[];     -- and of those, the ones its pace lets go now
BEGIN
  -- A webhook or an email takes one of the worker's delivery slots, and an email one of its
  -- relay connections too: past p_slots of them, or p_email_slots emails, the rows are left as
  -- they are (locked until this claim commits, then due for any worker), so a crash charges an
  -- attempt only to deliveries under way, and a cancel reaches every email not yet sent. Log
  -- lines take no slot.
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted AND NOT d.missed
                                       AND NOT d.crowded AND d.fits),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.missed AND NOT d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.crowded AND NOT d.exhausted AND NOT d.stop_now
                                       AND d.fits),
         array_agg(d.row_id) FILTER (WHERE d.held AND NOT d.stop_now AND NOT d.exhausted
                                     AND NOT d.missed AND d.fits)
    INTO v_take, v_stop, v_exhausted, v_missed, v_crowded, v_rescued
    FROM (SELECT m.*,
                 NOT m.takes_slot
                 OR (m.email_fits
                     AND (p_slots IS NULL
                          OR count(*) FILTER (WHERE m.takes_slot AND m.email_fits
                                                AND NOT (m.stop_now OR m.exhausted OR m.missed))
                               OVER (ORDER BY m.due ROWS UNBOUNDED PRECEDING) <= p_slots)) AS fits
            FROM (SELECT l.*,
                 l.channel <> 'email' OR p_email_slots IS NULL
                 OR count(*) FILTER (WHERE l.channel = 'email'
                                       AND NOT (l.stop_now OR l.exhausted OR l.missed))
                      OVER (ORDER BY l.due ROWS UNBOUNDED PRECEDING) <= p_email_slots AS email_fits
            FROM (SELECT r.ctid AS row_ctid, r.id AS row_id, r.next_run_at AS due,
                 r.channel, r.channel <> 'log' AS takes_slot,
                 -- Only an expired lease can still be set on a due row this claim may take;
                 -- lease_lost keeps that mark on a row a breaker or pace held since.
                 r.leased_by IS NOT NULL OR r.lease_lost AS held,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM nudge.status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt - r.rate_limited >= coalesce(r.max_attempts, p_policy.max_attempts)
                   AS exhausted,
                 r.misfire_policy = 'skip' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.next_run_at < now() - p_policy.misfire_threshold_seconds * interval '1 second'
                   AS missed,
                 -- A fire_all catch-up about to start with possibly more missed occurrences
                 -- than the cap: for an interval exactly, for a cron at least (its
                 -- occurrences are at least a minute apart). Only these pay for a count.
                 r.misfire_policy = 'fire_all' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.catch_up_fires = 0
                   AND CASE r.schedule_type
                         WHEN 'recurring' THEN extract(epoch FROM now() - r.next_run_at)
                                               >= p_policy.fire_all_cap::float8 * r.interval_seconds
                         WHEN 'cron' THEN r.next_run_at <= now() - p_policy.fire_all_cap * interval '1 minute'
                         ELSE false END
                   AS crowded
            FROM nudge.reminders r
           WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
             AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
             -- Targets the worker passes over (a slow host's), read but neither locked nor taken.
             AND (p_pass_over IS NULL OR r.target IS NULL OR NOT r.target LIKE ANY (p_pass_over))
           ORDER BY r.next_run_at
           LIMIT p_limit
             FOR UPDATE OF r SKIP LOCKED) l) m) d;

  -- A flag can turn true in a transaction the stop trigger could not see (a reminder created
  -- concurrently); catching it here keeps "a true flag stops it" without exception.
  IF v_stop IS NOT NULL THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(),
           updated_at = now(), attempt = 0, occurrence_at = NULL, leased_by = NULL,
           lease_expires_at = NULL, lease_lost = false
     WHERE ctid = ANY (v_stop);
  END IF;

  -- Workers that claimed this occurrence as often as it may be attempted all died or timed
  -- out: record it as failed instead of letting it crash workers forever.
  IF v_exhausted IS NOT NULL THEN
    WITH taken AS (
      UPDATE nudge.reminders r SET leased_by = p_worker, lease_expires_at = now(), lease_lost = false
       WHERE ctid = ANY (v_exhausted)
      RETURNING r.id, coalesce(r.occurrence_at, r.next_run_at) AS occurrence, r.attempt)
    SELECT array_agg(id), array_agg(occurrence), array_agg(attempt), count(*)
      INTO v_ids, v_at, v_attempts, v_count FROM taken;
    PERFORM nudge.finish_attempts(
      p_worker, p_policy, v_ids, v_at, v_attempts, array_fill('failed'::text, ARRAY[v_count]),
      array_fill('abandoned: claimed by workers that never finished it'::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]), array_fill(NULL::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]));
  END IF;

  -- Missed under misfire_policy skip: no catch-up fire. The reminder moves to its first
  -- occurrence missed by no more than the threshold (it fires at once: lateness, not an outage)
  -- or else its next future one; the skipped ones are one skipped attempt at the oldest.
  IF v_missed IS NOT NULL THEN
    -- Sub-statements share one snapshot: `missed` sees each row (locked by this claim) before
    -- `skipped` moves it.
    WITH missed AS (
      -- (A row at -infinity, written by hand, has no phase: counted on from now, as before.)
      SELECT r.id, r.next_run_at,
             nudge.occurrence_after(r, CASE WHEN isfinite(r.next_run_at)
                                            THEN now() - p_policy.misfire_threshold_seconds
                                                         * interval '1 second'
                                            ELSE now() END) AS next_at
        FROM nudge.reminders r WHERE r.ctid = ANY (v_missed)
    ), skipped AS (
      UPDATE nudge.reminders r
         SET next_run_at = m.next_at,
             status = CASE WHEN r.ends_at < m.next_at THEN 'COMPLETED' ELSE r.status END,
             completed_reason = CASE WHEN r.ends_at < m.next_at THEN 'ends_at' END,
             finished_at = CASE WHEN r.ends_at < m.next_at THEN now() END,
             catch_up_fires = 0, updated_at = now()
        FROM missed m
       WHERE r.id = m.id
      RETURNING r.id)
    INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
    SELECT m.id, m.next_run_at, 1, 'skipped',
           format('missed by more than %s s (misfire_policy skip), as was every later occurrence '
                  'before %s', p_policy.misfire_threshold_seconds,
                  nudge.rfc3339_in_zone(m.next_at, 'UTC')),
           p_worker
      FROM missed m JOIN skipped s ON s.id = m.id
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING;
  END IF;

  -- A fire_all catch-up keeps the newest fire_all_cap missed occurrences, the ones nearest to
  -- now: the reminder moves to the first one it keeps, and the older ones it drops are recorded
  -- as one skipped attempt at the oldest, saying how many and up to when. The moved rows are
  -- due and taken by this claim: their new versions' ctids join the rest.
  IF v_crowded IS NOT NULL THEN
    WITH crowded AS (
      SELECT r.id, r.ctid AS row_ctid, r.next_run_at, k.first_kept, k.last_dropped, k.dropped
        FROM nudge.reminders r,
             LATERAL nudge.catch_up_kept(r, p_policy.fire_all_cap, least(now(), r.ends_at)) k
       WHERE r.ctid = ANY (v_crowded)
    ), moved AS (
      UPDATE nudge.reminders r SET next_run_at = c.first_kept, updated_at = now()
        FROM crowded c
       WHERE r.id = c.id AND c.first_kept IS NOT NULL
      RETURNING r.id, r.ctid AS row_ctid
    ), recorded AS (
      INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
      SELECT c.id, c.next_run_at, 1, 'skipped',
             format('missed: %s occurrences from %s to %s dropped, over fire_all_cap %s '
                    '(misfire_policy fire_all keeps the newest)', c.dropped,
                    nudge.rfc3339_in_zone(c.next_run_at, 'UTC'),
                    nudge.rfc3339_in_zone(c.last_dropped, 'UTC'), p_policy.fire_all_cap),
             p_worker
        FROM crowded c JOIN moved m ON m.id = c.id
      ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING
    )
    SELECT array_agg(coalesce(m.row_ctid, c.row_ctid)) INTO v_crowded
      FROM crowded c LEFT JOIN moved m ON m.id = c.id;
    v_take := coalesce(v_take, '{}') || v_crowded;
  END IF;

  -- Circuit breakers (0013), only while one is not closed: a row to take whose host's breaker
  -- is open waits for the breaker's next probe, like a retry (its occurrence and attempt kept,
  -- no attempt used), so it does not stay at the head of the due index; once the open time is
  -- over, one of them per host goes out as the probe.
  IF v_take IS NOT NULL
     AND EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.state IN ('open', 'probing')) THEN
    SELECT array_agg(b.row_ctid), array_agg(b.host), array_agg(b.id), array_agg(b.attempt)
      INTO v_blocked, v_hosts, v_blocked_ids, v_used
      FROM (SELECT r.ctid AS row_ctid, r.id, r.attempt,
                   coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) AS host
              FROM nudge.reminders r
             WHERE r.ctid = ANY (v_take) AND r.channel = 'webhook') b
     WHERE EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.host = b.host AND h.state <> 'closed');
  END IF;

  IF v_blocked IS NOT NULL THEN
    -- The probe: for each host whose open time (or whose prober's lease) is over, the row with
    -- the fewest attempts used (a probe is a real attempt: failed probes are spread, not spent
    -- on one reminder), taken with the breaker's row lock; a breaker another claim is changing
    -- right now is skipped, so exactly one probe goes out.
    WITH probe_due AS (
      SELECT h.host, h.state FROM nudge.target_hosts h
       WHERE h.host = ANY (v_hosts) AND h.state <> 'closed' AND h.next_probe_at <= now()
       ORDER BY h.host
         FOR UPDATE SKIP LOCKED
    ), chosen AS (
      SELECT DISTINCT ON (b.host) b.host, b.id, b.row_ctid, p.state AS from_state
        FROM unnest(v_hosts, v_blocked_ids, v_blocked, v_used) AS b(host, id, row_ctid, used)
        JOIN probe_due p ON p.host = b.host
       ORDER BY b.host, b.used, b.id
    ), probing AS (
      UPDATE nudge.target_hosts h
         SET state = 'probing', probe_worker = p_worker, probe_reminder_id = c.id,
             next_probe_at = now() + p_policy.lease_seconds * interval '1 second',
             updated_at = now()
        FROM chosen c
       WHERE h.host = c.host
      RETURNING c.row_ctid, nudge.breaker_change(h, c.from_state, p_worker) AS change)
    SELECT array_agg(p.row_ctid), array_agg(p.change) INTO v_probes, v_changes FROM probing p;
    PERFORM pg_notify('nudge_breaker', n) FROM unnest(v_changes) AS n;

    -- The rest wait for their host's next probe. A breaker another transaction is changing
    -- (a finish closing it) is skipped: its rows are neither taken nor held, and the next
    -- claim sees what it became.
    WITH held_by AS (
      SELECT h.host, h.next_probe_at FROM nudge.target_hosts h
       WHERE h.host = ANY (v_hosts) AND h.state <> 'closed'
       ORDER BY h.host
         FOR SHARE SKIP LOCKED
    )
    UPDATE nudge.reminders r
       SET occurrence_at = coalesce(r.occurrence_at, r.next_run_at), next_run_at = hb.next_probe_at,
           leased_by = NULL, lease_expires_at = NULL,
           -- A rescued row held is still rescued when it goes (explore25a #2).
           lease_lost = coalesce(r.id = ANY (v_rescued), false), updated_at = now()
      FROM unnest(v_blocked, v_hosts, v_blocked_ids) AS b(row_ctid, host, id)
      JOIN held_by hb ON hb.host = b.host
     WHERE r.id = b.id AND b.row_ctid <> ALL (coalesce(v_probes, '{}'));

    v_take := ARRAY(SELECT t FROM unnest(v_take) AS t WHERE t <> ALL (v_blocked))
              || coalesce(v_probes, '{}');
  END IF;

  -- Paced hosts and URLs (0130, 0135), only while one is: a host or URL that answered 429 is
  -- sent at its pace (nudge.pace_at), no request before its next_send_at. A row is paced by its
  -- host when the whole host is paced, else by its URL (nudge.target_url) when that is. The
  -- rows of such a pacer are given send times a pace apart from then, in the order of their
  -- occurrences: a second's worth goes out, the others wait for theirs, or 20 s at most
  -- (occurrence and attempt kept, no attempt used), so its backlog goes out spread instead of
  -- meeting its limit all at once (explore23a #1). A pacer another claim is pacing right now is
  -- skipped: its rows are neither taken nor held.
  IF v_take IS NOT NULL
     AND (EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.paced_until > now())
          OR EXISTS (SELECT 1 FROM nudge.paced_targets t WHERE t.paced_until > now())) THEN
    -- In the order of their occurrences (held rows share their times: by those, a host's
    -- backlog went out by id, one tenant after another: explore24a #4).
    SELECT array_agg(p.row_ctid), array_agg(e.pacer), array_agg(p.id), array_agg(p.due)
      INTO v_paced, v_pacers, v_paced_ids, v_paced_due
      FROM (SELECT r.ctid AS row_ctid, r.id, coalesce(r.occurrence_at, r.next_run_at) AS due,
                   coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) AS host,
                   coalesce(nudge.target_url(r.target), nudge.webhook_url(r)) AS url
              FROM nudge.reminders r
             WHERE r.ctid = ANY (v_take) AND r.channel = 'webhook'
               AND r.ctid <> ALL (coalesce(v_probes, '{}'))) p
     CROSS JOIN LATERAL (
           SELECT CASE WHEN EXISTS (SELECT 1 FROM nudge.target_hosts h
                                     WHERE h.host = p.host AND h.paced_until > now())
                         THEN p.host
                       WHEN EXISTS (SELECT 1 FROM nudge.paced_targets t
                                     WHERE t.url = p.url AND t.paced_until > now())
                         THEN p.url END AS pacer) e
     WHERE e.pacer IS NOT NULL;
  END IF;

  IF v_paced IS NOT NULL THEN
    -- Placing rows is flow control, not a change of the reminders: not in nudge.changes (its
    -- trigger reads this), which logged 366,000 of them against 11,000 fires (explore24a #5).
    PERFORM set_config('nudge.placing', 'on', true);
    WITH paced_hosts AS (
      SELECT h.host AS pacer, greatest(h.next_send_at, now()) AS start,
             nudge.host_pace(h, now()) AS pace
        FROM nudge.target_hosts h
       WHERE h.host = ANY (v_pacers) AND h.paced_until > now()
       ORDER BY h.host
         FOR UPDATE SKIP LOCKED
    ), paced_urls AS (
      SELECT t.url AS pacer, greatest(t.next_send_at, now()) AS start,
             nudge.pace_at(t.pace, t.limited_at, t.paced_until, now()) AS pace
        FROM nudge.paced_targets t
       WHERE t.url = ANY (v_pacers) AND t.paced_until > now()
       ORDER BY t.url
         FOR UPDATE SKIP LOCKED
    ), pacing AS (
      SELECT * FROM paced_hosts UNION ALL SELECT * FROM paced_urls
    ), placed AS (
      SELECT s.*,
             -- A second's worth (whole deliveries, at least one) may go at once: the row goes if
             -- its place, counted from the pacer's next send time, is within it.
             s.k + extract(epoch FROM s.start - now()) * s.pace
               <= greatest(1, floor(s.pace)) - 1 + 1e-9 AS goes
        FROM (SELECT b.row_ctid, b.id, b.pacer, p.start, p.pace,
                     row_number() OVER (PARTITION BY b.pacer ORDER BY b.due, b.id) - 1 AS k
                FROM unnest(v_paced, v_pacers, v_paced_ids, v_paced_due)
                       AS b(row_ctid, pacer, id, due)
                JOIN pacing p ON p.pacer = b.pacer) s
    ), held AS (
      -- At its send time, a pace after the one before; but for 20 s at most (the time the pace
      -- takes to double), then placed again at the pace of then: a backlog placed at the pace of
      -- a 429 would keep it for good, and placed every 10 s, a waiting row was rewritten
      -- 66 to 1,014 times a second (explore24a #5).
      UPDATE nudge.reminders r
         SET occurrence_at = coalesce(r.occurrence_at, r.next_run_at),
             next_run_at = least(pl.start + pl.k / pl.pace * interval '1 second',
                                 now() + interval '20 seconds'),
             leased_by = NULL, lease_expires_at = NULL,
             lease_lost = coalesce(r.id = ANY (v_rescued), false), updated_at = now()
        FROM placed pl
       WHERE r.id = pl.id AND NOT pl.goes
    ), taken AS (
      SELECT pl.pacer, min(pl.start) + count(*) FILTER (WHERE pl.goes) / min(pl.pace)
                                       * interval '1 second' AS next_send_at
        FROM placed pl GROUP BY pl.pacer
    ), sent_hosts AS (
      UPDATE nudge.target_hosts h SET next_send_at = tk.next_send_at, updated_at = now()
        FROM taken tk
       WHERE h.host = tk.pacer
    ), sent_urls AS (
      UPDATE nudge.paced_targets t SET next_send_at = tk.next_send_at, updated_at = now()
        FROM taken tk
       WHERE t.url = tk.pacer
    )
    SELECT array_agg(pl.row_ctid) FILTER (WHERE pl.goes) INTO v_sent FROM placed pl;
    PERFORM set_config('nudge.placing', '', true);
    v_take := ARRAY(SELECT t FROM unnest(v_take) AS t WHERE t <> ALL (v_paced))
              || coalesce(v_sent, '{}');
  END IF;

  IF v_take IS NOT NULL THEN
    RETURN QUERY
      UPDATE nudge.reminders r
         SET leased_by = p_worker,
             lease_expires_at = now() + p_policy.lease_seconds * interval '1 second',
             attempt = r.attempt + 1, lease_lost = false
       WHERE r.ctid = ANY (v_take)
      RETURNING r.id, r.entity_type, r.entity_id, r.event_type, r.channel,
                coalesce(r.target,
                         CASE WHEN r.channel <> 'log' THEN
                           (SELECT c.address FROM nudge.contacts c
                             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
                               AND c.channel = r.channel) END),
                r.payload, r.schedule_type, coalesce(r.occurrence_at, r.next_run_at),
                r.attempt, coalesce(r.max_attempts, p_policy.max_attempts) + r.rate_limited,
                r.fire_count,
                CASE WHEN r.request IS NOT NULL
                     THEN nudge.rendered_request(r, coalesce(r.occurrence_at, r.next_run_at),
                                                 r.attempt) END,
                coalesce(r.id = ANY (v_rescued), false),
                nudge.free_rate_limited_tries() - r.rate_limited;
  END IF;
END $$;

-- Name: FUNCTION claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer, p_email_slots integer, p_pass_over text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer, p_email_slots integer, p_pass_over text[]) IS 'Leases up to p_limit due ACTIVE reminders, earliest first, passing over (neither locking nor taking) those whose target is LIKE any of p_pass_over when given, of which at most p_slots webhooks and emails and at most p_email_slots emails (each when given; log lines take no slot, and the rows past them are left due), to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued, also when a breaker or pace held it since); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts (attempt - rate_limited) were all used by workers that never finished them (recorded as failed), one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt saying up to when; the reminder moves to its first occurrence missed by no more than the threshold, due at once, or else its next future one), nor a webhook to a host whose circuit breaker is not closed (held until the breaker''s next_probe_at, occurrence and attempt kept), except one probe per host whose next_probe_at has passed (the held one with the fewest attempts used), which marks the breaker probing for lease_seconds (notified on nudge_breaker); a fire_all reminder starting a catch-up of more than fire_all_cap missed occurrences (up to ends_at) is returned at the first of the newest fire_all_cap of them (nudge.catch_up_kept), the older ones recorded as one skipped attempt at the oldest saying how many were dropped and from when to when; a webhook to a paced host, else to a paced URL (it answered 429: nudge.record_host_outcomes), goes only at that pace (nudge.pace_at) and no sooner than its next_send_at, a second''s worth at once, the others held (in the order of their occurrences, not logged in nudge.changes) until their send times a pace apart, or for 20 s at most and then placed again (occurrence and attempt kept, no attempt used), and the rows of a paced host or URL another claim is pacing are neither taken nor held; each fire''s max_attempts is the attempt number at which a failure ends its occurrence (its attempts plus the free tries, 429s and unreachable hosts, that used none) and rate_limits_left how many more free tries would use none.';

-- Name: close_breaker(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.close_breaker(p_host text) RETURNS nudge.target_hosts
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row  nudge.target_hosts;
  v_from text;
  v_held timestamptz;
BEGIN
  -- A host key is a URL's scheme, host and port: a 2,048-character URL without a port is
  -- keyed with its default one (explore32d F2: its breaker could not be closed).
  IF p_host IS NULL OR length(p_host) NOT BETWEEN 1 AND 2064 THEN
    PERFORM nudge.reject('host', 'must be a host as GET /v1/targets lists it (https://hooks.example.com:443)');
  END IF;
  -- Locked as a finish locks it, so no finish or claim changes it meanwhile.
  SELECT * INTO v_row FROM nudge.target_hosts h WHERE h.host = p_host FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no circuit breaker for host %: a host has one once a delivery to it failed or was answered 429 (GET /v1/targets)',
      p_host USING ERRCODE = 'NU404';
  END IF;
  IF v_row.state = 'closed' AND v_row.consecutive_failures = 0 AND NOT nudge.is_paced(v_row) THEN
    RETURN v_row;
  END IF;
  v_from := v_row.state;
  v_held := v_row.next_probe_at;
  UPDATE nudge.target_hosts h
     SET state = 'closed', consecutive_failures = 0, last_error = NULL, open_seconds = NULL,
         opened_at = NULL,
         next_probe_at = NULL, probe_worker = NULL, probe_reminder_id = NULL,
         pace = NULL, limited_at = NULL, paced_until = NULL, next_send_at = NULL,
         updated_at = now()
   WHERE h.host = p_host
  RETURNING * INTO v_row;
  DELETE FROM nudge.paced_targets t WHERE t.host = p_host;
  -- What its pace held waits 20 s at most (nudge.claim_due): due now instead, with the retries
  -- due to it meanwhile.
  UPDATE nudge.reminders r
     SET next_run_at = now(), updated_at = now()
   WHERE r.status = 'ACTIVE' AND r.next_run_at > now()
     AND r.next_run_at <= now() + interval '20 seconds'
     AND r.leased_by IS NULL AND r.channel = 'webhook'
     AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = p_host;
  -- What it held waits for its probe time (nudge.record_host_outcomes): due now instead.
  IF v_held IS NOT NULL THEN
    UPDATE nudge.reminders r
       SET next_run_at = now(), updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = p_host;
  END IF;
  IF v_from <> 'closed' THEN
    PERFORM pg_notify('nudge_breaker', nudge.breaker_change(v_row, v_from, NULL));
  END IF;
  IF current_setting('nudge.audit', true) IS DISTINCT FROM 'off' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    VALUES (nullif(current_setting('nudge.actor', true), ''),
            nullif(current_setting('nudge.route', true), ''), 'target', p_host, 'update');
  END IF;
  RETURN v_row;
END $$;

-- Name: FUNCTION close_breaker(p_host text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.close_breaker(p_host text) IS 'Closes the circuit breaker of p_host (a host as nudge.target_hosts keys it) by hand and ends its pacing and its URLs'': state closed, failures and last error cleared, the deliveries it held (waiting for its next probe) due at once, as a probe''s success would, and so are those due to it within the next 20 s (held by its pace, or retries), the host and its URLs no longer paced; the change is notified on nudge_breaker (worker null) and audited (subject_type target) unless the session has nudge.audit = off; a closed breaker without failures of a host not paced, whole or by URL, is returned unchanged; no such host raises NU404, a host empty or over 2064 characters (a 2,048-character URL and its default port) 22023 naming host.';

-- Name: compile_rule(nudge.rules); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.compile_rule(p_rule nudge.rules) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_template jsonb := p_rule.action->'reminder';
  v_fields   jsonb;
  v_seconds  bigint;
  v_out      jsonb;
BEGIN
  v_out := jsonb_build_object('when', coalesce(
    (SELECT string_agg(format('coalesce(%s = %L::jsonb, false)', nudge.placeholder_sql(k), v::text),
                       ' AND ' ORDER BY k)
       FROM jsonb_each(p_rule."when") AS x(k, v)), 'true'));
  CASE p_rule.action->>'type'
    WHEN 'remind' THEN
      -- The first fire's distance from the event: fixed, as numbers hold no placeholders.
      v_seconds := CASE WHEN v_template->>'schedule_type' = 'recurring'
                        THEN coalesce((v_template->>'delay_seconds')::bigint,
                                      (v_template->>'interval_seconds')::bigint,
                                      (v_template->>'interval_minutes')::bigint * 60, 0)
                        ELSE coalesce((v_template->>'delay_seconds')::bigint, 0) END;
      v_fields := v_template - 'payload' - 'delay_seconds' - 'interval_minutes' - 'request'
                  || CASE WHEN v_template ? 'interval_minutes'
                          THEN jsonb_build_object('interval_seconds',
                                 (v_template->>'interval_minutes')::integer * 60)
                          ELSE '{}'::jsonb END;
      RETURN v_out || jsonb_build_object(
        -- A webhook target's values amid its text are URI components (nudge.with_webhook_target).
        'columns', (SELECT coalesce(jsonb_object_agg(f.k, nudge.compile_template(
                             f.v, false,
                             f.k = 'target' AND v_template->>'channel' = 'webhook'
                             AND f.v #>> '{}' !~ '^\s*\{\{[^{}]*\}\}\s*$')), '{}')
                      FROM jsonb_each(v_fields) AS f(k, v)),
        -- The request is copied as it is: its placeholders are the reminder's.
        'request', v_template->'request',
        'payload', CASE WHEN v_template ? 'payload'
                        THEN nudge.compile_template(v_template->'payload', true) END,
        -- From the template's own run_at (nudge.template_time: a value that is no time, or
        -- one out of range, fails the set-wise path, and the events are taken one by one to
        -- name it).
        'run_at', CASE WHEN v_template ? 'run_at'
                       THEN format('nudge.template_time((%s) #>> ''{}'', %s)',
                                   nudge.compile_template(v_template->'run_at', false),
                                   coalesce((v_template->>'delay_seconds')::bigint, 0))
                       ELSE format('e.occurred_at + interval ''1 second'' * %s', v_seconds) END);
    WHEN 'set_flag' THEN
      RETURN v_out || jsonb_build_object(
        'key', nudge.compile_template(p_rule.action->'flag'->'key', false));
    ELSE
      RETURN v_out || jsonb_build_object(
        'event_type', nudge.compile_template(p_rule.action->'cancel'->'event_type', false),
        'entity_type', nudge.compile_template(coalesce(p_rule.action->'cancel'->'entity_type',
                                                        '"{{entity_type}}"'), false),
        'entity_id', nudge.compile_template(coalesce(p_rule.action->'cancel'->'entity_id',
                                                      '"{{entity_id}}"'), false));
  END CASE;
END $_$;

-- Name: FUNCTION compile_rule(p_rule nudge.rules); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.compile_rule(p_rule nudge.rules) IS 'A checked rule''s conditions and action as SQL expressions over a batch row e: when (boolean), and for remind columns (each field of the template as a jsonb expression, a webhook target''s values amid its text as URI components), request (as it is), payload and run_at (from the template''s own run_at by nudge.template_time, which raises a data exception where the event gives no time for it); for set_flag key; for cancel event_type, entity_type and entity_id (JSON strings).';

-- Name: compile_template(jsonb, boolean, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean, p_url boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_rest  text := p_template::text;
  v_parts text[] := '{}';
  v_open  integer;
  v_close integer;
  v_value text;
BEGIN
  -- The same scan as nudge.render_placeholders, run once: saved templates are well formed.
  LOOP
    v_open := position('{{' IN v_rest);
    EXIT WHEN v_open = 0;
    v_close := position('}}' IN substr(v_rest, v_open + 2));
    EXIT WHEN v_close = 0;
    v_value := nudge.placeholder_sql(btrim(substr(v_rest, v_open + 2, v_close - 1)));
    IF left(btrim(substr(v_rest, v_open + 2, v_close - 1)), 7) = 'secret.' THEN
      -- A webhook target kept in a secret: the worker's to fill, as written.
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open + v_close + 2));
      v_rest := substr(v_rest, v_open + v_close + 3);
    ELSIF p_typed AND v_open > 1 AND substr(v_rest, v_open - 1, 1) = '"'
       AND substr(v_rest, v_open + v_close + 3, 1) = '"'
       AND (v_open = 2 OR substr(v_rest, v_open - 2, 1) <> '\') THEN
      -- "{{x}}": the quotes go, the value stays whatever JSON it is.
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open - 2))
                         || format('(%s)::text', v_value);
      v_rest := substr(v_rest, v_open + v_close + 4);
    ELSIF p_url THEN
      -- One URI component, as nudge.with_webhook_target renders it (its %XX are JSON-safe).
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open - 1))
                         || format('nudge.uri_component_encoded(CASE WHEN jsonb_typeof(%1$s) '
                                   '<> ''null'' THEN coalesce((%1$s) #>> ''{}'', (%1$s)::text) END)',
                                   v_value);
      v_rest := substr(v_rest, v_open + v_close + 3);
    ELSE
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open - 1))
                         || format('nudge.json_text(%s)', v_value);
      v_rest := substr(v_rest, v_open + v_close + 3);
    END IF;
  END LOOP;
  RETURN format('(%s)::jsonb', array_to_string(v_parts || quote_literal(v_rest), ' || '));
END $_$;

-- Name: FUNCTION compile_template(p_template jsonb, p_typed boolean, p_url boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean, p_url boolean) IS 'The SQL expression (over a batch row e) that renders a JSON template as nudge.render_template would (with p_url each value amid the text percent-encoded as one URI component, as nudge.with_webhook_target renders a webhook target), {{secret.NAME}} left as written (the worker fills it), NULL where the event lacks a value.';

-- Name: complete_reminders_stopped_by_flags(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.complete_reminders_stopped_by_flags() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_locked   integer;  -- stop flag keys locked, unused
  v_live integer;
BEGIN
  -- A create of a reminder these flags stop, in a transaction still open, is waited for: the
  -- statements below see it (explore26a #1: neither side saw the other, and it stayed ACTIVE).
  v_locked := nudge.lock_stop_flags(ARRAY(SELECT f.key FROM changed_flags f WHERE f.value), true);
  -- The flags' keys as an InitPlan of each statement, as before 0033 (a variable would make both
  -- statements parameterised, planned afresh for their first five runs in every backend). A live
  -- reminder is written as "not ended" so that only reminders_live_by_stop_flag serves (0071).
  -- How many there are, up to 2: several are locked in id order first, as bulk changes and a
  -- worker's finish lock them (in the index's order a flag and a cancel of the same entity's
  -- reminders deadlocked: explore19a #2); one is updated as it is found (the ordered lock cost a
  -- flag 10% more).
  SELECT count(*) INTO v_live FROM (
    SELECT 1 FROM nudge.reminders
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')
     LIMIT 2) l;
  IF v_live = 1 THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');
  ELSIF v_live > 1 THEN
    UPDATE nudge.reminders r
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.stop_condition_type = 'db_check'
                       AND x.stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
                       AND x.status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')
                     ORDER BY x.id
                       FOR UPDATE)
       AND r.status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');
  END IF;
  RETURN NULL;
END $$;

-- Name: FUNCTION complete_reminders_stopped_by_flags(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.complete_reminders_stopped_by_flags() IS 'Trigger: every live reminder stopped by a flag that is true after an insert or update statement is COMPLETED (stop_condition) in the same transaction (several locked in id order; one a transaction still open is creating is waited for, nudge.lock_stop_flags), so none is claimed after it commits; runs as its owner, so a role that may write flags needs no right on reminders.';

-- Name: contacts; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.contacts (
    entity_type text NOT NULL,
    entity_id text NOT NULL,
    channel text NOT NULL,
    address text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT contact_address_fits_channel CHECK ((nudge.address_problem(channel, address) IS NULL)),
    CONSTRAINT contact_channel_is_webhook_or_email CHECK ((channel = ANY (ARRAY['webhook'::text, 'email'::text]))),
    CONSTRAINT contact_entity_id_is_1_to_200_chars CHECK (((length(entity_id) >= 1) AND (length(entity_id) <= 200))),
    CONSTRAINT contact_entity_type_is_1_to_200_chars CHECK (((length(entity_type) >= 1) AND (length(entity_type) <= 200)))
);

-- Name: TABLE contacts; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.contacts IS 'Where reminders without a target are delivered, looked up at every claim so a changed address applies at the next fire.';

-- Name: contact_json(nudge.contacts); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.contact_json(c nudge.contacts) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('entity_type', c.entity_type, 'entity_id', c.entity_id,
                            'channel', c.channel, 'address', nudge.shown_address(c.address),
                            'updated_at', c.updated_at)
$$;

-- Name: FUNCTION contact_json(c nudge.contacts); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.contact_json(c nudge.contacts) IS 'The public JSON form of a contact (a URL''s password as ***, nudge.shown_address).';

-- Name: create_item_fields(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_item_fields() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT ARRAY['entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type', 'run_at',
               'interval_seconds', 'interval_minutes', 'target', 'payload',
               'stop_condition_type', 'stop_condition_value', 'max_fires', 'ends_at', 'cron',
               'timezone', 'misfire_policy', 'max_attempts', 'request', 'rule_id', 'event_id']
$$;

-- Name: FUNCTION create_item_fields(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_item_fields() IS 'The keys an item of nudge.create_reminders may hold: the parameters of nudge.create_reminder without p_, interval_minutes, rule_id and event_id.';

-- Name: create_reminder(text, text, text, text, text, timestamp with time zone, integer, text, jsonb, text, text, integer, timestamp with time zone, text, text, text, integer, jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_target text DEFAULT NULL::text, p_payload jsonb DEFAULT '{}'::jsonb, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_misfire_policy text DEFAULT NULL::text, p_max_attempts integer DEFAULT NULL::integer, p_request jsonb DEFAULT NULL::jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_locked   integer;  -- stop flag keys locked, unused
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
  IF strpos(p_target, '{{') > 0 AND nudge.secret_address_name(p_target) IS NULL THEN
    PERFORM nudge.reject('target', 'a reminder''s target is not a template; rules render {{...}} '
                                   'in theirs');
  END IF;
  IF nudge.unknown_secret_problem(p_target) IS NOT NULL THEN
    PERFORM nudge.reject('target', nudge.unknown_secret_problem(p_target));
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
    IF p_interval_seconds IS NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is required for recurring');
    END IF;
    IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
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
  IF v_run_at IS NULL THEN  -- (only a cron schedule can have none: nudge.cron_next)
    PERFORM nudge.reject('cron', nudge.cron_horizon_problem());
  END IF;
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
  -- Checked before a live reminder of the same identity can be answered, so a bad request is
  -- refused whatever exists (the trigger reminder_request_is_checked checks it again as the row
  -- is written, for plain SQL).
  IF nullif(p_request, 'null'::jsonb) IS NOT NULL THEN  -- (JSON null: no request, as stored)
    PERFORM nudge.check_request(p_request, p_channel, p_payload);
  END IF;

  IF p_stop_condition_type = 'db_check' THEN
    v_locked := nudge.lock_stop_flags(ARRAY[p_stop_condition_value], false);
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

-- Name: FUNCTION create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_target text, p_payload jsonb, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone, p_cron text, p_timezone text, p_misfire_policy text, p_max_attempts integer, p_request jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_target text, p_payload jsonb, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone, p_cron text, p_timezone text, p_misfire_policy text, p_max_attempts integer, p_request jsonb) IS 'Creates a one_time, recurring or cron reminder (a webhook one optionally with its own request, nudge.check_request; a log one without a target), or returns the live (ACTIVE or PAUSED) one with the same (entity_type, entity_id, event_type) with created = false, even under concurrent identical calls (under REPEATABLE READ or SERIALIZABLE the later of two raises 40001, to be retried); bad input (a name or stop flag key empty, over 200 characters or only white space, a target a log reminder cannot have or one holding {{ (a target is not a template) other than a webhook''s {{secret.NAME}} alone, or naming a secret the calling nudge-api does not have (nudge.unknown_secret_problem), a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included, or a first fire after it, a payload over 64 KiB as stored, ...) raises 22023 naming the field and writes nothing; a reminder whose stop flag is already true is created COMPLETED and never fires, one set true by a transaction still open is waited for (nudge.lock_stop_flags).';

-- Name: create_reminder_from_item(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_reminder_from_item(p_item jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_minutes integer := (p_item->>'interval_minutes')::integer;
BEGIN
  -- As the REST API reads it: times with their offsets (a rule's ends_at filled from an event's
  -- data is checked here), so no session's zone decides what they mean.
  IF NOT coalesce(nudge.is_rfc3339(p_item->>'run_at'), true) THEN
    PERFORM nudge.reject('run_at', 'must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z');
  END IF;
  IF NOT coalesce(nudge.is_rfc3339(p_item->>'ends_at'), true) THEN
    PERFORM nudge.reject('ends_at', 'must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z');
  END IF;
  IF v_minutes IS NOT NULL THEN
    IF p_item->>'interval_seconds' IS NOT NULL THEN
      PERFORM nudge.reject('interval_minutes',
                           'give interval_seconds or interval_minutes, not both');
    ELSIF p_item->>'schedule_type' = 'one_time' THEN
      PERFORM nudge.reject('interval_minutes', 'is only for recurring reminders');
    ELSIF p_item->>'schedule_type' = 'cron' THEN
      PERFORM nudge.reject('interval_minutes', 'is not for cron reminders');
    ELSIF v_minutes NOT BETWEEN 1 AND 527040 THEN
      PERFORM nudge.reject('interval_minutes', 'must be 1 to 527040 (366 days)');
    END IF;
  END IF;
  RETURN QUERY
  SELECT c.created, c.reminder
    FROM nudge.create_reminder(
           p_entity_type => p_item->>'entity_type',
           p_entity_id => p_item->>'entity_id',
           p_event_type => p_item->>'event_type',
           p_channel => p_item->>'channel',
           p_schedule_type => p_item->>'schedule_type',
           p_run_at => (p_item->>'run_at')::timestamptz,
           p_interval_seconds => coalesce((p_item->>'interval_seconds')::integer, v_minutes * 60),
           p_target => p_item->>'target',
           p_payload => coalesce(nullif(p_item->'payload', 'null'::jsonb), '{}'::jsonb),
           p_stop_condition_type => p_item->>'stop_condition_type',
           p_stop_condition_value => p_item->>'stop_condition_value',
           p_max_fires => (p_item->>'max_fires')::integer,
           p_ends_at => (p_item->>'ends_at')::timestamptz,
           p_cron => p_item->>'cron',
           p_timezone => p_item->>'timezone',
           p_misfire_policy => p_item->>'misfire_policy',
           p_max_attempts => (p_item->>'max_attempts')::integer,
           p_request => nullif(p_item->'request', 'null'::jsonb)) c;
END $$;

-- Name: FUNCTION create_reminder_from_item(p_item jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_reminder_from_item(p_item jsonb) IS 'nudge.create_reminder with its arguments taken from a JSON object whose fields are its parameter names without the p_ prefix, or interval_minutes (1 to 527040, recurring only, not with interval_seconds: 22023 naming it otherwise) in place of interval_seconds, and run_at and ends_at as RFC 3339 text with an offset (22023 naming the field otherwise); the same answer and errors. Other keys are not looked at.';

-- Name: create_reminders(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_reminders(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
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
           coalesce(nullif(e.v->'payload', 'null'::jsonb), '{}'::jsonb), e.v->>'stop_condition_type',
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
  -- Each staged reminder by its id (OFFSET 0 keeps the lookup a lookup: as a join it could be
  -- planned, on a small table, as a merge join walking the whole primary key).
  RETURN QUERY
    SELECT b.item, b.created, x.r
      FROM pg_temp.nudge_new_reminder b
     CROSS JOIN LATERAL (SELECT r FROM nudge.reminders r WHERE r.id = b.id OFFSET 0) x
     ORDER BY b.item;
END $$;

-- Name: FUNCTION create_reminders(p_items jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_reminders(p_items jsonb) IS 'Creates (or finds) every item of p_items (JSON objects with the fields of nudge.create_reminder, without the p_ prefix, or interval_minutes for interval_seconds, plus rule_id and event_id for reminders rules create) in one transaction, one row per item with the reminder (a nudge.reminders row, as nudge.create_reminder answers), exactly as nudge.create_reminders_one_by_one would (an item that is not an object, an unknown key, a value of the wrong JSON type or a time that is not RFC 3339 with an offset raises 22023 naming items[<index>] or items[<index>].<field>), with one set-based INSERT when every item is plainly valid, new and distinct.';

-- Name: create_reminders_one_by_one(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_reminders_one_by_one(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder nudge.reminders)
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
        SELECT v_index, c.created, c.reminder
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

-- Name: FUNCTION create_reminders_one_by_one(p_items jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_reminders_one_by_one(p_items jsonb) IS 'Creates (or finds) every item of p_items with nudge.create_reminder_from_item, in order, in one transaction, one row per item with the reminder (a nudge.reminders row); if any item is not a JSON object ("items[<index>]: must be a JSON object"), holds a key nudge.create_item_fields does not name, a value nudge.item_value_problem refuses (a wrong JSON type, a time that is not RFC 3339 with an offset, a fraction) or a time PostgreSQL cannot read, or is rejected, nothing is created and the 22023 error names it: "items[<index>].<field>: <problem>".';

-- Name: create_rule(text, text, jsonb, jsonb, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_rule(p_name text, p_event_type text, p_action jsonb, p_when jsonb DEFAULT '{}'::jsonb, p_enabled boolean DEFAULT true) RETURNS nudge.rules
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  INSERT INTO nudge.rules (name, event_type, action, "when", enabled)
  VALUES (p_name, p_event_type, p_action, coalesce(p_when, '{}'::jsonb), coalesce(p_enabled, true))
  RETURNING *
$$;

-- Name: FUNCTION create_rule(p_name text, p_event_type text, p_action jsonb, p_when jsonb, p_enabled boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_rule(p_name text, p_event_type text, p_action jsonb, p_when jsonb, p_enabled boolean) IS 'Saves a new rule (enabled unless p_enabled is false) after nudge.check_rule; 22023 naming the field otherwise.';

-- Name: create_staged_reminders(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_staged_reminders() RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM nudge.lock_stop_flags(ARRAY(SELECT DISTINCT b.stop_condition_value
                                        FROM pg_temp.nudge_new_reminder b
                                       WHERE b.stop_condition_value IS NOT NULL), false);
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
                 OR (strpos(b.target, '{{') > 0 AND nudge.unknown_secret_problem(b.target) IS NOT NULL)
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

-- Name: FUNCTION create_staged_reminders(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_staged_reminders() IS 'Creates (or finds, by identity) the reminders staged in pg_temp.nudge_new_reminder with one set-based INSERT and sets each row''s id and created; false when a row is not plainly valid, new and distinct (its stop flag already true, or set true by a transaction still open, which is waited for: nudge.lock_stop_flags, two rows of one identity, a name or stop flag key of only white space, a log reminder''s target, a secret the calling nudge-api does not have, a first fire or ends_at nudge.time_problem refuses, a bound the create function checks: nothing is written) or was neither inserted nor found live (a concurrent create), so the caller takes the item-by-item path; a value a constraint refuses raises its error.';

-- Name: api_tokens; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.api_tokens (
    name text NOT NULL,
    token_hash bytea NOT NULL,
    scopes text[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_token_hash_is_a_sha256 CHECK ((length(token_hash) = 32)),
    CONSTRAINT api_token_name_is_a_word_of_1_to_100_chars CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'::text)),
    CONSTRAINT api_token_scopes_are_read_write_admin_or_metrics CHECK (((cardinality(scopes) > 0) AND (scopes <@ ARRAY['read'::text, 'write'::text, 'admin'::text, 'metrics'::text])))
);

-- Name: TABLE api_tokens; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.api_tokens IS 'Tokens of the REST API, stored as SHA-256 hashes with their scopes; a revoked token keeps its row and its name.';

-- Name: create_token(text, bytea, text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.create_token(p_name text, p_token_hash bytea, p_scopes text[]) RETURNS nudge.api_tokens
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE v_token nudge.api_tokens;
BEGIN
  IF p_name IS NULL OR p_name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' THEN
    PERFORM nudge.reject('name', 'must be 1 to 100 letters, digits, dots, dashes or underscores, '
                                 'beginning with a letter or digit');
  END IF;
  IF p_token_hash IS NULL OR length(p_token_hash) <> 32 THEN
    PERFORM nudge.reject('token_hash', 'must be the 32 bytes of a SHA-256');
  END IF;
  IF coalesce(cardinality(p_scopes), 0) = 0
     OR NOT p_scopes <@ ARRAY['read', 'write', 'admin', 'metrics'] THEN
    PERFORM nudge.reject('scopes', 'must be one or more of read, write, admin, metrics');
  END IF;
  INSERT INTO nudge.api_tokens AS t (name, token_hash, scopes)
  VALUES (p_name, p_token_hash,
          ARRAY(SELECT s FROM unnest(ARRAY['read', 'write', 'admin', 'metrics']) s
                 WHERE s = ANY (p_scopes)))
  ON CONFLICT (name) DO NOTHING
  RETURNING t.* INTO v_token;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'a token named % exists already (a revoked token keeps its name)', p_name
      USING ERRCODE = 'NU409';
  END IF;
  RETURN v_token;
END $_$;

-- Name: FUNCTION create_token(p_name text, p_token_hash bytea, p_scopes text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.create_token(p_name text, p_token_hash bytea, p_scopes text[]) IS 'Stores a new token by its SHA-256 with its scopes (in the order read, write, admin, metrics) and returns it; 22023 naming name, token_hash or scopes for bad input, NU409 when the name is taken, revoked or not.';

-- Name: cron_bits(bigint, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_bits(p_mask bigint, p_width integer) RETURNS integer[]
    LANGUAGE sql IMMUTABLE
    AS $$
  -- Bit i of the mask is character i + 1 of the reversed bit string: bit 0 is taken apart, the
  -- rest found at their own positions once the first character is dropped.
  SELECT CASE WHEN p_mask & 1 <> 0 THEN ARRAY[0] ELSE '{}'::integer[] END
         || array_positions(string_to_array(substr(reverse(p_mask::bit(64)::text), 2, p_width - 1),
                                            NULL), '1')
$$;

-- Name: FUNCTION cron_bits(p_mask bigint, p_width integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_bits(p_mask bigint, p_width integer) IS 'The numbers of the bits set among the lowest p_width bits of p_mask, in ascending order.';

-- Name: cron_day_count(nudge.cron, date, date); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_day_count(p_cron nudge.cron, p_from date, p_through date) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$
  WITH c AS (SELECT (p_through - p_from + 1) / 146097 AS cycles)
  SELECT CASE WHEN c.cycles > 0
              THEN c.cycles * (SELECT count(*) FROM nudge.cron_days(p_cron, p_from, p_from + 146096))
              ELSE 0 END
         + (SELECT count(*) FROM nudge.cron_days(p_cron, p_from + c.cycles * 146097, p_through))
    FROM c
$$;

-- Name: FUNCTION cron_day_count(p_cron nudge.cron, p_from date, p_through date); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_day_count(p_cron nudge.cron, p_from date, p_through date) IS 'How many days from p_from through p_through p_cron fires on (nudge.cron_day_matches), counting whole 400-year Gregorian cycles once.';

-- Name: cron_day_instants(nudge.reminders, date, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_day_instants(r nudge.reminders, p_day date, p_from timestamp with time zone, p_through timestamp with time zone) RETURNS timestamp with time zone[]
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_start timestamptz := p_day::timestamp AT TIME ZONE r.timezone;
  v_end   timestamptz := (p_day + 1)::timestamp AT TIME ZONE r.timezone;
  v_at    timestamptz;
  v_out   timestamptz[] := '{}';
BEGIN
  IF NOT nudge.cron_day_matches(r.cron_schedule, p_day) THEN RETURN v_out; END IF;
  IF NOT nudge.is_clock_change_day(p_day, r.timezone) THEN
    -- Each local time is one instant.
    RETURN ARRAY(SELECT i FROM (SELECT (p_day + make_interval(hours => h, mins => m)) AT TIME ZONE r.timezone AS i
                                  FROM unnest(nudge.cron_bits((r.cron_schedule).hours, 24)) h,
                                       unnest(nudge.cron_bits((r.cron_schedule).minutes, 60)) m) t
                  WHERE i BETWEEN p_from AND p_through ORDER BY i);
  END IF;
  -- As the claim fires them: a gap's times once, a repeated hour once or twice (nudge.cron_next).
  v_at := nudge.cron_next(r.cron_schedule, r.timezone, greatest(v_start, p_from) - interval '1 microsecond');
  WHILE v_at IS NOT NULL AND v_at < v_end AND v_at <= p_through LOOP
    v_out := v_out || v_at;
    v_at := nudge.cron_next(r.cron_schedule, r.timezone, v_at);
  END LOOP;
  RETURN v_out;
END $$;

-- Name: FUNCTION cron_day_instants(r nudge.reminders, p_day date, p_from timestamp with time zone, p_through timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_day_instants(r nudge.reminders, p_day date, p_from timestamp with time zone, p_through timestamp with time zone) IS 'The occurrences of cron reminder r on local day p_day of its zone from p_from through p_through, earliest first, exactly as nudge.cron_next fires them (on a day whose offset changes, walked with it).';

-- Name: cron_day_matches(nudge.cron, date); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_day_matches(p_cron nudge.cron, p_day date) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
  -- (date_part, a double, costs a third of extract, a numeric, per day)
  SELECT p_cron.months & (1 << date_part('month', p_day)::integer) <> 0
         AND CASE WHEN p_cron.dom_star OR p_cron.dow_star
                  THEN (p_cron.days & (1::bigint << date_part('day', p_day)::integer) <> 0
                        OR (p_cron.days & 1 <> 0 AND date_part('day', p_day + 1) = 1))
                       AND p_cron.weekdays & (1 << date_part('dow', p_day)::integer) <> 0
                  ELSE p_cron.days & (1::bigint << date_part('day', p_day)::integer) <> 0
                       OR (p_cron.days & 1 <> 0 AND date_part('day', p_day + 1) = 1)
                       OR p_cron.weekdays & (1 << date_part('dow', p_day)::integer) <> 0 END
$$;

-- Name: FUNCTION cron_day_matches(p_cron nudge.cron, p_day date); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_day_matches(p_cron nudge.cron, p_day date) IS 'Whether p_day is a day of p_cron: its month matches, and its day-of-month (L: the last day) and its day-of-week both do, or either one when both fields are restricted (classic cron).';

-- Name: cron_days(nudge.cron, date, date); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_days(p_cron nudge.cron, p_from date, p_through date) RETURNS SETOF date
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT d.d
    FROM (SELECT mo.mo::date AS mo
            FROM generate_series(date_trunc('month', p_from::timestamp),
                                 date_trunc('month', p_through::timestamp), interval '1 month') mo(mo)
           WHERE p_cron.months & (1 << date_part('month', mo.mo)::integer) <> 0) m,
         LATERAL (SELECT m.mo + i AS d FROM generate_series(0, 30) i) d
   WHERE d.d BETWEEN p_from AND p_through
     AND date_part('month', d.d) = date_part('month', m.mo)
     AND nudge.cron_day_matches(p_cron, d.d)
$$;

-- Name: FUNCTION cron_days(p_cron nudge.cron, p_from date, p_through date); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_days(p_cron nudge.cron, p_from date, p_through date) IS 'The days from p_from through p_through on which p_cron fires (nudge.cron_day_matches), in no particular order.';

-- Name: cron_field(text, text, integer, integer, text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_field(p_text text, p_field text, p_min integer, p_max integer, p_names text[] DEFAULT NULL::text[]) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
  v_mask  bigint := 0;
  v_part  text;
  v_range text;
  v_step  integer;
  v_lo    integer;
  v_hi    integer;
  v_bits  text[];
  v_i     integer;
BEGIN
  IF p_text IS NULL OR p_text = '' THEN
    RAISE EXCEPTION 'cron: %: is empty', p_field USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  FOREACH v_part IN ARRAY string_to_array(p_text, ',') LOOP
    IF v_part = '' THEN
      RAISE EXCEPTION 'cron: %: empty list item in "%"', p_field, p_text
        USING ERRCODE = '22023', COLUMN = 'cron';
    END IF;
    -- The last day of the month, whichever number it has: bit 0.
    IF p_field = 'day-of-month' AND upper(v_part) = 'L' THEN
      v_mask := v_mask | 1;
      CONTINUE;
    END IF;
    v_step := 1;
    v_range := v_part;
    IF position('/' IN v_part) > 0 THEN
      v_range := split_part(v_part, '/', 1);
      IF split_part(v_part, '/', 2) !~ '^[0-9]{1,3}$' OR split_part(v_part, '/', 3) <> '' THEN
        RAISE EXCEPTION 'cron: %: bad step in "%"', p_field, v_part
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
      v_step := split_part(v_part, '/', 2)::integer;
      IF v_step < 1 OR v_step > p_max THEN
        RAISE EXCEPTION 'cron: %: step % is out of range 1-%', p_field, v_step, p_max
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
    END IF;
    IF v_range = '*' THEN
      v_lo := p_min;
      v_hi := p_max;
    ELSE
      v_bits := string_to_array(v_range, '-');
      IF cardinality(v_bits) > 2 OR '' = ANY (v_bits) THEN  -- "-1" is no number: a bad range
        RAISE EXCEPTION 'cron: %: bad range "%"', p_field, v_range
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
      v_lo := nudge.cron_value(v_bits[1], p_field, p_min, p_max, p_names);
      -- "n/step" means n, n+step, ... up to the maximum, as in the classic cron: "0/1" too.
      v_hi := CASE WHEN cardinality(v_bits) = 2
                   THEN nudge.cron_value(v_bits[2], p_field, p_min, p_max, p_names)
                   WHEN position('/' IN v_part) > 0 THEN p_max ELSE v_lo END;
      IF v_hi < v_lo THEN
        RAISE EXCEPTION 'cron: %: range "%" runs backwards', p_field, v_range
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
    END IF;
    v_i := v_lo;
    WHILE v_i <= v_hi LOOP
      v_mask := v_mask | (1::bigint << v_i);
      v_i := v_i + v_step;
    END LOOP;
  END LOOP;
  RETURN v_mask;
END $_$;

-- Name: FUNCTION cron_field(p_text text, p_field text, p_min integer, p_max integer, p_names text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_field(p_text text, p_field text, p_min integer, p_max integer, p_names text[]) IS 'The bit mask of one cron field (a list of *, n or a-b, each with an optional /step (n/step: from n up to the maximum), names where p_names is given, and L for the last day in the day-of-month field, as bit 0), or 22023 with COLUMN = cron and a message naming the field.';

-- Name: cron_horizon_problem(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_horizon_problem() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT 'has no occurrence (its days never come in the 400-year cycle of the calendar)'::text
$$;

-- Name: FUNCTION cron_horizon_problem(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_horizon_problem() IS 'Why a cron schedule is refused when nudge.cron_next finds no occurrence, which no schedule nudge.cron_parse takes lacks.';

-- Name: cron_next(nudge.cron, text, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_next(p_cron nudge.cron, p_tz text, p_after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  v_now    timestamp := p_after AT TIME ZONE p_tz;  -- p_after on the zone's clock
  v_start  timestamp := date_trunc('minute', v_now);
  -- How far the clock falls back within two hours of p_after (zero or less: it does not).
  v_back   interval := (v_now - (p_after AT TIME ZONE 'UTC'))
                       - nudge.utc_offset(p_after + interval '2 hours', p_tz);
  v_day    date;
  v_end    date;
  v_dom    boolean;
  v_dow    boolean;
  v_hour   integer;
  v_min    integer;
  v_local  timestamp;
  v_ats    timestamptz[];
  v_second timestamptz;  -- the earliest second-pass instant after p_after met so far
  v_found  date;         -- beyond the walk: the first day that matches
BEGIN
  -- Inside the first pass (p_after + v_back shows the same local time), the second pass of the
  -- repeated stretch is still ahead although its local times are earlier: start that much
  -- earlier. Elsewhere start at p_after's own minute, so frequent schedules test a candidate or
  -- two.
  IF v_back > interval '0' AND (p_after + v_back) AT TIME ZONE p_tz = v_now THEN
    v_start := v_start - v_back;
  END IF;
  v_day := v_start::date;
  v_end := v_day + 366 * 8 + 2;
  WHILE v_day <= v_end LOOP
    IF p_cron.months & (1 << extract(month FROM v_day)::integer) = 0 THEN
      v_day := (date_trunc('month', v_day::timestamp) + interval '1 month')::date;  -- skip the month
      CONTINUE;
    END IF;
    -- L (bit 0) matches the day whose next day is the 1st.
    v_dom := p_cron.days & (1::bigint << extract(day FROM v_day)::integer) <> 0
             OR (p_cron.days & 1 <> 0 AND extract(day FROM v_day + 1) = 1);
    v_dow := p_cron.weekdays & (1 << extract(dow FROM v_day)::integer) <> 0;
    -- Classic cron: when both day fields are restricted, either one matching is enough.
    v_dom := CASE WHEN p_cron.dom_star OR p_cron.dow_star THEN v_dom AND v_dow ELSE v_dom OR v_dow END;
    IF v_dom THEN
      FOR v_hour IN 0..23 LOOP
        CONTINUE WHEN p_cron.hours & (1 << v_hour) = 0;
        CONTINUE WHEN v_day + make_interval(hours => v_hour + 1) <= v_start;
        FOR v_min IN 0..59 LOOP
          CONTINUE WHEN p_cron.minutes & (1::bigint << v_min) = 0;
          v_local := v_day + make_interval(hours => v_hour, mins => v_min);
          CONTINUE WHEN v_local < v_start;
          v_ats := nudge.local_instants(v_local, p_tz);
          -- First instants rise with local time, and a second-pass instant comes after every
          -- first-pass one and before anything beyond the overlap.
          IF v_ats[1] > p_after THEN
            RETURN least(v_ats[1], v_second);
          END IF;
          -- A repeated local time fires once, the first time, unless the hour field begins
          -- with '*': then its second instant fires too, after the rest of the first pass.
          -- Keep the earliest such instant after p_after until the walk leaves the first pass.
          IF p_cron.hour_star AND v_second IS NULL AND v_ats[2] > p_after THEN
            v_second := v_ats[2];
            -- The overlap ends within its own length of this local time, and nothing after
            -- it comes earlier: the walk need not go past that day.
            v_end := (v_local + (v_ats[2] - v_ats[1]))::date;
            -- The rest of the first pass up to p_after has only later second instants.
            v_start := date_trunc('minute', v_now);
          END IF;
        END LOOP;
      END LOOP;
    END IF;
    v_day := v_day + 1;
  END LOOP;
  IF v_second IS NOT NULL THEN
    RETURN v_second;
  END IF;
  -- Nothing within 8 years: only a day-of-month and a day-of-week that must both match do that
  -- (29 February on a Sunday comes 28 or 40 years apart). The calendar repeats every 400 years
  -- (146,097 days, whole weeks), so such a day comes within 400 years of any other or never:
  -- look for it a decade at a time among the chosen months' days, then take its first time
  -- from the walk above started the day before (on which none falls).
  v_day := v_end + 1;
  WHILE v_day <= v_end + 146097 LOOP
    SELECT min(d.d) INTO v_found FROM nudge.cron_days(p_cron, v_day, v_day + 3652) d(d);
    IF v_found IS NOT NULL THEN
      RETURN nudge.cron_next(p_cron, p_tz, (v_found - 1)::timestamp AT TIME ZONE p_tz);
    END IF;
    v_day := v_day + 3653;
  END LOOP;
  RETURN NULL;
END $$;

-- Name: FUNCTION cron_next(p_cron nudge.cron, p_tz text, p_after timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_next(p_cron nudge.cron, p_tz text, p_after timestamp with time zone) IS 'The first fire of p_cron strictly after p_after in zone p_tz, under the classic cron daemon''s daylight-saving rules: a local time in a gap fires at the first instant after the gap; a repeated local time fires once, at its first instant, or at both when the hour field begins with *, so the whole first pass fires, then the whole second pass. However far away it is (29 February on a Sunday: decades): NULL only for a schedule with no day at all in the 400-year Gregorian cycle, which nudge.cron_parse refuses.';

-- Name: cron_parse(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_parse(p_expr text) RETURNS nudge.cron
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
  -- White space around it is not a field: a pasted line's newline, a \v or \f, a web page's
  -- no-break space (U+00A0) or NEL (U+0085) too.
  v_expr   text := regexp_replace(coalesce(p_expr, ''),
                                  E'^[\\s\u00a0\u0085]+|[\\s\u00a0\u0085]+$', '', 'g');
  v_fields text[];
  v_cron   nudge.cron;
  v_dow    bigint;
BEGIN
  v_expr := CASE lower(v_expr)
              WHEN '@hourly' THEN '0 * * * *'
              WHEN '@daily' THEN '0 0 * * *'
              WHEN '@midnight' THEN '0 0 * * *'
              WHEN '@weekly' THEN '0 0 * * 0'
              WHEN '@monthly' THEN '0 0 1 * *'
              WHEN '@yearly' THEN '0 0 1 1 *'
              WHEN '@annually' THEN '0 0 1 1 *'
              ELSE v_expr END;
  IF v_expr LIKE '@%' THEN
    RAISE EXCEPTION 'cron: unknown macro "%"', v_expr USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  v_fields := regexp_split_to_array(v_expr, '\s+');
  IF v_expr = '' OR cardinality(v_fields) <> 5 THEN
    RAISE EXCEPTION 'cron: needs 5 fields (minute hour day-of-month month day-of-week), got %',
      CASE WHEN v_expr = '' THEN 0 ELSE cardinality(v_fields) END
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  v_cron.minutes := nudge.cron_field(v_fields[1], 'minute', 0, 59);
  v_cron.hours := nudge.cron_field(v_fields[2], 'hour', 0, 23);
  v_cron.days := nudge.cron_field(v_fields[3], 'day-of-month', 1, 31);
  v_cron.months := nudge.cron_field(v_fields[4], 'month', 1, 12,
    ARRAY['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']);
  v_dow := nudge.cron_field(v_fields[5], 'day-of-week', 0, 7,
    ARRAY['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']);
  v_cron.weekdays := ((v_dow | (v_dow >> 7)) & 127)::integer;  -- 7 is Sunday too
  v_cron.dom_star := v_fields[3] LIKE '*%';
  v_cron.dow_star := v_fields[5] LIKE '*%';
  v_cron.hour_star := v_fields[2] LIKE '*%';
  -- With the weekday unrestricted, the days must exist in at least one chosen month (every
  -- month has a last day).
  IF v_cron.dow_star AND NOT v_cron.dom_star AND v_cron.days & 1 = 0 AND NOT EXISTS (
       SELECT 1 FROM generate_series(1, 12) m, generate_series(1, 31) d
        WHERE v_cron.months & (1 << m) <> 0 AND v_cron.days & (1::bigint << d) <> 0
          AND d <= CASE WHEN m = 2 THEN 29 WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END) THEN
    RAISE EXCEPTION 'cron: day-of-month: no chosen day exists in the chosen months'
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  RETURN v_cron;
END $_$;

-- Name: FUNCTION cron_parse(p_expr text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_parse(p_expr text) IS 'The parsed form of a five-field cron expression (minute hour day-of-month month day-of-week; lists, ranges, steps, JAN-DEC, SUN-SAT, 7 as Sunday, L as the last day of the month) or of a macro (@hourly @daily @midnight @weekly @monthly @yearly @annually); 22023 with COLUMN = cron naming the wrong field otherwise, including day/month pairs that never happen (30 February).';

-- Name: cron_times_between(integer[], integer[], date, timestamp without time zone, timestamp without time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_times_between(p_hours integer[], p_mins integer[], p_day date, p_lo timestamp without time zone, p_hi timestamp without time zone) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT CASE WHEN p_day > p_lo::date AND p_day < p_hi::date
              THEN cardinality(p_hours)::bigint * cardinality(p_mins)
              ELSE (SELECT count(*) FROM unnest(p_hours) h, unnest(p_mins) m
                     WHERE p_day + make_interval(hours => h, mins => m) BETWEEN p_lo AND p_hi) END
$$;

-- Name: FUNCTION cron_times_between(p_hours integer[], p_mins integer[], p_day date, p_lo timestamp without time zone, p_hi timestamp without time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_times_between(p_hours integer[], p_mins integer[], p_day date, p_lo timestamp without time zone, p_hi timestamp without time zone) IS 'How many of the local times p_hours x p_mins of day p_day fall from p_lo through p_hi.';

-- Name: cron_value(text, text, integer, integer, text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_value(p_text text, p_field text, p_min integer, p_max integer, p_names text[]) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
  v_value integer;
BEGIN
  IF p_text ~ '^[0-9]{1,4}$' THEN
    v_value := p_text::integer;
  ELSIF p_names IS NOT NULL AND upper(p_text) = ANY (p_names) THEN
    v_value := array_position(p_names, upper(p_text)) - 1 + p_min;
  ELSE
    RAISE EXCEPTION 'cron: %: "%" is not a number%', p_field, p_text,
      CASE WHEN p_names IS NULL THEN '' ELSE ' or a name' END
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  IF v_value < p_min OR v_value > p_max THEN
    RAISE EXCEPTION 'cron: %: % is out of range %-%', p_field, v_value, p_min, p_max
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  RETURN v_value;
END $_$;

-- Name: FUNCTION cron_value(p_text text, p_field text, p_min integer, p_max integer, p_names text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_value(p_text text, p_field text, p_min integer, p_max integer, p_names text[]) IS 'One value of a cron field (a number, or a name from p_names, case-insensitive) within p_min..p_max; 22023 naming the field otherwise.';

-- Name: cron_words(nudge.cron, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.cron_words(p_cron nudge.cron, p_expr text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
-- No queries and few statements: this runs for every cron reminder a list shows.
DECLARE
  c_days   constant text[] := ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday',
                                    'friday', 'saturday'];
  c_months constant text[] := ARRAY['january', 'february', 'march', 'april', 'may', 'june',
                                    'july', 'august', 'september', 'october', 'november',
                                    'december'];
  c_fallback constant text := 'cron "' || replace(replace(p_expr, '\', '\\'), '"', '\"') || '"';
  v_mins   integer[] := '{}';
  v_hours  integer[] := '{}';
  v_doms   integer[];
  v_items  text[] := '{}';
  v_months text;
  v_days   text;
  v_time   text;
  v_step   integer;
  v_n      integer;
  v_i      integer;
  v_j      integer;
BEGIN
  v_mins := nudge.cron_bits(p_cron.minutes, 60);
  v_hours := nudge.cron_bits(p_cron.hours, 24);
  IF p_cron.months <> 8190 THEN  -- not every month (bits 1..12)
    FOR v_i IN 1..12 LOOP
      IF p_cron.months & (1 << v_i) <> 0 THEN v_items := v_items || c_months[v_i]; END IF;
    END LOOP;
    v_months := nudge.words_list(v_items);
  END IF;

  -- The days: every day, some days of the week, or some days of the month (with both day
  -- fields restricted, cron fires on either: only the expression says that clearly).
  -- Every day of the week is every day: with the day-of-month * (ANDed) or restricted (ORed).
  IF p_cron.weekdays = 127
     AND ((p_cron.dom_star AND p_cron.days = 4294967294) OR NOT (p_cron.dom_star OR p_cron.dow_star)) THEN
    v_days := 'every day' || coalesce(' in ' || v_months, '');
  ELSIF p_cron.dom_star AND p_cron.days = 4294967294 AND NOT p_cron.dow_star THEN
    IF p_cron.weekdays = 62 THEN
      v_days := 'every weekday';
    ELSE
      v_items := '{}';
      FOR v_i IN 1..7 LOOP  -- Monday first
        IF p_cron.weekdays & (1 << (v_i % 7)) <> 0 THEN v_items := v_items || c_days[v_i % 7 + 1]; END IF;
      END LOOP;
      v_days := 'every ' || nudge.words_list(v_items);
    END IF;
    v_days := v_days || coalesce(' in ' || v_months, '');
  ELSIF p_cron.dow_star AND p_cron.weekdays = 127 AND NOT p_cron.dom_star THEN
    -- The grammar refuses a day some named month lacks ("the 31st of june and july"), so such
    -- an expression (which fires only where the day exists) is said as itself.
    v_doms := nudge.cron_bits(p_cron.days & 4294967294, 32);
    IF v_months IS NOT NULL
       AND v_doms[cardinality(v_doms)] > (CASE WHEN p_cron.months & 4 <> 0 THEN 29     -- february
                                               WHEN p_cron.months & 2640 <> 0 THEN 30  -- 30 days
                                               ELSE 31 END) THEN
      RETURN c_fallback;
    END IF;
    v_items := '{}';
    FOREACH v_i IN ARRAY v_doms LOOP
      v_items := v_items || (v_i || CASE WHEN v_i IN (11, 12, 13) THEN 'th'
                                         WHEN v_i % 10 = 1 THEN 'st' WHEN v_i % 10 = 2 THEN 'nd'
                                         WHEN v_i % 10 = 3 THEN 'rd' ELSE 'th' END);
    END LOOP;
    v_days := CASE WHEN cardinality(v_items) > 0 THEN 'the ' ELSE '' END
              || nudge.words_list(v_items || CASE WHEN p_cron.days & 1 <> 0
                                                  THEN ARRAY['the last day'] END);
    v_days := CASE WHEN v_months IS NULL THEN 'every month on ' || v_days
                   ELSE 'every year on ' || v_days || ' of ' || v_months END;
  ELSE
    RETURN c_fallback;
  END IF;

  -- The times. Minutes are "every N minutes" when they are 0, N, 2N, ... and N divides 60.
  v_n := cardinality(v_mins);
  IF v_n >= 2 AND 60 % v_n = 0 THEN
    v_step := 60 / v_n;
    FOR v_i IN 1..v_n LOOP
      IF v_mins[v_i] <> (v_i - 1) * v_step THEN v_step := NULL; EXIT; END IF;
    END LOOP;
  END IF;
  v_n := cardinality(v_mins) * cardinality(v_hours);
  IF NOT p_cron.hour_star THEN
    -- A run of hours with many times is a window; up to 24 times are listed.
    IF v_n > 8 AND v_hours[cardinality(v_hours)] - v_hours[1] + 1 = cardinality(v_hours)
       AND (v_step IS NOT NULL OR cardinality(v_mins) <= 12) THEN
      v_time := CASE WHEN v_step = 1 THEN 'every minute'
                     WHEN v_step IS NOT NULL THEN 'every ' || v_step || ' minutes'
                     ELSE 'every hour at ' || nudge.words_count_list(v_mins, 'minute') END
                || ' between ' || lpad(v_hours[1]::text, 2, '0') || ':00 and '
                || lpad(v_hours[cardinality(v_hours)]::text, 2, '0') || ':59';
    ELSIF v_n <= 24 THEN
      v_items := '{}';
      FOREACH v_i IN ARRAY v_hours LOOP
        FOREACH v_j IN ARRAY v_mins LOOP
          v_items := v_items || (lpad(v_i::text, 2, '0') || ':' || lpad(v_j::text, 2, '0'));
        END LOOP;
      END LOOP;
      v_time := 'at ' || nudge.words_list(v_items);
    END IF;
  ELSIF p_cron.hours = 16777215 THEN  -- * (bits 0..23)
    IF v_step IS NOT NULL THEN
      v_time := CASE WHEN v_step = 1 THEN 'every minute' ELSE 'every ' || v_step || ' minutes' END;
    ELSIF cardinality(v_mins) <= 12 THEN
      v_time := 'every hour at ' || nudge.words_count_list(v_mins, 'minute');
    END IF;
  ELSIF cardinality(v_hours) >= 2 AND 24 % cardinality(v_hours) = 0 AND cardinality(v_mins) <= 12 THEN
    -- */N: hours 0, N, 2N, ...
    v_j := 24 / cardinality(v_hours);
    FOR v_i IN 1..cardinality(v_hours) LOOP
      IF v_hours[v_i] <> (v_i - 1) * v_j THEN v_j := NULL; EXIT; END IF;
    END LOOP;
    IF v_j IS NOT NULL THEN
      v_time := 'every ' || v_j || ' hours at ' || nudge.words_count_list(v_mins, 'minute');
    END IF;
  END IF;
  IF v_time IS NULL THEN
    RETURN c_fallback;
  END IF;
  RETURN v_days || CASE WHEN v_time LIKE 'at %' THEN ' ' ELSE ', ' END || v_time;
END $$;

-- Name: FUNCTION cron_words(p_cron nudge.cron, p_expr text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.cron_words(p_cron nudge.cron, p_expr text) IS 'The days and times of a parsed cron expression in the grammar''s words ("every weekday at 09:00", "every day, every 15 minutes between 09:00 and 17:59"), or cron "<p_expr>" when the words cannot say it exactly.';

-- Name: delete_rule(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.delete_rule(p_id bigint) RETURNS nudge.rules
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rule nudge.rules;
BEGIN
  DELETE FROM nudge.rules WHERE id = p_id RETURNING * INTO v_rule;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'rule % does not exist', p_id USING ERRCODE = 'NU404';
  END IF;
  RETURN v_rule;
END $$;

-- Name: FUNCTION delete_rule(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.delete_rule(p_id bigint) IS 'Deletes a rule and returns it; the reminders it created are left as they are; NU404 for a missing rule.';

-- Name: describe_changed_reminder_cron(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.describe_changed_reminder_cron() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  UPDATE nudge.reminders r SET cron_words = nudge.cron_words(NEW.cron_schedule, NEW.cron)
   WHERE r.id = NEW.id;
  RETURN NULL;
END $$;

-- Name: FUNCTION describe_changed_reminder_cron(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.describe_changed_reminder_cron() IS 'Trigger: after a write of a reminder''s cron expression, sets its cron_words to nudge.cron_words of the expression as written.';

-- Name: describe_reminder(nudge.reminders); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.describe_reminder(r nudge.reminders) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  -- A one_time reminder's time is its occurrence, also while a retry waits; the start of a
  -- repeating one is behind it or shown as next_run_at.
  SELECT nudge.schedule_words(
           r.schedule_type,
           CASE WHEN r.schedule_type = 'one_time' THEN coalesce(r.occurrence_at, r.next_run_at) END,
           r.interval_seconds,
           r.cron_words,
           r.timezone, r.stop_condition_value, r.max_fires, r.ends_at)
$$;

-- Name: FUNCTION describe_reminder(r nudge.reminders); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.describe_reminder(r nudge.reminders) IS 'The canonical sentence of a reminder''s schedule, as nudge.describe_schedule gives it, without the start of a recurring or cron reminder (its next_run_at says when it fires next).';

-- Name: describe_reminder_cron(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.describe_reminder_cron() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  NEW.cron_words := nudge.cron_words(NEW.cron_schedule, NEW.cron);
  RETURN NEW;
END $$;

-- Name: FUNCTION describe_reminder_cron(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.describe_reminder_cron() IS 'Trigger: sets cron_words of a reminder row to nudge.cron_words of its cron expression.';

-- Name: describe_schedule(text, timestamp with time zone, integer, text, text, text, text, integer, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.describe_schedule(p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF p_schedule_type = 'one_time' AND p_run_at IS NULL THEN
    PERFORM nudge.reject('run_at', 'is required for one_time');
  ELSIF p_schedule_type = 'recurring' AND p_interval_seconds IS NULL THEN
    PERFORM nudge.reject('interval_seconds', 'is required for recurring');
  ELSIF p_schedule_type = 'recurring' AND p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
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

-- Name: FUNCTION describe_schedule(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.describe_schedule(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone) IS 'The canonical sentence of a schedule given as a create takes it ("every weekday at 09:00 (Europe/Berlin), until feedback_submitted is true, at most 5 times"), which POST /v1/schedules/parse reads back into the same schedule; times in p_timezone, also for one_time and recurring schedules (UTC by default); run_at of a recurring or cron schedule is its start; 22023 naming the field for a schedule a create would refuse for its type, interval, cron expression, zone, stop condition, max_fires, or a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z.';

-- Name: earliest_time(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.earliest_time() RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT timestamptz '0001-01-01 00:00:00+00'
$$;

-- Name: FUNCTION earliest_time(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.earliest_time() IS 'The first instant Nudge takes, 0001-01-01T00:00:00Z: an earlier one (a BC date, -infinity) has no RFC 3339 form; nudge.latest_fire() is the last.';

-- Name: emit_event(text, text, text, jsonb, text, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb DEFAULT '{}'::jsonb, p_key text DEFAULT NULL::text, p_occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
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

-- Name: FUNCTION emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone) IS 'Records an event and runs every enabled rule of its type whose conditions hold, in the caller''s transaction; answers {created, event, effects}; an event_type, entity_type, entity_id or key empty, over 200 characters or only white space, data over 64 KiB as stored, or an occurred_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z (infinities included) raises 22023 naming it. The same key again answers the first event and effects with created = false and changes nothing, even when sent concurrently. A rule that cannot be rendered for a posted event raises NU422 (nothing is written); for Nudge''s own events it is recorded in the effects. A chain deeper than 8 events is recorded as refused and its rules are not run.';

-- Name: emit_events(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.emit_events(p_items jsonb) RETURNS jsonb
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT nudge.record_events(p_items)::jsonb
$$;

-- Name: FUNCTION emit_events(p_items jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.emit_events(p_items jsonb) IS 'Records every item of p_items (objects with event_type, entity_type, entity_id, data, key, occurred_at, and no other key) and runs their rules as nudge.emit_event would, in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (an unknown key: "items[<index>].<key>: is not a known field"; a value of the wrong JSON type: "must be a string, not a number"; an occurred_at that is not RFC 3339 with an offset) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that its cancel rules cause when each rule runs once over all its events do not name their cause (all others do), and are bounded as n chains of 1,000 events would be (n items), in all.';

-- Name: emit_events_one_by_one(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.emit_events_one_by_one(p_items jsonb) RETURNS jsonb
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
  -- Every key's lock first, in one order for every batch (nudge.record_event takes them again):
  -- two batches sharing keys in different orders waited on each other, a deadlock.
  PERFORM pg_advisory_xact_lock(k.lock)
     FROM (SELECT DISTINCT hashtextextended('nudge.events.key ' || (x.v->>'key'), 0) AS lock
             FROM jsonb_array_elements(p_items) AS x(v)
            WHERE jsonb_typeof(x.v) = 'object' AND jsonb_typeof(x.v->'key') = 'string') k
    ORDER BY k.lock;
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      PERFORM nudge.check_item(v_item, nudge.event_item_fields());
      v_out := v_out || nudge.emit_event(
                 p_event_type => v_item->>'event_type', p_entity_type => v_item->>'entity_type',
                 p_entity_id => v_item->>'entity_id',
                 p_data => coalesce(nullif(v_item->'data', 'null'::jsonb), '{}'::jsonb), p_key => v_item->>'key',
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

-- Name: FUNCTION emit_events_one_by_one(p_items jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.emit_events_one_by_one(p_items jsonb) IS 'nudge.emit_event for every item of p_items, in order, all or nothing, the keys'' locks taken first in one global order (batches sharing keys never deadlock); an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value nudge.item_value_problem refuses, an occurred_at PostgreSQL cannot read) or NU422 "items[<index>]: rule <id>: <field path>: <problem>".';

-- Name: emit_reminder_event(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.emit_reminder_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  -- No rules run in this transaction now, and a rule made the reminder: its chain goes on.
  v_resumed boolean := NEW.event_id IS NOT NULL
                       AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0';
  v_depth   integer;
  v_set     text;  -- set_config's answer, unused
BEGIN
  -- A rule's check creates a sample reminder and undoes it: its end is no event (a stop flag
  -- already true made every save run the other rules' chains, 1,000 events each: explore26a #2).
  IF current_setting('nudge.checking_rule', true) = 'on' THEN
    RETURN NULL;
  END IF;
  IF v_resumed THEN
    SELECT e.depth + 1 INTO v_depth FROM nudge.events e WHERE e.id = NEW.event_id;
    -- An event pruned with the history (older than retention_days) starts a chain anew.
    v_resumed := v_depth IS NOT NULL;
  END IF;
  IF v_resumed THEN
    v_set := set_config('nudge.event_depth', v_depth::text, true)
             || set_config('nudge.event_id', NEW.event_id::text, true)
             || set_config('nudge.chain_events', '0', true);
  END IF;
  IF NEW.status = 'FAILED' THEN
    PERFORM nudge.record_event('nudge.reminder_failed', NEW.entity_type, NEW.entity_id,
                               jsonb_build_object('reminder', nudge.reminder_json(NEW),
                                                  'last_error', NEW.last_error),
                               NULL, NULL, true);
  ELSE
    PERFORM nudge.record_event('nudge.reminder_completed', NEW.entity_type, NEW.entity_id,
                               jsonb_build_object('reason', NEW.completed_reason,
                                                  'reminder', nudge.reminder_json(NEW)),
                               NULL, NULL, true);
  END IF;
  IF v_resumed THEN
    v_set := set_config('nudge.event_depth', '', true)
             || set_config('nudge.event_id', '', true)
             || set_config('nudge.chain_events', '', true);
  END IF;
  RETURN NULL;
END $$;

-- Name: FUNCTION emit_reminder_event(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.emit_reminder_event() IS 'Trigger: a reminder that ends other than by its one fire emits nudge.reminder_completed (data.reason: max_fires, ends_at, stop_condition or cancelled; data.reminder) or nudge.reminder_failed (data.reminder, data.last_error) for its entity, in the same transaction, its rules run as Nudge''s owner (the session may be a worker''s, which may not write rules'' effects); when no rules run at that moment and a rule made the reminder, the event continues that rule''s chain (caused by the reminder''s event, one deeper), so the chain bounds of nudge.record_event also hold across transactions; nothing while a rule''s check creates its sample reminder (nudge.checking_rule).';

-- Name: end_after_attempt(nudge.reminders, text, nudge.worker_policy, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
                   OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN NULL
              WHEN r.schedule_type = 'one_time' AND p_outcome IN ('failed', 'rejected', 'rate_limited', 'unreachable')
                THEN 'attempts_exhausted'
              WHEN r.schedule_type = 'one_time' THEN 'fired'
              WHEN r.fire_count + 1 >= r.max_fires THEN 'max_fires'
              -- The calendar ends with 9999 (RFC 3339 has four-digit years): a schedule whose
              -- next occurrence falls later has run its course, as one past ends_at has (Quartz
              -- completes a trigger with no fire time left the same way). Only a fire within
              -- 400 years of it (the calendar's cycle, cron_next's furthest search) can have its
              -- next one after it: the drain computes no extra occurrence for any other.
              WHEN (r.ends_at IS NOT NULL
                    OR coalesce(r.occurrence_at, r.next_run_at) > timestamptz '9599-12-01 00:00:00+00')
                   AND nudge.next_run_after_attempt(r, p_outcome, p_policy, p_now)
                       > least(r.ends_at, nudge.latest_fire())
                THEN 'ends_at'
         END
$$;

-- Name: FUNCTION end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'Why a live reminder ends once an attempt ended with p_outcome at p_now (attempts_exhausted: a one_time whose last attempt failed, was rate-limited, was unreachable or was rejected; fired: a one_time; max_fires; ends_at: its next run is after ends_at or after 9999-12-31T23:59:59Z), or NULL when it goes on (a retry, a later occurrence) or is not live.';

-- Name: event_item_fields(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.event_item_fields() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT ARRAY['event_type', 'entity_type', 'entity_id', 'data', 'key', 'occurred_at']
$$;

-- Name: FUNCTION event_item_fields(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.event_item_fields() IS 'The keys an item of nudge.emit_events may hold: the parameters of nudge.emit_event without p_.';

-- Name: event_json(nudge.events); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.event_json(e nudge.events) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('data', e.data) || jsonb_strip_nulls(jsonb_build_object(
    'id', e.id, 'event_type', e.event_type, 'entity_type', e.entity_type,
    'entity_id', e.entity_id, 'key', e.key, 'occurred_at', e.occurred_at,
    'received_at', e.received_at, 'cause_event_id', e.cause_event_id, 'refused', e.refused))
$$;

-- Name: FUNCTION event_json(e nudge.events); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.event_json(e nudge.events) IS 'The public JSON form of an event (without its effects): what happened to which entity, when, and for an event a rule caused, the event that caused it.';

-- Name: event_value(nudge.events, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.event_value(p_event nudge.events, p_name text) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE p_name
           WHEN 'entity_type' THEN to_jsonb(p_event.entity_type)
           WHEN 'entity_id' THEN to_jsonb(p_event.entity_id)
           WHEN 'event_type' THEN to_jsonb(p_event.event_type)
           WHEN 'event_id' THEN to_jsonb(p_event.id)
           ELSE p_event.data #> string_to_array(substr(p_name, 6), '.') END
$$;

-- Name: FUNCTION event_value(p_event nudge.events, p_name text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.event_value(p_event nudge.events, p_name text) IS 'The value a placeholder name stands for in an event (data.<path> walks objects and array indexes); NULL when the event has no such value.';

-- Name: executions; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.executions (
    reminder_id bigint NOT NULL,
    scheduled_for timestamp with time zone NOT NULL,
    fired_at timestamp with time zone DEFAULT now() NOT NULL,
    outcome text NOT NULL,
    attempts integer NOT NULL,
    worker text NOT NULL,
    error text,
    CONSTRAINT execution_attempts_is_positive CHECK ((attempts >= 1)),
    CONSTRAINT execution_outcome_is_known CHECK ((outcome = ANY (ARRAY['delivered'::text, 'failed'::text])))
);

-- Name: TABLE executions; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.executions IS 'One row per ended occurrence (delivered, or failed after its attempts); pruned after [history] retention_days. No foreign key: history outlives pruned reminders, and a key check per fire would sit on the hottest path.';

-- Name: execution_json(nudge.executions); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.execution_json(e nudge.executions) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'reminder_id', e.reminder_id, 'scheduled_for', e.scheduled_for, 'fired_at', e.fired_at,
    'outcome', e.outcome, 'attempts', e.attempts, 'worker', e.worker, 'error', e.error,
    'delivery_attempts', (SELECT jsonb_agg(nudge.attempt_json(a) ORDER BY a.attempt)
                            FROM nudge.delivery_attempts a
                           WHERE a.reminder_id = e.reminder_id AND a.scheduled_for = e.scheduled_for)))
$$;

-- Name: FUNCTION execution_json(e nudge.executions); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.execution_json(e nudge.executions) IS 'The public JSON form of one ended occurrence, with its delivery attempts, oldest first.';

-- Name: extend_leases(text, bigint[], integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_extended integer;
  v_host     text;
  v_held     timestamptz;  -- what the breaker's held deliveries wait for,
  v_next     timestamptz;  -- and the new time
BEGIN
  -- A row another transaction holds (an application's, that stopped it) is passed over, not
  -- waited for: this heartbeat also keeps the worker's other leases.
  UPDATE nudge.reminders r SET lease_expires_at = now() + p_lease_seconds * interval '1 second'
   WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                   WHERE x.id = ANY (p_ids) AND x.leased_by = p_worker
                     FOR UPDATE SKIP LOCKED);
  GET DIAGNOSTICS v_extended = ROW_COUNT;
  -- Locked in host order, as a finish locks them before it moves held deliveries.
  FOR v_host, v_held IN
    SELECT h.host, h.next_probe_at FROM nudge.target_hosts h
     WHERE h.state = 'probing' AND h.probe_worker = p_worker AND h.probe_reminder_id = ANY (p_ids)
     ORDER BY h.host
       FOR UPDATE
  LOOP
    v_next := now() + p_lease_seconds * interval '1 second';
    UPDATE nudge.target_hosts SET next_probe_at = v_next, updated_at = now() WHERE host = v_host;
    UPDATE nudge.reminders r
       SET next_run_at = v_next, updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_host;
  END LOOP;
  RETURN v_extended;
END $$;

-- Name: FUNCTION extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.extend_leases(p_worker text, p_ids bigint[], p_lease_seconds integer) IS 'Pushes the lease expiry of the listed reminders p_worker still holds, and of the circuit breaker probes among them (with the deliveries each such breaker holds, which wait for its next probe), to p_lease_seconds from now (a heartbeat for long deliveries), passing over a reminder row another transaction holds; returns how many reminder leases it extended.';

-- Name: finish_abandoned(text, nudge.worker_policy); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.finish_abandoned(p_worker text, p_policy nudge.worker_policy) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_ids      bigint[];
  v_at       timestamptz[];
  v_attempts integer[];
  v_count    integer;
BEGIN
  -- Leases a live worker finished (or rows pruned since) need nothing more.
  DELETE FROM nudge.stopped_while_leased s
   WHERE NOT EXISTS (SELECT 1 FROM nudge.reminders r
                      WHERE r.id = s.reminder_id AND r.leased_by IS NOT NULL);
  -- An expired lease on a stopped reminder: its worker is gone (a live one extends it). Taken
  -- as the claim takes an exhausted occurrence, and recorded the same way.
  WITH taken AS (
    UPDATE nudge.reminders r SET leased_by = p_worker, lease_expires_at = now()
      FROM (SELECT x.id FROM nudge.reminders x
             WHERE x.id IN (SELECT s.reminder_id FROM nudge.stopped_while_leased s)
               AND x.lease_expires_at <= now()
               AND x.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
             ORDER BY x.id
               FOR UPDATE SKIP LOCKED) e
     WHERE r.id = e.id
    RETURNING r.id, coalesce(r.occurrence_at, r.next_run_at) AS occurrence, r.attempt)
  SELECT array_agg(id ORDER BY id), array_agg(occurrence ORDER BY id),
         array_agg(attempt ORDER BY id), count(*)
    INTO v_ids, v_at, v_attempts, v_count FROM taken;
  IF v_count = 0 THEN
    RETURN 0;
  END IF;
  PERFORM nudge.finish_attempts(
    p_worker, p_policy, v_ids, v_at, v_attempts, array_fill('failed'::text, ARRAY[v_count]),
    array_fill('abandoned: the worker delivering it stopped before recording the outcome, and '
               'the reminder was stopped meanwhile; it may have been delivered'::text,
               ARRAY[v_count]),
    array_fill(NULL::integer, ARRAY[v_count]), array_fill(NULL::text, ARRAY[v_count]),
    array_fill(NULL::integer, ARRAY[v_count]));
  DELETE FROM nudge.stopped_while_leased WHERE reminder_id = ANY (v_ids);
  RETURN v_count;
END $$;

-- Name: FUNCTION finish_abandoned(p_worker text, p_policy nudge.worker_policy); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.finish_abandoned(p_worker text, p_policy nudge.worker_policy) IS 'Records, once, the occurrence of each reminder stopped while leased whose lease has expired (its worker died) as a failed attempt and execution saying it was abandoned and may have been delivered, and lets the lease go; forgets the stopped reminders whose lease a worker finished. Returns how many occurrences it recorded.';

-- Name: finish_and_claim(text, nudge.worker_policy, bigint[], timestamp with time zone[], integer[], text[], text[], integer[], text[], integer[], integer, integer, integer[], integer, text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.finish_and_claim(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_limit integer, p_slots integer DEFAULT NULL::integer, p_retry_after_seconds integer[] DEFAULT NULL::integer[], p_email_slots integer DEFAULT NULL::integer, p_pass_over text[] DEFAULT NULL::text[]) RETURNS SETOF nudge.claimed_fire
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_recorded integer;
  v_lost     bigint[];
BEGIN
  IF cardinality(p_ids) > 0 THEN
    v_recorded := nudge.finish_attempts(p_worker, p_policy, p_ids, p_scheduled_for, p_attempts,
                                        p_outcomes, p_errors, p_status_codes, p_responses,
                                        p_durations_ms, p_retry_after_seconds);
    IF v_recorded < cardinality(p_ids) THEN
      -- Rare, so looked up only then: the attempts neither recorded nor ended by this worker.
      SELECT array_agg(u.id ORDER BY u.id) INTO v_lost
        FROM unnest(p_ids, p_scheduled_for, p_attempts) AS u(id, scheduled_for, attempt)
       WHERE NOT EXISTS (SELECT 1 FROM nudge.delivery_attempts a
                          WHERE a.reminder_id = u.id AND a.scheduled_for = u.scheduled_for
                            AND a.attempt = u.attempt AND a.worker = p_worker)
         AND NOT EXISTS (SELECT 1 FROM nudge.executions e
                          WHERE e.reminder_id = u.id AND e.scheduled_for = u.scheduled_for
                            AND e.worker = p_worker);
      RAISE WARNING 'nudge: % of % ended attempts of worker % were not recorded: it no longer held their leases (they ran out while it was not running, and another worker took them over); reminders %',
        cardinality(p_ids) - v_recorded, cardinality(p_ids), p_worker,
        array_to_string(v_lost[1:20], ', ') || CASE WHEN cardinality(v_lost) > 20 THEN ', ...' ELSE '' END;
    END IF;
  END IF;
  IF p_limit > 0 THEN
    RETURN QUERY SELECT * FROM nudge.claim_due(p_worker, p_limit, p_policy, p_slots, p_email_slots,
                                                 p_pass_over);
  END IF;
END $$;

-- Name: FUNCTION finish_and_claim(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_limit integer, p_slots integer, p_retry_after_seconds integer[], p_email_slots integer, p_pass_over text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.finish_and_claim(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_limit integer, p_slots integer, p_retry_after_seconds integer[], p_email_slots integer, p_pass_over text[]) IS 'A worker''s whole round trip in one transaction: nudge.finish_attempts for the attempts that ended (with their receivers'' Retry-After), then nudge.claim_due for up to p_limit more, at most p_slots of them webhooks and emails and at most p_email_slots emails, passing over targets LIKE any of p_pass_over (0 claims nothing); attempts it could not record (their leases were lost: they ran out while the worker was not running, and another worker took them over) are counted and named in a WARNING, which the worker logs.';

-- Name: finish_attempts(text, nudge.worker_policy, bigint[], timestamp with time zone[], integer[], text[], text[], integer[], text[], integer[], integer[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[] DEFAULT NULL::integer[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    SET "nudge.placing" TO 'on'
    AS $$
DECLARE
  v_recorded integer;
  v_hosts    text[];     -- per webhook attempt: its host,
  v_host_ids bigint[];   -- its reminder,
  v_failed   boolean[];  -- whether the host failed to answer it,
  v_host_errors text[];  -- the attempt's error,
  v_limited  boolean[];  -- whether the host answered 429,
  v_waits    integer[];  -- and the Retry-After it gave
  v_lock_timeout text := current_setting('lock_timeout');
BEGIN
  -- Another transaction holding one of these rows (an application's open transaction that
  -- stopped or changed a reminder under delivery) would hold this finish, and with it every
  -- claim of its worker's loop, until it ends: after a moment the finish is refused instead
  -- (55P03), and the worker records the others without it and this one later.
  PERFORM set_config('lock_timeout', '10ms', true);
  WITH moved AS (
    -- The lease token is in the WHERE clause, so a concurrent change (pause, cancel, a stop
    -- flag) is waited for and every decision is made on the row as it is then.
    UPDATE nudge.reminders r
       SET (occurrence_at, next_run_at, status, completed_reason, finished_at, fire_count,
            catch_up_fires, attempt, rate_limited)
         -- Decided on the outcome as reported: 'rejected' is never retried; a 429 is
         -- 'rate_limited', which, as 'unreachable' (a webhook whose host could not be
         -- reached), uses no attempt up to nudge.free_rate_limited_tries().
         = ROW((nudge.after_attempt(r, i.reported, p_policy, now())).*),
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      -- In id order, as bulk changes and lease extensions lock reminders: in the order the
      -- attempts ended, a finish and a bulk pause or cancel of the same rows could deadlock.
      -- 'rejected' and 'unreachable' are recorded as 'failed'.
      FROM (SELECT u.id, u.scheduled_for, u.attempt,
                   CASE WHEN u.outcome = 'failed' AND u.status_code = 429 THEN 'rate_limited'
                        ELSE u.outcome END AS reported,
                   CASE WHEN u.outcome IN ('rejected', 'unreachable') THEN 'failed'
                        ELSE u.outcome END AS outcome,
                   u.error, u.status_code, u.response, u.duration_ms, u.retry_after
              FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors,
                          p_status_codes, p_responses, p_durations_ms, p_retry_after_seconds)
                     AS u(id, scheduled_for, attempt, outcome, error, status_code, response,
                          duration_ms, retry_after)
             ORDER BY u.id) AS i
     WHERE r.id = i.id AND r.leased_by = p_worker AND r.attempt = i.attempt
       AND coalesce(r.occurrence_at, r.next_run_at) = i.scheduled_for
    RETURNING r.id, i.scheduled_for, i.attempt, i.outcome, left(i.error, 2000) AS error,
              i.status_code, left(i.response, 1024) AS response, i.duration_ms,
              r.occurrence_at IS NULL AS ended, r.channel,
              -- The request as the claim rendered it for this attempt (the row's attempt
              -- counter may have moved on: the attempt's own number is used).
              CASE WHEN r.request IS NOT NULL
                   THEN nudge.rendered_request(r, i.scheduled_for, i.attempt) END AS request,
              CASE WHEN r.channel = 'webhook' AND i.duration_ms IS NOT NULL
                        AND (p_policy.breaker_failures > 0 OR i.reported = 'rate_limited')
                   THEN coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) END AS host,
              -- The host did not answer, or answered that it cannot serve now: no response,
              -- 5xx or 408. Any other answer, a 404 or a 429 included, shows the host is up.
              i.outcome = 'failed' AND p_policy.breaker_failures > 0
                AND (i.status_code IS NULL OR i.status_code >= 500 OR i.status_code = 408)
                AS host_failed,
              -- It asked to be sent less (429), and when to send again (Retry-After).
              i.reported = 'rate_limited' AS host_limited, i.retry_after
  ), attempts AS (
    INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, status_code,
                                         error, response, duration_ms, worker, request)
    SELECT m.id, m.scheduled_for, m.attempt, m.outcome, m.status_code, m.error, m.response,
           greatest(m.duration_ms, 0), p_worker,
           CASE WHEN m.request ? 'body'
                THEN m.request || jsonb_build_object('body', left(m.request->>'body', 1024))
                ELSE m.request END
      FROM moved m
     -- A log line written is the whole story of its delivery, already told by executions;
     -- skipping its attempt row keeps the log channel's drain fast (-20% with it).
     WHERE NOT (m.channel = 'log' AND m.outcome = 'delivered')
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING
  ), recorded AS (
    INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker, error)
    SELECT m.id, m.scheduled_for, m.outcome, m.attempt, p_worker, m.error FROM moved m WHERE m.ended
    ON CONFLICT ON CONSTRAINT one_execution_per_occurrence DO NOTHING
  )
  SELECT count(*)::integer, array_agg(m.host) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.id) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.host_failed) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.error) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.host_limited) FILTER (WHERE m.host IS NOT NULL),
         array_agg(m.retry_after) FILTER (WHERE m.host IS NOT NULL)
    INTO v_recorded, v_hosts, v_host_ids, v_failed, v_host_errors, v_limited, v_waits
    FROM moved m;
  PERFORM set_config('lock_timeout', v_lock_timeout, true);
  IF v_hosts IS NOT NULL THEN
    PERFORM nudge.record_host_outcomes(p_worker, p_policy, v_hosts, v_host_ids, v_failed,
                                        v_host_errors, v_limited, v_waits);
  END IF;
  -- A receiver that answered 429 or 503 with Retry-After is not asked again sooner (up to the
  -- policy's longest retry delay): an occurrence still retrying waits at least that long.
  IF p_retry_after_seconds IS NOT NULL THEN
    UPDATE nudge.reminders r
       SET next_run_at = greatest(r.next_run_at,
                                  now() + least(w.seconds::bigint * 1000, p_policy.retry_max_ms)
                                          * interval '1 millisecond')
      FROM unnest(p_ids, p_scheduled_for, p_attempts, p_retry_after_seconds)
             AS w(id, scheduled_for, attempt, seconds)
     WHERE w.seconds > 0 AND r.id = w.id AND r.occurrence_at = w.scheduled_for
       AND r.attempt = w.attempt AND r.leased_by IS NULL AND r.status IN ('ACTIVE', 'PAUSED');
  END IF;
  RETURN v_recorded;
END $$;

-- Name: FUNCTION finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy, p_ids bigint[], p_scheduled_for timestamp with time zone[], p_attempts integer[], p_outcomes text[], p_errors text[], p_status_codes integer[], p_responses text[], p_durations_ms integer[], p_retry_after_seconds integer[]) IS 'Records each ended attempt (outcome delivered, failed, rejected: failed with no attempt after it, or unreachable: failed, a webhook whose host could not be reached) whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), moves its reminder on as nudge.after_attempt decides (a failed attempt answered 429 as rate_limited, and an unreachable one: no attempt used while nudge.free_rate_limited_tries() last), recording an ended occurrence exactly once in executions, and reports each webhook attempt with a duration to nudge.record_host_outcomes: whether its host failed to answer (none, 5xx or 408; unless the policy''s breaker_failures is 0), answered 429, and its Retry-After; an occurrence still retrying after an attempt whose p_retry_after_seconds is over 0 (a receiver''s Retry-After) waits at least that long, up to the policy''s retry_max_ms; an attempt whose lease was lost changes nothing; a reminder row another transaction holds for more than 10 ms refuses the whole finish with 55P03 (lock_timeout), nothing recorded, rather than wait for it. Returns how many attempts it recorded.';

-- Name: first_run_at(text, timestamp with time zone, nudge.cron, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.first_run_at(p_schedule_type text, p_run_at timestamp with time zone, p_cron nudge.cron, p_timezone text) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE p_schedule_type
           WHEN 'recurring' THEN coalesce(p_run_at, now())
           WHEN 'cron' THEN nudge.cron_next(p_cron, p_timezone,
                                            coalesce(p_run_at, now()) - interval '1 microsecond')
           ELSE p_run_at END
$$;

-- Name: FUNCTION first_run_at(p_schedule_type text, p_run_at timestamp with time zone, p_cron nudge.cron, p_timezone text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.first_run_at(p_schedule_type text, p_run_at timestamp with time zone, p_cron nudge.cron, p_timezone text) IS 'A new reminder''s first fire: one_time at run_at; recurring at run_at, default now; cron at its first occurrence at or after run_at, default now.';

-- Name: form_encoded(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.form_encoded(p_text text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  -- application/x-www-form-urlencoded as browsers write it: letters, digits and *-._ stay,
  -- a space is +, every other byte of the UTF-8 text is %XX. A run at a time: one row per
  -- character made a long text slow.
  SELECT coalesce(string_agg(
           CASE WHEN m[1] IS NOT NULL THEN m[1]
                WHEN m[2] IS NOT NULL THEN translate(m[2], ' ', '+')
                ELSE regexp_replace(upper(encode(convert_to(m[3], 'UTF8'), 'hex')), '(..)', '%\1', 'g')
           END, '' ORDER BY n), '')
    FROM regexp_matches(p_text, '([A-Za-z0-9*._-]+)|( +)|([^A-Za-z0-9*._ -]+)', 'g')
         WITH ORDINALITY AS s(m, n)
$$;

-- Name: FUNCTION form_encoded(p_text text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.form_encoded(p_text text) IS 'p_text form-encoded (application/x-www-form-urlencoded): ASCII letters, digits and *-._ as they are, a space as +, every other UTF-8 byte as %XX.';

-- Name: free_rate_limited_tries(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.free_rate_limited_tries() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 20 $$;

-- Name: FUNCTION free_rate_limited_tries(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.free_rate_limited_tries() IS 'How many tries of one occurrence may use none of its attempts: answered 429 (Too Many Requests), or to a webhook host that could not be reached; 20 in all, each such try beyond is a failed attempt.';

-- Name: gauges(integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.gauges(p_count_cap integer) RETURNS TABLE(name text, help text, label_name text, label_value text, value double precision)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $_$
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
  UNION ALL
  SELECT 'nudge_held_deliveries',
         'Webhook deliveries that open or probing circuit breakers hold until their next probe.',
         NULL, NULL,
         (SELECT coalesce(sum(nudge.held_deliveries(h)), 0) FROM nudge.target_hosts h
           WHERE h.state <> 'closed')::double precision
  UNION ALL
  SELECT 'nudge_paced_hosts',
         'Webhook target hosts paced now, whole or some of their URLs, because they answered 429 (GET /v1/targets?paced=true).',
         NULL, NULL,
         (SELECT count(*) FROM nudge.target_hosts h WHERE nudge.is_paced(h))::double precision
  UNION ALL
  -- A paced host's deliveries wait for their send times, not due: without these, a backlog
  -- 16.5 minutes late read 0 in both backlog gauges (explore24a #2).
  SELECT g.name, g.help, NULL, NULL, g.value
    FROM nudge.paced_backlog(greatest(p_count_cap, 1)) b
   CROSS JOIN LATERAL (VALUES
     ('nudge_paced_deliveries',
      format('Webhook deliveries waiting for a paced host or URL (held until their send times, or retrying within 20 s), counted among the %s earliest reminders due in the next 20 s.', greatest(p_count_cap, 1)),
      b.deliveries::double precision),
     ('nudge_oldest_paced_seconds',
      'How long the oldest occurrence waiting for a paced host or URL has been due, in seconds (0: none).',
      b.oldest_seconds)) AS g(name, help, value)
  UNION ALL
  SELECT 'nudge_workers_connected',
         'nudge-worker processes with a claim loop connected to this database.',
         NULL, NULL,
         (SELECT count(DISTINCT split_part(a.application_name, '/', 1))
            FROM pg_stat_activity a
           WHERE a.datname = current_database()
             AND a.application_name ~ '^[^/]+:[0-9]+:[0-9a-f]{8}/[0-9]+$')::double precision
  UNION ALL
  SELECT 'nudge_breaker_open_seconds',
         'Seconds since each open or probing circuit breaker last opened (a failed probe opens it again), by host; not for an open one whose probe time has passed with no delivery to probe with.',
         'host', h.host, extract(epoch FROM now() - h.opened_at)::double precision
    FROM nudge.target_hosts h
   -- An open breaker past its probe time that holds nothing says nothing of its host now: its
   -- series rose for good, and an alert on it fired for a host with nothing to send
   -- (explore23a #5). It comes back with the first delivery the breaker holds.
   WHERE h.state = 'probing'
      OR (h.state = 'open' AND (h.next_probe_at > now() OR nudge.held_deliveries(h) > 0))
  UNION ALL
  SELECT 'nudge_rule_failures_total',
         'Rules that could not run for one of Nudge''s own events (each kept in that event''s effects).',
         NULL, NULL,
         -- No sample, not an error that loses every gauge, for a login not granted it yet.
         (SELECT CASE WHEN has_sequence_privilege(s.schemaname || '.' || s.sequencename, 'SELECT')
                      THEN coalesce(s.last_value, 0) END
            FROM pg_sequences s
           WHERE s.schemaname = 'nudge' AND s.sequencename = 'rule_failures')::double precision
$_$;

-- Name: FUNCTION gauges(p_count_cap integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS 'The database''s gauges for GET /metrics of nudge-api and the workers, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is), nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing), nudge_held_deliveries (deliveries the open and probing breakers hold, nudge.held_deliveries), nudge_paced_hosts (hosts paced now, whole or some of their URLs: they answered 429), nudge_paced_deliveries and nudge_oldest_paced_seconds (nudge.paced_backlog: the deliveries waiting for a paced host, counted among the p_count_cap earliest due in the next 20 s, and how long the oldest has been due), nudge_workers_connected (nudge-worker processes with a claim loop session in this database, by their sessions'' application_name), nudge_breaker_open_seconds by host (seconds since each breaker that is not closed last opened: a failed probe opens it again; no row while it is closed, nor while it is open past its probe time holding no delivery) and nudge_rule_failures_total (rules that could not run for Nudge''s own events, the sequence nudge.rule_failures: a counter, as its _total says; no value for a login without SELECT on it); reads at most p_count_cap + 1 entries of the due index (and, while a host is paced, p_count_cap more), and the held deliveries of each breaker that is not closed.';

-- Name: held_deliveries(nudge.target_hosts); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.held_deliveries(h nudge.target_hosts) RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
  -- Held deliveries wait for the probe time (nudge.record_host_outcomes moves them by it): read
  -- by that time in the due index, as that function does.
  SELECT count(*) FROM nudge.reminders r
   WHERE h.state <> 'closed' AND r.status = 'ACTIVE' AND r.next_run_at = h.next_probe_at
     AND r.leased_by IS NULL AND r.channel = 'webhook'
     AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = h.host
$$;

-- Name: FUNCTION held_deliveries(h nudge.target_hosts); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.held_deliveries(h nudge.target_hosts) IS 'How many webhook deliveries breaker h holds: ACTIVE reminders to its host, not leased, waiting for its next probe; 0 when it is closed.';

-- Name: host_pace(nudge.target_hosts, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.host_pace(h nudge.target_hosts, p_at timestamp with time zone) RETURNS double precision
    LANGUAGE sql STABLE
    AS $$
  SELECT nudge.pace_at(h.pace, h.limited_at, h.paced_until, p_at)
$$;

-- Name: FUNCTION host_pace(h nudge.target_hosts, p_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.host_pace(h nudge.target_hosts, p_at timestamp with time zone) IS 'Deliveries a second host h, paced whole, may be sent at p_at (nudge.pace_at of its pace, limited_at and paced_until); NULL when it is not paced then.';

-- Name: instant_ahead(timestamp with time zone[], timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.instant_ahead(p_instants timestamp with time zone[], p_after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT CASE WHEN p_instants[1] <= p_after AND p_instants[2] > p_after THEN p_instants[2]
              ELSE p_instants[1] END
$$;

-- Name: FUNCTION instant_ahead(p_instants timestamp with time zone[], p_after timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.instant_ahead(p_instants timestamp with time zone[], p_after timestamp with time zone) IS 'Of the instants of one local time (nudge.local_instants: one, or two in a fall-back overlap), the second when the first is not after p_after and the second is, else the first.';

-- Name: is_blank(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.is_blank(p_text text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  -- btrim's set: ASCII white space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
  -- U+202F, U+205F, U+3000 (Unicode White_Space), and the zero-width U+200B, U+200C, U+200D,
  -- U+2060, U+FEFF, which show nothing either.
  SELECT btrim(p_text, E' \t\n\r\f\x0B\u0085\u00A0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u2028\u2029\u202F\u205F\u3000\u200B\u200C\u200D\u2060\uFEFF') = ''
$$;

-- Name: FUNCTION is_blank(p_text text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.is_blank(p_text text) IS 'true when p_text is empty or holds only white space: Unicode''s (spaces of every width, no-break spaces, tabs, line and paragraph breaks, form feeds, vertical tabs, U+0085) and the zero-width U+200B, U+200C, U+200D, U+2060 and U+FEFF; NULL for NULL.';

-- Name: is_clock_change_day(date, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.is_clock_change_day(p_day date, p_tz text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  SELECT extract(epoch FROM ((p_day + 1)::timestamp AT TIME ZONE p_tz)
                            - (p_day::timestamp AT TIME ZONE p_tz)) <> 86400
$$;

-- Name: FUNCTION is_clock_change_day(p_day date, p_tz text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.is_clock_change_day(p_day date, p_tz text) IS 'Whether local day p_day in zone p_tz is not 24 hours long (its UTC offset changes during it: a daylight-saving change, or a zone moving its clock).';

-- Name: is_json_media_type(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.is_json_media_type(p_type text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  -- Inlined where it is called (no SET clause): its names are qualified instead.
  SELECT p_type OPERATOR(pg_catalog.~*)
         '^(application/([a-z0-9.!#$&^_-]+\+)?json|application/x-json|text/json|text/x-json|application/(x-)?ndjson|application/(x-)?jsonl(ines)?|application/json-seq)\s*(;.*)?$'
$_$;

-- Name: FUNCTION is_json_media_type(p_type text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.is_json_media_type(p_type text) IS 'Whether a media type is one a receiver may read as JSON (application/json, application/...+json, application/x-json, text/json, text/x-json, JSON lines and sequences), parameters allowed; NULL for NULL.';

-- Name: is_paced(nudge.target_hosts); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.is_paced(h nudge.target_hosts) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  SELECT coalesce(h.paced_until > now(), false)
         OR EXISTS (SELECT 1 FROM nudge.paced_targets t
                     WHERE t.host = h.host AND t.paced_until > now())
$$;

-- Name: FUNCTION is_paced(h nudge.target_hosts); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.is_paced(h nudge.target_hosts) IS 'Whether the host is paced now, whole (nudge.target_hosts.paced_until) or some of its URLs (nudge.paced_targets): what GET /v1/targets?paced=, the nudge_paced_hosts gauge and nudge.close_breaker count as a paced host.';

-- Name: is_rfc3339(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.is_rfc3339(p_text text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT p_text ~ ('^' || nudge.rfc3339_pattern() || '$')
$_$;

-- Name: FUNCTION is_rfc3339(p_text text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.is_rfc3339(p_text text) IS 'Whether p_text is an RFC 3339 date-time with an offset as the REST API reads one (nudge.rfc3339_pattern); NULL for NULL.';

-- Name: item_type_problem(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.item_type_problem(p_item jsonb) RETURNS text
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

-- Name: FUNCTION item_type_problem(p_item jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.item_type_problem(p_item jsonb) IS 'For a create or event item that failed in a cast: "<field>: must be an RFC 3339 time with an offset, ..." for its first time field (run_at, ends_at, occurred_at) PostgreSQL cannot read, or NULL when it reads each.';

-- Name: item_value_problem(text, jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.item_value_problem(p_field text, p_value jsonb) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $_$
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
$_$;

-- Name: FUNCTION item_value_problem(p_field text, p_value jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.item_value_problem(p_field text, p_value jsonb) IS 'Why a JSON value cannot be field p_field of a create or event item as the REST API reads it (run_at, ends_at, occurred_at: an RFC 3339 time string with an offset; a whole-number field: a whole number its column holds, else its range; payload, request, data: an object; any other: a string), as the rest of a 22023 message; NULL when it can, and for JSON null (absent).';

-- Name: item_values_are_plain(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

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

-- Name: FUNCTION item_values_are_plain(p_item jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.item_values_are_plain(p_item jsonb) IS 'false when a create or event item holds a value of a JSON type its text could hide (a name, stop_condition_value or timezone not a string; a whole-number field not a number); the set-based paths take only items for which it is true (a fraction or a too long number fails their cast; their times are checked with nudge.are_rfc3339), the others go item by item.';

-- Name: jitter(bigint, integer, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.jitter(p_id bigint, p_attempt integer, p_at timestamp with time zone) RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  SELECT (hashint8extended(p_id, p_attempt + (extract(epoch FROM p_at) * 1000000)::bigint)
          & 4503599627370495)::double precision / 4503599627370496
$$;

-- Name: FUNCTION jitter(p_id bigint, p_attempt integer, p_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.jitter(p_id bigint, p_attempt integer, p_at timestamp with time zone) IS 'A fraction in [0, 1), uniformly spread over reminders, attempts and instants, the same for the same three.';

-- Name: json_kind(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.json_kind(p_value jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE jsonb_typeof(p_value) WHEN 'string' THEN 'a string' WHEN 'number' THEN 'a number'
                                    WHEN 'boolean' THEN 'a boolean' WHEN 'array' THEN 'an array'
                                    WHEN 'object' THEN 'an object' ELSE 'null' END
$$;

-- Name: FUNCTION json_kind(p_value jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.json_kind(p_value jsonb) IS 'The kind of a JSON value as an error message names it: a string, a number, a boolean, an array, an object or null.';

-- Name: json_strings(jsonb, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.json_strings(p_value jsonb, p_place text, p_skip text DEFAULT NULL::text) RETURNS TABLE(place text, value text)
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  WITH RECURSIVE node(place, value) AS (
    SELECT p_place, p_value
    UNION ALL
    SELECT n.place || CASE WHEN jsonb_typeof(n.value) = 'object' THEN '.' || c.key
                           ELSE '[' || c.key || ']' END,
           c.value
      FROM node n,
           LATERAL (SELECT o.key, o.value
                      FROM jsonb_each(CASE WHEN jsonb_typeof(n.value) = 'object' THEN n.value END) o
                    UNION ALL
                    SELECT (a.n - 1)::text, a.value
                      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n.value) = 'array'
                                                     THEN n.value END)
                           WITH ORDINALITY AS a(value, n)) c
     WHERE n.place IS DISTINCT FROM p_skip
  )
  SELECT node.place, node.value #>> '{}' FROM node WHERE jsonb_typeof(node.value) = 'string'
$$;

-- Name: FUNCTION json_strings(p_value jsonb, p_place text, p_skip text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.json_strings(p_value jsonb, p_place text, p_skip text) IS 'Returns every string inside p_value with its place, written from p_place as a field is named (p_place.key, p_place[0], p_place.a[1].b), not descending into the place p_skip; returns nothing for a value without strings.';

-- Name: json_text(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.json_text(p_value jsonb) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  -- A JSON null is no text (#>> gives NULL for it): the compiled template is NULL, missing a value.
  SELECT left(right(to_jsonb(CASE WHEN jsonb_typeof(p_value) <> 'null'
                                  THEN coalesce(p_value #>> '{}', p_value::text) END)::text, -1), -1)
$$;

-- Name: FUNCTION json_text(p_value jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.json_text(p_value jsonb) IS 'A JSON value as text escaped for the inside of a JSON string (a string''s own text, anything else but null its JSON text); NULL for a JSON null, which text cannot hold.';

-- Name: latest_fire(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.latest_fire() RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT timestamptz '9999-12-31 23:59:59+00'
$$;

-- Name: FUNCTION latest_fire(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.latest_fire() IS 'The last instant a reminder may fire at, 9999-12-31T23:59:59Z: a later time has a five-digit year, which RFC 3339 cannot write.';

-- Name: local_instants(timestamp without time zone, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.local_instants(p_local timestamp without time zone, p_tz text) RETURNS timestamp with time zone[]
    LANGUAGE plpgsql IMMUTABLE
    AS $$
DECLARE
  v_guess  timestamptz := p_local AT TIME ZONE p_tz;
  v_before interval := nudge.utc_offset(v_guess - interval '1 day', p_tz);
  v_after  interval := nudge.utc_offset(v_guess + interval '1 day', p_tz);
  v_out    timestamptz[] := '{}';
  v_lo     timestamptz;
  v_hi     timestamptz;
  v_mid    timestamptz;
  v_at     timestamptz;
BEGIN
  FOREACH v_at IN ARRAY ARRAY[(p_local - v_before) AT TIME ZONE 'UTC',
                              (p_local - v_after) AT TIME ZONE 'UTC'] LOOP
    IF (v_at AT TIME ZONE p_tz) = p_local AND NOT v_at = ANY (v_out) THEN
      v_out := v_out || v_at;
    END IF;
  END LOOP;
  IF cardinality(v_out) > 0 THEN
    RETURN ARRAY(SELECT x FROM unnest(v_out) x ORDER BY x);
  END IF;
  -- A gap: find the transition, the first instant with the later offset (minute precision).
  v_lo := v_guess - interval '1 day';
  v_hi := v_guess + interval '1 day';
  WHILE v_hi - v_lo > interval '1 minute' LOOP
    v_mid := v_lo + (v_hi - v_lo) / 2;
    IF nudge.utc_offset(v_mid, p_tz) = v_before THEN v_lo := v_mid; ELSE v_hi := v_mid; END IF;
  END LOOP;
  RETURN ARRAY[date_trunc('minute', v_hi)];
END $$;

-- Name: FUNCTION local_instants(p_local timestamp without time zone, p_tz text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.local_instants(p_local timestamp without time zone, p_tz text) IS 'The instants at which local time p_local happens in zone p_tz, earliest first: one normally, two in a fall-back overlap, and in a spring-forward gap the one instant at which the gap ends.';

-- Name: lock_reminder(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.lock_reminder(p_id bigint) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE v_row nudge.reminders;
BEGIN
  SELECT * INTO v_row FROM nudge.reminders WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'reminder % does not exist', p_id USING ERRCODE = 'NU404';
  END IF;
  RETURN v_row;
END $$;

-- Name: FUNCTION lock_reminder(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.lock_reminder(p_id bigint) IS 'The reminder, locked FOR UPDATE until the end of the transaction; NU404 when it does not exist.';

-- Name: lock_stop_flags(text[], boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.lock_stop_flags(p_keys text[], p_setting boolean) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_held integer := coalesce(nullif(pg_catalog.current_setting('nudge.stop_flag_locks', true), '')::integer, 0);
  v_n    integer := coalesce(pg_catalog.cardinality(p_keys), 0);
  v_set  text;  -- an answer unused: an assignment is cheaper than PERFORM's query
BEGIN
  -- Each key is an entry in the server's shared lock table until the transaction ends, and a
  -- full table fails every session's next lock ("out of shared memory"): a transaction takes at
  -- most 1,000, and a statement that would pass them takes none (its overlap is caught when its
  -- reminders come due, as before).
  IF v_n = 0 OR v_held + v_n > 1000 THEN
    RETURN 0;
  END IF;
  IF v_n = 1 THEN
    v_set := CASE WHEN p_setting
                  THEN pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('nudge.stop_flag ' || p_keys[1], 0))::text
                  ELSE pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('nudge.stop_flag ' || p_keys[1], 0))::text END;
  ELSE
    -- In one order for every statement: two batches taking the same keys in different orders
    -- would wait on each other.
    PERFORM CASE WHEN p_setting THEN pg_catalog.pg_advisory_xact_lock(k.lock)
                 ELSE pg_catalog.pg_advisory_xact_lock_shared(k.lock) END
       FROM (SELECT DISTINCT pg_catalog.hashtextextended('nudge.stop_flag ' || x.key, 0) AS lock
               FROM pg_catalog.unnest(p_keys) AS x(key) WHERE x.key IS NOT NULL) k
      ORDER BY k.lock;
  END IF;
  v_set := pg_catalog.set_config('nudge.stop_flag_locks', (v_held + v_n)::text, true);
  RETURN v_n;
END $$;

-- Name: FUNCTION lock_stop_flags(p_keys text[], p_setting boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.lock_stop_flags(p_keys text[], p_setting boolean) IS 'Takes a lock on each stop flag key until the transaction ends, shared to create reminders the flags stop (p_setting false), alone to set them true, so a create and a flag set of one key that overlap take turns and the later sees what the earlier committed; takes none when that would pass 1,000 in the transaction (nudge.stop_flag_locks counts them). Returns how many keys it was given to lock (0: none locked).';

-- Name: log_and_audit_flag_changes(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.log_and_audit_flag_changes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  -- As the other audits: what a statement asked for directly, in a session that audits,
  -- outside rules.
  v_audit boolean := pg_trigger_depth() = 1
                     AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
                     AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0';
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF v_audit THEN
      INSERT INTO nudge.audit (token, route, subject_type, subject, change)
      SELECT nullif(current_setting('nudge.actor', true), ''),
             nullif(current_setting('nudge.route', true), ''), 'flag', r.key, 'delete'
        FROM old_rows r;
    END IF;
    RETURN NULL;
  END IF;
  INSERT INTO nudge.changes (kind, change, flag_keys)
  SELECT 'flag', 'set', array_agg(r.key) FROM new_rows r HAVING count(*) > 0;
  IF v_audit THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), 'flag', r.key, lower(TG_OP)
      FROM new_rows r;
  END IF;
  RETURN NULL;
END $$;

-- Name: FUNCTION log_and_audit_flag_changes(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.log_and_audit_flag_changes() IS 'Statement trigger on nudge.status_flags: logs the flags an INSERT or UPDATE wrote in one nudge.changes row (kind flag, change set), and records every flag the statement inserted, updated or deleted in nudge.audit with the session''s nudge.actor and nudge.route and session_user, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run; runs as the log''s owner.';

-- Name: log_and_audit_inserted_events(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.log_and_audit_inserted_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  INSERT INTO nudge.changes (kind, change, object_ids)
  SELECT 'event', 'received', array_agg(r.id) FROM new_rows r HAVING count(*) > 0;
  -- As nudge.audit_inserted_rows: not for rows a trigger inserted, in a session with
  -- nudge.audit = off, or while rules run (db_user is session_user, the definer changes nothing).
  IF pg_trigger_depth() = 1 AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
     AND coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0') = '0' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT nullif(current_setting('nudge.actor', true), ''),
           nullif(current_setting('nudge.route', true), ''), 'event', r.id::text, 'insert'
      FROM new_rows r;
  END IF;
  RETURN NULL;
END $$;

-- Name: FUNCTION log_and_audit_inserted_events(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.log_and_audit_inserted_events() IS 'Statement trigger on INSERT into nudge.events: logs the inserted events in one nudge.changes row (kind event, change received) and records each in nudge.audit with the session''s nudge.actor and nudge.route, unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run; runs as the log''s owner.';

-- Name: log_fires(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.log_fires() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  INSERT INTO nudge.changes (kind, change, object_ids, occurrences)
  SELECT 'reminder', 'fired', array_agg(e.reminder_id), array_agg(e.scheduled_for)
    FROM new_rows e HAVING count(*) > 0;
  RETURN NULL;
END $$;

-- Name: FUNCTION log_fires(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.log_fires() IS 'Trigger: logs the execution rows of the statement in one nudge.changes row, each a fire of its reminder and occurrence (rendered as failed when it failed and its reminder is FAILED).';

-- Name: log_reminder_change(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.log_reminder_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  INSERT INTO nudge.changes (kind, change, object_ids)
  VALUES ('reminder',
          CASE WHEN NEW.status = OLD.status THEN 'rescheduled'
               WHEN OLD.status = 'FAILED' THEN 'retried'
               ELSE CASE NEW.status WHEN 'PAUSED' THEN 'paused' WHEN 'ACTIVE' THEN 'resumed'
                                    WHEN 'CANCELLED' THEN 'cancelled'
                                    WHEN 'COMPLETED' THEN 'completed' ELSE 'failed' END END,
          ARRAY[NEW.id]);
  RETURN NULL;
END $$;

-- Name: FUNCTION log_reminder_change(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.log_reminder_change() IS 'Trigger: logs in nudge.changes a reminder update that is not a fire: its new status (paused, resumed, cancelled, completed, failed), retried when a FAILED one became ACTIVE, or rescheduled when only its schedule or payload changed.';

-- Name: log_retries(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.log_retries() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- The statement's executions are in place: an occurrence that ended is a fire, not a retry.
  INSERT INTO nudge.changes (kind, change, object_ids, occurrences)
  SELECT 'reminder', 'retrying', array_agg(a.reminder_id), array_agg(a.scheduled_for)
    FROM new_rows a
   WHERE a.outcome = 'failed'
     AND NOT EXISTS (SELECT 1 FROM nudge.executions x
                      WHERE x.reminder_id = a.reminder_id AND x.scheduled_for = a.scheduled_for)
  HAVING count(*) > 0;
  RETURN NULL;
END $$;

-- Name: FUNCTION log_retries(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.log_retries() IS 'Trigger: logs in one nudge.changes row the failed delivery attempts of the statement whose occurrence did not end (no execution): each reminder is retrying that occurrence.';

-- Name: log_row_changes(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.log_row_changes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO nudge.changes (kind, change, object_ids, gone)
    SELECT TG_ARGV[0], TG_ARGV[1], array_agg(r.id), array_agg(nudge.rule_json(r::nudge.rules))
      FROM old_rows r HAVING count(*) > 0;
  ELSE
    INSERT INTO nudge.changes (kind, change, object_ids)
    SELECT TG_ARGV[0], TG_ARGV[1], array_agg(r.id) FROM new_rows r HAVING count(*) > 0;
  END IF;
  RETURN NULL;
END $$;

-- Name: FUNCTION log_row_changes(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.log_row_changes() IS 'Trigger (arguments: kind, change): logs the rows of the statement in one nudge.changes row by their ids, deleted rules with their last JSON forms.';

-- Name: new_reminder_stage(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.new_reminder_stage() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
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

-- Name: FUNCTION new_reminder_stage(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.new_reminder_stage() IS 'Makes the session''s staging table of new reminders (pg_temp.nudge_new_reminder, emptied at commit) exist and empty, for nudge.create_staged_reminders, without a notice when it exists.';

-- Name: next_interval_occurrence(timestamp with time zone, integer, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.next_interval_occurrence(p_anchor timestamp with time zone, p_interval_seconds integer, p_after timestamp with time zone) RETURNS timestamp with time zone
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

-- Name: FUNCTION next_interval_occurrence(p_anchor timestamp with time zone, p_interval_seconds integer, p_after timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.next_interval_occurrence(p_anchor timestamp with time zone, p_interval_seconds integer, p_after timestamp with time zone) IS 'The first occurrence of "every p_interval_seconds from p_anchor" strictly after p_after (p_anchor itself when it is later; from -infinity, p_after plus one interval; after an infinite p_after, infinity); never raises for an infinite time.';

-- Name: next_run_after_attempt(nudge.reminders, text, nudge.worker_policy, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.next_run_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
              THEN p_now + nudge.retry_delay(r.attempt, p_policy.retry_base_ms,
                                             p_policy.retry_max_ms,
                                             nudge.jitter(r.id, r.attempt, p_now))
              WHEN r.schedule_type = 'one_time' THEN coalesce(r.occurrence_at, r.next_run_at)
              WHEN nudge.attempt_catches_up(r, p_outcome, p_policy, p_now)
                THEN nudge.occurrence_after(r, coalesce(r.occurrence_at, r.next_run_at))
              -- Each later occurrence is the claim's to judge: it fires, or is recorded skipped
              -- when missed by more than the threshold; none goes unrecorded (explore31c F3).
              WHEN r.misfire_policy = 'skip'
                THEN nudge.occurrence_after(r, coalesce(r.occurrence_at, r.next_run_at))
              ELSE nudge.occurrence_after(r, greatest(p_now, coalesce(r.occurrence_at, r.next_run_at)))
         END
$$;

-- Name: FUNCTION next_run_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.next_run_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'A reminder''s next_run_at once an attempt ended with p_outcome at p_now: a retry after a jittered backoff; a one_time reminder''s own occurrence; a catching-up fire_all reminder''s next occurrence, as a skip reminder''s (the claim fires it or records it skipped); else the first occurrence after both p_now and the one that ended (missed ones collapse into this fire).';

-- Name: note_stopped_while_leased(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.note_stopped_while_leased() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  INSERT INTO nudge.stopped_while_leased (reminder_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;

-- Name: FUNCTION note_stopped_while_leased(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.note_stopped_while_leased() IS 'Trigger: a reminder whose status becomes COMPLETED, CANCELLED or FAILED while a lease is set on it is noted in nudge.stopped_while_leased (once); runs as its owner, so whoever may stop a reminder needs no right on that table.';

-- Name: occurrence_after(nudge.reminders, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.occurrence_after(r nudge.reminders, p_after timestamp with time zone) RETURNS timestamp with time zone
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

-- Name: FUNCTION occurrence_after(r nudge.reminders, p_after timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.occurrence_after(r nudge.reminders, p_after timestamp with time zone) IS 'The first occurrence of a recurring or cron reminder strictly after p_after (interval occurrences keep the phase of the current occurrence, nudge.next_interval_occurrence; a cron reminder with none, or after an infinite p_after: infinity); a one_time reminder''s own occurrence; never raises for an infinite time.';

-- Name: overview(bigint, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.overview(p_exact_below bigint DEFAULT 100000, p_due_cap integer DEFAULT 10000) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rows      double precision;
  v_counts    jsonb;
  v_estimated boolean;
  v_hour      jsonb;
  v_gauges    jsonb;
BEGIN
  -- The table's rows now, as the planner sizes it: rows per page at the last ANALYZE times the
  -- pages it has now (-1 or 0 pages: never analysed, so small or new; counted exactly).
  SELECT CASE WHEN c.reltuples < 0 OR c.relpages = 0 THEN -1
              ELSE c.reltuples / c.relpages
                   * (pg_relation_size(c.oid) / current_setting('block_size')::integer) END
    INTO v_rows
    FROM pg_class c WHERE c.oid = 'nudge.reminders'::regclass;
  v_estimated := v_rows >= p_exact_below;
  IF v_estimated THEN
    SELECT coalesce(jsonb_object_agg(m.status, round(m.freq * v_rows)::bigint), '{}')
      INTO v_counts
      FROM pg_stats s,
           LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(status, freq)
     WHERE s.schemaname = 'nudge' AND s.tablename = 'reminders' AND s.attname = 'status';
  ELSE
    SELECT coalesce(jsonb_object_agg(c.status, c.n), '{}')
      INTO v_counts
      FROM (SELECT r.status, count(*) AS n FROM nudge.reminders r GROUP BY r.status) c;
  END IF;

  SELECT jsonb_build_object('delivered', count(*) FILTER (WHERE e.outcome = 'delivered'),
                            'failed', count(*) FILTER (WHERE e.outcome = 'failed'))
    INTO v_hour
    FROM nudge.executions e
   WHERE e.fired_at > now() - interval '1 hour';

  SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'name', g.name, 'label_name', g.label_name, 'label_value', g.label_value,
           'value', g.value))), '[]')
    INTO v_gauges
    FROM nudge.gauges(p_due_cap) g;

  RETURN jsonb_build_object(
    'counts', v_counts,
    'counts_estimated', v_estimated,
    'due_now', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                 WHERE g->>'name' = 'nudge_due_reminders'),
    'due_now_cap', p_due_cap,
    'oldest_due_seconds', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                            WHERE g->>'name' = 'nudge_oldest_due_seconds'),
    'held', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
              WHERE g->>'name' = 'nudge_held_deliveries'),
    'workers', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                 WHERE g->>'name' = 'nudge_workers_connected'),
    'last_hour', v_hour,
    'gauges', v_gauges,
    'as_of', now());
END $$;

-- Name: FUNCTION overview(p_exact_below bigint, p_due_cap integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.overview(p_exact_below bigint, p_due_cap integer) IS 'The dashboard''s overview as jsonb: reminders by status (exact below p_exact_below rows, else estimated from pg_stats and the table''s size, with counts_estimated saying which), due_now and oldest_due_seconds from nudge.gauges(p_due_cap), held (deliveries circuit breakers hold) and workers (nudge-worker processes connected) from the same, fires delivered and failed in the last hour (last_hour), and every row of nudge.gauges; past p_exact_below rows its cost grows only with the last hour''s fires, not with the tables.';

-- Name: own_event_path_problem(text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.own_event_path_problem(p_event_type text, p_path text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT CASE
           WHEN p_event_type NOT IN ('nudge.reminder_completed', 'nudge.reminder_failed')
                OR s[1] IS DISTINCT FROM 'data' THEN NULL
           WHEN s[2] = 'reminder'
                AND (cardinality(s) = 2
                     OR (s[3] IN ('id', 'payload', 'schedule_text', 'entity_type', 'entity_id', 'event_type', 'channel', 'target', 'schedule_type', 'interval_seconds', 'cron', 'timezone', 'misfire_policy', 'max_attempts', 'next_run_at', 'retrying_occurrence', 'attempts', 'stop_condition_type', 'stop_condition_value', 'max_fires', 'ends_at', 'fire_count', 'status', 'completed_reason', 'last_error', 'rule_id', 'event_id', 'created_at', 'updated_at', 'finished_at', 'request')
                         AND (cardinality(s) = 3 OR s[3] IN ('payload', 'request')))) THEN NULL
           WHEN cardinality(s) = 2
                AND s[2] = CASE p_event_type WHEN 'nudge.reminder_completed' THEN 'reason'
                                             ELSE 'last_error' END THEN NULL
           ELSE format('%s events have no %s: their data holds %s', p_event_type, p_path,
                       CASE p_event_type
                         WHEN 'nudge.reminder_completed'
                         THEN 'reason and reminder (the reminder''s JSON, as GET /v1/reminders/{id} answers it)'
                         ELSE 'reminder (the reminder''s JSON, as GET /v1/reminders/{id} answers it) and last_error'
                       END)
         END
    FROM (SELECT pg_catalog.string_to_array(p_path, '.') AS s) x
$$;

-- Name: FUNCTION own_event_path_problem(p_event_type text, p_path text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.own_event_path_problem(p_event_type text, p_path text) IS 'Why an event of type p_event_type, one of Nudge''s own (nudge.reminder_completed: data.reason and data.reminder; nudge.reminder_failed: data.reminder and data.last_error; data.reminder being a reminder''s JSON, any path within its payload and request), can never have the value at p_path (data.<path>); NULL when it can, and for any other event type or path.';

-- Name: pace_after_429(double precision, bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.pace_after_429(p_pace_now double precision, p_accepted bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT greatest(1.0 / 60, least(500, coalesce(0.7 * p_pace_now, greatest(p_accepted, 1))))
$$;

-- Name: FUNCTION pace_after_429(p_pace_now double precision, p_accepted bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.pace_after_429(p_pace_now double precision, p_accepted bigint) IS 'The pace a 429 leaves a host or URL at: 0.7 of p_pace_now, or when it was not paced, the p_accepted requests it accepted in the same batch (at least 1), kept between 1 a minute and 500 a second.';

-- Name: pace_at(double precision, timestamp with time zone, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.pace_at(p_pace double precision, p_limited_at timestamp with time zone, p_paced_until timestamp with time zone, p_at timestamp with time zone) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  -- The pace before the cut (p_pace / 0.7), reached again cbrt(10,000) = 21.5 s after it.
  SELECT CASE WHEN p_paced_until > p_at
              THEN p_pace / 0.7
                   * (1 + 3e-5 * power(greatest(extract(epoch FROM p_at - p_limited_at)::float8, 0)
                                       - cbrt(1e4::float8), 3)) END
$$;

-- Name: FUNCTION pace_at(p_pace double precision, p_limited_at timestamp with time zone, p_paced_until timestamp with time zone, p_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.pace_at(p_pace double precision, p_limited_at timestamp with time zone, p_paced_until timestamp with time zone, p_at timestamp with time zone) IS 'Deliveries a second a paced host or URL may be sent at p_at: from p_pace at p_limited_at (the end of the Retry-After of its last 429 that cut it), back to the pace before that cut (p_pace / 0.7) 21.5 s later along a cubic, flat near it, then growing faster and faster (TCP CUBIC''s curve: (p_pace / 0.7) * (1 + 0.00003 * (seconds since p_limited_at - 21.5)^3)); NULL when p_at is not before p_paced_until (no longer paced).';

-- Name: paced_backlog(integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.paced_backlog(p_read_cap integer, OUT deliveries bigint, OUT oldest_seconds double precision) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
  -- A paced host or URL holds its deliveries 20 s at most (nudge.claim_due): they are among the
  -- reminders due in the next 20 s, read by time in the due index, and only while one is
  -- paced.
  SELECT count(*),
         coalesce(extract(epoch FROM now() - min(greatest((w.r).occurrence_at,
                                                          nudge.earliest_time()))), 0)::float8
    FROM (SELECT r FROM nudge.reminders r
           WHERE (EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.paced_until > now())
                  OR EXISTS (SELECT 1 FROM nudge.paced_targets t WHERE t.paced_until > now()))
             AND r.status = 'ACTIVE' AND r.next_run_at > now()
             AND r.next_run_at <= now() + interval '20 seconds'
           ORDER BY r.next_run_at
           LIMIT p_read_cap) w
   WHERE (w.r).leased_by IS NULL AND (w.r).channel = 'webhook' AND (w.r).occurrence_at IS NOT NULL
     AND (EXISTS (SELECT 1 FROM nudge.target_hosts h
                   WHERE h.paced_until > now()
                     AND h.host = coalesce(nudge.target_host((w.r).target), nudge.webhook_host(w.r)))
          OR EXISTS (SELECT 1 FROM nudge.paced_targets t
                      WHERE t.paced_until > now()
                        AND t.url = coalesce(nudge.target_url((w.r).target), nudge.webhook_url(w.r))))
$$;

-- Name: FUNCTION paced_backlog(p_read_cap integer, OUT deliveries bigint, OUT oldest_seconds double precision); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.paced_backlog(p_read_cap integer, OUT deliveries bigint, OUT oldest_seconds double precision) IS 'The webhook deliveries waiting for a host or URL paced now (held until their send times, or retrying within 20 s: ACTIVE, not leased, an occurrence kept, due in the next 20 s), counted among the p_read_cap earliest reminders due then, and how long the oldest of their occurrences has been due (0: none); nothing is read while none is paced.';

-- Name: paced_until(double precision, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.paced_until(p_pace double precision, p_limited_at timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT p_limited_at + (cbrt(1e4::float8) + cbrt((1000 * 0.7 / p_pace - 1) / 3e-5))
                        * interval '1 second'
$$;

-- Name: FUNCTION paced_until(p_pace double precision, p_limited_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.paced_until(p_pace double precision, p_limited_at timestamp with time zone) IS 'When a pace of p_pace at p_limited_at, growing as nudge.pace_at says, passes 1,000 a second: the host or URL is no longer paced from then.';

-- Name: pause_reminder(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.pause_reminder(p_id bigint) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE v_row nudge.reminders := nudge.lock_reminder(p_id);
BEGIN
  IF v_row.status = 'PAUSED' THEN RETURN v_row; END IF;
  IF v_row.status <> 'ACTIVE' THEN
    RAISE EXCEPTION 'reminder % is %, only an ACTIVE reminder can be paused', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE nudge.reminders SET status = 'PAUSED', updated_at = now() WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Name: FUNCTION pause_reminder(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.pause_reminder(p_id bigint) IS 'ACTIVE becomes PAUSED (nothing is claimed while paused; a fire in flight is recorded but does not resume it); pausing a PAUSED reminder changes nothing; any other status raises NU409, a missing reminder NU404.';

-- Name: pause_reminders(bigint[], text, text, text, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.pause_reminders(p_ids bigint[] DEFAULT NULL::bigint[], p_status text DEFAULT NULL::text, p_entity_type text DEFAULT NULL::text, p_entity_id text DEFAULT NULL::text, p_event_type text DEFAULT NULL::text, p_channel text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql
    AS $$
  SELECT nudge.change_matching_reminders('pause', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;

-- Name: FUNCTION pause_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.pause_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses up to 10,000 ACTIVE reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.pause_reminder would each; answers {count, ids, more}; more = true when others still match; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

-- Name: placeholder_problem(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.placeholder_problem(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT CASE WHEN p_name ~ '^(entity_type|entity_id|event_type|event_id|data(\.[A-Za-z0-9_-]+)+)$'
              THEN NULL
              ELSE format('{{%s}} is not a placeholder (known: {{entity_type}}, {{entity_id}}, '
                          '{{event_type}}, {{event_id}}, {{data.some.path}})', p_name) END
$_$;

-- Name: FUNCTION placeholder_problem(p_name text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.placeholder_problem(p_name text) IS 'NULL when p_name names a value of an event (entity_type, entity_id, event_type, event_id, data.<path>), else why not.';

-- Name: placeholder_sql(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.placeholder_sql(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE p_name
           WHEN 'entity_type' THEN 'to_jsonb(e.entity_type)'
           WHEN 'entity_id' THEN 'to_jsonb(e.entity_id)'
           WHEN 'event_type' THEN 'to_jsonb(e.event_type)'
           WHEN 'event_id' THEN 'to_jsonb(e.id)'
           ELSE format('(e.data #> %L::text[])', string_to_array(substr(p_name, 6), '.')::text) END
$$;

-- Name: FUNCTION placeholder_sql(p_name text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.placeholder_sql(p_name text) IS 'The SQL expression (over a batch row e) for the JSON value a known placeholder name stands for.';

-- Name: preview_reminder(text, timestamp with time zone, integer, timestamp with time zone, integer, text, text, integer, timestamp with time zone, text, integer, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.preview_reminder(p_schedule_type text, p_from timestamp with time zone DEFAULT NULL::timestamp with time zone, p_count integer DEFAULT 5, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_misfire_policy text DEFAULT 'fire_once'::text, p_misfire_threshold_seconds integer DEFAULT 60, p_fire_all_cap integer DEFAULT 100) RETURNS SETOF text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF p_misfire_policy IS NULL OR p_misfire_policy NOT IN ('fire_once', 'skip', 'fire_all') THEN
    PERFORM nudge.reject('misfire_policy', 'must be one of fire_once, skip, fire_all');
  END IF;
  IF p_misfire_policy <> 'fire_once' AND p_schedule_type = 'one_time' THEN
    PERFORM nudge.reject('misfire_policy', 'is only for recurring and cron reminders (one_time takes fire_once)');
  END IF;
  -- The ranges of [misfire] threshold_seconds and fire_all_cap.
  IF p_misfire_threshold_seconds IS NULL OR p_misfire_threshold_seconds NOT BETWEEN 1 AND 86400 THEN
    PERFORM nudge.reject('misfire_threshold_seconds', 'must be 1 to 86400');
  END IF;
  IF p_fire_all_cap IS NULL OR p_fire_all_cap NOT BETWEEN 1 AND 10000 THEN
    PERFORM nudge.reject('fire_all_cap', 'must be 1 to 10000');
  END IF;
  -- From p_from on (nudge.preview_schedule lists those strictly after its p_from: 1 us before,
  -- except at the earliest time), an interval schedule without run_at starting at p_from as its
  -- create does. A first fire already past is the reminder's first next_run_at: the claim at
  -- p_from fires it once (fire_once), fires every occurrence due by then missed by no more than
  -- the threshold and skips the older ones (skip), or fires every occurrence due by then up to
  -- ends_at, the newest p_fire_all_cap (fire_all); these fires are listed at p_from, even past ends_at when their occurrences are
  -- not. Then none past max_fires (counted from the first listed) nor after ends_at (a fire at
  -- it still happens).
  RETURN QUERY
  WITH s AS (
    SELECT f.at,
           CASE WHEN f.at > nudge.earliest_time() THEN f.at - interval '1 microsecond' ELSE f.at END
             AS after,
           coalesce(p_run_at, CASE WHEN p_schedule_type = 'recurring' THEN f.at END) AS run_at
      FROM (SELECT coalesce(p_from, now()) AS at) f
  ), m AS (
    SELECT s.*,
           CASE WHEN s.run_at < s.at
                THEN (SELECT p.t::timestamptz
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               greatest(s.run_at - interval '1 microsecond', nudge.earliest_time()),
                               1, s.run_at, p_interval_seconds, p_cron, p_timezone) p(t))
           END AS first_at
      FROM s
  ), c AS (
    SELECT m.*,
           CASE WHEN m.first_at IS NULL OR m.first_at >= m.at OR m.first_at > p_ends_at THEN 0
                -- Skipped, but for the occurrences missed by no more than the threshold: each
                -- of those fires.
                WHEN p_misfire_policy = 'skip'
                THEN (SELECT count(*)::integer
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               greatest(m.first_at - interval '1 microsecond',
                                        m.at - p_misfire_threshold_seconds * interval '1 second'),
                               p_count, m.run_at, p_interval_seconds, p_cron, p_timezone) p(t)
                       WHERE p.t::timestamptz <= m.at
                         AND (p_ends_at IS NULL OR p.t::timestamptz <= p_ends_at))
                WHEN p_misfire_policy = 'fire_all'
                THEN (SELECT count(*)::integer
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               greatest(m.first_at - interval '1 microsecond', nudge.earliest_time()),
                               least(p_count, p_fire_all_cap), m.run_at, p_interval_seconds,
                               p_cron, p_timezone) p(t)
                       WHERE p.t::timestamptz <= m.at
                         AND (p_ends_at IS NULL OR p.t::timestamptz <= p_ends_at))
                ELSE 1 END AS caught_up,
           -- After a first fire already past, the claim at p_from has taken the occurrences
           -- due then, one at p_from too: the schedule goes on strictly after it.
           CASE WHEN m.first_at < m.at THEN m.at ELSE m.after END AS resume
      FROM m
  ), l AS (
    SELECT nudge.rfc3339_in_zone(c.at, nudge.rfc3339_zone(c.at, CASE WHEN p_schedule_type = 'cron'
                                            THEN nudge.checked_timezone(coalesce(p_timezone, 'UTC'))
                                            ELSE 'UTC' END)) AS t,
           0::bigint AS n, true AS caught_up
      FROM c, generate_series(1, c.caught_up)
    UNION ALL
    SELECT p.t, p.n, false
      FROM c, nudge.preview_schedule(p_schedule_type, c.resume, p_count, c.run_at,
                                     p_interval_seconds, p_cron, p_timezone)
                WITH ORDINALITY p(t, n)
  ), o AS (
    SELECT l.t, l.caught_up, row_number() OVER (ORDER BY l.n) AS n FROM l
  )
  SELECT o.t FROM o
   WHERE o.n <= p_count AND (p_max_fires IS NULL OR o.n <= p_max_fires)
     AND (o.caught_up OR p_ends_at IS NULL OR o.t::timestamptz <= p_ends_at)
   ORDER BY o.n;
END $$;

-- Name: FUNCTION preview_reminder(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text, p_max_fires integer, p_ends_at timestamp with time zone, p_misfire_policy text, p_misfire_threshold_seconds integer, p_fire_all_cap integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.preview_reminder(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text, p_max_fires integer, p_ends_at timestamp with time zone, p_misfire_policy text, p_misfire_threshold_seconds integer, p_fire_all_cap integer) IS 'The first p_count (1..100) fire times of a reminder created at p_from (default now) with this schedule and misfire policy, in order: a first fire already past fires at p_from once (fire_once), once per occurrence due by p_from and missed by no more than p_misfire_threshold_seconds, up to p_ends_at (skip: none when all are past it), or once per occurrence due by p_from up to p_ends_at, the newest p_fire_all_cap of them (fire_all), each listed at p_from even when that is past p_ends_at, the schedule going on strictly after p_from; otherwise every fire from p_from on, p_from included (an interval schedule without run_at starts at p_from); none past p_max_fires nor after p_ends_at; as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given); a policy other than fire_once for one_time, a threshold outside 1..86400 or a cap outside 1..10000 raises 22023 naming it, as do the errors of nudge.preview_schedule.';

-- Name: preview_schedule(text, timestamp with time zone, integer, timestamp with time zone, integer, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer DEFAULT 5, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text) RETURNS SETOF text
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
      RETURN NEXT nudge.rfc3339_in_zone(v_at, nudge.rfc3339_zone(v_at, v_zone));
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
  IF p_interval_seconds IS NULL THEN
    PERFORM nudge.reject('interval_seconds', 'is required for recurring');
  END IF;
  IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
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

-- Name: FUNCTION preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text) IS 'The next p_count (1..100) fire times strictly after p_from of a schedule as a create would take it (one_time: run_at; recurring: every interval from run_at, or from p_from; cron: the expression''s occurrences at or after run_at in its zone, under the cron daylight-saving rules), as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given), none after 9999-12-31T23:59:59Z (where a reminder ends: a from at or past it lists none); the 22023 errors a create would give for the schedule itself, and for a run_at, or a from, before 0001-01-01T00:00:00Z (a run_at after 9999-12-31T23:59:59Z too), naming it.';

-- Name: prune_history(interval, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.prune_history(p_keep interval, p_limit integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_audit      text := current_setting('nudge.audit', true);
  v_executions integer;
  v_attempts   integer;
  v_reminders  integer;
  v_events     integer;
  v_audited    integer;
  v_changes    integer;
BEGIN
  -- One prune at a time, by a row lock only roles that may change the history can take (an
  -- advisory lock, which any login may hold, let one that held it stop every prune).
  PERFORM 1 FROM nudge.changes_pruned FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  PERFORM set_config('nudge.audit', 'off', true);
  DELETE FROM nudge.executions e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.executions x
                              WHERE x.fired_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_executions = ROW_COUNT;
  DELETE FROM nudge.delivery_attempts a
   WHERE a.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.delivery_attempts x
                              WHERE x.attempted_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_attempts = ROW_COUNT;
  DELETE FROM nudge.reminders r
   WHERE r.id = ANY (ARRAY(SELECT x.id FROM nudge.reminders x
                            WHERE x.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
                              AND x.finished_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_reminders = ROW_COUNT;
  DELETE FROM nudge.events e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.events x
                              WHERE x.received_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_events = ROW_COUNT;
  -- The oldest p_limit by id, of which those older than p_keep: the primary key is the only
  -- index, and ids rise with time.
  DELETE FROM nudge.audit a
   WHERE a.id = ANY (ARRAY(SELECT x.id FROM (SELECT y.id, y.changed_at FROM nudge.audit y
                                               ORDER BY y.id LIMIT p_limit) x
                            WHERE x.changed_at < now() - p_keep));
  GET DIAGNOSTICS v_audited = ROW_COUNT;
  -- The oldest batches first, never the last (the next starts from its snapshot), with the
  -- rows of their transactions.
  WITH batches AS (
    DELETE FROM nudge.change_batches b
     WHERE b.pos = ANY (ARRAY(SELECT x.pos FROM nudge.change_batches x
                               WHERE x.at < now() - p_keep
                                 AND x.pos < (SELECT max(y.pos) FROM nudge.change_batches y)
                               ORDER BY x.pos LIMIT p_limit))
    RETURNING b.pos, b.xids
  ), noted AS (
    UPDATE nudge.changes_pruned s SET pos = l.pos
      FROM (SELECT max(b.pos) AS pos FROM batches b) l WHERE l.pos > s.pos
  ), pruned AS (
    DELETE FROM nudge.changes c
     WHERE c.xid = ANY (ARRAY(SELECT x FROM batches b, unnest(b.xids) x))
    RETURNING 1
  )
  SELECT count(*)::integer INTO v_changes FROM pruned;
  PERFORM set_config('nudge.audit', coalesce(v_audit, ''), true);
  RETURN v_executions + v_attempts + v_reminders + v_events + v_audited + v_changes;
END $$;

-- Name: FUNCTION prune_history(p_keep interval, p_limit integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.prune_history(p_keep interval, p_limit integer) IS 'Deletes up to p_limit each of executions, delivery attempts, finished reminders, events, audit rows (the oldest, without auditing the deletes) and batches of the stream''s change log with their changes (the oldest but never the last, noting the last pruned batch in nudge.changes_pruned) older than p_keep; when several workers call it at once only one does the work; returns how many rows went.';

-- Name: put_contact(text, text, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) RETURNS TABLE(created boolean, contact nudge.contacts)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
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
  -- Sent as written, as a reminder's target is: braces would go out literally.
  IF strpos(p_address, '{{') > 0 AND nudge.secret_address_name(p_address) IS NULL THEN
    PERFORM nudge.reject('address', 'a contact''s address is not a template: it is sent as written, so it must not hold {{');
  END IF;
  INSERT INTO nudge.contacts AS c (entity_type, entity_id, channel, address)
  VALUES (p_entity_type, p_entity_id, p_channel, p_address)
  ON CONFLICT ON CONSTRAINT one_address_per_entity_and_channel
  DO UPDATE SET address = EXCLUDED.address
  -- The row an update wrote carries the lock ON CONFLICT took (xmax); an insert's has none. A
  -- read beside the call, in the statement's snapshot, missed an insert committed meanwhile, so
  -- that several of twenty PUTs at once said they created it (explore32a F6).
  RETURNING c.xmax = 0 INTO created;
  SELECT c.* INTO contact FROM nudge.contacts c
   WHERE c.entity_type = p_entity_type AND c.entity_id = p_entity_id AND c.channel = p_channel;
  RETURN NEXT;
END $$;

-- Name: FUNCTION put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) IS 'Sets where (p_entity_type, p_entity_id) is reached on p_channel (webhook or email), replacing the old address from the next claim on; 22023 naming the field for bad input (an entity_type or entity_id empty, over 200 characters or only white space, a channel or address that is not one, an address holding {{, which would be sent literally, other than a webhook''s {{secret.NAME}} alone); returns the contact, and whether this call created it (false: it replaced the address).';

-- Name: queue_wake_up(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.queue_wake_up() RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF coalesce(pg_catalog.current_setting('nudge.notify_after_commit', true), '') <> 'on' THEN
    PERFORM pg_catalog.pg_notify('nudge_due', '');
  END IF;
END $$;

-- Name: FUNCTION queue_wake_up(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.queue_wake_up() IS 'Queues the wake-up hint on channel nudge_due for this transaction, unless the session has set nudge.notify_after_commit = on and so promised to send it itself after commit.';

-- Name: record_event(text, text, text, jsonb, text, timestamp with time zone, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  -- A rule's action can complete reminders, whose lifecycle events run rules in turn: the
  -- depth of this event in that chain, and the event whose rules are running (so also the
  -- cause of any event they emit), travel in settings local to the transaction.
  v_depth   integer := coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0')::integer;
  -- Events in this chain so far, this one included, refused ones too: its root starts the count.
  v_count   integer := CASE WHEN v_depth = 0 THEN 1
                            ELSE coalesce(nullif(current_setting('nudge.chain_events', true), ''),
                                          '0')::integer + 1 END;
  -- nudge.event_id, nudge.rule_id and nudge.rule_path as they were: the first is the cause.
  v_saved   text[] := ARRAY[current_setting('nudge.event_id', true),
                            current_setting('nudge.rule_id', true),
                            current_setting('nudge.rule_path', true)];
  v_event   nudge.events;
  v_rules   nudge.rules[];
  v_rule    nudge.rules;
  v_effects jsonb := '[]'::jsonb;
  v_set     text;  -- set_config's answer, unused: an assignment is cheaper than PERFORM's query
BEGIN
  IF p_key IS NOT NULL THEN
    -- The same key again (perhaps at this moment, from another session: the lock waits for
    -- it to end): the first answer, and nothing changes.
    PERFORM pg_advisory_xact_lock(hashtextextended('nudge.events.key ' || p_key, 0));
    SELECT * INTO v_event FROM nudge.events WHERE key = p_key;
    IF FOUND THEN
      RETURN jsonb_build_object('created', false, 'event', nudge.event_json(v_event),
                                'effects', v_event.effects);
    END IF;
  END IF;

  -- The id first, the row last: rules need the id, and the row is written once, effects and all.
  v_event := ROW(nextval('nudge.events_id_seq'), p_event_type, p_entity_type, p_entity_id, p_data,
                 p_key, coalesce(p_occurred_at, now()), now(),
                 CASE WHEN v_depth > 0 THEN nullif(v_saved[1], '')::bigint END, v_depth, '[]'::jsonb,
                 CASE WHEN v_depth >= 8 THEN 'a chain of rules deeper than 8 events: not run'
                      WHEN v_count > 1000 THEN 'a chain of rules of more than 1000 events: not run'
                 END)
             ::nudge.events;
  IF v_depth > 0 THEN
    -- Every event of a chain counts, refused ones too: counted only where rules ran, a chain
    -- of 1,000 such events, each running 10 rules, wrote 10,011 events and 9,991 reminders in
    -- 17.8 s (explore26a #2).
    v_set := set_config('nudge.chain_events', v_count::text, true);
  END IF;
  IF v_event.refused IS NULL THEN
    v_rules := ARRAY(SELECT r FROM nudge.rules r
                      WHERE r.event_type = p_event_type AND r.enabled
                      -- Cancels first: "cancel, then remind" of one event type replaces a live
                      -- reminder whichever rule was made first (explore31b F2).
                      ORDER BY (r.action->>'type') <> 'cancel', r.id);
  ELSIF current_setting('nudge.chain_warned', true) IS DISTINCT FROM 'on' THEN
    -- Once per chain (each refused event is in nudge.events): one per event flooded the log.
    v_set := set_config('nudge.chain_warned', 'on', true);
    RAISE WARNING 'nudge: event % (%) refused: %', v_event.id, p_event_type, v_event.refused;
  END IF;
  IF cardinality(v_rules) > 0 THEN
    -- Only events whose rules run can cause more: they carry the chain's count (a root starts
    -- a new chain, warned of nothing yet).
    v_set := set_config('nudge.event_depth', (v_depth + 1)::text, true)
             || set_config('nudge.event_id', v_event.id::text, true)
             || set_config('nudge.chain_events', v_count::text, true)
             || CASE WHEN v_depth = 0 THEN set_config('nudge.chain_warned', 'off', true) ELSE '' END;
    FOREACH v_rule IN ARRAY v_rules LOOP
      CONTINUE WHEN v_rule."when" <> '{}'::jsonb AND NOT nudge.rule_matches(v_rule."when", v_event);
      IF p_own THEN
        -- Nudge's own events never fail the change that caused them (a worker's finish, a
        -- flag): a rule that cannot run for one is recorded with its error instead.
        BEGIN
          v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
        EXCEPTION WHEN SQLSTATE 'NU422' OR invalid_parameter_value THEN
          v_effects := v_effects || jsonb_build_object('rule_id', v_rule.id,
                                                       'type', v_rule.action->>'type',
                                                       'error', SQLERRM);
          -- Counted for the workers' /metrics (nudge_rule_failures_total) in whichever session
          -- it happens: a sequence, as it must count without a lock or a row written.
          PERFORM nextval('nudge.rule_failures');
          -- Else nobody hears of it (an escalation silently missing): once per transaction,
          -- as a worker's finish may end many reminders of one failing rule.
          IF current_setting('nudge.rule_failure_warned', true) IS DISTINCT FROM 'on' THEN
            v_set := set_config('nudge.rule_failure_warned', 'on', true);
            RAISE WARNING 'nudge: rule % did not run for event % (%): %', v_rule.id, v_event.id,
              p_event_type, SQLERRM;
          END IF;
        END;
      ELSE
        v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
      END IF;
    END LOOP;
    -- This event may be Nudge's own, emitted while another rule's action runs: that rule's
    -- context comes back.
    v_set := set_config('nudge.event_depth', v_depth::text, true)
             || set_config('nudge.event_id', coalesce(v_saved[1], ''), true)
             || set_config('nudge.rule_id', coalesce(v_saved[2], ''), true)
             || set_config('nudge.rule_path', coalesce(v_saved[3], ''), true);
  END IF;
  v_event.effects := v_effects;
  INSERT INTO nudge.events OVERRIDING SYSTEM VALUE SELECT v_event.*;
  RETURN jsonb_build_object('created', true, 'event', nudge.event_json(v_event),
                            'effects', v_effects);
END $$;

-- Name: FUNCTION record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) IS 'Records an event and runs every enabled rule of its type whose conditions hold, its cancel rules first, then the others, each in id order; answers {created, event, effects}; the same key again answers the first event and effects and changes nothing; for Nudge''s own events (p_own) a rule that cannot run is recorded in the effects instead of failing, counted in the sequence nudge.rule_failures (also when the transaction rolls back), and PostgreSQL''s log gets one warning per transaction; an event deeper than 8 in a chain of rules, or past the 1,000th event of its chain (every event counts, refused ones too), is recorded as refused and its rules are not run (one warning per chain).';

-- Name: record_events(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.record_events(p_items jsonb) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
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
           x.v->>'entity_type', x.v->>'entity_id', coalesce(nullif(x.v->'data', 'null'::jsonb), '{}'::jsonb),
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
                   GROUP BY e.entity_type, e.entity_id HAVING count(*) > 1)
       -- A cancel of another entity's reminders may end one an earlier item makes: only in
       -- the items' order, one by one (rule by rule, every cancel ran first: explore31d F2).
       OR EXISTS (SELECT 1 FROM nudge.rules r
                   WHERE r.enabled AND r.action->>'type' = 'cancel'
                     AND r.action->'cancel' ?| ARRAY['entity_type', 'entity_id']
                     AND r.event_type IN (SELECT e.event_type FROM pg_temp.nudge_batch_event e)) THEN
      RAISE EXCEPTION USING ERRCODE = 'NU000';
    END IF;
    -- Each item is a chain of its own, as one posted event is: n roots and their caused events
    -- stay within n x 1,000 (nudge.record_event refuses an event whose count passes 1,000).
    PERFORM set_config('nudge.event_depth', '1', true),
            set_config('nudge.chain_events',
                       (jsonb_array_length(p_items) - 1000 * (jsonb_array_length(p_items) - 1))::text,
                       true);
    FOR v_rule IN SELECT * FROM nudge.rules r
                   WHERE r.enabled
                     AND r.event_type IN (SELECT DISTINCT e.event_type FROM pg_temp.nudge_batch_event e)
                   ORDER BY (r.action->>'type') <> 'cancel', r.id LOOP  -- as nudge.record_event
      CASE v_rule.action->>'type'
        WHEN 'remind' THEN
          -- The rule's reminders go straight into the create's staging table, one row per event,
          -- each template rendered once (a MATERIALIZED row); the same statement says whether
          -- the events filled every field. A field the template does not give is NULL (the
          -- entity: the event's), as a create item without it.
          SELECT string_agg(format('%s AS %I', v_rule.compiled->'columns'->>c.name, c.name), ', ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 -- (A time from the event's data must be RFC 3339 with an offset too.)
                 string_agg(CASE c.name WHEN 'ends_at'
                                 THEN 'x.ends_at IS NULL OR NOT nudge.is_rfc3339(x.ends_at #>> ''{}'')'
                                 ELSE format('x.%I IS NULL', c.name) END, ' OR ')
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
                                      'reminder', nudge.reminder_json(c.reminder), 'created', c.created)
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
            -- As nudge.apply_rule cancels: those still live once locked, in id order.
            FROM (SELECT m.ord, array_agg(m.id ORDER BY m.id) FILTER (WHERE m.id IS NOT NULL) AS ids
                    FROM (SELECT f2.ord, CASE WHEN r.id IS NOT NULL
                                              THEN nudge.cancel_if_live(r.id) END AS id
                            FROM pg_temp.nudge_batch_effect f2
                            LEFT JOIN nudge.reminders r
                              ON r.entity_type = f2.item->>'entity_type'
                             AND r.entity_id = f2.item->>'entity_id'
                             AND r.event_type = f2.item->>'event_type'
                             AND r.status IN ('ACTIVE', 'PAUSED')
                           WHERE f2.rule_id = v_rule.id
                           ORDER BY r.id) m
                   GROUP BY m.ord) c
           WHERE f.rule_id = v_rule.id AND f.ord = c.ord;
      END CASE;
    END LOOP;
    PERFORM set_config('nudge.event_depth', '', true), set_config('nudge.chain_events', '', true);

    -- to_jsonb(array_agg(...)), not jsonb_agg: jsonb_agg takes each value apart token by token
    -- (about 15% slower for a batch's effects). The answer is written as text, in jsonb's own
    -- order and spacing: building it as jsonb copied every effect twice more, token by token.
    WITH effects AS (
      SELECT f.ord, to_jsonb(array_agg(f.effect ORDER BY (f.effect->>'type') <> 'cancel', f.rule_id)) AS effects
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

-- Name: FUNCTION record_events(p_items jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.record_events(p_items jsonb) IS 'nudge.emit_events answered as the text of its jsonb (the same key order and spacing), for the API: records every item of p_items and runs their rules (in nudge.record_event''s order) in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value of the wrong JSON type, an occurred_at that is not RFC 3339 with an offset) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that its cancel rules cause when each rule runs once over all its events do not name their cause (all others do), and are bounded as n chains of 1,000 events would be (n items), in all.';

-- Name: record_host_outcomes(text, nudge.worker_policy, text[], bigint[], boolean[], text[], boolean[], integer[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_failing   text[];         -- hosts that failed in this batch
  v_limiting  text[];         -- hosts that answered 429 in it
  v_changes   text[];         -- notifications of the breakers that changed state
  v_moved     text[];         -- breakers that held deliveries and moved their probe time:
  v_held      timestamptz[];  -- the time their deliveries wait for,
  v_next      timestamptz[];  -- and the new one (NULL: closed, due now)
  v_host_wide text[];         -- hosts whose 429s pace the whole host,
  v_urls      text[];         -- else the URLs that answered 429, paced each on its own,
  v_url_hosts text[];         -- their hosts,
  v_accepted  bigint[];       -- the requests each accepted in the batch,
  v_url_waits integer[];      -- its largest Retry-After,
  v_url_alone boolean[];      -- and whether it was refused alone (sent once, not paced)
BEGIN
  v_failing := ARRAY(SELECT DISTINCT o.host FROM unnest(p_hosts, p_failed) AS o(host, failed)
                      WHERE o.failed ORDER BY o.host);
  -- A host gets its row with its first failure. Rows that may change are created and then
  -- locked in host order, so that two finishes sharing hosts never wait for each other in a
  -- circle; a host with a clean record that only answered is neither locked nor written.
  v_limiting := ARRAY(SELECT DISTINCT o.host FROM unnest(p_hosts, p_limited) AS o(host, limited)
                       WHERE o.limited ORDER BY o.host);
  INSERT INTO nudge.target_hosts (host) SELECT unnest(v_failing || v_limiting)
  ON CONFLICT (host) DO NOTHING;
  PERFORM 1 FROM nudge.target_hosts h
   WHERE h.host = ANY (p_hosts)
     AND (h.state <> 'closed' OR h.consecutive_failures > 0
          OR h.host = ANY (v_failing || v_limiting))
   ORDER BY h.host
     FOR UPDATE;

  -- Whose limit a 429 is (0135): Slack's incoming webhooks limit each URL, so one tenant's burst
  -- paced a host shared by ten and the other nine's webhooks were 406 s late (explore24a #1);
  -- but a receiver limiting the whole host with a URL per recipient answers 429 to URLs sent
  -- once each, and pacing each of those on its own would not slow the host down at all. So a
  -- 429 paces its URL, unless two URLs of the host were refused alone (sent only once in their
  -- batch, and not paced) in the batch or within 2 s: then the whole host. (A URL refused among
  -- several of its own requests is over a limit of its own: 0141.)
  -- A host paced already stays paced whole, and an address that is no URL ({{secret.NAME}}:
  -- one URL) is paced as its host.
  IF cardinality(v_limiting) > 0 THEN
    WITH attempt AS (
      SELECT o.host, coalesce(nudge.target_url(r.target), nudge.webhook_url(r)) AS url, o.failed,
             o.limited, o.wait
        FROM unnest(p_hosts, p_ids, p_failed, p_limited, p_retry_after_seconds)
               AS o(host, id, failed, limited, wait)
        JOIN nudge.reminders r ON r.id = o.id
       WHERE o.host = ANY (v_limiting)
    ), per_url AS (
      SELECT a.host, a.url, count(*) AS sent, count(*) FILTER (WHERE a.limited) AS limited,
             count(*) FILTER (WHERE NOT a.failed AND NOT a.limited) AS accepted,
             max(a.wait) FILTER (WHERE a.limited) AS wait,
             EXISTS (SELECT 1 FROM nudge.paced_targets t
                      WHERE t.url = a.url AND t.paced_until > now()) AS paced
        FROM attempt a
       GROUP BY a.host, a.url
    ), per_host AS (
      SELECT u.host,
             EXISTS (SELECT 1 FROM nudge.target_hosts h
                      WHERE h.host = u.host AND h.paced_until > now())
             OR bool_or(u.limited > 0 AND u.url IS NULL)
             OR count(*) FILTER (WHERE u.limited > 0 AND u.sent = 1 AND NOT u.paced) > 1
             OR (bool_or(u.limited > 0 AND u.sent = 1 AND NOT u.paced)
                 AND EXISTS (SELECT 1 FROM nudge.paced_targets t
                              WHERE t.host = u.host AND t.alone
                                AND t.refused_at > now() - interval '2 seconds'
                                AND t.url <> ALL (array_agg(u.url) FILTER (WHERE u.limited > 0))))
               AS whole
        FROM per_url u
       GROUP BY u.host
    )
    SELECT array_agg(ph.host) FILTER (WHERE ph.whole),
           array_agg(u.url ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.host ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.accepted ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.wait ORDER BY u.url) FILTER (WHERE NOT ph.whole AND u.limited > 0),
           array_agg(u.sent = 1 AND NOT u.paced ORDER BY u.url)
             FILTER (WHERE NOT ph.whole AND u.limited > 0)
      INTO v_host_wide, v_urls, v_url_hosts, v_accepted, v_url_waits, v_url_alone
      FROM per_url u JOIN per_host ph ON ph.host = u.host;
  END IF;

  -- Decided on the rows as they are now (locked above): any answer closes the breaker and
  -- clears the count; failures add to it, and open a closed breaker at the threshold; the
  -- probe's failure opens a probing one again for twice the time. A 429 is an answer, and
  -- paces the host (see the pacing columns of nudge.target_hosts).
  WITH outcome AS (
    SELECT o.host, count(*) FILTER (WHERE o.failed) AS failures, bool_or(NOT o.failed) AS answered,
           count(*) FILTER (WHERE o.limited) AS limited,
           o.host = ANY (coalesce(v_host_wide, '{}')) AS host_wide,
           count(*) FILTER (WHERE NOT o.failed AND NOT o.limited) AS accepted,
           max(o.wait) FILTER (WHERE o.limited) AS wait,
           max(o.wait) FILTER (WHERE o.failed) AS failed_wait,
           array_agg(o.id) FILTER (WHERE o.failed) AS failed_ids,
           -- What on-call reads first about a failing host: its batch's last failure.
           (array_agg(left(o.error, 500) ORDER BY o.n DESC) FILTER (WHERE o.failed))[1] AS error
      FROM unnest(p_hosts, p_ids, p_failed, p_errors, p_limited, p_retry_after_seconds)
             WITH ORDINALITY AS o(host, id, failed, error, limited, wait, n)
     GROUP BY o.host
  ), decided AS (
    SELECT h.host, h.state AS from_state, h.next_probe_at AS held_until, o.answered, o.failures,
           o.error, t.to_state, o.limited, o.host_wide, p.cut, p.pace,
           least(coalesce(o.wait, 0)::bigint * 1000, p_policy.retry_max_ms)
             * interval '1 millisecond' AS wait_time,
           CASE WHEN t.to_state <> 'open' OR h.state = 'open' THEN h.open_seconds
                WHEN h.state = 'probing'
                  THEN least(h.open_seconds * 2,
                             greatest(p_policy.breaker_max_open_seconds,
                                      p_policy.breaker_open_seconds))
                -- A host that said when to come back (a 503's Retry-After) is probed then, if
                -- sooner: its deliveries waited a minute for a Retry-After of 5 s (explore24a #8).
                WHEN o.failed_wait > 0 THEN least(p_policy.breaker_open_seconds, o.failed_wait)
                ELSE p_policy.breaker_open_seconds END AS open_seconds
      FROM nudge.target_hosts h
      JOIN outcome o ON o.host = h.host
     CROSS JOIN LATERAL (
           SELECT CASE WHEN o.answered THEN 'closed'
                       WHEN h.state = 'closed'
                            AND h.consecutive_failures + o.failures >= p_policy.breaker_failures
                         THEN 'open'
                       WHEN h.state = 'probing' AND h.probe_worker = p_worker
                            AND h.probe_reminder_id = ANY (o.failed_ids) THEN 'open'
                       ELSE h.state END AS to_state) t
     -- A 429 to a host paced whole cuts the pace the host is sent at (nudge.pace_after_429),
     -- once per second: the 429s of one burst arrive in several finishes.
     CROSS JOIN LATERAL (
           SELECT o.limited > 0 AND o.host_wide
                  AND NOT coalesce(h.limited_at > now() - interval '1 second', false) AS cut,
                  nudge.pace_after_429(nudge.host_pace(h, now()), o.accepted) AS pace) p
     WHERE h.state <> 'closed' OR h.consecutive_failures > 0 OR o.failures > 0 OR o.limited > 0
  ), changed AS (
    UPDATE nudge.target_hosts h
       SET state = d.to_state,
           consecutive_failures = CASE WHEN d.answered THEN 0
                                       ELSE h.consecutive_failures + d.failures END,
           last_error = CASE WHEN d.answered THEN NULL
                             WHEN d.failures > 0 THEN coalesce(d.error, 'no error text')
                             ELSE h.last_error END,
           open_seconds = CASE WHEN d.to_state = 'closed' THEN NULL ELSE d.open_seconds END,
           opened_at = CASE WHEN d.to_state = 'closed' THEN NULL
                            WHEN d.to_state = 'open' AND d.from_state <> 'open' THEN now()
                            ELSE h.opened_at END,
           next_probe_at = CASE WHEN d.to_state = 'closed' THEN NULL
                                -- Jittered (0.8 to 1.2 times the open time): probes at
                                -- exact doublings met a receiver down 30 s in every minute
                                -- in its down phase each time, for ever (explore23a #2).
                                WHEN d.to_state = 'open' AND d.from_state <> 'open'
                                  THEN now() + d.open_seconds * (0.8 + 0.4 * random())
                                               * interval '1 second'
                                ELSE h.next_probe_at END,
           probe_worker = CASE WHEN d.to_state = 'probing' THEN h.probe_worker END,
           probe_reminder_id = CASE WHEN d.to_state = 'probing' THEN h.probe_reminder_id END,
           pace = CASE WHEN d.cut THEN d.pace ELSE h.pace END,
           -- The pace grows once the host may be sent to again (while it waits for its
           -- Retry-After, a growing pace would meet its limit as soon as it ends): paced until
           -- it would pass 1,000 a second.
           limited_at = CASE WHEN d.cut THEN now() + d.wait_time ELSE h.limited_at END,
           paced_until = CASE WHEN d.cut THEN nudge.paced_until(d.pace, now() + d.wait_time)
                              ELSE h.paced_until END,
           -- No request before the host's Retry-After (up to the policy's longest retry delay).
           next_send_at = CASE WHEN d.limited > 0 AND d.host_wide
                               THEN greatest(h.next_send_at, now() + d.wait_time)
                               ELSE h.next_send_at END,
           updated_at = now()
      FROM decided d
     WHERE h.host = d.host
    RETURNING h.host, h.state, h.next_probe_at, d.from_state, d.held_until,
              nudge.breaker_change(h, d.from_state, p_worker) AS change
  )
  SELECT array_agg(c.change) FILTER (WHERE c.from_state <> c.state),
         array_agg(c.host) FILTER (WHERE c.moves),
         array_agg(c.held_until) FILTER (WHERE c.moves),
         array_agg(c.next_probe_at) FILTER (WHERE c.moves)
    INTO v_changes, v_moved, v_held, v_next
    FROM (SELECT ch.*, ch.from_state <> 'closed' AND ch.held_until IS NOT NULL
                       AND ch.next_probe_at IS DISTINCT FROM ch.held_until AS moves
            FROM changed ch) c;
  PERFORM pg_notify('nudge_breaker', n) FROM unnest(v_changes) AS n;

  -- A 429 to a URL paced on its own: as a host's, once per second its pace is cut
  -- (nudge.pace_after_429) and no request goes to it before its Retry-After. Rows are locked in URL order, after their hosts', as every finish does.
  IF v_urls IS NOT NULL THEN
    PERFORM 1 FROM nudge.paced_targets t WHERE t.url = ANY (v_urls) ORDER BY t.url FOR UPDATE;
    INSERT INTO nudge.paced_targets AS t (url, host, pace, limited_at, paced_until, next_send_at,
                                          refused_at, alone, updated_at)
    SELECT u.url, u.host, c.pace, c.limited_at, c.paced_until, c.next_send_at, now(), u.alone, now()
      FROM unnest(v_urls, v_url_hosts, v_accepted, v_url_waits, v_url_alone)
             AS u(url, host, accepted, wait, alone)
      LEFT JOIN nudge.paced_targets o ON o.url = u.url
     CROSS JOIN LATERAL (
           SELECT least(coalesce(u.wait, 0)::bigint * 1000, p_policy.retry_max_ms)
                    * interval '1 millisecond' AS wait_time,
                  NOT coalesce(o.limited_at > now() - interval '1 second', false) AS cut,
                  nudge.pace_after_429(nudge.pace_at(o.pace, o.limited_at, o.paced_until, now()),
                                       u.accepted) AS pace) p
     CROSS JOIN LATERAL (
           SELECT CASE WHEN p.cut THEN p.pace ELSE o.pace END AS pace,
                  CASE WHEN p.cut THEN now() + p.wait_time ELSE o.limited_at END AS limited_at,
                  CASE WHEN p.cut THEN nudge.paced_until(p.pace, now() + p.wait_time)
                       ELSE o.paced_until END AS paced_until,
                  greatest(o.next_send_at, now() + p.wait_time) AS next_send_at) c
    ON CONFLICT (url) DO UPDATE
       SET pace = EXCLUDED.pace, limited_at = EXCLUDED.limited_at,
           paced_until = EXCLUDED.paced_until, next_send_at = EXCLUDED.next_send_at,
           refused_at = EXCLUDED.refused_at, alone = EXCLUDED.alone,
           updated_at = EXCLUDED.updated_at;
    -- The URLs of these hosts no longer paced go (one a concurrent finish holds stays).
    DELETE FROM nudge.paced_targets t
     WHERE t.url IN (SELECT s.url FROM nudge.paced_targets s
                      WHERE s.host = ANY (v_url_hosts) AND s.paced_until <= now()
                        AND s.url <> ALL (v_urls)
                        FOR UPDATE SKIP LOCKED);
  END IF;

  -- The deliveries a breaker held wait for its new next probe, or are due now that it closed:
  -- in doubling waves (one now, two a second later, four the second after: 1,000 in 10 s), as
  -- all at once a receiver that limits its rate refused all but two of 296 in every round until
  -- their attempts were used up (explore23a #1). (The breaker rows stay locked by this
  -- transaction, so no claim holds more meanwhile.) One statement per host, so each looks its
  -- deliveries up by their time in the due index: joined to an array, a generic plan would walk
  -- the whole index.
  FOR i IN 1 .. coalesce(cardinality(v_moved), 0) LOOP
    IF v_next[i] IS NOT NULL THEN
      UPDATE nudge.reminders r
         SET next_run_at = v_next[i], updated_at = now()
       WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held[i] AND r.leased_by IS NULL
         AND r.channel = 'webhook'
         AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_moved[i];
    ELSE
      UPDATE nudge.reminders r
         SET next_run_at = now() + floor(log(2, w.k)) * interval '1 second', updated_at = now()
        FROM (SELECT h.id, row_number() OVER (ORDER BY h.id)::numeric AS k
                FROM nudge.reminders h
               WHERE h.status = 'ACTIVE' AND h.next_run_at = v_held[i] AND h.leased_by IS NULL
                 AND h.channel = 'webhook'
                 AND coalesce(nudge.target_host(h.target), nudge.webhook_host(h)) = v_moved[i]) w
       WHERE r.id = w.id;
    END IF;
  END LOOP;
END $$;

-- Name: FUNCTION record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[], p_limited boolean[], p_retry_after_seconds integer[]) IS 'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer; p_limited: it answered 429, with p_retry_after_seconds): an answer (a 429 included) closes the host''s breaker and clears its failures, making the deliveries it held due in doubling waves (the first now, the next two a second later, then four, and so on, in id order); failures add up, keep the batch''s last failed attempt''s error (p_errors, cut at 500 characters) as the host''s last_error (an answer clears it), and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds, or for the largest Retry-After of the batch''s failed attempts (a 503''s) when that is shorter; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; the next probe is due between 0.8 and 1.2 times the open time after it opened (random, so that probes do not keep meeting a receiver that is down at regular times); a 429 paces its URL (nudge.target_url, in nudge.paced_targets), or the whole host when the host is paced already, the address is no URL, or two URLs of the host were refused alone (sent once in their batch and not paced) in the batch or within 2 s: at most once a second, the pace is cut (nudge.pace_after_429 of nudge.pace_at, or of the requests the host or URL accepted in the batch when not paced), growing from the end of that Retry-After (nudge.pace_at) until it passes 1,000 a second (nudge.paced_until), and no delivery goes to it before its largest Retry-After (up to the policy''s retry_max_ms); the URLs of those hosts no longer paced are deleted; each change of breaker state is notified on nudge_breaker; a batch that changes no breaker and has no 429 reads no reminder.';

-- Name: record_inserted_reminders(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.record_inserted_reminders() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_hint text;  -- pg_notify's answer, unused
BEGIN
  -- Only what a statement asked for directly, in a session that audits, outside rules.
  IF pg_trigger_depth() = 1
     AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
     AND coalesce(NULLIF(current_setting('nudge.event_depth', true), ''), '0') = '0' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT NULLIF(current_setting('nudge.actor', true), ''),
           NULLIF(current_setting('nudge.route', true), ''), 'reminder', i.id::text, 'insert'
      FROM inserted i;
  END IF;
  -- A session that notifies after its commit itself (nudge.notify_after_commit) needs no hint.
  WITH logged AS (
    INSERT INTO nudge.changes (kind, change, object_ids)
    SELECT 'reminder', 'created', array_agg(i.id) FROM inserted i HAVING count(*) > 0)
  SELECT pg_notify('nudge_due', '')::text INTO v_hint
   WHERE coalesce(current_setting('nudge.notify_after_commit', true), '') <> 'on'
     AND EXISTS (SELECT 1 FROM inserted i WHERE i.status = 'ACTIVE');
  RETURN NULL;
END $$;

-- Name: FUNCTION record_inserted_reminders(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.record_inserted_reminders() IS 'Statement trigger on reminders: for the rows an INSERT added, one nudge.audit row each (with nudge.actor, nudge.route and session_user) unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run; one nudge.changes row (reminder, created) naming them all; and one wake-up hint when one of them is ACTIVE, unless the session has nudge.notify_after_commit = on.';

-- Name: redate_backdated_reminder(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.redate_backdated_reminder() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  UPDATE nudge.reminders r SET updated_at = greatest(clock_timestamp(), OLD.updated_at)
   WHERE r.id = NEW.id;
  RETURN NULL;
END $$;

-- Name: FUNCTION redate_backdated_reminder(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.redate_backdated_reminder() IS 'Trigger: after a reminder write dated before the row''s updated_at (a transaction begun before the last change), dates it when it is made (clock_timestamp(), never before the old updated_at), so that updated_at orders a reminder''s states.';

-- Name: reject(text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reject(p_field text, p_problem text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rule text := nullif(current_setting('nudge.rule_id', true), '');
  v_path text := coalesce(current_setting('nudge.rule_path', true), '') || p_field;
BEGIN
  IF v_rule IS NOT NULL THEN
    RAISE EXCEPTION 'rule %: %: %', v_rule, v_path, p_problem
      USING ERRCODE = 'NU422', COLUMN = v_path, TABLE = v_rule;
  END IF;
  RAISE EXCEPTION '%: %', p_field, p_problem USING ERRCODE = '22023', COLUMN = p_field;
END $$;

-- Name: FUNCTION reject(p_field text, p_problem text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reject(p_field text, p_problem text) IS 'Always raises: 22023 "<field>: <problem>" with the field in COLUMN; while a rule''s action runs, NU422 "rule <id>: <template path><field>: <problem>" instead.';

-- Name: reject_item(integer, text, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reject_item(p_index integer, p_state text, p_field text, p_message text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  RAISE EXCEPTION '%', CASE WHEN p_state = 'NU422' THEN format('items[%s]: %s', p_index, p_message)
                            WHEN p_field = '' THEN format('items[%s]%s', p_index, p_message)
                            ELSE format('items[%s].%s', p_index, p_message) END
    USING ERRCODE = p_state,
          COLUMN = CASE WHEN p_field = '' THEN format('items[%s]', p_index)
                        ELSE format('items[%s].%s', p_index, p_field) END;
END $$;

-- Name: FUNCTION reject_item(p_index integer, p_state text, p_field text, p_message text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reject_item(p_index integer, p_state text, p_field text, p_message text) IS 'Always raises p_state (22023 or NU422) for the error "<field>: <problem>" of item p_index of a batch: "items[<index>].<field>: <problem>" (COLUMN items[<index>].<field>; field '''': "items[<index>]: <problem>"), NU422 "items[<index>]: <message>".';

-- Name: release_leases(text, bigint[], bigint[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.release_leases(p_worker text, p_ids bigint[], p_keep bigint[] DEFAULT NULL::bigint[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_released integer;
BEGIN
  -- A row another transaction holds (an application's, that stopped it) is passed over, not
  -- waited for: its lease expires instead, and a stopping worker is not held up.
  IF p_ids IS NULL THEN
    UPDATE nudge.reminders r
       SET leased_by = NULL, lease_expires_at = NULL, attempt = greatest(r.attempt - 1, 0)
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.status = 'ACTIVE' AND x.next_run_at <= now() AND x.leased_by = p_worker
                       AND x.id <> ALL (coalesce(p_keep, '{}'))
                       FOR UPDATE SKIP LOCKED);
  ELSE
    UPDATE nudge.reminders r
       SET leased_by = NULL, lease_expires_at = NULL, attempt = greatest(r.attempt - 1, 0)
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.id = ANY (p_ids) AND x.leased_by = p_worker
                       AND x.id <> ALL (coalesce(p_keep, '{}'))
                       FOR UPDATE SKIP LOCKED);
  END IF;
  GET DIAGNOSTICS v_released = ROW_COUNT;
  RETURN v_released;
END $$;

-- Name: FUNCTION release_leases(p_worker text, p_ids bigint[], p_keep bigint[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.release_leases(p_worker text, p_ids bigint[], p_keep bigint[]) IS 'Gives back leases p_worker holds without an attempt (the listed ids, or with NULL every due ACTIVE reminder it holds), except those in p_keep, so another worker can take them at once, passing over a row another transaction holds (its lease expires instead); returns how many.';

-- Name: remind_plainly(jsonb, nudge.events); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) RETURNS nudge.reminders
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_locked   integer;  -- stop flag keys locked, unused
  v_item     jsonb;
  v_payload  jsonb;
  v_interval integer;
  v_run_at   timestamptz;
  v_row      nudge.reminders;
BEGIN
  IF p_template ?| ARRAY['request', 'cron', 'timezone', 'run_at'] THEN
    RETURN NULL;
  END IF;
  v_item := jsonb_build_object('entity_type', p_event.entity_type, 'entity_id', p_event.entity_id)
            || nudge.render_template(p_template - 'payload' - 'delay_seconds' - 'interval_minutes',
                                     p_event, false);
  v_item := nudge.with_webhook_target(v_item, p_template, p_event);
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
                    AND nudge.address_problem(v_item->>'channel', v_item->>'target') IS NULL
                    AND (strpos(v_item->>'target', '{{') = 0
                         OR (nudge.secret_address_name(v_item->>'target') IS NOT NULL
                             AND nudge.unknown_secret_problem(v_item->>'target') IS NULL)), true)
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
       AND coalesce(nudge.is_rfc3339(v_item->>'ends_at'), true)
       AND coalesce((v_item->>'ends_at')::timestamptz >= v_run_at, true)
       AND nudge.time_problem((v_item->>'ends_at')::timestamptz) IS NULL
       AND NOT coalesce(nudge.is_blank(v_item->>'stop_condition_value'), false)
       AND v_run_at <= nudge.latest_fire(), false) THEN
    RETURN NULL;
  END IF;
  IF v_item ? 'stop_condition_value' THEN
    v_locked := nudge.lock_stop_flags(ARRAY[v_item->>'stop_condition_value'], false);
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

-- Name: FUNCTION remind_plainly(p_template jsonb, p_event nudge.events); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) IS 'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true (one set true by a transaction still open is waited for: nudge.lock_stop_flags) and its identity is not live, and the template has no cron, timezone, request or run_at; otherwise writes nothing and returns a row of NULLs.';

-- Name: reminder_executions(bigint, timestamp with time zone, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reminder_executions(p_reminder_id bigint, p_before timestamp with time zone DEFAULT NULL::timestamp with time zone, p_limit integer DEFAULT 100) RETURNS TABLE(execution jsonb, scheduled_for timestamp with time zone)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  WITH ended AS (
    SELECT nudge.execution_json(e) AS execution, e.scheduled_for
      FROM nudge.executions e
     WHERE e.reminder_id = p_reminder_id AND (p_before IS NULL OR e.scheduled_for < p_before)
     ORDER BY e.scheduled_for DESC
     LIMIT p_limit
  ), span AS (
    -- Occurrences without an ending are looked for only back to the oldest ended one listed
    -- (all the way when the page is not full), so a page costs the same however long the
    -- history is.
    SELECT CASE WHEN count(*) < p_limit THEN '-infinity'::timestamptz
                ELSE min(ended.scheduled_for) END AS after
      FROM ended
  ), open AS (
    SELECT a.scheduled_for, count(*) AS attempts, bool_and(a.outcome = 'skipped') AS skipped,
           (array_agg(a.worker ORDER BY a.attempt DESC))[1] AS worker,
           (array_agg(a.error ORDER BY a.attempt DESC))[1] AS error,
           jsonb_agg(nudge.attempt_json(a) ORDER BY a.attempt) AS delivery_attempts
      FROM nudge.delivery_attempts a, span
     WHERE a.reminder_id = p_reminder_id AND a.scheduled_for > span.after
       AND (p_before IS NULL OR a.scheduled_for < p_before)
       AND NOT EXISTS (SELECT 1 FROM nudge.executions e
                        WHERE e.reminder_id = p_reminder_id AND e.scheduled_for = a.scheduled_for)
     GROUP BY a.scheduled_for
  )
  SELECT x.execution, x.scheduled_for
    FROM (SELECT ended.execution, ended.scheduled_for FROM ended
          UNION ALL
          SELECT jsonb_strip_nulls(jsonb_build_object(
                   'reminder_id', p_reminder_id, 'scheduled_for', o.scheduled_for,
                   'outcome', CASE WHEN o.skipped THEN 'skipped'
                                   WHEN r.status IN ('ACTIVE', 'PAUSED')
                                        AND r.occurrence_at = o.scheduled_for THEN 'retrying'
                                   ELSE 'unfinished' END,
                   'attempts', o.attempts, 'worker', o.worker, 'error', o.error,
                   'delivery_attempts', o.delivery_attempts)),
                 o.scheduled_for
            FROM open o LEFT JOIN nudge.reminders r ON r.id = p_reminder_id) x
   ORDER BY x.scheduled_for DESC
   LIMIT p_limit
$$;

-- Name: FUNCTION reminder_executions(p_reminder_id bigint, p_before timestamp with time zone, p_limit integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reminder_executions(p_reminder_id bigint, p_before timestamp with time zone, p_limit integer) IS 'Up to p_limit occurrences of reminder p_reminder_id scheduled before p_before (all when NULL), newest first, each as its public JSON with its delivery attempts oldest first: an ended one as recorded in executions (delivered or failed, with fired_at), one with attempts but no ending as retrying (the live reminder''s current occurrence), skipped (missed under misfire_policy skip, or the oldest of the occurrences a fire_all catch-up dropped past its cap, its error saying how many up to when) or unfinished (its reminder was cancelled or completed first), without fired_at.';

-- Name: reminder_item(jsonb, nudge.events); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_fields  jsonb := p_template - 'payload' - 'delay_seconds' - 'interval_minutes' - 'request';
  v_item    jsonb := nudge.with_webhook_target(nudge.render_template(v_fields, p_event, false),
                                           p_template, p_event);
  v_payload jsonb := nudge.render_template(p_template->'payload', p_event, true);
  v_key     text;
  v_value   jsonb;
  v_run_at  timestamptz;
BEGIN
  IF v_item IS NULL OR (v_payload IS NULL AND p_template ? 'payload') THEN
    -- A value is missing: render field by field, which raises NU422 naming the field.
    FOR v_key, v_value IN SELECT k, v FROM jsonb_each(v_fields) AS x(k, v) ORDER BY k LOOP
      PERFORM nudge.render_text(v_value #>> '{}', p_event, 'action.reminder.' || v_key)
        WHERE jsonb_typeof(v_value) = 'string';
    END LOOP;
    PERFORM nudge.render_json(p_template->'payload', p_event, 'action.reminder.payload');
  END IF;
  v_item := jsonb_build_object('entity_type', p_event.entity_type, 'entity_id', p_event.entity_id)
            || v_item;
  IF v_payload IS NOT NULL THEN
    v_item := v_item || jsonb_build_object('payload', v_payload);
  END IF;
  IF p_template ? 'request' THEN
    v_item := v_item || jsonb_build_object('request', p_template->'request');
  END IF;
  IF p_template ? 'interval_minutes' THEN
    v_item := v_item || jsonb_build_object('interval_seconds',
                                           (p_template->>'interval_minutes')::integer * 60);
  END IF;
  IF p_template ? 'ends_at' AND v_item ? 'ends_at' THEN
    PERFORM nudge.check_template_time(v_item->>'ends_at', 'ends_at');
  END IF;
  -- From the time the event gives (run_at, delay_seconds before or after it), else from when
  -- the event occurred.
  IF p_template ? 'run_at' THEN
    IF nudge.item_value_problem('run_at', v_item->'run_at') IS NOT NULL THEN
      PERFORM nudge.reject('run_at', nudge.item_value_problem('run_at', v_item->'run_at'));
    END IF;
    PERFORM nudge.check_template_time(v_item->>'run_at', 'run_at');
    v_run_at := (v_item->>'run_at')::timestamptz
                + interval '1 second' * coalesce((p_template->>'delay_seconds')::integer, 0);
  ELSE
    v_run_at := p_event.occurred_at + interval '1 second' *
      CASE WHEN v_item->>'schedule_type' = 'recurring'
           THEN coalesce((p_template->>'delay_seconds')::integer,
                         (v_item->>'interval_seconds')::integer, 0)
           ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  END IF;
  -- Name what put the first fire so late.
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject(CASE WHEN p_template ? 'run_at' THEN 'run_at'
                              WHEN p_template ? 'delay_seconds' THEN 'delay_seconds'
                              ELSE 'interval_seconds' END,
                         CASE WHEN p_template ? 'run_at'
                              THEN 'is after 9999-12-31T23:59:59Z, or delay_seconds puts the first fire after it'
                              ELSE format('puts the first fire after 9999-12-31T23:59:59Z (the event occurred at %s)',
                                          to_char(p_event.occurred_at AT TIME ZONE 'UTC',
                                                  'YYYY-MM-DD"T"HH24:MI:SS"Z"')) END);
  END IF;
  -- Nor before the first time Nudge keeps (a run_at early in year 1, less a delay).
  IF nudge.time_problem(v_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(v_run_at));
  END IF;
  RETURN v_item || jsonb_build_object('run_at', v_run_at);
END $$;

-- Name: FUNCTION reminder_item(p_template jsonb, p_event nudge.events); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events) IS 'The create item a remind template gives for an event: every string rendered (a webhook target''s values amid other text percent-encoded, nudge.with_webhook_target; the request copied as it is), the entity defaulting to the event''s, run_at delay_seconds after the template''s own run_at (an RFC 3339 time, or the event''s data giving one; delay_seconds may be negative) or else after the event occurred (recurring: by default one interval); NU422 when the event lacks a value or that first fire would be after 9999-12-31T23:59:59Z (naming delay_seconds, or the interval it defaulted to).';

-- Name: reminder_json(nudge.reminders); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reminder_json(r nudge.reminders) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT nudge.reminder_json_text(r)::jsonb
$$;

-- Name: FUNCTION reminder_json(r nudge.reminders); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reminder_json(r nudge.reminders) IS 'The public JSON form of a reminder: every field that is set (nulls left out, the payload and the request as stored), times in the session''s zone, the occurrence being retried and its attempts while there is one, the rule and event that created it, its schedule in words (schedule_text), no lease internals.';

-- Name: reminder_json_text(nudge.reminders); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reminder_json_text(r nudge.reminders) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  -- No row (all null) is no reminder: NULL, never half an object.
  SELECT CASE WHEN r.id IS NOT NULL THEN concat(
    '{"id":', r.id,
    -- The payload is the user's JSON, kept as it is (nulls inside it too); schedule_text is
    -- always there (null when there are no words for it): only unset fields are left out.
    ',"payload":', coalesce(r.payload::text, 'null'),
    ',"schedule_text":', coalesce(to_json(nudge.describe_reminder(r))::text, 'null'),
    ',"entity_type":' || to_json(r.entity_type)::text,
    ',"entity_id":' || to_json(r.entity_id)::text,
    ',"event_type":' || to_json(r.event_type)::text,
    ',"channel":' || to_json(r.channel)::text,
    ',"target":' || to_json(nudge.shown_address(r.target))::text,
    ',"schedule_type":' || to_json(r.schedule_type)::text,
    ',"interval_seconds":' || r.interval_seconds,
    ',"cron":' || to_json(r.cron)::text,
    ',"timezone":' || to_json(r.timezone)::text,
    ',"misfire_policy":' || to_json(r.misfire_policy)::text,
    ',"max_attempts":' || r.max_attempts,
    ',"next_run_at":'
      || CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN to_json(r.next_run_at)::text END,
    ',"retrying_occurrence":'
      || CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN to_json(r.occurrence_at)::text END,
    ',"attempts":'
      || CASE WHEN r.status IN ('ACTIVE', 'PAUSED') AND r.occurrence_at IS NOT NULL
              THEN r.attempt END,
    ',"stop_condition_type":' || to_json(r.stop_condition_type)::text,
    ',"stop_condition_value":' || to_json(r.stop_condition_value)::text,
    ',"max_fires":' || r.max_fires,
    ',"ends_at":' || to_json(r.ends_at)::text,
    ',"fire_count":' || r.fire_count,
    ',"status":' || to_json(r.status)::text,
    ',"completed_reason":' || to_json(r.completed_reason)::text,
    ',"last_error":' || to_json(r.last_error)::text,
    ',"rule_id":' || r.rule_id,
    ',"event_id":' || r.event_id,
    ',"created_at":' || to_json(r.created_at)::text,
    ',"updated_at":' || to_json(r.updated_at)::text,
    ',"finished_at":' || to_json(r.finished_at)::text,
    -- The request as stored, its nulls kept like the payload's ({{secret.NAME}}, never a value).
    ',"request":' || r.request::text,
    '}') END
$$;

-- Name: FUNCTION reminder_json_text(r nudge.reminders); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reminder_json_text(r nudge.reminders) IS 'The text of nudge.reminder_json(r), as built: the same fields and values (a target URL''s password as ***, nudge.shown_address), in the order written (id first), without the jsonb round trip (NULL for no row); what the API answers a reminder with.';

-- Name: reminder_request_is_checked(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reminder_request_is_checked() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM nudge.check_request(NEW.request, NEW.channel, NEW.payload);
  RETURN NEW;
END $$;

-- Name: FUNCTION reminder_request_is_checked(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reminder_request_is_checked() IS 'Trigger: a reminder''s request passes nudge.check_request whenever the request or the payload it reads is written, plain SQL included.';

-- Name: reminder_target_fits_channel(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reminder_target_fits_channel() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_problem text := nudge.address_problem(NEW.channel, NEW.target);
BEGIN
  IF v_problem IS NOT NULL THEN
    RAISE EXCEPTION 'new row for relation "reminders" violates check constraint "target_fits_channel"'
      USING ERRCODE = 'check_violation', SCHEMA = 'nudge', TABLE = 'reminders',
            CONSTRAINT = 'target_fits_channel', DETAIL = 'target ' || v_problem || '.';
  END IF;
  RETURN NULL;
END $$;

-- Name: FUNCTION reminder_target_fits_channel(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reminder_target_fits_channel() IS 'Trigger: a reminder''s target suits its channel (nudge.address_problem is NULL) whenever the target or the channel is written, plain SQL included; else SQLSTATE 23514 naming target_fits_channel, with the problem in the detail.';

-- Name: render_json(jsonb, nudge.events, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.render_json(p_value jsonb, p_event nudge.events, p_field text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_out jsonb;
BEGIN
  IF position('{{' IN p_value::text) = 0 THEN
    RETURN p_value;
  END IF;
  CASE jsonb_typeof(p_value)
    WHEN 'string' THEN
      RETURN nudge.render_text(p_value #>> '{}', p_event, p_field, true);
    WHEN 'object' THEN
      SELECT coalesce(jsonb_object_agg(k, nudge.render_json(v, p_event, p_field || '.' || k)),
                      '{}'::jsonb)
        INTO v_out FROM jsonb_each(p_value) AS x(k, v);
      RETURN v_out;
    WHEN 'array' THEN
      SELECT coalesce(jsonb_agg(nudge.render_json(v, p_event, format('%s[%s]', p_field, i - 1))
                                ORDER BY i), '[]'::jsonb)
        INTO v_out FROM jsonb_array_elements(p_value) WITH ORDINALITY AS x(v, i);
      RETURN v_out;
    ELSE
      RETURN p_value;
  END CASE;
END $$;

-- Name: FUNCTION render_json(p_value jsonb, p_event nudge.events, p_field text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.render_json(p_value jsonb, p_event nudge.events, p_field text) IS 'A JSON value with the placeholders of every string in it rendered for the event (a string that is one placeholder takes the value''s own JSON type); NU422 naming the field path when the event lacks a value.';

-- Name: render_placeholders(text, jsonb, text, integer, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer DEFAULT NULL::integer, p_null_is_missing boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  v_rest  text := p_text;
  -- The pieces, joined once at the end (appending to one text copied it every time); each is
  -- appended on its own, so the array grows in place.
  v_parts text[] := '{}';
  v_bytes bigint := 0;
  v_open  integer;
  v_close integer;
  v_value jsonb;
  v_text  text;
BEGIN
  IF position('{{' IN v_rest) = 0 THEN
    RETURN p_text;
  END IF;
  LOOP
    v_open := position('{{' IN v_rest);
    EXIT WHEN v_open = 0;
    v_close := position('}}' IN substr(v_rest, v_open + 2));
    EXIT WHEN v_close = 0;
    -- {{data.a.0}} is the value at path data, a, 0 (objects and array indexes).
    v_value := p_values #> string_to_array(btrim(substr(v_rest, v_open + 2, v_close - 1)), '.');
    IF v_value IS NULL AND left(btrim(substr(v_rest, v_open + 2, v_close - 1)), 7) = 'secret.' THEN
      -- {{secret.NAME}} (a webhook target kept in a secret) is the worker's to fill: as written.
      v_text := substr(v_rest, 1, v_open + v_close + 2);
      v_rest := substr(v_rest, v_open + v_close + 3);
    ELSIF v_value IS NULL THEN
      RETURN NULL;
    ELSIF p_escape = 'json_typed' AND v_open > 1 AND substr(v_rest, v_open - 1, 1) = '"'
       AND substr(v_rest, v_open + v_close + 3, 1) = '"'
       AND (v_open = 2 OR substr(v_rest, v_open - 2, 1) <> '\') THEN
      -- "{{data.x}}": the quotes go, the value stays whatever JSON it is.
      v_text := substr(v_rest, 1, v_open - 2) || v_value::text;
      v_rest := substr(v_rest, v_open + v_close + 4);
    ELSE
      IF p_null_is_missing AND jsonb_typeof(v_value) = 'null' THEN
        RETURN NULL;
      END IF;
      v_text := CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
      IF p_escape IN ('json', 'json_typed') THEN
        -- Escaped for inside a JSON string, quotes and all (inline: a call costs 7 us).
        v_text := to_jsonb(v_text)::text;
        v_text := substr(v_text, 2, length(v_text) - 2);
      ELSIF p_escape = 'form' THEN
        v_text := nudge.form_encoded(v_text);
      ELSIF p_escape = 'url' THEN
        v_text := nudge.uri_component_encoded(v_text);
      END IF;
      v_text := substr(v_rest, 1, v_open - 1) || v_text;
      v_rest := substr(v_rest, v_open + v_close + 3);
    END IF;
    v_parts := v_parts || v_text;
    v_bytes := v_bytes + octet_length(v_text);
    IF v_bytes > p_max_bytes THEN
      RETURN array_to_string(v_parts, '');  -- longer than the limit already: the caller refuses it
    END IF;
  END LOOP;
  RETURN array_to_string(v_parts, '') || v_rest;
END $$;

-- Name: FUNCTION render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer, p_null_is_missing boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer, p_null_is_missing boolean) IS 'p_text with every {{name}} replaced by the value at that dotted path of p_values, written for where it goes (p_escape: json escapes it for the inside of a JSON string, json_typed too but a JSON string that is one placeholder becomes the value itself, form form-encodes it, url percent-encodes it as one URI component (nudge.uri_component_encoded), text inserts it as it is; strings as their text, other values as JSON); {{secret.NAME}} left as written (the worker fills it); NULL when another value is missing, or with p_null_is_missing is a null to put inside text; once the text passes p_max_bytes (when given) rendering stops and the part rendered, longer than p_max_bytes, is the answer; time linear in the text rendered.';

-- Name: render_template(jsonb, nudge.events, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.render_template(p_template jsonb, p_event nudge.events, p_typed boolean) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN position('{{' IN p_template::text) = 0 THEN p_template
              ELSE nudge.render_placeholders(
                     p_template::text,
                     jsonb_build_object('entity_type', p_event.entity_type,
                                        'entity_id', p_event.entity_id,
                                        'event_type', p_event.event_type, 'event_id', p_event.id,
                                        'data', p_event.data),
                     CASE WHEN p_typed THEN 'json_typed' ELSE 'json' END,
                     p_null_is_missing => true)::jsonb END
$$;

-- Name: FUNCTION render_template(p_template jsonb, p_event nudge.events, p_typed boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.render_template(p_template jsonb, p_event nudge.events, p_typed boolean) IS 'A JSON template with every placeholder rendered for the event (with p_typed a string that is one placeholder becomes the value itself, of its own JSON type, a null included); NULL when the event lacks a value or has a null to put inside text.';

-- Name: render_text(text, nudge.events, text, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.render_text(p_text text, p_event nudge.events, p_field text, p_typed boolean DEFAULT false) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  v_out   text := '';
  v_rest  text := p_text;
  v_open  integer;
  v_close integer;
  v_name  text;
  v_value jsonb;
BEGIN
  -- Scanned by position, not by a regular expression (5x slower per call): a saved template's
  -- placeholders are known to be well formed (nudge.check_placeholders).
  IF p_text IS NULL OR position('{{' IN p_text) = 0 THEN
    RETURN to_jsonb(p_text);
  END IF;
  LOOP
    v_open := position('{{' IN v_rest);
    EXIT WHEN v_open = 0;
    v_close := position('}}' IN substr(v_rest, v_open + 2));
    EXIT WHEN v_close = 0;
    v_name := btrim(substr(v_rest, v_open + 2, v_close - 1));
    IF left(v_name, 7) = 'secret.' THEN
      -- A webhook target kept in a secret: the worker's to fill, as written.
      v_out := v_out || substr(v_rest, 1, v_open + v_close + 2);
      v_rest := substr(v_rest, v_open + v_close + 3);
      CONTINUE;
    END IF;
    v_value := nudge.event_value(p_event, v_name);
    IF v_value IS NULL THEN
      RAISE EXCEPTION 'rule %: %: the event has no % for {{%}}',
        current_setting('nudge.rule_id', true), p_field, v_name, v_name
        USING ERRCODE = 'NU422', COLUMN = p_field,
              TABLE = current_setting('nudge.rule_id', true);
    END IF;
    IF p_typed AND v_out = '' AND btrim(substr(v_rest, 1, v_open - 1)) = ''
       AND btrim(substr(v_rest, v_open + v_close + 3)) = '' THEN
      RETURN v_value;  -- the whole text is this one placeholder
    END IF;
    -- Inside text, a null would be the word "null" ("Your feedback on null is due").
    IF jsonb_typeof(v_value) = 'null' THEN
      RAISE EXCEPTION 'rule %: %: the event''s % is null, which {{%}} cannot put in text',
        current_setting('nudge.rule_id', true), p_field, v_name, v_name
        USING ERRCODE = 'NU422', COLUMN = p_field,
              TABLE = current_setting('nudge.rule_id', true);
    END IF;
    v_out := v_out || substr(v_rest, 1, v_open - 1)
             || CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
    v_rest := substr(v_rest, v_open + v_close + 3);
  END LOOP;
  RETURN to_jsonb(v_out || v_rest);
END $$;

-- Name: FUNCTION render_text(p_text text, p_event nudge.events, p_field text, p_typed boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.render_text(p_text text, p_event nudge.events, p_field text, p_typed boolean) IS 'p_text with every placeholder but {{secret.NAME}} (left as written, for the worker) replaced by the event''s value (as text; with p_typed a text that is one placeholder becomes the value itself, a null included); NU422 naming p_field when the event lacks a value, or has null for one put in text.';

-- Name: rendered_request(nudge.reminders, timestamp with time zone, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rendered_request(r nudge.reminders, p_occurrence timestamp with time zone, p_attempt integer) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_out    jsonb;
  v_body   jsonb := r.request->'body';
  v_type   text := r.request->>'content_type';
  v_text   text;
BEGIN
  IF r.request IS NULL THEN
    RETURN NULL;
  END IF;
  v_out := jsonb_build_object('method', coalesce(r.request->>'method', 'POST'),
                              'headers', coalesce(r.request->'headers', '{}'::jsonb))
           || jsonb_strip_nulls(jsonb_build_object('timeout_ms', r.request->'timeout_ms'));
  IF v_body IS NULL THEN
    RETURN v_out;
  END IF;
  v_text := nudge.render_placeholders(
              CASE WHEN jsonb_typeof(v_body) = 'string' THEN v_body #>> '{}' ELSE v_body::text END,
              jsonb_build_object('reminder_id', r.id, 'entity_type', r.entity_type,
                                 'entity_id', r.entity_id, 'event_type', r.event_type,
                                 'scheduled_for', nudge.rfc3339_in_zone(p_occurrence, 'UTC'),
                                 'attempt', p_attempt, 'payload', r.payload),
              CASE WHEN jsonb_typeof(v_body) <> 'string' THEN 'json_typed'
                   WHEN lower(btrim(split_part(v_type, ';', 1))) = 'application/x-www-form-urlencoded'
                     THEN 'form'
                   ELSE 'text' END,
              1048576);
  -- Checked when stored, so neither can happen but through a payload a rule or a reschedule
  -- could not foresee; the attempt then fails with this error instead of sending.
  IF v_text IS NULL THEN
    RETURN v_out || '{"error": "request.body: a placeholder has no value in this reminder"}';
  END IF;
  IF octet_length(v_text) > 1048576 THEN
    RETURN v_out || '{"error": "request.body: renders to more than 1 MiB"}';
  END IF;
  RETURN v_out || jsonb_build_object('content_type', coalesce(v_type, 'application/json'),
                                     'body', v_text);
END $$;

-- Name: FUNCTION rendered_request(r nudge.reminders, p_occurrence timestamp with time zone, p_attempt integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rendered_request(r nudge.reminders, p_occurrence timestamp with time zone, p_attempt integer) IS 'The reminder''s request for attempt p_attempt at occurrence p_occurrence: method (default POST), headers as stored ({{secret.NAME}} left for the worker), timeout_ms when it has one, and for a request with a body its content type (default application/json) and the body rendered (JSON: values JSON-escaped, a string that is one placeholder takes the value''s type; form: values form-encoded; other types: values as text), or an error instead of the body when it cannot render or renders to more than 1 MiB; NULL without a request.';

-- Name: request_placeholder_problem(text, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.request_placeholder_problem(p_name text, p_in_header boolean) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT CASE
    WHEN p_in_header THEN
      CASE WHEN p_name ~ '^secret\.[a-z0-9_]{1,64}$' THEN NULL
           ELSE format('{{%s}} cannot be used in a header: header values are text and '
                       '{{secret.NAME}} (NAME: 1 to 64 lower-case letters, digits and _)', p_name)
      END
    WHEN p_name ~ '^(entity_type|entity_id|event_type|reminder_id|scheduled_for|attempt|payload(\.[A-Za-z0-9_-]+)*)$'
      THEN NULL
    WHEN p_name LIKE 'secret.%' THEN format('{{%s}} can only be used in header values', p_name)
    ELSE format('{{%s}} is not a placeholder of a request (known: {{entity_type}}, {{entity_id}}, '
                '{{event_type}}, {{reminder_id}}, {{scheduled_for}}, {{attempt}}, {{payload}}, '
                '{{payload.some.path}}; a rule passes event values through the payload)', p_name)
  END
$_$;

-- Name: FUNCTION request_placeholder_problem(p_name text, p_in_header boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.request_placeholder_problem(p_name text, p_in_header boolean) IS 'NULL when p_name may stand in a request (in a header value: secret.NAME only; in a body: entity_type, entity_id, event_type, reminder_id, scheduled_for, attempt, payload or payload.<path>), else why not.';

-- Name: reschedule_reminder(bigint, timestamp with time zone, integer, jsonb, integer, timestamp with time zone, text[], text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_payload jsonb DEFAULT NULL::jsonb, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_clear text[] DEFAULT '{}'::text[], p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row     nudge.reminders;
  v_next    timestamptz;  -- the next fire once rescheduled
  v_zone    text;         -- a cron reminder's zone once rescheduled
  v_parsed  nudge.cron;   -- and its schedule
  v_moving  text[];       -- what a delivery under way keeps from changing
  v_new_cron boolean := p_cron IS NOT NULL OR p_timezone IS NOT NULL;
  v_field   text;         -- what the reminder's request check named
  v_problem text;
  -- The limits to take away: a NULL argument keeps a setting, so clearing one is said by name.
  v_clear   text[] := coalesce(p_clear, '{}');
BEGIN
  IF NOT v_clear <@ ARRAY['max_fires', 'ends_at'] OR array_position(v_clear, NULL) IS NOT NULL THEN
    PERFORM nudge.reject('clear', 'may name max_fires and ends_at, the limits a reminder can do '
                                  'without');
  END IF;
  IF 'max_fires' = ANY (v_clear) AND p_max_fires IS NOT NULL THEN
    PERFORM nudge.reject('max_fires', 'cannot be both given and cleared');
  END IF;
  IF 'ends_at' = ANY (v_clear) AND p_ends_at IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', 'cannot be both given and cleared');
  END IF;
  -- As REST's PATCH {} (before the reminder is looked up, as there).
  IF p_run_at IS NULL AND p_interval_seconds IS NULL AND p_payload IS NULL AND p_max_fires IS NULL
     AND p_ends_at IS NULL AND cardinality(v_clear) = 0 AND NOT v_new_cron THEN
    PERFORM nudge.reject('change', 'nothing to change: give run_at, interval_seconds, payload, '
                                   'cron, timezone, max_fires or ends_at, or clear max_fires or '
                                   'ends_at');
  END IF;
  v_row := nudge.lock_reminder(p_id);
  IF v_row.status NOT IN ('ACTIVE', 'PAUSED') THEN
    RAISE EXCEPTION 'reminder % is %, only an ACTIVE or PAUSED reminder can be rescheduled',
      p_id, v_row.status USING ERRCODE = 'NU409';
  END IF;
  -- The worker records its attempt by the occurrence it took, and the attempt's outcome decides
  -- the next fire: a new run_at or schedule now would be lost, or lose that record. The attempt
  -- sends the payload it was claimed with: a new one would be stored as if sent, and never sent
  -- when the attempt ends the reminder.
  v_moving := array_remove(ARRAY[CASE WHEN p_run_at IS NOT NULL THEN 'run_at' END,
                                 CASE WHEN p_payload IS NOT NULL THEN 'payload' END,
                                 CASE WHEN p_cron IS NOT NULL THEN 'cron' END,
                                 CASE WHEN p_timezone IS NOT NULL THEN 'timezone' END], NULL);
  IF cardinality(v_moving) > 0 AND v_row.leased_by IS NOT NULL AND v_row.lease_expires_at > now() THEN
    RAISE EXCEPTION 'reminder % is being delivered (attempt % of the occurrence at %, leased until %): change its % once that attempt ends',
      p_id, v_row.attempt, nudge.rfc3339_in_zone(coalesce(v_row.occurrence_at, v_row.next_run_at), 'UTC'),
      nudge.rfc3339_in_zone(v_row.lease_expires_at, 'UTC'),
      concat_ws(' and ', nullif(array_to_string(v_moving[1:cardinality(v_moving) - 1], ', '), ''),
                v_moving[cardinality(v_moving)])
      USING ERRCODE = 'NU409';
  END IF;
  IF v_new_cron AND v_row.schedule_type <> 'cron' THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron reminders');
  END IF;
  IF length(p_cron) > 200 THEN
    PERFORM nudge.reject('cron', 'must be at most 200 characters');
  END IF;
  v_zone := CASE WHEN p_timezone IS NOT NULL THEN nudge.checked_timezone(p_timezone)
                 ELSE v_row.timezone END;
  v_parsed := CASE WHEN p_cron IS NOT NULL THEN nudge.cron_parse(p_cron) ELSE v_row.cron_schedule END;
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
  -- A cron reminder keeps to its schedule: its first occurrence at or after run_at. A new
  -- schedule without a run_at starts from now, unless an occurrence is retrying: its next attempt
  -- keeps its time, and the new schedule follows it.
  v_next := CASE WHEN p_run_at IS NOT NULL
                   THEN nudge.first_run_at(v_row.schedule_type, p_run_at, v_parsed, v_zone)
                 WHEN v_new_cron AND v_row.occurrence_at IS NULL
                   THEN nudge.first_run_at('cron', now(), v_parsed, v_zone)
                 ELSE v_row.next_run_at END;
  IF v_next IS NULL THEN
    PERFORM nudge.reject(CASE WHEN p_run_at IS NULL THEN 'cron' ELSE 'run_at' END,
                         nudge.cron_horizon_problem());
  END IF;
  IF v_next > nudge.latest_fire() THEN
    PERFORM nudge.reject(CASE WHEN p_run_at IS NULL THEN 'cron' ELSE 'run_at' END,
                         'the next fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  -- An occurrence is recorded once: one at a time that already fired would be delivered again
  -- under its old Idempotency-Key and counted as a fire, but never recorded.
  IF (p_run_at IS NOT NULL OR v_new_cron) AND v_row.occurrence_at IS NULL
     AND EXISTS (SELECT 1 FROM nudge.executions x
                  WHERE x.reminder_id = p_id AND x.scheduled_for = v_next) THEN
    PERFORM nudge.reject(CASE WHEN p_run_at IS NULL THEN 'cron' ELSE 'run_at' END, format(
      'the occurrence at %s has already fired; choose another time (now, or any moment not yet '
      'fired, fires it again as a new occurrence)', nudge.rfc3339_in_zone(v_next, 'UTC')));
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
  IF (p_run_at IS NOT NULL OR v_new_cron) AND p_ends_at IS NULL AND NOT 'ends_at' = ANY (v_clear)
     AND v_next > v_row.ends_at THEN
    IF p_run_at IS NOT NULL THEN
      PERFORM nudge.reject('run_at', 'must not be after ends_at');
    END IF;
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         format('the new schedule''s next fire, %s, must not be after ends_at',
                                nudge.rfc3339_in_zone(v_next, 'UTC')));
  END IF;
  -- Apart from the rest: writing the expression describes it again (a trigger).
  IF v_new_cron THEN
    UPDATE nudge.reminders
       SET cron = coalesce(nudge.bare_cron(p_cron), cron), timezone = v_zone, cron_schedule = v_parsed
     WHERE id = p_id;
  END IF;
  UPDATE nudge.reminders
     SET next_run_at = v_next,
         interval_seconds = coalesce(p_interval_seconds, interval_seconds),
         payload = coalesce(p_payload, payload),
         max_fires = CASE WHEN 'max_fires' = ANY (v_clear) THEN NULL
                          ELSE coalesce(p_max_fires, max_fires) END,
         ends_at = CASE WHEN 'ends_at' = ANY (v_clear) THEN NULL ELSE coalesce(p_ends_at, ends_at) END,
         updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Name: FUNCTION reschedule_reminder(p_id bigint, p_run_at timestamp with time zone, p_interval_seconds integer, p_payload jsonb, p_max_fires integer, p_ends_at timestamp with time zone, p_clear text[], p_cron text, p_timezone text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone, p_interval_seconds integer, p_payload jsonb, p_max_fires integer, p_ends_at timestamp with time zone, p_clear text[], p_cron text, p_timezone text) IS 'Changes when and how an ACTIVE or PAUSED reminder fires (a NULL argument keeps that setting; p_clear names the limits to remove, max_fires and/or ends_at; identity, channel and status never change): run_at is the next fire, for a cron reminder its schedule''s first occurrence at or after run_at (while an occurrence is retrying, that occurrence''s next attempt: the schedule''s later occurrences keep their places), never after ends_at nor after 9999-12-31T23:59:59Z, nor an occurrence that has already fired (22023 naming run_at: it would be delivered again under its old key and never recorded); a cron reminder''s p_cron and p_timezone replace its schedule (checked as a create checks them, 22023 naming the field; on another schedule type 22023 too), its next fire then being the new schedule''s first occurrence at or after run_at, else now (while an occurrence is retrying, that attempt keeps its time), never after ends_at (22023 naming cron or timezone); nothing to change (every argument NULL, p_clear empty) raises 22023 naming change, a bad value 22023 naming the field (a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included; payload when the new payload lacks a value the reminder''s request reads; clear naming anything else; a limit both given and cleared), another status NU409, and so does a run_at, payload, cron or timezone while a worker holds the reminder''s lease (a delivery under way, which sends the payload it was claimed with), a missing reminder NU404; bringing the next fire forward wakes sleeping workers.';

-- Name: resolve_moment(jsonb, text, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_today date := (p_now AT TIME ZONE p_tz)::date;
  v_at    timestamptz;
  v_cron  nudge.cron;
  v_twice timestamptz[];
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
      v_at := nudge.instant_ahead(nudge.local_instants(coalesce((p_moment->>'date')::date,
                                                                v_today + (p_moment->>'day')::integer)
                                                       + (p_moment->>'time')::time, p_tz),
                                  p_base);
    WHEN 'next' THEN     -- "at 9am", "next monday": the pattern's next occurrence after the base
                         -- (or after the start of today + day), plus seconds
      v_cron := nudge.cron_parse(p_moment->>'cron');
      v_at := nudge.cron_next(
                v_cron, p_tz,
                CASE WHEN p_moment ? 'day'
                     THEN (nudge.local_instants(v_today + (p_moment->>'day')::integer, p_tz))[1]
                          - interval '1 microsecond'
                     ELSE p_base END);
      -- Cron fires a repeated time at its first instant only; said as a one-off while the
      -- first has passed ("at 2:30" at 02:15 in the second pass), it is the second, still ahead.
      v_twice := nudge.local_instants((p_base AT TIME ZONE p_tz)::date + (v_at AT TIME ZONE p_tz)::time,
                                      p_tz);
      IF NOT p_moment ? 'day' AND cardinality(v_twice) = 2 AND v_twice[2] < v_at
         AND nudge.instant_ahead(v_twice, p_base) = v_twice[2]
         AND nudge.cron_next(v_cron, p_tz, v_twice[1] - interval '1 microsecond') = v_twice[1] THEN
        v_at := v_twice[2];
      END IF;
      v_at := v_at + make_interval(secs => coalesce((p_moment->>'seconds')::integer, 0));
    ELSE
      RAISE EXCEPTION 'moment: unknown kind in %', p_moment USING ERRCODE = '22023';
  END CASE;
  -- "starting today" (or today's date): a start today that is not ahead means from now, which
  -- is no start at all. One on an earlier day is in the past.
  IF coalesce((p_moment->>'or_now')::boolean, false) AND v_at <= p_now
     AND (v_at AT TIME ZONE p_tz)::date >= v_today THEN
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

-- Name: FUNCTION resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) IS 'The instant a parsed moment names in zone p_tz (kinds instant, after, days, local and next, as api/schedule_words.hpp writes them; "today" is p_now''s date there, and relative ones count from p_base), wall times resolved as cron resolves them (a gap to its end, a repeated time to its first instant, or to its second when the first is not after p_base and the second is: "today at 2:30" said in the second pass); NULL for no moment, and for an or_now moment that is not after p_now and falls on p_now''s date or later; an instant before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z raises 22023 naming text (the words that named it).';

-- Name: resume_reminder(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.resume_reminder(p_id bigint) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE v_row nudge.reminders := nudge.lock_reminder(p_id);
BEGIN
  IF v_row.status = 'ACTIVE' THEN RETURN v_row; END IF;
  IF v_row.status <> 'PAUSED' THEN
    RAISE EXCEPTION 'reminder % is %, only a PAUSED reminder can be resumed', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE nudge.reminders SET status = 'ACTIVE', updated_at = now() WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Name: FUNCTION resume_reminder(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.resume_reminder(p_id bigint) IS 'PAUSED becomes ACTIVE and occurrences missed while paused follow the misfire policy; resuming an ACTIVE reminder changes nothing; any other status raises NU409, a missing reminder NU404.';

-- Name: resume_reminders(bigint[], text, text, text, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.resume_reminders(p_ids bigint[] DEFAULT NULL::bigint[], p_status text DEFAULT NULL::text, p_entity_type text DEFAULT NULL::text, p_entity_id text DEFAULT NULL::text, p_event_type text DEFAULT NULL::text, p_channel text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql
    AS $$
  SELECT nudge.change_matching_reminders('resume', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;

-- Name: FUNCTION resume_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.resume_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Resumes up to 10,000 PAUSED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.resume_reminder would each (missed occurrences follow the misfire policy); answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

-- Name: retry_delay(integer, integer, integer, double precision); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.retry_delay(p_attempt integer, p_base_ms integer, p_max_ms integer, p_fraction double precision) RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT p_fraction * least(p_max_ms::double precision,
                            p_base_ms * power(2::double precision, least(greatest(p_attempt, 1) - 1, 40)))
         * interval '1 millisecond'
$$;

-- Name: FUNCTION retry_delay(p_attempt integer, p_base_ms integer, p_max_ms integer, p_fraction double precision); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.retry_delay(p_attempt integer, p_base_ms integer, p_max_ms integer, p_fraction double precision) IS 'The wait before attempt n+1 after attempt n failed: p_fraction (in [0, 1)) of min(p_max_ms, p_base_ms * 2^(n-1)) milliseconds; with a uniformly spread fraction, "full jitter".';

-- Name: retry_if_no_live_twin(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.retry_if_no_live_twin(p_id bigint) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE v_row nudge.reminders := nudge.lock_reminder(p_id);
BEGIN
  IF v_row.status <> 'FAILED' OR EXISTS (
       SELECT 1 FROM nudge.reminders t
        WHERE t.entity_type = v_row.entity_type AND t.entity_id = v_row.entity_id
          AND t.event_type = v_row.event_type AND t.status IN ('ACTIVE', 'PAUSED')) THEN
    RETURN false;
  END IF;
  PERFORM nudge.retry_reminder(p_id);
  RETURN true;
END $$;

-- Name: FUNCTION retry_if_no_live_twin(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.retry_if_no_live_twin(p_id bigint) IS 'Retries FAILED reminder p_id as nudge.retry_reminder does and answers true, or answers false and changes nothing when it is not FAILED or a live reminder has its entity_type, entity_id and event_type.';

-- Name: retry_reminder(bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.retry_reminder(p_id bigint) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row  nudge.reminders := nudge.lock_reminder(p_id);
  v_twin bigint;
BEGIN
  IF v_row.status = 'ACTIVE' THEN RETURN v_row; END IF;
  IF v_row.status <> 'FAILED' THEN
    RAISE EXCEPTION 'reminder % is %, only a FAILED reminder can be retried', p_id, v_row.status
      USING ERRCODE = 'NU409';
  END IF;
  SELECT t.id INTO v_twin FROM nudge.reminders t
   WHERE t.entity_type = v_row.entity_type AND t.entity_id = v_row.entity_id
     AND t.event_type = v_row.event_type AND t.status IN ('ACTIVE', 'PAUSED');
  IF FOUND THEN
    RAISE EXCEPTION 'reminder % cannot be retried: reminder % is live with its entity_type, '
                    'entity_id and event_type', p_id, v_twin
      USING ERRCODE = 'NU409';
  END IF;
  UPDATE nudge.reminders
     -- now(): after the failed occurrence, so never the same one (whole seconds could be).
     SET status = 'ACTIVE', completed_reason = NULL, finished_at = NULL, next_run_at = now(),
         occurrence_at = NULL, attempt = 0, updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
EXCEPTION
  WHEN unique_violation THEN  -- the identity became live since the check (a concurrent create)
    RAISE EXCEPTION 'reminder % cannot be retried: a reminder with its entity_type, entity_id and '
                    'event_type is live', p_id
      USING ERRCODE = 'NU409';
END $$;

-- Name: FUNCTION retry_reminder(p_id bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.retry_reminder(p_id bigint) IS 'FAILED becomes ACTIVE and due now with a fresh attempt budget, as a new occurrence (the failed one stays failed in the history; the retry has its own Idempotency-Key); retrying an ACTIVE reminder changes nothing; any other status, or a live reminder with the same entity_type, entity_id and event_type, raises NU409, a missing reminder NU404.';

-- Name: retry_reminders(bigint[], text, text, text, text, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.retry_reminders(p_ids bigint[] DEFAULT NULL::bigint[], p_status text DEFAULT NULL::text, p_entity_type text DEFAULT NULL::text, p_entity_id text DEFAULT NULL::text, p_event_type text DEFAULT NULL::text, p_channel text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql
    AS $$
  SELECT nudge.change_matching_reminders('retry', p_ids, p_status, p_entity_type, p_entity_id,
                                         p_event_type, p_channel)
$$;

-- Name: FUNCTION retry_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.retry_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Retries up to 10,000 FAILED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.retry_reminder would each, newest first, leaving out any whose entity_type, entity_id and event_type a live reminder holds by then (so of one identity''s matching failed reminders the newest is retried); answers {count, ids, more}; ids empty or over 1,000, an id NULL or not positive (ids[<index>]), an entity_type, entity_id or event_type empty or over 200 characters, a status or channel that is not one, or no filter at all raises 22023 naming it.';

-- Name: revoke_token(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.revoke_token(p_name text) RETURNS nudge.api_tokens
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE v_token nudge.api_tokens;
BEGIN
  SELECT * INTO v_token FROM nudge.api_tokens WHERE name = p_name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no token is named %', p_name USING ERRCODE = 'NU404';
  END IF;
  IF v_token.revoked_at IS NULL THEN
    UPDATE nudge.api_tokens SET revoked_at = now() WHERE name = p_name RETURNING * INTO v_token;
  END IF;
  RETURN v_token;
END $$;

-- Name: FUNCTION revoke_token(p_name text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.revoke_token(p_name text) IS 'Marks the token revoked (once: revoking it again changes nothing) and returns it, which every listening nudge-api hears at commit; NU404 when no token has that name.';

-- Name: rfc3339_in_zone(timestamp with time zone, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rfc3339_in_zone(p_at timestamp with time zone, p_tz text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD"T"HH24:MI:SS')
         || CASE WHEN extract(microseconds FROM p_at)::bigint % 1000000 = 0 THEN ''
                 ELSE rtrim(to_char(p_at AT TIME ZONE p_tz, '.US'), '0') END
         || CASE WHEN o < interval '0' THEN '-' ELSE '+' END
         || to_char(abs(extract(epoch FROM o))::integer / 3600, 'FM00') || ':'
         || to_char(abs(extract(epoch FROM o))::integer % 3600 / 60, 'FM00')
    FROM (SELECT nudge.utc_offset(p_at, p_tz) AS o) x
$$;

-- Name: FUNCTION rfc3339_in_zone(p_at timestamp with time zone, p_tz text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rfc3339_in_zone(p_at timestamp with time zone, p_tz text) IS 'Instant p_at as RFC 3339 text with zone p_tz''s offset at that instant (2026-03-29T03:00:00+02:00; fractions kept when present).';

-- Name: rfc3339_pattern(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rfc3339_pattern() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ](?:[01][0-9]|2[0-3]):(?:[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?|59:60(?:\.0{1,9})?)(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])'
$$;

-- Name: FUNCTION rfc3339_pattern(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rfc3339_pattern() IS 'The regular expression (unanchored) of an RFC 3339 date-time with an offset as the REST API reads one: 2026-01-31T09:00:00Z, 2026-01-31 09:00:00.5+01:00, and a leap second as HH:59:60 with no fraction or a zero one (read as the next minute''s 00, as PostgreSQL reads it).';

-- Name: rfc3339_zone(timestamp with time zone, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rfc3339_zone(p_at timestamp with time zone, p_tz text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT CASE WHEN extract(epoch FROM nudge.utc_offset(p_at, p_tz))::integer % 60 <> 0
                   OR p_at AT TIME ZONE p_tz >= timestamp '10000-01-01'
              THEN 'UTC' ELSE p_tz END
$$;

-- Name: FUNCTION rfc3339_zone(p_at timestamp with time zone, p_tz text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rfc3339_zone(p_at timestamp with time zone, p_tz text) IS 'The zone instant p_at can be written in as RFC 3339 text: p_tz, or UTC where p_tz''s offset then has seconds (local mean time) or its local date is past 9999.';

-- Name: rule_is_checked_before_saving(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rule_is_checked_before_saving() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_cap integer;
BEGIN
  PERFORM nudge.check_rule(NEW);
  IF NEW.enabled AND (TG_OP = 'INSERT' OR NOT OLD.enabled OR OLD.event_type <> NEW.event_type) THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('nudge.rules/' || NEW.event_type, 0));
    -- Every workflow's escalation is a rule on Nudge's own events, told apart by its "when":
    -- they take more (explore26a #4: a team with several workflows met 20).
    v_cap := CASE WHEN NEW.event_type LIKE 'nudge.%' THEN 100 ELSE 20 END;
    IF (SELECT count(*) FROM nudge.rules
         WHERE event_type = NEW.event_type AND enabled AND id <> NEW.id) >= v_cap THEN
      PERFORM nudge.reject('event_type', format(
        'at most %s enabled rules per event type, and "%s" has %s: disable or delete one first',
        v_cap, NEW.event_type, v_cap));
    END IF;
  END IF;
  NEW.compiled := nudge.compile_rule(NEW);
  NEW.updated_at := now();
  RETURN NEW;
END $$;

-- Name: FUNCTION rule_is_checked_before_saving(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rule_is_checked_before_saving() IS 'Trigger: every inserted or updated rule passes nudge.check_rule (plain SQL included), an event type keeps at most 20 enabled rules, one of Nudge''s own (nudge.*) 100 (22023 naming event_type for the one past them, checked under a lock on the event type), and the rule is compiled for batches of events; updated_at tells when it last changed.';

-- Name: rule_json(nudge.rules); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rule_json(r nudge.rules) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('id', r.id, 'name', r.name, 'event_type', r.event_type,
                            'enabled', r.enabled, 'when', r."when",
                            'action', CASE WHEN jsonb_typeof(r.action #> '{reminder,target}') = 'string'
                                           THEN pg_catalog.jsonb_set(r.action, '{reminder,target}',
                                                  pg_catalog.to_jsonb(nudge.shown_address(r.action #>> '{reminder,target}')))
                                           ELSE r.action END,
                            'created_at', r.created_at, 'updated_at', r.updated_at)
$$;

-- Name: FUNCTION rule_json(r nudge.rules); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rule_json(r nudge.rules) IS 'The public JSON form of a rule: its reminder template''s target with a URL''s password as *** (nudge.shown_address).';

-- Name: rule_matches(jsonb, nudge.events); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rule_matches(p_when jsonb, p_event nudge.events) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  SELECT p_when = '{}'::jsonb
      OR NOT EXISTS (SELECT 1 FROM jsonb_each(p_when) AS c(name, value)
                      WHERE nudge.event_value(p_event, c.name) IS DISTINCT FROM c.value)
$$;

-- Name: FUNCTION rule_matches(p_when jsonb, p_event nudge.events); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rule_matches(p_when jsonb, p_event nudge.events) IS 'True when every condition of p_when holds for the event: the named value exists and equals the given JSON value.';

-- Name: rule_warning(nudge.rules); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.rule_warning(r nudge.rules) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_event   nudge.events;
  v_saved   text[] := ARRAY[current_setting('nudge.rule_id', true),
                            current_setting('nudge.rule_path', true)];
  v_state   text;
  v_message text;
  v_set     text;
BEGIN
  SELECT e.* INTO v_event FROM nudge.events e
   WHERE e.event_type = r.event_type AND e.refused IS NULL
   ORDER BY e.id DESC LIMIT 1;
  IF NOT r.enabled OR v_event.id IS NULL
     OR (r."when" <> '{}'::jsonb AND NOT nudge.rule_matches(r."when", v_event)) THEN
    RETURN NULL;
  END IF;
  BEGIN
    -- Rendered as the event's run would render it, writing nothing.
    v_set := set_config('nudge.rule_id', r.id::text, true);
    CASE r.action->>'type'
      WHEN 'remind' THEN
        v_set := set_config('nudge.rule_path', 'action.reminder.', true);
        PERFORM nudge.reminder_item(r.action->'reminder', v_event);
      WHEN 'set_flag' THEN
        PERFORM nudge.render_text(r.action->'flag'->>'key', v_event, 'action.flag.key');
      ELSE
        PERFORM nudge.render_text(r.action->'cancel'->>f, v_event, 'action.cancel.' || f)
           FROM unnest(ARRAY['event_type', 'entity_type', 'entity_id']) f
          WHERE r.action->'cancel' ? f;
    END CASE;
  EXCEPTION WHEN SQLSTATE 'NU422' OR invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    v_message := format('the newest %s event (#%s) could not have run it: %s', r.event_type,
                        v_event.id, v_message);
  END;
  v_set := set_config('nudge.rule_id', coalesce(v_saved[1], ''), true)
           || set_config('nudge.rule_path', coalesce(v_saved[2], ''), true);
  RETURN v_message;
END $$;

-- Name: FUNCTION rule_warning(r nudge.rules); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.rule_warning(r nudge.rules) IS 'Why the newest event of an enabled rule''s type (one recorded, not refused, that its when matches) could not have run the rule as it now is (a value its templates read that the event lacks, a time that is none), as "the newest <type> event (#<id>) could not have run it: <error>"; NULL when it could, or there is no such event; writes nothing.';

-- Name: sample_template(jsonb); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.sample_template(p_template jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $_$
  SELECT regexp_replace(
           CASE WHEN p_template->>'target' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                THEN jsonb_set(p_template - 'request', '{target}',
                               to_jsonb(CASE p_template->>'channel'
                                          WHEN 'email' THEN 'sample@example.com'
                                          ELSE 'https://example.com/sample' END))
                ELSE p_template - 'request' END::text,
           '\{\{\s*data\.[^{}]*?\s*\}\}', 'sample', 'g')::jsonb
         || CASE WHEN p_template ? 'request'
                 THEN jsonb_build_object('request', p_template->'request') ELSE '{}'::jsonb END
         || CASE WHEN p_template->>'timezone' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                 THEN jsonb_build_object('timezone', 'UTC') ELSE '{}'::jsonb END
         || CASE WHEN p_template->>'ends_at' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                 THEN jsonb_build_object('ends_at', '9999-12-31T00:00:00Z') ELSE '{}'::jsonb END
$_$;

-- Name: FUNCTION sample_template(p_template jsonb); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.sample_template(p_template jsonb) IS 'A remind template with its data placeholders replaced by sample values (the request, whose placeholders are the reminder''s, left as it is), a target made of data only by an address that suits the channel, a timezone made of data only by UTC, an ends_at made of data only by 9999-12-31T00:00:00Z.';

-- Name: schedule_words(text, timestamp with time zone, integer, text, text, text, integer, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.schedule_words(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron_words text, p_timezone text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone) RETURNS text
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

-- Name: FUNCTION schedule_words(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron_words text, p_timezone text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.schedule_words(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron_words text, p_timezone text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone) IS 'The canonical sentence of a schedule from its parts, p_cron_words being nudge.cron_words of its cron expression; times in p_timezone (UTC when NULL); max_fires and ends_at are left out of a one_time schedule, on which they have no effect; an interval of whole days from a start at a time of day is said in hours, so that the sentence reads back as that interval.';

-- Name: seconds_until_due(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.seconds_until_due() RETURNS double precision
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    SET max_parallel_workers_per_gather TO '0'
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

-- Name: FUNCTION seconds_until_due(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.seconds_until_due() IS 'Seconds (>= 0, database clock) until a claim could next find work: the earliest due unleased reminder or the earliest lease to expire (0 for a reminder due at -infinity); NULL when nothing is scheduled or the earliest is at infinity.';

-- Name: secret_address_name(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.secret_address_name(p_address text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT substring(p_address from '^\{\{secret\.([a-z0-9_]{1,64})\}\}$')
$_$;

-- Name: FUNCTION secret_address_name(p_address text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.secret_address_name(p_address text) IS 'The NAME of an address written {{secret.NAME}} alone, without spaces (NAME: 1 to 64 of a-z, 0-9 and _): a webhook URL the worker keeps as a secret; NULL for any other text.';

-- Name: status_flags; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.status_flags (
    key nudge.flag_key NOT NULL,
    value boolean DEFAULT false NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

-- Name: TABLE status_flags; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.status_flags IS 'Named booleans the application sets with plain SQL; a flag turning true completes every live reminder whose stop condition names it, in the same transaction.';

-- Name: set_flag(text, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.set_flag(p_key text, p_value boolean) RETURNS nudge.status_flags
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
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

-- Name: FUNCTION set_flag(p_key text, p_value boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.set_flag(p_key text, p_value boolean) IS 'Sets a flag: inserts a new key, updates an existing one whose value differs (so a true value completes the reminders waiting on it in the same transaction), and writes nothing (no audit row, no change, same updated_at) when it already has p_value; returns the flag; 22023 naming key (empty, over 200 characters or only white space) or value (NULL) for bad input.';

-- Name: shown_address(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.shown_address(p_address text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  -- Inlined where it is called (no SET clause): its names are qualified instead.
  SELECT CASE WHEN pg_catalog.strpos(p_address, '@') = 0 THEN p_address
              ELSE pg_catalog.regexp_replace(
                     p_address, '^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:)[^/?#@]*@', '\1***@')
         END
$$;

-- Name: FUNCTION shown_address(p_address text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.shown_address(p_address text) IS 'A target or contact address as answered: a URL''s password (scheme://user:password@...) as ***, anything else as it is.';

-- Name: status_after_attempt(nudge.reminders, text, nudge.worker_policy, timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.status_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE coalesce(nudge.end_after_attempt(r, p_outcome, p_policy, p_now), '')
              WHEN 'attempts_exhausted' THEN 'FAILED'
              WHEN '' THEN r.status
              ELSE 'COMPLETED' END
$$;

-- Name: FUNCTION status_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.status_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'A reminder''s status once an attempt ended with p_outcome at p_now: FAILED or COMPLETED when it ends (nudge.end_after_attempt), else as it was.';

-- Name: stream_advance(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.stream_advance() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_last nudge.change_batches;
  v_now pg_snapshot;
  v_xids xid8[];
BEGIN
  -- One at a time: each batch starts where the committed one before it ended, and they commit
  -- in the order of pos, so a reader that sees a batch sees every one before it.
  PERFORM 1 FROM nudge.stream_turn FOR UPDATE;
  SELECT * INTO v_last FROM nudge.change_batches b ORDER BY b.pos DESC LIMIT 1;
  IF pg_snapshot_xmax(v_last.snapshot) > pg_snapshot_xmax(pg_current_snapshot()) THEN
    -- The log was restored from another cluster, whose transaction ids mean nothing here (the
    -- ones to come are lower): what it holds is let go as pruned history, and the next batch
    -- starts from now. Clients resuming from before are told it is gone.
    DELETE FROM nudge.changes;
    DELETE FROM nudge.change_batches b WHERE b.pos < v_last.pos;
    UPDATE nudge.change_batches b SET snapshot = pg_current_snapshot(), xids = '{}'
     WHERE b.pos = v_last.pos;
    UPDATE nudge.changes_pruned s SET pos = v_last.pos WHERE s.pos < v_last.pos;
    RAISE WARNING 'the stream''s log came from another cluster (a restore): its history is '
                  'let go, and the stream goes on from now';
    RETURN v_last.pos;
  END IF;
  -- One statement: the rows it sees are those of the transactions finished in its snapshot.
  -- Transactions that started after the last snapshot, and those it saw running.
  SELECT pg_current_snapshot(),
         ARRAY(SELECT DISTINCT x.xid
                 FROM (SELECT c.xid FROM nudge.changes c
                        WHERE c.xid >= pg_snapshot_xmax(v_last.snapshot)
                       UNION ALL
                       SELECT c.xid FROM nudge.changes c
                        WHERE c.xid = ANY (ARRAY(SELECT pg_snapshot_xip(v_last.snapshot)))) x
                ORDER BY x.xid)
    INTO v_now, v_xids;
  IF cardinality(v_xids) = 0 THEN
    -- Nothing new: the next batch starts from the same snapshot, and nothing is written.
    RETURN v_last.pos;
  END IF;
  INSERT INTO nudge.change_batches (pos, snapshot, xids) VALUES (v_last.pos + 1, v_now, v_xids);
  RETURN v_last.pos + 1;
END $$;

-- Name: FUNCTION stream_advance(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.stream_advance() IS 'Makes the next batch of the stream: the transactions that wrote nudge.changes and finished since the last batch''s snapshot (an unrelated running transaction holds nothing back), numbered after it; one caller at a time (a row lock on nudge.stream_turn); a log restored from another cluster (its last snapshot ahead of this cluster''s transaction ids) is let go as pruned history once, and the stream goes on from now; executable by its owner only; returns the last batch''s position (unchanged when nothing finished).';

-- Name: stream_changes(bigint, bigint, integer, bigint, integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer) RETURNS TABLE(pos bigint, id bigint, n integer, kind text, change text, object_id bigint, entity_type text, entity_id text, data jsonb, r_entity_type text, r_entity_id text, r_event_type text, r_channel text, r_target text, r_schedule_type text, r_interval_seconds integer, r_cron text, r_timezone text, r_misfire_policy text, r_max_attempts integer, r_next_run_at timestamp with time zone, r_occurrence_at timestamp with time zone, r_attempt integer, r_stop_condition_type text, r_stop_condition_value text, r_max_fires integer, r_ends_at timestamp with time zone, r_fire_count integer, r_status text, r_completed_reason text, r_last_error text, r_rule_id bigint, r_event_id bigint, r_created_at timestamp with time zone, r_updated_at timestamp with time zone, r_finished_at timestamp with time zone, r_payload jsonb, r_request jsonb, r_schedule_text text, r_schedule_text_as_before boolean, x_scheduled_for timestamp with time zone, x_fired_at timestamp with time zone, x_outcome text, x_attempts integer, x_worker text, x_error text, x_delivery_attempts text)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT p.pos, p.id, p.n, p.kind,
         CASE WHEN p.change = 'fired' AND x.outcome = 'failed' AND r.status = 'FAILED'
              THEN 'failed' ELSE p.change END,
         p.object_id,
         -- A flag's, an event's or a rule's message, rendered here (they are rare), and an
         -- event's entity: each a subquery run only for its kind, so a fire probes none of their
         -- tables (0032's lateral UNION ALL was rescanned for every row).
         CASE WHEN p.kind = 'event'
              THEN (SELECT e.entity_type FROM nudge.events e WHERE e.id = p.object_id) END,
         CASE WHEN p.kind = 'event'
              THEN (SELECT e.entity_id FROM nudge.events e WHERE e.id = p.object_id) END,
         CASE WHEN p.kind = 'flag' THEN (
           SELECT jsonb_build_object('change', p.change,
                                     'flag', coalesce(to_jsonb(f),
                                                      jsonb_build_object('key', p.flag_key)))
             FROM (SELECT 1) one LEFT JOIN nudge.status_flags f ON f.key = p.flag_key)
              WHEN p.kind = 'event' THEN (
           SELECT jsonb_build_object('change', p.change,
                                     -- A row gone by now is its id alone: event_json
                                     -- of no row is an object of nulls (explore32a F7).
                                     'event', CASE WHEN e.id IS NOT NULL THEN nudge.event_json(e)
                                              ELSE jsonb_build_object('id', p.object_id) END,
                                     'effects', coalesce(e.effects, '[]'::jsonb))
             FROM (SELECT 1) one LEFT JOIN nudge.events e ON e.id = p.object_id)
              WHEN p.kind = 'rule' THEN (
           SELECT jsonb_build_object('change', p.change,
                                     'rule', coalesce(p.gone,
                                                      CASE WHEN u.id IS NOT NULL
                                                           THEN nudge.rule_json(u) END,
                                                      jsonb_build_object('id', p.object_id)))
             FROM (SELECT 1) one LEFT JOIN nudge.rules u ON u.id = p.object_id)
         END,
         r.entity_type::text, r.entity_id::text, r.event_type::text,
         r.channel::text, nudge.shown_address(r.target), r.schedule_type::text,
         r.interval_seconds::integer, r.cron::text, r.timezone, r.misfire_policy::text,
         r.max_attempts::integer,
         -- What is due is sent only while the reminder can still fire: the JSON shows it then.
         CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.next_run_at END,
         CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.occurrence_at END,
         CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.attempt::integer END,
         r.stop_condition_type::text, r.stop_condition_value::text, r.max_fires::integer,
         r.ends_at, r.fire_count::integer, r.status::text, r.completed_reason::text,
         r.last_error::text, r.rule_id, r.event_id, r.created_at, r.updated_at, r.finished_at,
         r.payload::jsonb, r.request,
         -- The sentence only where the schedule differs from the row before's (a drain's page
         -- mostly shares one): the reader repeats the last one it got where as_before is true.
         CASE WHEN r.id IS NOT NULL AND NOT p.same THEN nudge.describe_reminder(r) END,
         r.id IS NOT NULL AND p.same,
         x.scheduled_for, x.fired_at, x.outcome::text, x.attempts::integer, x.worker, x.error,
         -- A fire's delivery attempts (their JSON objects joined by commas, in attempt order),
         -- looked up unless it is a log line written at its first attempt: nudge.finish_attempts
         -- records no attempt row for one (executions tell its whole story).
         CASE WHEN x.reminder_id IS NOT NULL
                   AND (r.channel IS DISTINCT FROM 'log' OR x.outcome <> 'delivered'
                        OR x.attempts <> 1)
              THEN (SELECT string_agg(a.j, ',')
                      FROM (SELECT nudge.attempt_json(a)::text AS j
                              FROM nudge.delivery_attempts a
                             WHERE a.reminder_id = x.reminder_id
                               AND a.scheduled_for = x.scheduled_for
                             ORDER BY a.attempt) a)
         END
    -- The page's changes in order, each with its reminder's row address and whether its
    -- schedule key (what nudge.describe_reminder reads, 0028's groups) is the row before's: the
    -- window runs over these narrow rows, and each reminder is then read once more by its
    -- address, which costs less than carrying its whole row through the window.
    FROM (SELECT p.*, q.rt, (lag(q.k) OVER page) IS NOT DISTINCT FROM q.k AS same
            FROM (SELECT c.pos, c.id, o.n::integer AS n, c.kind::text AS kind, c.change,
                         o.object_id, o.occurrence, o.flag_key, o.gone
                    FROM (SELECT c.*,
                                 coalesce(sum(coalesce(cardinality(c.object_ids),
                                                       cardinality(c.flag_keys)))
                                            OVER (ORDER BY c.pos, c.id
                                                  ROWS BETWEEN UNBOUNDED PRECEDING
                                                           AND 1 PRECEDING), 0)
                                   AS before
                            -- One batch and one row more than the page: the row read from
                            -- may hold nothing after the position, and a short page tells
                            -- the reader it has caught up. (Batch 0, and the one a restore
                            -- leaves, hold no change.)
                            FROM (SELECT b.pos, c.*
                                    FROM (SELECT b.pos, b.xids FROM nudge.change_batches b
                                           WHERE b.pos >= p_after_pos AND b.pos <= p_through_pos
                                             AND cardinality(b.xids) > 0
                                           ORDER BY b.pos LIMIT p_limit + 1) b
                                   CROSS JOIN LATERAL (
                                     SELECT c.* FROM nudge.changes c
                                      WHERE c.xid = ANY (b.xids)
                                        AND c.id >= CASE WHEN b.pos = p_after_pos THEN p_after_id
                                                         ELSE 0 END
                                   ) c
                                   ORDER BY b.pos, c.id
                                   LIMIT p_limit + 1) c) c
                   CROSS JOIN LATERAL unnest(c.object_ids, c.occurrences, c.flag_keys, c.gone)
                         WITH ORDINALITY AS o(object_id, occurrence, flag_key, gone, n)
                   WHERE c.before < p_limit::bigint + p_after_n
                     AND (c.pos, c.id, o.n) > (p_after_pos, p_after_id, p_after_n)
                   -- By n as returned.
                   ORDER BY c.pos, c.id, 3
                   LIMIT p_limit) p
            -- The reminder's address and schedule key (what nudge.describe_reminder reads).
            LEFT JOIN LATERAL (
              SELECT q.ctid AS rt,
                     (CASE WHEN q.schedule_type = 'one_time'
                           THEN coalesce(q.occurrence_at, q.next_run_at) END,
                      q.interval_seconds, q.max_fires, q.ends_at, q.schedule_type::text,
                      q.cron_words::text, q.timezone::text, q.stop_condition_value::text) AS k
                FROM nudge.reminders q WHERE p.kind = 'reminder' AND q.id = p.object_id) q ON true
          -- lag reads the partition, not the frame: a frame of the row before spares the
          -- window the search for each row's peers.
          WINDOW page AS (ORDER BY p.pos, p.id, p.n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) p
    -- Lookups for each change, never a scan: the reminder by its address (read in the same
    -- snapshot, so the same row version), a fire's execution by its key.
    LEFT JOIN nudge.reminders r ON r.ctid = p.rt
    LEFT JOIN nudge.executions x
           ON p.kind = 'reminder' AND p.change = 'fired'
          AND x.reminder_id = p.object_id AND x.scheduled_for = p.occurrence
   ORDER BY p.pos, p.id, p.n;
END $$;

-- Name: FUNCTION stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer) IS 'Up to p_limit changes (fewer only when no more follow up to p_through_pos) after position (p_after_pos, p_after_id, p_after_n) of the batches up to p_through_pos, one row each in that order: a flag''s, event''s or rule''s data as the stream sends it ({change, flag} | {change, event, effects} | {change, rule}; an event or rule gone by now is {"id": N}, a deleted rule as it was) with an event''s entity; a reminder''s change (fired as failed when its failure ended the reminder) with the reminder''s shown columns as they are now (a target URL''s password as ***) (r_status NULL when it is gone; next_run_at, occurrence_at and attempt only while ACTIVE or PAUSED), its schedule_text unless r_schedule_text_as_before says it is the previous row''s, and for a fire its execution with its delivery attempts'' JSON objects joined by commas in attempt order.';

-- Name: target_host(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.target_host(p_address text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT regexp_replace(regexp_replace(
           lower(regexp_replace(p_address,
                                '^([A-Za-z]+)://(?:[^/?#@[:space:]]+@)?([^/?#[:space:]]+).*$',
                                '\1://\2')),
           '^(https://(?:[^:]*|\[[^]]*\]))$', '\1:443'),
           '^(http://(?:[^:]*|\[[^]]*\]))$', '\1:80')
$_$;

-- Name: FUNCTION target_host(p_address text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.target_host(p_address text) IS 'The breaker key of a webhook address (an http(s) URL as nudge.address_problem accepts it): scheme://host:port in lower case, the port filled in (80, 443) and any user:password@, path, query and fragment left out.';

-- Name: target_host_json(nudge.target_hosts); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.target_host_json(h nudge.target_hosts) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('host', h.host, 'state', h.state, 'failures', h.consecutive_failures,
                            'opened_at', h.opened_at, 'next_probe_at', h.next_probe_at,
                            'open_seconds', h.open_seconds, 'updated_at', h.updated_at,
                            'last_error', h.last_error, 'held', nudge.held_deliveries(h),
                            'pace', round(nudge.host_pace(h, now())::numeric, 3),
                            'next_send_at', CASE WHEN h.paced_until > now()
                                                 THEN greatest(h.next_send_at, now()) END,
                            'paced_url_count', (SELECT count(*) FROM nudge.paced_targets t
                                                 WHERE t.host = h.host AND t.paced_until > now()),
                            'paced_urls', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                                    'url', t.url,
                                                    'pace', round(nudge.pace_at(t.pace, t.limited_at,
                                                                                t.paced_until, now())::numeric, 3),
                                                    'next_send_at', greatest(t.next_send_at, now()))
                                                  ORDER BY t.url), '[]')
                                             FROM (SELECT * FROM nudge.paced_targets t
                                                    WHERE t.host = h.host AND t.paced_until > now()
                                                    ORDER BY t.url LIMIT 20) t))
$$;

-- Name: FUNCTION target_host_json(h nudge.target_hosts); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.target_host_json(h nudge.target_hosts) IS 'The public JSON form of a target host: its circuit breaker, with its last failed attempt''s error while it has failures (last_error) and the deliveries it holds (held, nudge.held_deliveries), while it is paced whole (it answered 429) its pace now in deliveries a second (nudge.host_pace, 3 decimals) and the earliest a delivery may go to it (next_send_at), both null when it is not, and the URLs of it paced on their own (paced_url_count, and paced_urls: the first 20 by URL, each with its pace and next_send_at).';

-- Name: target_url(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.target_url(p_address text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE WHEN m IS NOT NULL THEN nudge.target_host(p_address) || coalesce(nullif(m[1], ''), '/') END
    FROM regexp_match(p_address, '^[A-Za-z]+://[^/?#[:space:]]+([^?#[:space:]]*)') AS m
$$;

-- Name: FUNCTION target_url(p_address text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.target_url(p_address text) IS 'The pacing key of a webhook URL: its host as nudge.target_host writes it, followed by its path as it is (/ when it has none), any user:password@, query and fragment left out; NULL for an address that is no http(s) URL ({{secret.NAME}}, paced as its host).';

-- Name: template_field_type(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.template_field_type(p_field text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE
    WHEN p_field IN ('entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type', 'cron',
                     'timezone', 'target', 'stop_condition_type', 'stop_condition_value',
                     'run_at', 'ends_at', 'misfire_policy') THEN 'string'
    WHEN p_field IN ('interval_seconds', 'interval_minutes', 'max_fires', 'max_attempts',
                     'delay_seconds') THEN 'number'
    WHEN p_field IN ('payload', 'request') THEN 'object'
  END
$$;

-- Name: FUNCTION template_field_type(p_field text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.template_field_type(p_field text) IS 'The JSON type of a field of a remind template (string, number or object; run_at a string: the time the first fire counts from), NULL for a field a template cannot hold.';

-- Name: template_time(text, bigint); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.template_time(p_text text, p_delay_seconds bigint) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_at timestamptz;
BEGIN
  IF NOT coalesce(nudge.is_rfc3339(p_text), false) THEN
    RAISE EXCEPTION 'not an RFC 3339 time' USING ERRCODE = '22007';
  END IF;
  v_at := p_text::timestamptz + interval '1 second' * p_delay_seconds;
  IF nudge.time_problem(v_at) IS NOT NULL OR v_at > nudge.latest_fire() THEN
    RAISE EXCEPTION 'out of range' USING ERRCODE = '22008';
  END IF;
  RETURN v_at;
END $$;

-- Name: FUNCTION template_time(p_text text, p_delay_seconds bigint); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.template_time(p_text text, p_delay_seconds bigint) IS 'The first fire p_delay_seconds after p_text, a rule''s run_at rendered from an event, for a set-wise batch; a data exception (22007, 22008) when p_text is not an RFC 3339 time with an offset or the fire falls outside the times Nudge keeps, so that the batch names the item one by one.';

-- Name: time_problem(timestamp with time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.time_problem(p_at timestamp with time zone) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE WHEN p_at < nudge.earliest_time() THEN 'must not be before 0001-01-01T00:00:00Z'
              WHEN p_at > nudge.latest_fire() THEN 'must not be after 9999-12-31T23:59:59Z' END
$$;

-- Name: FUNCTION time_problem(p_at timestamp with time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.time_problem(p_at timestamp with time zone) IS 'Why a time given to Nudge cannot be taken (before nudge.earliest_time(), -infinity included; after nudge.latest_fire(), infinity included), as the rest of a 22023 message; NULL for a time it takes and for NULL.';

-- Name: touch_updated_at(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

-- Name: FUNCTION touch_updated_at(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.touch_updated_at() IS 'Trigger: updated_at tells when the row last changed.';

-- Name: trim_reminder_cron(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.trim_reminder_cron() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  NEW.cron := nudge.bare_cron(NEW.cron);
  RETURN NEW;
END $$;

-- Name: FUNCTION trim_reminder_cron(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.trim_reminder_cron() IS 'Trigger: a reminder row''s cron expression is kept without the white space before and after it, which nudge.cron_parse reads as none.';

-- Name: unknown_secret_problem(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.unknown_secret_problem(p_address text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  SELECT format('{{secret.%s}} is not configured as a webhook URL (set [secrets] %s, or '
                'NUDGE_SECRETS_%s, to an http(s) URL for nudge-api and nudge-worker)',
                s.name, s.name, upper(s.name))
    FROM (SELECT nudge.secret_address_name(p_address) AS name,
                 current_setting('nudge.secret_names', true) AS known) s
   WHERE s.name IS NOT NULL AND coalesce(s.known, '') <> ''
     AND strpos(s.known, ',' || s.name || ',') = 0
$$;

-- Name: FUNCTION unknown_secret_problem(p_address text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.unknown_secret_problem(p_address text) IS 'When p_address is {{secret.NAME}} and the session names the secrets that may stand for a target (nudge.secret_names, set by nudge-api to those holding an http(s) URL: ",a,b," or "," for none) without NAME, the problem in words; NULL otherwise, and in a session that names none.';

-- Name: update_rule(bigint, text, text, jsonb, jsonb, boolean); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.update_rule(p_id bigint, p_name text DEFAULT NULL::text, p_event_type text DEFAULT NULL::text, p_action jsonb DEFAULT NULL::jsonb, p_when jsonb DEFAULT NULL::jsonb, p_enabled boolean DEFAULT NULL::boolean) RETURNS nudge.rules
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rule nudge.rules;
BEGIN
  UPDATE nudge.rules
     SET name = coalesce(p_name, name), event_type = coalesce(p_event_type, event_type),
         action = coalesce(p_action, action), "when" = coalesce(p_when, "when"),
         enabled = coalesce(p_enabled, enabled)
   WHERE id = p_id
  RETURNING * INTO v_rule;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'rule % does not exist', p_id USING ERRCODE = 'NU404';
  END IF;
  RETURN v_rule;
END $$;

-- Name: FUNCTION update_rule(p_id bigint, p_name text, p_event_type text, p_action jsonb, p_when jsonb, p_enabled boolean); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.update_rule(p_id bigint, p_name text, p_event_type text, p_action jsonb, p_when jsonb, p_enabled boolean) IS 'Changes the given parts of a rule (NULL keeps one) after nudge.check_rule; the reminders it already created are left as they are; NU404 for a missing rule, 22023 naming the field for a bad one.';

-- Name: uri_component_encoded(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.uri_component_encoded(p_text text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  -- A run at a time, as nudge.form_encoded. "." and ".." alone would be dot segments, which
  -- clients resolve (a/../b is b): encoded, they are names.
  SELECT CASE WHEN p_text IN ('.', '..') THEN replace(p_text, '.', '%2E')
              ELSE coalesce(string_agg(
                     CASE WHEN m[1] IS NOT NULL THEN m[1]
                          ELSE regexp_replace(upper(encode(convert_to(m[2], 'UTF8'), 'hex')),
                                              '(..)', '%\1', 'g')
                     END, '' ORDER BY n), '') END
    FROM regexp_matches(p_text, '([A-Za-z0-9._~-]+)|([^A-Za-z0-9._~-]+)', 'g')
         WITH ORDINALITY AS s(m, n)
$$;

-- Name: FUNCTION uri_component_encoded(p_text text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.uri_component_encoded(p_text text) IS 'p_text as one URI component (RFC 3986): ASCII letters, digits and -._~ as they are, every other UTF-8 byte as %XX, and "." or ".." alone as %2E or %2E%2E.';

-- Name: utc_offset(timestamp with time zone, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.utc_offset(p_at timestamp with time zone, p_tz text) RETURNS interval
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT (p_at AT TIME ZONE p_tz) - (p_at AT TIME ZONE 'UTC')
$$;

-- Name: FUNCTION utc_offset(p_at timestamp with time zone, p_tz text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.utc_offset(p_at timestamp with time zone, p_tz text) IS 'The UTC offset of zone p_tz at instant p_at.';

-- Name: wake_workers(); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.wake_workers() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM nudge.queue_wake_up();
  RETURN NULL;
END $$;

-- Name: FUNCTION wake_workers(); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.wake_workers() IS 'Trigger: one small wake-up hint per transaction on channel nudge_due (PostgreSQL merges identical notifications); the claim, not the hint, decides what is due.';

-- Name: webhook_host(nudge.reminders); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.webhook_host(r nudge.reminders) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT CASE WHEN r.channel = 'webhook' THEN nudge.target_host(coalesce(r.target,
           (SELECT c.address FROM nudge.contacts c
             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
               AND c.channel = 'webhook'))) END
$$;

-- Name: FUNCTION webhook_host(r nudge.reminders); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.webhook_host(r nudge.reminders) IS 'The breaker key (nudge.target_host) of a webhook reminder''s address, its target else its contact''s; NULL for other channels or without an address.';

-- Name: webhook_url(nudge.reminders); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.webhook_url(r nudge.reminders) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT CASE WHEN r.channel = 'webhook' THEN nudge.target_url(coalesce(r.target,
           (SELECT c.address FROM nudge.contacts c
             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
               AND c.channel = 'webhook'))) END
$$;

-- Name: FUNCTION webhook_url(r nudge.reminders); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.webhook_url(r nudge.reminders) IS 'The pacing key (nudge.target_url) of a webhook reminder''s address, its target else its contact''s; NULL for other channels, without an address, or for one that is no URL.';

-- Name: whole_number_bounds(text); Type: FUNCTION; Schema: nudge; Owner: -

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

-- Name: FUNCTION whole_number_bounds(p_field text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.whole_number_bounds(p_field text) IS 'The least and greatest value of a whole-number field of a create item, an event item or a remind template (interval_seconds, interval_minutes, max_fires, max_attempts, delay_seconds, rule_id, event_id); NULL for any other field.';

-- Name: with_webhook_target(jsonb, jsonb, nudge.events); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.with_webhook_target(p_item jsonb, p_template jsonb, p_event nudge.events) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
  IF p_item->>'channel' = 'webhook' AND strpos(p_template->>'target', '{{') > 0
     AND p_template->>'target' !~ '^\s*\{\{[^{}]*\}\}\s*$' THEN
    RETURN p_item || jsonb_build_object('target', nudge.render_placeholders(
             p_template->>'target',
             jsonb_build_object('entity_type', p_event.entity_type,
                                'entity_id', p_event.entity_id,
                                'event_type', p_event.event_type, 'event_id', p_event.id,
                                'data', p_event.data),
             'url', p_null_is_missing => true));
  END IF;
  RETURN p_item;
END $_$;

-- Name: FUNCTION with_webhook_target(p_item jsonb, p_template jsonb, p_event nudge.events); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.with_webhook_target(p_item jsonb, p_template jsonb, p_event nudge.events) IS 'p_item (a remind template rendered for p_event) with, for a webhook whose template target has placeholders amid other text, the target rendered again with each value percent-encoded as one URI component, so that no value changes the host, path or query around it; a target that is one placeholder alone, any other channel, and a NULL item are left as they are.';

-- Name: words_count(integer, text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.words_count(p_n integer, p_unit text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN p_n = 1 THEN p_unit ELSE p_n || ' ' || p_unit || 's' END
$$;

-- Name: FUNCTION words_count(p_n integer, p_unit text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.words_count(p_n integer, p_unit text) IS 'A count of a unit: the unit alone for one ("hour"), else the number and the plural ("2 hours").';

-- Name: words_count_list(integer[], text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.words_count_list(p_values integer[], p_unit text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT p_unit || CASE WHEN cardinality(p_values) > 1 THEN 's ' ELSE ' ' END
         || nudge.words_list(p_values::text[])
$$;

-- Name: FUNCTION words_count_list(p_values integer[], p_unit text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.words_count_list(p_values integer[], p_unit text) IS 'A unit and the values it names: "minute 5", "minutes 0, 15 and 30".';

-- Name: words_flag(text); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.words_flag(p_key text) RETURNS text
    LANGUAGE sql STABLE
    AS $_$
  -- A key the parser would read as something else (a word of the grammar, a date, a number) or
  -- that is not one plain token is quoted, with \ and " escaped. The words are
  -- api/word_lexicon.cpp's reserved_words(); tests/api/schedule_words_test.cpp reads each back.
  SELECT CASE WHEN p_key ~ '^[A-Za-z_][A-Za-z0-9_:.-]*$'
                   -- Every word is letters only: a key with anything else is none of them, and
                   -- the words' hash table (built per transaction) is not needed.
                   AND (p_key !~ '^[A-Za-z]+$' OR NOT lower(p_key) = ANY (ARRAY[
                'a', 'aedt', 'aest', 'akst', 'am', 'an', 'and', 'annually', 'apr', 'april', 'at',
                'aug', 'august', 'between', 'bst', 'cdt', 'cest', 'cet', 'cron', 'cst', 'daily',
                'day', 'days', 'dec', 'december', 'each', 'edt', 'eest', 'eet', 'eight', 'eleven',
                'est', 'every', 'feb', 'february', 'five', 'for', 'four', 'fri', 'friday',
                'fridays', 'from', 'gmt', 'hour', 'hourly', 'hours', 'hr', 'hrs', 'hst', 'in', 'is',
                'ist', 'jan', 'january', 'jst', 'jul', 'july', 'jun', 'june', 'kst', 'last', 'mar',
                'march', 'may', 'mdt', 'midnight', 'min', 'mins', 'minute', 'minutes', 'mon',
                'monday', 'mondays', 'month', 'monthly', 'months', 'most', 'msk', 'mst', 'next',
                'nine', 'noon', 'nov', 'november', 'now', 'oct', 'october', 'of', 'on', 'once',
                'one', 'only', 'past', 'pdt', 'pm', 'pst', 'sat', 'saturday', 'saturdays', 'sec',
                'second', 'seconds', 'secs', 'sep', 'sept', 'september', 'seven', 'six', 'starting',
                'sun', 'sunday', 'sundays', 'ten', 'the', 'this', 'three', 'through', 'thru', 'thu',
                'thur', 'thurs', 'thursday', 'thursdays', 'till', 'time', 'times', 'to', 'today',
                'tomorrow', 'tonight', 'true', 'tue', 'tues', 'tuesday', 'tuesdays', 'twelve',
                'two', 'until', 'utc', 'wed', 'wednesday', 'wednesdays', 'week', 'weekday',
                'weekdays', 'weekend', 'weekends', 'weekly', 'weeks', 'west', 'wet', 'year',
                'yearly', 'years', 'yesterday']))
              THEN p_key
              ELSE '"' || replace(replace(p_key, '\', '\\'), '"', '\"') || '"' END
$_$;

-- Name: FUNCTION words_flag(p_key text); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.words_flag(p_key text) IS 'A stop flag key as the sentence gives it: as is when the parser reads it back as a flag, else in double quotes with \ and " escaped.';

-- Name: words_instant(timestamp with time zone, text, time without time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.words_instant(p_at timestamp with time zone, p_tz text, p_bare_time time without time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  -- An instant whose local time is repeated (the second pass of a fall-back hour) cannot be
  -- named by that local time, which means its first instant: it is given with its offset.
  SELECT CASE WHEN p_tz <> 'UTC'
                   AND (nudge.local_instants(p_at AT TIME ZONE p_tz, p_tz))[1] <> p_at
              THEN nudge.rfc3339_in_zone(p_at, p_tz)
              WHEN (p_at AT TIME ZONE p_tz)::time = p_bare_time
              THEN to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD')
              ELSE to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD') || ' at '
                   || nudge.words_time((p_at AT TIME ZONE p_tz)::time) END
$$;

-- Name: FUNCTION words_instant(p_at timestamp with time zone, p_tz text, p_bare_time time without time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.words_instant(p_at timestamp with time zone, p_tz text, p_bare_time time without time zone) IS 'Instant p_at as zone p_tz''s date and time ("2026-12-24 at 18:00"), the date alone when the time is p_bare_time, or RFC 3339 with its offset when that local time happens twice and p_at is its second instant.';

-- Name: words_interval(integer); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.words_interval(p_seconds integer) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN p_seconds % 604800 = 0 THEN nudge.words_count(p_seconds / 604800, 'week')
              WHEN p_seconds % 86400 = 0 THEN nudge.words_count(p_seconds / 86400, 'day')
              WHEN p_seconds % 3600 = 0 THEN nudge.words_count(p_seconds / 3600, 'hour')
              WHEN p_seconds % 60 = 0 THEN nudge.words_count(p_seconds / 60, 'minute')
              ELSE nudge.words_count(p_seconds, 'second') END
$$;

-- Name: FUNCTION words_interval(p_seconds integer); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.words_interval(p_seconds integer) IS 'An interval of p_seconds in its largest whole unit: "second", "90 seconds", "2 hours", "week".';

-- Name: words_list(text[]); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.words_list(p_items text[]) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN cardinality(p_items) < 2 THEN p_items[1]
              ELSE array_to_string(p_items[1:cardinality(p_items) - 1], ', ') || ' and '
                   || p_items[cardinality(p_items)] END
$$;

-- Name: FUNCTION words_list(p_items text[]); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.words_list(p_items text[]) IS 'Items as an English list: "a", "a and b", "a, b and c"; NULL for none.';

-- Name: words_time(time without time zone); Type: FUNCTION; Schema: nudge; Owner: -

CREATE FUNCTION nudge.words_time(p_time time without time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT to_char(p_time, 'HH24:MI')
         || CASE WHEN p_time = date_trunc('minute', p_time::interval)::time THEN ''
                 ELSE to_char(p_time, ':SS') END
         || CASE WHEN p_time = date_trunc('second', p_time::interval)::time THEN ''
                 ELSE rtrim(to_char(p_time, '.US'), '0') END
$$;

-- Name: FUNCTION words_time(p_time time without time zone); Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON FUNCTION nudge.words_time(p_time time without time zone) IS 'A time of day as 24-hour HH:MM, with :SS and a fraction only when they are not zero.';

-- Name: audit; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.audit (
    id bigint NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    token text,
    route text,
    db_user text DEFAULT SESSION_USER NOT NULL,
    subject_type text NOT NULL,
    subject text NOT NULL,
    change text NOT NULL
);

-- Name: TABLE audit; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.audit IS 'Who changed what: one row per row a REST request or an SQL session changed in reminders, rules, status_flags, contacts, events or api_tokens, and one per circuit breaker closed by hand (subject_type target); pruned after [history] retention_days.';

-- Name: audit_id_seq; Type: SEQUENCE; Schema: nudge; Owner: -

ALTER TABLE nudge.audit ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME nudge.audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: change_batches; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.change_batches (
    pos bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    snapshot pg_snapshot NOT NULL,
    xids xid8[] NOT NULL
);

-- Name: TABLE change_batches; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.change_batches IS 'The stream''s delivery order: batch pos holds the changes of the transactions xids, which finished between the snapshot of batch pos - 1 and its own; written only by nudge.stream_advance, pruned by nudge.prune_history (never the last).';

-- Name: changes; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.changes (
    id bigint NOT NULL,
    xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    kind nudge.change_kind NOT NULL,
    change text NOT NULL,
    object_ids bigint[],
    flag_keys text[],
    occurrences timestamp with time zone[],
    gone jsonb[],
    CONSTRAINT change_names_its_objects CHECK (((((kind)::text = 'flag'::text) = (flag_keys IS NOT NULL)) AND (((kind)::text = 'flag'::text) = (object_ids IS NULL))))
);
ALTER TABLE ONLY nudge.changes ALTER COLUMN object_ids SET STORAGE EXTERNAL;
ALTER TABLE ONLY nudge.changes ALTER COLUMN occurrences SET STORAGE EXTERNAL;

-- Name: TABLE changes; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.changes IS 'What happened, for the live stream: written by triggers, one row per statement, each delivered in the batch (nudge.change_batches) of its transaction, in id order and then the order of the arrays; the objects are read when a change is rendered; pruned with its batch after [history] retention_days.';

-- Name: changes_id_seq; Type: SEQUENCE; Schema: nudge; Owner: -

ALTER TABLE nudge.changes ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME nudge.changes_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: changes_pruned; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.changes_pruned (
    only_row boolean DEFAULT true NOT NULL,
    pos bigint NOT NULL,
    CONSTRAINT changes_pruned_has_one_row CHECK (only_row)
);

-- Name: TABLE changes_pruned; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.changes_pruned IS 'The last batch pruned from nudge.change_batches with its changes: a client resuming from a position in or before it has missed changes that are gone.';

-- Name: events_id_seq; Type: SEQUENCE; Schema: nudge; Owner: -

ALTER TABLE nudge.events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME nudge.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: migrations; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    breaking boolean NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

-- Name: TABLE migrations; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.migrations IS 'The migrations applied to this database; a binary refuses to start when a breaking one is newer than it knows.';

-- Name: paced_targets; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.paced_targets (
    url text NOT NULL,
    host text NOT NULL,
    pace double precision NOT NULL,
    limited_at timestamp with time zone NOT NULL,
    paced_until timestamp with time zone NOT NULL,
    next_send_at timestamp with time zone NOT NULL,
    refused_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    alone boolean DEFAULT false NOT NULL,
    CONSTRAINT paced_targets_pace_check CHECK ((pace > (0)::double precision))
);

-- Name: TABLE paced_targets; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.paced_targets IS 'Each webhook URL (nudge.target_url) paced on its own because it answered 429 while its host is not paced whole (nudge.record_host_outcomes), with the pacing columns of nudge.target_hosts; its rows go when its host''s next URL is paced after it ended, or when the host is closed by hand. Changed only by the workers'' claims and finishes and nudge.close_breaker.';

-- Name: COLUMN paced_targets.host; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.paced_targets.host IS 'Its host as nudge.target_hosts keys it (nudge.target_host).';

-- Name: COLUMN paced_targets.pace; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.paced_targets.pace IS 'Deliveries a second the URL may be sent at limited_at: 0.7 of the pace it had at its last 429 (nudge.pace_after_429); nudge.pace_at tells the pace now.';

-- Name: COLUMN paced_targets.limited_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.paced_targets.limited_at IS 'When the URL may be sent to again after its last 429 that cut the pace (that 429, plus its Retry-After): its pace grows from then.';

-- Name: COLUMN paced_targets.paced_until; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.paced_targets.paced_until IS 'When the pace, growing from limited_at as nudge.pace_at says, passes 1,000 a second (nudge.paced_until): the URL is no longer paced.';

-- Name: COLUMN paced_targets.next_send_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.paced_targets.next_send_at IS 'While paced: no delivery goes to the URL before it (its last Retry-After, then one pace after the last delivery sent).';

-- Name: COLUMN paced_targets.refused_at; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.paced_targets.refused_at IS 'When the URL last answered 429: a URL of the same host refused within 2 s of it paces the host whole.';

-- Name: COLUMN paced_targets.alone; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON COLUMN nudge.paced_targets.alone IS 'Whether its last 429 came alone (the URL sent once in its batch and not paced): a second URL of the host refused alone within 2 s paces the host whole.';

-- Name: reminders_id_seq; Type: SEQUENCE; Schema: nudge; Owner: -

ALTER TABLE nudge.reminders ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME nudge.reminders_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: rule_failures; Type: SEQUENCE; Schema: nudge; Owner: -

CREATE SEQUENCE nudge.rule_failures
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

-- Name: rules_id_seq; Type: SEQUENCE; Schema: nudge; Owner: -

ALTER TABLE nudge.rules ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME nudge.rules_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: stopped_while_leased; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.stopped_while_leased (
    reminder_id bigint NOT NULL,
    stopped_at timestamp with time zone DEFAULT now() NOT NULL
);

-- Name: TABLE stopped_while_leased; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.stopped_while_leased IS 'Reminders stopped (COMPLETED, CANCELLED or FAILED) while a worker held their lease: a worker records the occurrence as abandoned once the lease expires (nudge.finish_abandoned), or drops the row once the lease is gone.';

-- Name: stream_turn; Type: TABLE; Schema: nudge; Owner: -

CREATE TABLE nudge.stream_turn (
    only_row boolean DEFAULT true NOT NULL,
    CONSTRAINT stream_turn_only_row_check CHECK (only_row)
);

-- Name: TABLE stream_turn; Type: COMMENT; Schema: nudge; Owner: -

COMMENT ON TABLE nudge.stream_turn IS 'One row, locked by nudge.stream_advance so that one caller at a time makes a batch: a lock only roles that may change this table can take.';

-- Name: api_tokens api_token_name_is_unique; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.api_tokens
    ADD CONSTRAINT api_token_name_is_unique PRIMARY KEY (name);

-- Name: audit audit_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.audit
    ADD CONSTRAINT audit_pkey PRIMARY KEY (id);

-- Name: change_batches change_batches_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.change_batches
    ADD CONSTRAINT change_batches_pkey PRIMARY KEY (pos);

-- Name: changes_pruned changes_pruned_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.changes_pruned
    ADD CONSTRAINT changes_pruned_pkey PRIMARY KEY (only_row);

-- Name: events events_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);

-- Name: migrations migrations_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.migrations
    ADD CONSTRAINT migrations_pkey PRIMARY KEY (version);

-- Name: contacts one_address_per_entity_and_channel; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.contacts
    ADD CONSTRAINT one_address_per_entity_and_channel PRIMARY KEY (entity_type, entity_id, channel);

-- Name: executions one_execution_per_occurrence; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.executions
    ADD CONSTRAINT one_execution_per_occurrence PRIMARY KEY (reminder_id, scheduled_for);

-- Name: delivery_attempts one_row_per_attempt; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.delivery_attempts
    ADD CONSTRAINT one_row_per_attempt PRIMARY KEY (reminder_id, scheduled_for, attempt);

-- Name: paced_targets paced_targets_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.paced_targets
    ADD CONSTRAINT paced_targets_pkey PRIMARY KEY (url);

-- Name: reminders reminders_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.reminders
    ADD CONSTRAINT reminders_pkey PRIMARY KEY (id);

-- Name: rules rules_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.rules
    ADD CONSTRAINT rules_pkey PRIMARY KEY (id);

-- Name: status_flags status_flags_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.status_flags
    ADD CONSTRAINT status_flags_pkey PRIMARY KEY (key);

-- Name: stopped_while_leased stopped_while_leased_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.stopped_while_leased
    ADD CONSTRAINT stopped_while_leased_pkey PRIMARY KEY (reminder_id);

-- Name: stream_turn stream_turn_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.stream_turn
    ADD CONSTRAINT stream_turn_pkey PRIMARY KEY (only_row);

-- Name: target_hosts target_hosts_pkey; Type: CONSTRAINT; Schema: nudge; Owner: -

ALTER TABLE ONLY nudge.target_hosts
    ADD CONSTRAINT target_hosts_pkey PRIMARY KEY (host);

-- Name: reminder_target target_is_no_template; Type: CHECK CONSTRAINT; Schema: nudge; Owner: -

ALTER DOMAIN nudge.reminder_target
    ADD CONSTRAINT target_is_no_template CHECK (((strpos(VALUE, '{{'::text) = 0) OR (nudge.secret_address_name(VALUE) IS NOT NULL))) NOT VALID;

-- Name: api_tokens_one_per_hash; Type: INDEX; Schema: nudge; Owner: -

CREATE UNIQUE INDEX api_tokens_one_per_hash ON nudge.api_tokens USING btree (token_hash);

-- Name: changes_by_transaction; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX changes_by_transaction ON nudge.changes USING btree (xid, id);

-- Name: delivery_attempts_by_attempted_at; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX delivery_attempts_by_attempted_at ON nudge.delivery_attempts USING brin (attempted_at);

-- Name: events_by_entity; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX events_by_entity ON nudge.events USING btree (entity_type, entity_id, id);

-- Name: events_by_received_at; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX events_by_received_at ON nudge.events USING brin (received_at);

-- Name: events_by_type; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX events_by_type ON nudge.events USING btree (event_type, id);

-- Name: events_one_per_key; Type: INDEX; Schema: nudge; Owner: -

CREATE UNIQUE INDEX events_one_per_key ON nudge.events USING btree (key) WHERE (key IS NOT NULL);

-- Name: executions_by_fired_at; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX executions_by_fired_at ON nudge.executions USING brin (fired_at);

-- Name: paced_targets_by_host; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX paced_targets_by_host ON nudge.paced_targets USING btree (host);

-- Name: paced_targets_paced; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX paced_targets_paced ON nudge.paced_targets USING btree (paced_until);

-- Name: reminders_due_in_order; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX reminders_due_in_order ON nudge.reminders USING btree (next_run_at) WHERE ((status)::text = 'ACTIVE'::text);

-- Name: reminders_live_by_stop_flag; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX reminders_live_by_stop_flag ON nudge.reminders USING btree (stop_condition_value) WHERE (((stop_condition_type)::text = 'db_check'::text) AND ((status)::text <> ALL (ARRAY['COMPLETED'::text, 'CANCELLED'::text, 'FAILED'::text])));

-- Name: reminders_one_live_per_identity; Type: INDEX; Schema: nudge; Owner: -

CREATE UNIQUE INDEX reminders_one_live_per_identity ON nudge.reminders USING btree (entity_type, entity_id, event_type) WHERE ((status)::text = ANY (ARRAY['ACTIVE'::text, 'PAUSED'::text]));

-- Name: rules_enabled_by_event_type; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX rules_enabled_by_event_type ON nudge.rules USING btree (event_type, id) WHERE enabled;

-- Name: target_hosts_by_state; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX target_hosts_by_state ON nudge.target_hosts USING btree (state);

-- Name: target_hosts_paced; Type: INDEX; Schema: nudge; Owner: -

CREATE INDEX target_hosts_paced ON nudge.target_hosts USING btree (paced_until) WHERE (paced_until IS NOT NULL);

-- Name: reminders a_stop_while_leased_is_noted; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER a_stop_while_leased_is_noted AFTER UPDATE OF status ON nudge.reminders FOR EACH ROW WHEN (((new.leased_by IS NOT NULL) AND ((new.status)::text = ANY (ARRAY['COMPLETED'::text, 'CANCELLED'::text, 'FAILED'::text])))) EXECUTE FUNCTION nudge.note_stopped_while_leased();

-- Name: api_tokens api_token_change_is_announced; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER api_token_change_is_announced AFTER DELETE OR UPDATE OF name, token_hash, scopes, revoked_at ON nudge.api_tokens FOR EACH ROW EXECUTE FUNCTION nudge.announce_token_change();

-- Name: contacts contact_change_sets_updated_at; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER contact_change_sets_updated_at BEFORE UPDATE ON nudge.contacts FOR EACH ROW EXECUTE FUNCTION nudge.touch_updated_at();

-- Name: contacts contact_deletes_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER contact_deletes_are_audited AFTER DELETE ON nudge.contacts REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('contact');

-- Name: contacts contact_inserts_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER contact_inserts_are_audited AFTER INSERT ON nudge.contacts REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('contact');

-- Name: contacts contact_updates_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER contact_updates_are_audited AFTER UPDATE ON nudge.contacts REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('contact');

-- Name: delivery_attempts delivery_attempt_inserts_are_logged; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER delivery_attempt_inserts_are_logged AFTER INSERT ON nudge.delivery_attempts REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_retries();

-- Name: events event_deletes_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER event_deletes_are_audited AFTER DELETE ON nudge.events REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('event');

-- Name: events event_inserts_are_logged_and_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER event_inserts_are_logged_and_audited AFTER INSERT ON nudge.events REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_inserted_events();

-- Name: events event_updates_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER event_updates_are_audited AFTER UPDATE ON nudge.events REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('event');

-- Name: executions execution_inserts_are_logged; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER execution_inserts_are_logged AFTER INSERT ON nudge.executions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_fires();

-- Name: reminders reminder_changes_are_logged; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_changes_are_logged AFTER UPDATE OF status, next_run_at, interval_seconds, max_fires, ends_at, payload ON nudge.reminders FOR EACH ROW WHEN ((((old.fire_count)::integer = (new.fire_count)::integer) AND (((old.status)::text <> (new.status)::text) OR ((NOT (old.leased_by IS DISTINCT FROM new.leased_by)) AND ((old.attempt)::integer = (new.attempt)::integer) AND (((((new.next_run_at IS DISTINCT FROM old.next_run_at) OR ((new.interval_seconds)::integer IS DISTINCT FROM (old.interval_seconds)::integer)) OR ((new.max_fires)::integer IS DISTINCT FROM (old.max_fires)::integer)) OR (new.ends_at IS DISTINCT FROM old.ends_at)) OR ((new.payload)::jsonb IS DISTINCT FROM (old.payload)::jsonb)) AND (current_setting('nudge.placing'::text, true) IS DISTINCT FROM 'on'::text))))) EXECUTE FUNCTION nudge.log_reminder_change();

-- Name: reminders reminder_created_stopped_emits_an_event; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_created_stopped_emits_an_event AFTER INSERT ON nudge.reminders FOR EACH ROW WHEN (((new.status)::text = 'COMPLETED'::text)) EXECUTE FUNCTION nudge.emit_reminder_event();

-- Name: reminders reminder_cron_change_is_described; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_cron_change_is_described AFTER UPDATE OF cron, cron_schedule ON nudge.reminders FOR EACH ROW WHEN ((new.cron_schedule IS NOT NULL)) EXECUTE FUNCTION nudge.describe_changed_reminder_cron();

-- Name: reminders reminder_cron_has_no_surrounding_space; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_cron_has_no_surrounding_space BEFORE INSERT ON nudge.reminders FOR EACH ROW WHEN ((new.cron IS NOT NULL)) EXECUTE FUNCTION nudge.trim_reminder_cron();

-- Name: reminders reminder_cron_is_described; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_cron_is_described BEFORE INSERT ON nudge.reminders FOR EACH ROW WHEN ((new.cron_schedule IS NOT NULL)) EXECUTE FUNCTION nudge.describe_reminder_cron();

-- Name: reminders reminder_deletes_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_deletes_are_audited AFTER DELETE ON nudge.reminders REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('reminder');

-- Name: reminders reminder_due_sooner_wakes_workers; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_due_sooner_wakes_workers AFTER UPDATE ON nudge.reminders FOR EACH ROW WHEN (((new.lease_expires_at IS NULL) AND ((new.status)::text = 'ACTIVE'::text) AND (((old.status)::text <> 'ACTIVE'::text) OR (old.lease_expires_at IS NOT NULL) OR (new.next_run_at < old.next_run_at)))) EXECUTE FUNCTION nudge.wake_workers();

-- Name: reminders reminder_end_emits_an_event; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_end_emits_an_event AFTER UPDATE OF status ON nudge.reminders FOR EACH ROW WHEN (((new.completed_reason IS NOT NULL) AND ((new.completed_reason)::text <> 'fired'::text) AND ((old.status)::text = ANY (ARRAY['ACTIVE'::text, 'PAUSED'::text])) AND ((new.status)::text = ANY (ARRAY['COMPLETED'::text, 'CANCELLED'::text, 'FAILED'::text])))) EXECUTE FUNCTION nudge.emit_reminder_event();

-- Name: reminders reminder_inserts_are_recorded; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_inserts_are_recorded AFTER INSERT ON nudge.reminders REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION nudge.record_inserted_reminders();

-- Name: reminders reminder_request_is_checked; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_request_is_checked AFTER INSERT OR UPDATE OF request, payload ON nudge.reminders FOR EACH ROW WHEN ((new.request IS NOT NULL)) EXECUTE FUNCTION nudge.reminder_request_is_checked();

-- Name: reminders reminder_target_fits_channel; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_target_fits_channel AFTER INSERT OR UPDATE OF channel, target ON nudge.reminders FOR EACH ROW WHEN (((new.target IS NOT NULL) AND ((new.channel)::text <> 'log'::text))) EXECUTE FUNCTION nudge.reminder_target_fits_channel();

-- Name: reminders reminder_updated_at_never_goes_back; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_updated_at_never_goes_back AFTER UPDATE ON nudge.reminders FOR EACH ROW WHEN ((new.updated_at < old.updated_at)) EXECUTE FUNCTION nudge.redate_backdated_reminder();

-- Name: reminders reminder_updates_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER reminder_updates_are_audited AFTER UPDATE ON nudge.reminders REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('reminder');

-- Name: rules rule_deletes_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER rule_deletes_are_audited AFTER DELETE ON nudge.rules REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('rule');

-- Name: rules rule_deletes_are_logged; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER rule_deletes_are_logged AFTER DELETE ON nudge.rules REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('rule', 'deleted');

-- Name: rules rule_inserts_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER rule_inserts_are_audited AFTER INSERT ON nudge.rules REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('rule');

-- Name: rules rule_inserts_are_logged; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER rule_inserts_are_logged AFTER INSERT ON nudge.rules REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('rule', 'created');

-- Name: rules rule_is_checked_before_saving; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER rule_is_checked_before_saving BEFORE INSERT OR UPDATE ON nudge.rules FOR EACH ROW EXECUTE FUNCTION nudge.rule_is_checked_before_saving();

-- Name: rules rule_updates_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER rule_updates_are_audited AFTER UPDATE ON nudge.rules REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.audit_changed_rows('rule');

-- Name: rules rule_updates_are_logged; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER rule_updates_are_logged AFTER UPDATE ON nudge.rules REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_row_changes('rule', 'updated');

-- Name: status_flags status_flag_change_sets_updated_at; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER status_flag_change_sets_updated_at BEFORE UPDATE ON nudge.status_flags FOR EACH ROW EXECUTE FUNCTION nudge.touch_updated_at();

-- Name: status_flags status_flag_deletes_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER status_flag_deletes_are_audited AFTER DELETE ON nudge.status_flags REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_flag_changes();

-- Name: status_flags status_flag_inserts_are_logged_and_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER status_flag_inserts_are_logged_and_audited AFTER INSERT ON nudge.status_flags REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_flag_changes();

-- Name: status_flags status_flag_updates_are_logged_and_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER status_flag_updates_are_logged_and_audited AFTER UPDATE ON nudge.status_flags REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nudge.log_and_audit_flag_changes();

-- Name: status_flags status_flags_inserted_true_complete_their_reminders; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER status_flags_inserted_true_complete_their_reminders AFTER INSERT ON nudge.status_flags REFERENCING NEW TABLE AS changed_flags FOR EACH STATEMENT EXECUTE FUNCTION nudge.complete_reminders_stopped_by_flags();

-- Name: status_flags status_flags_updated_true_complete_their_reminders; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER status_flags_updated_true_complete_their_reminders AFTER UPDATE ON nudge.status_flags REFERENCING NEW TABLE AS changed_flags FOR EACH STATEMENT EXECUTE FUNCTION nudge.complete_reminders_stopped_by_flags();

-- Name: api_tokens token_changes_are_audited; Type: TRIGGER; Schema: nudge; Owner: -

CREATE TRIGGER token_changes_are_audited AFTER INSERT OR DELETE OR UPDATE OF name, token_hash, scopes, revoked_at ON nudge.api_tokens FOR EACH ROW WHEN (((pg_trigger_depth() = 0) AND (current_setting('nudge.audit'::text, true) IS DISTINCT FROM 'off'::text))) EXECUTE FUNCTION nudge.audit_row_change('token');

