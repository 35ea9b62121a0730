-- 0055: a single create looks its stop flag up through the index however small status_flags was
-- when the session planned it. 0054's rule (sql/README.md, rule 6), found missing here by its
-- own test once a create was among the statements it checks: a create whose plans were made
-- while the flags table was an analyzed page read every flag to find its own (9.8 ms with
-- 50,000 flags) until the next ANALYZE of the table.

ALTER FUNCTION nudge.create_reminder(text, text, text, text, text, timestamptz, integer, text,
                                     jsonb, text, text, integer, timestamptz, text, text, text,
                                     integer, jsonb)
  SET enable_seqscan = off SET jit = off;
