-- 0134: what a finish moves for flow control is not logged in nudge.changes as `rescheduled`:
-- a retry's wait for its receiver's Retry-After (one row per delivery answered 429 or 503 with
-- it: 198 for some 200 429s of a rate-limited host, in a hand-check of 0133) and the deliveries a
-- breaker releases when its probe succeeds or moves to its next probe. The `retrying` change
-- already says the reminder waits, and a stream client reads its next_run_at there. As 0131 did
-- for a claim's placing, the setting nudge.placing marks it, here for the whole finish (its
-- main update changes the lease, which the trigger passes over anyway). Closing a breaker by
-- hand is still logged: someone did it.
--
-- Additive: a function's setting changes.

ALTER FUNCTION nudge.finish_attempts(text, nudge.worker_policy, bigint[], timestamptz[],
                                     integer[], text[], text[], integer[], text[], integer[],
                                     integer[])
  SET nudge."placing" TO 'on';  -- quoted: PLACING is an SQL keyword
