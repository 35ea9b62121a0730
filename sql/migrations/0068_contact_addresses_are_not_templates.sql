-- 0068: a contact's address holding {{ is refused, as a reminder's target is: it is sent as
-- written, so http://host/api/{{entity_id}} reached the receiver with the braces in it.

CREATE OR REPLACE FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) RETURNS nudge.contacts
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
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
  -- Sent as written, as a reminder's target is: braces would go out literally.
  IF strpos(p_address, '{{') > 0 THEN
    PERFORM nudge.reject('address', 'a contact''s address is not a template: it is sent as written, so it must not hold {{');
  END IF;
  INSERT INTO nudge.contacts AS c (entity_type, entity_id, channel, address)
  VALUES (p_entity_type, p_entity_id, p_channel, p_address)
  ON CONFLICT ON CONSTRAINT one_address_per_entity_and_channel
  DO UPDATE SET address = EXCLUDED.address
  RETURNING c.* INTO v_contact;
  RETURN v_contact;
END $$;

COMMENT ON FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) IS 'Sets where (p_entity_type, p_entity_id) is reached on p_channel (webhook or email), replacing the old address from the next claim on; 22023 naming the field for bad input (an entity_type or entity_id empty, over 200 characters or only white space, a channel or address that is not one, an address holding {{, which would be sent literally); returns the contact.';
