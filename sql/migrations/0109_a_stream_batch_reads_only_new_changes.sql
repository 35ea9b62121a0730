-- 0109: a batch of the stream reads only the changes written since the last one. Every API
-- makes a batch every 100 ms, whether or not anyone streams, from a session that lives as long
-- as it does, and the log keeps [history] retention_days of changes. PostgreSQL planned the
-- batch's query once for any snapshot, while the log was small, as a scan of every row (or of
-- every entry of changes_by_transaction) filtered by "after the last snapshot or running in
-- it": 62,000 rows after 30 s of events cost 13.5 ms a batch (pg_stat_statements), and a day at
-- 100 writes a second leaves about 8.6 million. Now it is two range reads of the index, one
-- per condition, however it is planned (without statistics, PostgreSQL still scanned the table
-- for the first of them). No JIT: a disabled scan's cost passes its thresholds, and compiling
-- the turn's one-row lock took 33 ms.

CREATE OR REPLACE FUNCTION nudge.stream_advance() RETURNS bigint
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
