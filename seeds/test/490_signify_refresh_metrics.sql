-- Rebuild signify.practice_metrics_daily from the seeded practice sessions, so dashboards and
-- signify.my_practice_metrics() have data. Idempotent: the view is recomputed from the tables
-- and holds the same rows however often this runs. (Not CONCURRENTLY: that cannot run inside
-- the seed transaction.)
REFRESH MATERIALIZED VIEW signify.practice_metrics_daily;
