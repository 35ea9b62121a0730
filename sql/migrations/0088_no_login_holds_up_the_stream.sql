-- 0088: no database login can hold up the live stream. nudge.stream_advance took its turn with
-- an advisory lock, which any role connected to the database may take too: one holding
-- pg_advisory_lock(hashtext('nudge.stream_advance')) stopped every stream of every nudge-api
-- (a change arrived 9.1 s late; explore10b), and one with USAGE on the schema could call the
-- SECURITY DEFINER function itself inside a long transaction. The turn is now a row lock on
-- nudge.stream_turn, which only a role that may change that table can take, and the function
-- is executable by its owner alone (the role that migrates and runs Nudge; GRANT EXECUTE to
-- another that runs nudge-api).

CREATE TABLE nudge.stream_turn (
    only_row boolean DEFAULT true NOT NULL PRIMARY KEY CHECK (only_row)
);

COMMENT ON TABLE nudge.stream_turn IS 'One row, locked by nudge.stream_advance so that one caller at a time makes a batch: a lock only roles that may change this table can take.';

INSERT INTO nudge.stream_turn DEFAULT VALUES;

CREATE OR REPLACE FUNCTION nudge.stream_advance() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
  -- One statement: the rows it sees are those of the transactions finished in its snapshot.
  SELECT pg_current_snapshot(),
         ARRAY(SELECT DISTINCT c.xid FROM nudge.changes c
                WHERE c.xid >= pg_snapshot_xmax(v_last.snapshot)
                   OR c.xid = ANY (ARRAY(SELECT pg_snapshot_xip(v_last.snapshot)))
                ORDER BY c.xid)
    INTO v_now, v_xids;
  IF cardinality(v_xids) = 0 THEN
    -- Nothing new: the next batch starts from the same snapshot, and nothing is written.
    RETURN v_last.pos;
  END IF;
  INSERT INTO nudge.change_batches (pos, snapshot, xids) VALUES (v_last.pos + 1, v_now, v_xids);
  RETURN v_last.pos + 1;
END $$;

COMMENT ON FUNCTION nudge.stream_advance() IS 'Makes the next batch of the stream: the transactions that wrote nudge.changes and finished since the last batch''s snapshot (an unrelated running transaction holds nothing back), numbered after it; one caller at a time (a row lock on nudge.stream_turn); executable by its owner only; returns the last batch''s position (unchanged when nothing finished).';

REVOKE EXECUTE ON FUNCTION nudge.stream_advance() FROM PUBLIC;
