-- 0113: nudge.seconds_until_due reads the due reminders' index however large the history is.
-- Every claim loop asks it before each sleep. Estimated from the whole table, where every
-- finished reminder has a past next_run_at, "ACTIVE and due" looked like 144,387 rows when none
-- was: PostgreSQL planned a parallel scan costly enough to be compiled by JIT, 17-45 ms a call
-- at 3 million reminders (580 ms right after a drain), against 0.06 ms with the index
-- (explore17b #1). Sessions of Nudge's programs also run without JIT now.

ALTER FUNCTION nudge.seconds_until_due()
  SET enable_seqscan = off SET jit = off SET max_parallel_workers_per_gather = 0;
