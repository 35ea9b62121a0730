-- 0140: only a secret that holds an http(s) URL stands for a webhook target (explore25a #1's
-- second half: an event's data naming a header secret, a Basic or bearer token, as the address
-- was answered 201, then failed 3 attempts with "Bad scheme"). nudge-api now names on its
-- sessions only the secrets whose values in its [secrets] are http(s) URLs, and refuses another
-- one as a target over REST too (400 invalid_value naming the field). This says so.
--
-- Additive: a body and its comment change.

CREATE OR REPLACE FUNCTION nudge.unknown_secret_problem(p_address text) RETURNS text
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
COMMENT ON FUNCTION nudge.unknown_secret_problem(p_address text) IS
  'When p_address is {{secret.NAME}} and the session names the secrets that may stand for a target (nudge.secret_names, set by nudge-api to those holding an http(s) URL: ",a,b," or "," for none) without NAME, the problem in words; NULL otherwise, and in a session that names none.';
