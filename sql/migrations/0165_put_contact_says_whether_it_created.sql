--! breaking-change
-- 0165: nudge.put_contact says whether it created the contact (explore32a F6: the API read
-- that beside the call, in a snapshot from before it, and several of twenty PUTs of one new
-- contact at once answered 201 Created). Returns (created, contact), as create_reminder returns
-- (created, reminder). Breaking: an older nudge-api read the contact as the whole row.

DROP FUNCTION nudge.put_contact(text, text, text, text);

CREATE FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text)
    RETURNS TABLE(created boolean, contact nudge.contacts)
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

COMMENT ON FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) IS 'Sets where (p_entity_type, p_entity_id) is reached on p_channel (webhook or email), replacing the old address from the next claim on; 22023 naming the field for bad input (an entity_type or entity_id empty, over 200 characters or only white space, a channel or address that is not one, an address holding {{, which would be sent literally, other than a webhook''s {{secret.NAME}} alone); returns the contact, and whether this call created it (false: it replaced the address).';

