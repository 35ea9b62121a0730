-- 0139: a first 429 paces a host or URL at what it accepted in the same batch, as before 0137,
-- not at 1.4 times that (0.7 of twice it): a receiver that takes 5 a second and accepted 5 of a
-- burst was paced at 7 a second and answered more 429s than the burst held (40 for 40 in
-- RateLimit.AReceiverThatLimitsItsRateGetsTheWholeBurstAtItsPace). The pace still climbs from
-- there towards 1/0.7 of it (nudge.pace_at).
--
-- Additive: a body changes.

CREATE OR REPLACE FUNCTION nudge.pace_after_429(p_pace_now double precision, p_accepted bigint)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT greatest(1.0 / 60, least(500, coalesce(0.7 * p_pace_now, greatest(p_accepted, 1))))
$$;
COMMENT ON FUNCTION nudge.pace_after_429(p_pace_now double precision, p_accepted bigint) IS
  'The pace a 429 leaves a host or URL at: 0.7 of p_pace_now, or when it was not paced, the p_accepted requests it accepted in the same batch (at least 1), kept between 1 a minute and 500 a second.';
