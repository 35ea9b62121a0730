-- 0053: a reminder's target is checked when it is written, not on every update of the row.
-- Found by measuring the webhook drain: the CHECK target_fits_channel called the PL/pgSQL rule
-- nudge.address_problem for every webhook and email row that any UPDATE touched, so each claim
-- and each finish re-checked an unchanged URL (a claim of 1,000 webhooks: 40 ms with it, 28
-- without). PostgreSQL runs a CHECK for every updated row; a trigger limited to the columns it
-- reads (UPDATE OF channel, target) runs only when a statement writes them. The error stays
-- the CHECK's: SQLSTATE 23514 naming target_fits_channel. An AFTER trigger, because a BEFORE
-- row trigger on UPDATE makes PostgreSQL lock and fetch each row once more before any update.

ALTER TABLE nudge.reminders DROP CONSTRAINT target_fits_channel;

CREATE FUNCTION nudge.reminder_target_fits_channel() RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
  v_problem text := nudge.address_problem(NEW.channel, NEW.target);
BEGIN
  IF v_problem IS NOT NULL THEN
    RAISE EXCEPTION 'new row for relation "reminders" violates check constraint "target_fits_channel"'
      USING ERRCODE = 'check_violation', SCHEMA = 'nudge', TABLE = 'reminders',
            CONSTRAINT = 'target_fits_channel', DETAIL = 'target ' || v_problem || '.';
  END IF;
  RETURN NULL;
END $function$;

COMMENT ON FUNCTION nudge.reminder_target_fits_channel() IS 'Trigger: a reminder''s target suits its channel (nudge.address_problem is NULL) whenever the target or the channel is written, plain SQL included; else SQLSTATE 23514 naming target_fits_channel, with the problem in the detail.';

CREATE TRIGGER reminder_target_fits_channel
  AFTER INSERT OR UPDATE OF channel, target ON nudge.reminders
  FOR EACH ROW WHEN (NEW.target IS NOT NULL AND NEW.channel <> 'log')
  EXECUTE FUNCTION nudge.reminder_target_fits_channel();
