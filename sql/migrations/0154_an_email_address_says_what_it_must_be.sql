-- 0154: an email address says what it must be when refused (explore30a F8: "ops@mailhost" was
-- told "in plain ASCII", which it is; the domain needs a dot), and one with more than 64
-- characters before its @ (RFC 5321's limit, which relays enforce) is refused when given rather
-- than failed by the relay at every fire.

CREATE OR REPLACE FUNCTION nudge.address_problem(p_channel text, p_address text) RETURNS text
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

COMMENT ON FUNCTION nudge.address_problem(p_channel text, p_address text) IS 'NULL when the address suits the channel as a worker will deliver it (webhook: {{secret.NAME}} alone (NAME: 1 to 64 of a-z, 0-9 and _), for a URL the worker keeps as a secret, or an http(s) URL of at most 2048 characters without spaces whose host is a name, an IPv4 or a bracketed IPv6 address and whose port, if any, is 1 to 65535; email: one plain ASCII address of at most 254 characters, at most 64 before its @, a dot in its domain, no dot at either end of its two parts nor two in a row; other channels: anything), else the problem in words.';

