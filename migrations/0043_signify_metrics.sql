-- signify: materialized view practice_metrics_daily (section 4: per-user XP gain, session
-- counts and average score by mode, per day) and the functions around it.
-- * One row per (user_id, metric_date, mode) over completed practice sessions; metric_date is
--   the UTC day of completed_at. The unique index practice_metrics_daily_key makes
--   REFRESH MATERIALIZED VIEW CONCURRENTLY possible.
-- * RLS does not apply to materialized views: anon, authenticated and PUBLIC get no privilege
--   on it (only service_role may SELECT). A signed-in user reads their own rows through
--   signify.my_practice_metrics(p_from, p_to) (SECURITY DEFINER, search_path '', filtered on
--   (select auth.uid()), EXECUTE for authenticated only).
-- * signify.refresh_practice_metrics_daily() refreshes it concurrently for the nightly job
--   (REFRESH needs ownership; EXECUTE for service_role only).
-- UP
CREATE MATERIALIZED VIEW signify.practice_metrics_daily AS
SELECT
    ps.user_id,
    (ps.completed_at AT TIME ZONE 'UTC')::date AS metric_date,
    ps.mode,
    count(*)::bigint AS session_count,
    round(avg(ps.score), 2) AS avg_score,
    max(ps.score) AS best_score,
    sum(ps.xp_awarded)::bigint AS xp_gained,
    sum(EXTRACT(EPOCH FROM ps.completed_at - ps.started_at))::bigint AS practice_seconds
FROM signify.practice_sessions ps
WHERE ps.completed_at IS NOT NULL
GROUP BY ps.user_id, (ps.completed_at AT TIME ZONE 'UTC')::date, ps.mode
WITH DATA;

CREATE UNIQUE INDEX practice_metrics_daily_key
    ON signify.practice_metrics_daily (user_id, metric_date, mode);

REVOKE ALL ON signify.practice_metrics_daily FROM PUBLIC, anon, authenticated;
GRANT SELECT ON signify.practice_metrics_daily TO service_role;

-- the caller's own rows, optionally limited to [p_from, p_to]
CREATE FUNCTION signify.my_practice_metrics(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
RETURNS TABLE (
    metric_date date,
    mode text,
    session_count bigint,
    avg_score numeric,
    best_score numeric,
    xp_gained bigint,
    practice_seconds bigint
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $fn$
    SELECT m.metric_date, m.mode, m.session_count, m.avg_score, m.best_score,
           m.xp_gained, m.practice_seconds
    FROM signify.practice_metrics_daily m
    WHERE m.user_id = (SELECT auth.uid())
      AND (p_from IS NULL OR m.metric_date >= p_from)
      AND (p_to IS NULL OR m.metric_date <= p_to)
    ORDER BY m.metric_date, m.mode
$fn$;

REVOKE ALL ON FUNCTION signify.my_practice_metrics(date, date) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION signify.my_practice_metrics(date, date) TO authenticated;

CREATE FUNCTION signify.refresh_practice_metrics_daily()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $fn$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY signify.practice_metrics_daily;
END;
$fn$;

REVOKE ALL ON FUNCTION signify.refresh_practice_metrics_daily() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION signify.refresh_practice_metrics_daily() TO service_role;

-- DOWN
DROP FUNCTION signify.refresh_practice_metrics_daily();
DROP FUNCTION signify.my_practice_metrics(date, date);
DROP MATERIALIZED VIEW signify.practice_metrics_daily;
