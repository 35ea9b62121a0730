-- 0024: the four reminder CHECKs 0022 moved into PL/pgSQL functions are expressions again.
--
-- PostgreSQL checks every CHECK of a row on each UPDATE as well, and a worker's claim and finish
-- update every row they take: the four functions were eight PL/pgSQL calls per fire, and
-- target_fits_channel's call of nudge.address_problem two more. Measured the same day, idle
-- machine (scripts/bench.sh drain, b3f27eb alternating with main after 0021-0023): 1 worker
-- 64,874 vs 50,439 fires/s, 2 workers 65,823 vs 50,533; main before 0021-0023 had been 13-17%
-- behind b3f27eb, not 22-23%. A create pays for the expressions once per INSERT statement
-- (about 37 us); a drain paid for the calls on every row.
ALTER TABLE nudge.reminders
  DROP CONSTRAINT completed_reason_fits_status,
  ADD CONSTRAINT completed_reason_fits_status CHECK (coalesce(
        (status IN ('ACTIVE', 'PAUSED') AND completed_reason IS NULL)
        OR (status = 'COMPLETED' AND completed_reason IN ('fired', 'max_fires', 'ends_at', 'stop_condition'))
        OR (status = 'CANCELLED' AND completed_reason = 'cancelled')
        OR (status = 'FAILED' AND completed_reason = 'attempts_exhausted')
        OR status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED'), false)),
  DROP CONSTRAINT finished_at_set_once_finished,
  ADD CONSTRAINT finished_at_set_once_finished CHECK (
        (status IN ('COMPLETED', 'CANCELLED', 'FAILED')) = (finished_at IS NOT NULL)
        OR status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED')),
  DROP CONSTRAINT stop_condition_is_db_check_with_flag_key,
  ADD CONSTRAINT stop_condition_is_db_check_with_flag_key CHECK (coalesce(
        (stop_condition_type IS NULL AND stop_condition_value IS NULL)
        OR (stop_condition_type = 'db_check' AND length(stop_condition_value) BETWEEN 1 AND 200), false)),
  DROP CONSTRAINT only_cron_has_expression_and_zone,
  ADD CONSTRAINT only_cron_has_expression_and_zone CHECK (
        (schedule_type = 'cron') = (cron IS NOT NULL AND timezone IS NOT NULL AND cron_schedule IS NOT NULL)
        OR schedule_type NOT IN ('one_time', 'recurring', 'cron')),
  -- Only a webhook's or an email's address has a form to check: a log reminder's row (most of a
  -- drain's) and a row without a target no longer call the function.
  DROP CONSTRAINT target_fits_channel,
  ADD CONSTRAINT target_fits_channel CHECK (
        target IS NULL OR channel NOT IN ('webhook', 'email')
        OR nudge.address_problem(channel, target) IS NULL);

DROP FUNCTION nudge.completed_reason_fits_status(text, text);
DROP FUNCTION nudge.finished_at_set_once_finished(text, timestamptz);
DROP FUNCTION nudge.stop_condition_is_db_check_with_flag_key(text, text);
DROP FUNCTION nudge.only_cron_has_expression_and_zone(text, boolean);
