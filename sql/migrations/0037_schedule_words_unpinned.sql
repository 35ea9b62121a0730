-- 0037: nudge.schedule_words no longer pins its search_path (sql/README.md, rule 4), for the
-- sentence of every reminder the live stream, the REST answers and the dashboard show.
--
-- Its SET clause set and restored search_path on every call, and each change made the next name
-- lookup rebuild the search path: about 9.7k of the 32k instructions the live stream spent on
-- each one-time reminder's sentence (callgrind, postgres --single, nudge.stream_changes over
-- pages of 1,000 fires of a 100,000-reminder one-time log drain due at distinct times, COPY to
-- /dev/null, 13 minus 3 pages: 116.7k -> 107.0k instructions per fire). It names everything of
-- ours in full; it is called by nudge.describe_schedule (pinned) and nudge.describe_reminder,
-- an inlined SQL helper of nudge.reminder_json, both run by pinned functions or by the API's own
-- statements; tests/process/install_test.cpp lists it among the unpinned functions.

ALTER FUNCTION nudge.schedule_words(text, timestamptz, integer, text, text, text, integer,
                                    timestamptz)
  RESET search_path;
