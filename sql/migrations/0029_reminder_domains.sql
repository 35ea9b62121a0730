-- 0029: the rules of one column of a reminder are domain constraints, and the table's CHECKs that
-- tie columns together are smaller (issues 10 and 17).
--
-- PostgreSQL rebuilds every CHECK of a table from pg_constraint.conbin for each INSERT or UPDATE
-- statement it runs (stringToNode, then planned and compiled again, even under a cached plan), and
-- evaluates all of them for every row an UPDATE writes. A domain's constraints are parsed and
-- planned once per backend (the type cache) and run only where a value is assigned to a column of
-- that type: an UPDATE that does not set a column does not check it again. So each rule about one
-- column moves, under its own name, to a domain over the column's type (nudge.reminder_<column>),
-- and the CHECKs left on the table are written to be small: with status, schedule_type and
-- completed_reason known before any table CHECK runs (a domain is checked when the row is formed),
-- they no longer carry the "or the value is unknown" escapes that let status_is_known and
-- schedule_type_is_known name an unknown value first. A rule about two columns whose bounds concern
-- one of them keeps its name on both: the bounds in the column's domain, the pairing on the table.
-- The set of rows the table accepts is the same; an error still names the broken rule.
--
-- Measured in the database (callgrind instructions, the difference of two runs of N; then the
-- backend's CPU time from /proc/PID/schedstat, fastest of 3 alternating with 0028 on one
-- cluster): a single create 2.21M -> 1.55M instructions (b3f27eb: 1.92M), 504 -> 380 us; an
-- event answered by two rules (a reminder and a flag) 4.42M -> 3.65M; a claim and finish of
-- 1,000 log reminders 351k -> 338k a reminder; a batch create of 1,000 428k a reminder on both.

CREATE DOMAIN nudge.reminder_entity_type AS text
  CONSTRAINT entity_type_is_1_to_200_chars CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.reminder_entity_id AS text
  CONSTRAINT entity_id_is_1_to_200_chars CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.reminder_event_type AS text
  CONSTRAINT event_type_is_1_to_200_chars CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.reminder_channel AS text
  CONSTRAINT channel_is_known CHECK (VALUE IN ('log', 'webhook', 'email'));
CREATE DOMAIN nudge.reminder_target AS text
  CONSTRAINT target_is_at_most_2048_chars CHECK (length(VALUE) <= 2048);
CREATE DOMAIN nudge.reminder_payload AS jsonb
  CONSTRAINT payload_is_object CHECK (jsonb_typeof(VALUE) = 'object')
  CONSTRAINT payload_is_at_most_64_kib CHECK (pg_column_size(VALUE) <= 65536);
CREATE DOMAIN nudge.reminder_schedule_type AS text
  CONSTRAINT schedule_type_is_known CHECK (VALUE IN ('one_time', 'recurring', 'cron'));
-- Only a recurring reminder has an interval (one_time_has_no_interval, cron_has_no_interval).
CREATE DOMAIN nudge.reminder_interval_seconds AS integer
  CONSTRAINT recurring_has_interval_of_1s_to_366_days CHECK (VALUE >= 1 AND VALUE <= 31622400);
CREATE DOMAIN nudge.reminder_cron AS text
  CONSTRAINT cron_is_at_most_200_chars CHECK (length(VALUE) <= 200);
CREATE DOMAIN nudge.reminder_misfire_policy AS text
  CONSTRAINT misfire_policy_is_known CHECK (VALUE IN ('fire_once', 'skip', 'fire_all'));
-- A stop condition is both columns or neither (the table's CHECK of the same name).
CREATE DOMAIN nudge.reminder_stop_condition_type AS text
  CONSTRAINT stop_condition_is_db_check_with_flag_key CHECK (VALUE = 'db_check');
CREATE DOMAIN nudge.reminder_stop_condition_value AS text
  CONSTRAINT stop_condition_is_db_check_with_flag_key
    CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.reminder_max_fires AS integer
  CONSTRAINT max_fires_is_positive CHECK (VALUE >= 1);
CREATE DOMAIN nudge.reminder_max_attempts AS integer
  CONSTRAINT max_attempts_is_1_to_100 CHECK (VALUE >= 1 AND VALUE <= 100);
CREATE DOMAIN nudge.reminder_fire_count AS integer
  CONSTRAINT fire_count_is_not_negative CHECK (VALUE >= 0);
CREATE DOMAIN nudge.reminder_catch_up_fires AS integer
  CONSTRAINT catch_up_fires_is_not_negative CHECK (VALUE >= 0);
CREATE DOMAIN nudge.reminder_status AS text
  CONSTRAINT status_is_known
    CHECK (VALUE IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED'));
-- Which reason goes with which status: the table's CHECK of the same name.
CREATE DOMAIN nudge.reminder_completed_reason AS text
  CONSTRAINT completed_reason_fits_status
    CHECK (VALUE IN ('fired', 'max_fires', 'ends_at', 'stop_condition', 'cancelled',
                     'attempts_exhausted'));
CREATE DOMAIN nudge.reminder_last_error AS text
  CONSTRAINT last_error_is_at_most_2000_chars CHECK (length(VALUE) <= 2000);
CREATE DOMAIN nudge.reminder_attempt AS integer
  CONSTRAINT attempt_is_not_negative CHECK (VALUE >= 0);

-- What a claim returns is the reminder's columns as they are: of their types (PL/pgSQL's RETURN
-- QUERY wants a column of exactly the declared type). target (or the contact's address) and
-- max_attempts (or the policy's) are computed, so they stay text and integer.
ALTER TYPE nudge.claimed_fire
  ALTER ATTRIBUTE entity_type TYPE nudge.reminder_entity_type,
  ALTER ATTRIBUTE entity_id TYPE nudge.reminder_entity_id,
  ALTER ATTRIBUTE event_type TYPE nudge.reminder_event_type,
  ALTER ATTRIBUTE channel TYPE nudge.reminder_channel,
  ALTER ATTRIBUTE payload TYPE nudge.reminder_payload,
  ALTER ATTRIBUTE schedule_type TYPE nudge.reminder_schedule_type,
  ALTER ATTRIBUTE attempt TYPE nudge.reminder_attempt,
  ALTER ATTRIBUTE fire_count TYPE nudge.reminder_fire_count;

-- A column that a trigger's WHEN or UPDATE OF names cannot change its type: those triggers are
-- dropped and made again from their own definitions, unchanged.
CREATE TEMPORARY TABLE reminder_triggers ON COMMIT DROP AS
  SELECT t.tgname, pg_get_triggerdef(t.oid) AS definition
    FROM pg_trigger t
   WHERE t.tgrelid = 'nudge.reminders'::regclass AND NOT t.tgisinternal
     AND (t.tgqual IS NOT NULL OR t.tgattr <> '');
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT tgname FROM reminder_triggers LOOP
    EXECUTE format('DROP TRIGGER %I ON nudge.reminders', t.tgname);
  END LOOP;
END $$;

ALTER TABLE nudge.reminders
  DROP CONSTRAINT entity_type_is_1_to_200_chars,
  DROP CONSTRAINT entity_id_is_1_to_200_chars,
  DROP CONSTRAINT event_type_is_1_to_200_chars,
  DROP CONSTRAINT channel_is_known,
  DROP CONSTRAINT target_is_at_most_2048_chars,
  DROP CONSTRAINT payload_is_object,
  DROP CONSTRAINT payload_is_at_most_64_kib,
  DROP CONSTRAINT schedule_type_is_known,
  DROP CONSTRAINT cron_is_at_most_200_chars,
  DROP CONSTRAINT misfire_policy_is_known,
  DROP CONSTRAINT max_fires_is_positive,
  DROP CONSTRAINT max_attempts_is_1_to_100,
  DROP CONSTRAINT fire_count_is_not_negative,
  DROP CONSTRAINT catch_up_fires_is_not_negative,
  DROP CONSTRAINT status_is_known,
  DROP CONSTRAINT last_error_is_at_most_2000_chars,
  DROP CONSTRAINT attempt_is_not_negative,
  DROP CONSTRAINT completed_reason_fits_status,
  DROP CONSTRAINT finished_at_set_once_finished,
  DROP CONSTRAINT stop_condition_is_db_check_with_flag_key,
  DROP CONSTRAINT only_cron_has_expression_and_zone,
  DROP CONSTRAINT recurring_has_interval_of_1s_to_366_days,
  DROP CONSTRAINT one_time_has_no_interval,
  DROP CONSTRAINT cron_has_no_interval,
  DROP CONSTRAINT one_time_misfire_policy_is_fire_once,
  DROP CONSTRAINT target_fits_channel,
  ALTER COLUMN entity_type TYPE nudge.reminder_entity_type,
  ALTER COLUMN entity_id TYPE nudge.reminder_entity_id,
  ALTER COLUMN event_type TYPE nudge.reminder_event_type,
  ALTER COLUMN channel TYPE nudge.reminder_channel,
  ALTER COLUMN target TYPE nudge.reminder_target,
  ALTER COLUMN payload TYPE nudge.reminder_payload,
  ALTER COLUMN schedule_type TYPE nudge.reminder_schedule_type,
  ALTER COLUMN interval_seconds TYPE nudge.reminder_interval_seconds,
  ALTER COLUMN cron TYPE nudge.reminder_cron,
  ALTER COLUMN misfire_policy TYPE nudge.reminder_misfire_policy,
  ALTER COLUMN stop_condition_type TYPE nudge.reminder_stop_condition_type,
  ALTER COLUMN stop_condition_value TYPE nudge.reminder_stop_condition_value,
  ALTER COLUMN max_fires TYPE nudge.reminder_max_fires,
  ALTER COLUMN max_attempts TYPE nudge.reminder_max_attempts,
  ALTER COLUMN fire_count TYPE nudge.reminder_fire_count,
  ALTER COLUMN catch_up_fires TYPE nudge.reminder_catch_up_fires,
  ALTER COLUMN status TYPE nudge.reminder_status,
  ALTER COLUMN completed_reason TYPE nudge.reminder_completed_reason,
  ALTER COLUMN last_error TYPE nudge.reminder_last_error,
  ALTER COLUMN attempt TYPE nudge.reminder_attempt,
  -- No reason while live; once ended, the status its reason goes with.
  ADD CONSTRAINT completed_reason_fits_status CHECK (
        CASE WHEN completed_reason IS NULL THEN status IN ('ACTIVE', 'PAUSED')
             ELSE status = CASE completed_reason WHEN 'cancelled' THEN 'CANCELLED'
                                                 WHEN 'attempts_exhausted' THEN 'FAILED'
                                                 ELSE 'COMPLETED' END END),
  -- A reason is there exactly when the reminder ended (completed_reason_fits_status).
  ADD CONSTRAINT finished_at_set_once_finished CHECK (
        (finished_at IS NULL) = (completed_reason IS NULL)),
  ADD CONSTRAINT stop_condition_is_db_check_with_flag_key CHECK (
        (stop_condition_type IS NULL) = (stop_condition_value IS NULL)),
  ADD CONSTRAINT only_cron_has_expression_and_zone CHECK (
        (schedule_type = 'cron')
          = (cron IS NOT NULL AND timezone IS NOT NULL AND cron_schedule IS NOT NULL)),
  ADD CONSTRAINT recurring_has_interval_of_1s_to_366_days CHECK (
        schedule_type <> 'recurring' OR interval_seconds IS NOT NULL),
  ADD CONSTRAINT one_time_has_no_interval CHECK (
        schedule_type <> 'one_time' OR interval_seconds IS NULL),
  ADD CONSTRAINT cron_has_no_interval CHECK (
        schedule_type <> 'cron' OR interval_seconds IS NULL),
  ADD CONSTRAINT one_time_misfire_policy_is_fire_once CHECK (
        schedule_type <> 'one_time' OR misfire_policy = 'fire_once'),
  -- Only a webhook's or an email's address has a form to check.
  ADD CONSTRAINT target_fits_channel CHECK (
        target IS NULL OR channel = 'log' OR nudge.address_problem(channel, target) IS NULL);

DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT definition FROM reminder_triggers ORDER BY tgname LOOP
    EXECUTE t.definition;
  END LOOP;
END $$;

-- An event's and a flag's one-column rules likewise (POST /v1/events inserts an event, and a
-- flag or a reminder per rule it matches).
CREATE DOMAIN nudge.event_type_of_event AS text
  CONSTRAINT event_type_of_event_is_1_to_200_chars
    CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.event_entity_type AS text
  CONSTRAINT event_entity_type_is_1_to_200_chars
    CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.event_entity_id AS text
  CONSTRAINT event_entity_id_is_1_to_200_chars CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.event_data AS jsonb
  CONSTRAINT event_data_is_object CHECK (jsonb_typeof(VALUE) = 'object')
  CONSTRAINT event_data_is_at_most_64_kib CHECK (pg_column_size(VALUE) <= 65536);
CREATE DOMAIN nudge.event_key AS text
  CONSTRAINT event_key_is_1_to_200_chars CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
CREATE DOMAIN nudge.event_depth AS integer
  CONSTRAINT event_depth_is_not_negative CHECK (VALUE >= 0);
ALTER TABLE nudge.events
  DROP CONSTRAINT event_type_of_event_is_1_to_200_chars,
  DROP CONSTRAINT event_entity_type_is_1_to_200_chars,
  DROP CONSTRAINT event_entity_id_is_1_to_200_chars,
  DROP CONSTRAINT event_data_is_object,
  DROP CONSTRAINT event_data_is_at_most_64_kib,
  DROP CONSTRAINT event_key_is_1_to_200_chars,
  DROP CONSTRAINT event_depth_is_not_negative,
  ALTER COLUMN event_type TYPE nudge.event_type_of_event,
  ALTER COLUMN entity_type TYPE nudge.event_entity_type,
  ALTER COLUMN entity_id TYPE nudge.event_entity_id,
  ALTER COLUMN data TYPE nudge.event_data,
  ALTER COLUMN key TYPE nudge.event_key,
  ALTER COLUMN depth TYPE nudge.event_depth;

CREATE DOMAIN nudge.flag_key AS text
  CONSTRAINT flag_key_is_1_to_200_chars CHECK (length(VALUE) >= 1 AND length(VALUE) <= 200);
ALTER TABLE nudge.status_flags
  DROP CONSTRAINT flag_key_is_1_to_200_chars,
  ALTER COLUMN key TYPE nudge.flag_key;

-- Every create and every finish adds a row to nudge.changes: its kind's rule is a domain too.
CREATE DOMAIN nudge.change_kind AS text
  CONSTRAINT change_kind_is_known CHECK (VALUE IN ('reminder', 'flag', 'event', 'rule'));
ALTER TABLE nudge.changes
  DROP CONSTRAINT change_kind_is_known,
  ALTER COLUMN kind TYPE nudge.change_kind;

-- The stream's page returns a reminder's columns and a change's kind as the base types its result
-- declares (RETURN QUERY wants exactly those types): the same body as 0028's, with the casts.
CREATE OR REPLACE FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint,
                                                p_after_n integer, p_through_pos bigint,
                                                p_limit integer)
RETURNS TABLE(pos bigint, id bigint, n integer, kind text, change text, object_id bigint,
              entity_type text, entity_id text, data jsonb,
              r_id bigint, r_entity_type text, r_entity_id text, r_event_type text,
              r_channel text, r_target text, r_schedule_type text, r_interval_seconds integer,
              r_cron text, r_timezone text, r_misfire_policy text, r_max_attempts integer,
              r_next_run_at timestamptz, r_occurrence_at timestamptz, r_attempt integer,
              r_stop_condition_type text, r_stop_condition_value text, r_max_fires integer,
              r_ends_at timestamptz, r_fire_count integer, r_status text,
              r_completed_reason text, r_last_error text, r_rule_id bigint, r_event_id bigint,
              r_created_at timestamptz, r_updated_at timestamptz, r_finished_at timestamptz,
              r_payload jsonb, r_request jsonb, r_schedule_text text,
              x_scheduled_for timestamptz, x_fired_at timestamptz, x_outcome text,
              x_attempts integer, x_worker text, x_error text, x_attempt jsonb)
-- PL/pgSQL for its cached plan: as SQL, the query was planned on every call (17 ms of a page of
-- 1,000 fires that took 36 ms to run).
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT q.pos, q.id, q.n, q.kind, q.change, q.object_id, q.entity_type, q.entity_id, q.data,
         q.r_id, q.r_entity_type, q.r_entity_id, q.r_event_type, q.r_channel, q.r_target,
         q.r_schedule_type, q.r_interval_seconds, q.r_cron, q.r_timezone, q.r_misfire_policy,
         q.r_max_attempts, q.r_next_run_at, q.r_occurrence_at, q.r_attempt,
         q.r_stop_condition_type, q.r_stop_condition_value, q.r_max_fires, q.r_ends_at,
         q.r_fire_count, q.r_status, q.r_completed_reason, q.r_last_error, q.r_rule_id,
         q.r_event_id, q.r_created_at, q.r_updated_at, q.r_finished_at, q.r_payload, q.r_request,
         max(q.r_first_schedule_text)
           OVER (PARTITION BY CASE WHEN q.r_schedule_type = 'one_time'
                                   THEN coalesce(q.r_occurrence_at, q.r_next_run_at) END,
                              q.r_interval_seconds, q.r_max_fires, q.r_ends_at,
                              q.r_schedule_type COLLATE "C", q.r_cron_words COLLATE "C",
                              q.r_timezone COLLATE "C", q.r_stop_condition_value COLLATE "C"),
         q.x_scheduled_for, q.x_fired_at, q.x_outcome, q.x_attempts, q.x_worker, q.x_error,
         q.x_attempt
    FROM (
      SELECT p.pos, p.id, p.n, p.kind,
             CASE WHEN p.change = 'fired' AND x.outcome = 'failed' AND r.status = 'FAILED'
                  THEN 'failed' ELSE p.change END AS change,
             p.object_id, coalesce(r.entity_type, e.entity_type) AS entity_type,
             coalesce(r.entity_id, e.entity_id) AS entity_id,
             CASE p.kind
               WHEN 'flag' THEN
                 jsonb_build_object('change', p.change,
                                    'flag', coalesce(to_jsonb(f),
                                                     jsonb_build_object('key', p.flag_key)))
               WHEN 'event' THEN
                 jsonb_build_object('change', p.change,
                                    'event', coalesce(nudge.event_json(e),
                                                      jsonb_build_object('id', p.object_id)),
                                    'effects', coalesce(e.effects, '[]'::jsonb))
               WHEN 'rule' THEN
                 jsonb_build_object('change', p.change,
                                    'rule', coalesce(p.gone, nudge.rule_json(u),
                                                     jsonb_build_object('id', p.object_id)))
             END AS data,
             -- The reminder's columns that its JSON shows (nudge.reminder_json), as they are now.
             r.id AS r_id, r.entity_type::text AS r_entity_type,
             r.entity_id::text AS r_entity_id, r.event_type::text AS r_event_type,
             r.channel::text AS r_channel, r.target::text AS r_target,
             r.schedule_type::text AS r_schedule_type,
             r.interval_seconds::integer AS r_interval_seconds, r.cron::text AS r_cron,
             r.timezone AS r_timezone, r.misfire_policy::text AS r_misfire_policy,
             r.max_attempts::integer AS r_max_attempts, r.next_run_at AS r_next_run_at,
             r.occurrence_at AS r_occurrence_at, r.attempt::integer AS r_attempt,
             r.stop_condition_type::text AS r_stop_condition_type,
             r.stop_condition_value::text AS r_stop_condition_value,
             r.max_fires::integer AS r_max_fires, r.ends_at AS r_ends_at,
             r.fire_count::integer AS r_fire_count, r.status::text AS r_status,
             r.completed_reason::text AS r_completed_reason, r.last_error::text AS r_last_error,
             r.rule_id AS r_rule_id, r.event_id AS r_event_id, r.created_at AS r_created_at,
             r.updated_at AS r_updated_at, r.finished_at AS r_finished_at,
             r.payload::jsonb AS r_payload,
             r.request AS r_request, r.cron_words AS r_cron_words,
             -- The sentence of the first row of each group of rows whose reminders share what
             -- nudge.describe_reminder reads: the others take it from that row.
             CASE WHEN r.id IS NOT NULL AND row_number() OVER schedule = 1
                  THEN (SELECT nudge.describe_reminder(d) FROM nudge.reminders d WHERE d.id = r.id)
             END AS r_first_schedule_text,
             x.scheduled_for AS x_scheduled_for, x.fired_at AS x_fired_at, x.outcome AS x_outcome,
             x.attempts AS x_attempts, x.worker AS x_worker, x.error AS x_error,
             -- attempt_json of no row is {}: none.
             CASE WHEN a.attempt IS NOT NULL THEN nudge.attempt_json(a) END AS x_attempt,
             a.attempt AS a_attempt
        FROM (SELECT c.pos, c.id, o.n::integer AS n, c.kind::text AS kind, c.change, o.object_id,
                     o.occurrence,
                     o.flag_key, o.gone
                FROM (SELECT c.*,
                             -- The objects of the rows before it: rows that cannot reach the
                             -- page are not unnested (a fire's row holds up to 1,000).
                             coalesce(sum(coalesce(cardinality(c.object_ids),
                                                   cardinality(c.flag_keys)))
                                        OVER (ORDER BY c.pos, c.id ROWS BETWEEN UNBOUNDED PRECEDING
                                                                            AND 1 PRECEDING), 0)
                               AS before
                        -- At most p_limit rows, each holding at least one change, from at most
                        -- p_limit batches, each holding at least one row; in a batch by id.
                        FROM (SELECT b.pos, c.*
                                FROM (SELECT b.pos, b.xids FROM nudge.change_batches b
                                       WHERE b.pos >= p_after_pos AND b.pos <= p_through_pos
                                       ORDER BY b.pos LIMIT p_limit) b
                               CROSS JOIN LATERAL (
                                 SELECT c.* FROM nudge.changes c
                                  WHERE c.xid = ANY (b.xids)
                                    AND c.id >= CASE WHEN b.pos = p_after_pos THEN p_after_id
                                                     ELSE 0 END
                               ) c
                               ORDER BY b.pos, c.id
                               LIMIT p_limit) c) c
               CROSS JOIN LATERAL unnest(c.object_ids, c.occurrences, c.flag_keys, c.gone)
                     WITH ORDINALITY AS o(object_id, occurrence, flag_key, gone, n)
               -- In bigint: after a whole pruned batch p_after_n is the largest integer.
               WHERE c.before < p_limit::bigint + p_after_n
                 AND (c.pos, c.id, o.n) > (p_after_pos, p_after_id, p_after_n)
               ORDER BY c.pos, c.id, o.n
               LIMIT p_limit) p
        LEFT JOIN nudge.reminders r ON p.kind = 'reminder' AND r.id = p.object_id
        -- Lookups by the executions' and the attempts' keys for each fire, never a scan.
        LEFT JOIN nudge.executions x
               ON p.kind = 'reminder' AND p.change = 'fired'
              AND x.reminder_id = p.object_id AND x.scheduled_for = p.occurrence
        LEFT JOIN nudge.delivery_attempts a
               ON a.reminder_id = x.reminder_id AND a.scheduled_for = x.scheduled_for
        LEFT JOIN nudge.status_flags f ON p.kind = 'flag' AND f.key = p.flag_key
        LEFT JOIN nudge.events e ON p.kind = 'event' AND e.id = p.object_id
        LEFT JOIN nudge.rules u ON p.kind = 'rule' AND u.id = p.object_id
      WINDOW schedule AS (PARTITION BY CASE WHEN r.schedule_type = 'one_time'
                                            THEN coalesce(r.occurrence_at, r.next_run_at) END,
                                       r.interval_seconds, r.max_fires, r.ends_at,
                                       r.schedule_type COLLATE "C", r.cron_words COLLATE "C",
                                       r.timezone COLLATE "C", r.stop_condition_value COLLATE "C")
    ) q
   ORDER BY q.pos, q.id, q.n, q.a_attempt;
END $$;
