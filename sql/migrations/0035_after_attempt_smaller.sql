-- 0035: the finish's decision (nudge.after_attempt, inlined into its UPDATE) names each
-- end-of-attempt decision fewer times (issues 10 and 17: the drain within 5% of b3f27eb).
--
-- PostgreSQL inlines nudge.after_attempt and everything it calls into the finish's UPDATE: each
-- call is parsed from its text and folded where it appears. nudge.status_after_attempt named
-- nudge.end_after_attempt twice, so the finish's inlined expression held it (and the
-- nudge.next_run_after_attempt inside it) 5 times. Planning it cost every claim loop's connection about 145M
-- instructions on its first finish (callgrind of a real 1-worker drain: 146.9M and 150.2M in
-- the two claim loops' backends, against 25-39M for b3f27eb's first plans), time in which that
-- loop fires nothing; and a one_time fire evaluated nudge.end_after_attempt 5 times per row.
-- Same results, fewer copies: the status names the end once.

-- The status from one nudge.end_after_attempt (a simple CASE evaluates its operand once;
-- nudge.end_after_attempt is NULL or one of its fixed words, never '').
CREATE OR REPLACE FUNCTION nudge.status_after_attempt(r nudge.reminders, p_outcome text,
                                                      p_policy nudge.worker_policy,
                                                      p_now timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE coalesce(nudge.end_after_attempt(r, p_outcome, p_policy, p_now), '')
              WHEN 'attempts_exhausted' THEN 'FAILED'
              WHEN '' THEN r.status
              ELSE 'COMPLETED' END
$$;
