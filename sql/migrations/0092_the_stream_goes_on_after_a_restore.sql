-- 0092: the live stream goes on after a restore into another cluster. A batch takes the changes
-- of transactions at or past the last batch's snapshot, compared by transaction id; a pg_dump
-- restored into a fresh cluster brought a snapshot from the old one, whose ids were far ahead of
-- the new cluster's, so no change was ever taken: every stream stayed silent and the log was
-- never pruned, until the new cluster's ids caught up (explore11b: 53,000 transactions; could be
-- billions). nudge.stream_advance now sees such a snapshot and lets the restored log go as
-- pruned history (clients resuming from it are told so), then goes on from now.

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

COMMENT ON FUNCTION nudge.stream_advance() IS 'Makes the next batch of the stream: the transactions that wrote nudge.changes and finished since the last batch''s snapshot (an unrelated running transaction holds nothing back), numbered after it; one caller at a time (a row lock on nudge.stream_turn); a log restored from another cluster (its last snapshot ahead of this cluster''s transaction ids) is let go as pruned history once, and the stream goes on from now; executable by its owner only; returns the last batch''s position (unchanged when nothing finished).';
