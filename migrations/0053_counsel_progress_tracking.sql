-- counsel: progress_tracking, goals and milestones with their progress
-- (source: seeds/004, migration 004_create_progress_tracking_table).
-- UP
CREATE TABLE counsel.progress_tracking (
    id                  uuid         NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    user_id             uuid         NOT NULL,
    tracking_type       text         NOT NULL DEFAULT 'goal',
    title               text         NOT NULL,
    status              text         NOT NULL DEFAULT 'in_progress',
    progress_percent    numeric(5,2) NOT NULL DEFAULT 0,
    progress_data       jsonb        NOT NULL DEFAULT '{}',
    personality_metrics jsonb        NOT NULL DEFAULT '{}',
    achievements        jsonb        NOT NULL DEFAULT '[]',
    challenges          jsonb        NOT NULL DEFAULT '[]',
    target_date         date,
    achieved_at         timestamptz,
    created_at          timestamptz  NOT NULL DEFAULT pg_catalog.now(),
    updated_at          timestamptz  NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT progress_tracking_pkey PRIMARY KEY (id),
    CONSTRAINT progress_tracking_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES counsel.users (id) ON DELETE CASCADE,
    CONSTRAINT progress_tracking_tracking_type_check CHECK (tracking_type IN ('goal', 'milestone')),
    CONSTRAINT progress_tracking_title_check CHECK (pg_catalog.char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT progress_tracking_status_check
        CHECK (status IN ('not_started', 'in_progress', 'achieved', 'abandoned')),
    CONSTRAINT progress_tracking_progress_percent_check CHECK (progress_percent BETWEEN 0 AND 100),
    CONSTRAINT progress_tracking_progress_data_check CHECK (pg_catalog.jsonb_typeof(progress_data) = 'object'),
    CONSTRAINT progress_tracking_personality_metrics_check
        CHECK (pg_catalog.jsonb_typeof(personality_metrics) = 'object'),
    CONSTRAINT progress_tracking_achievements_check CHECK (pg_catalog.jsonb_typeof(achievements) = 'array'),
    CONSTRAINT progress_tracking_challenges_check CHECK (pg_catalog.jsonb_typeof(challenges) = 'array')
);

-- composite: a user's goals/milestones by type, newest first (covers the foreign key)
CREATE INDEX idx_progress_tracking_user_type_created
    ON counsel.progress_tracking (user_id, tracking_type, created_at DESC);
-- GIN: searches in the progress data
CREATE INDEX idx_progress_tracking_progress_data ON counsel.progress_tracking USING gin (progress_data);
-- partial: open goals by due date
CREATE INDEX idx_progress_tracking_open
    ON counsel.progress_tracking (user_id, target_date)
    WHERE status IN ('not_started', 'in_progress');

CREATE TRIGGER update_progress_tracking_updated_at
    BEFORE UPDATE ON counsel.progress_tracking
    FOR EACH ROW EXECUTE FUNCTION counsel.update_updated_at_column();

ALTER TABLE counsel.progress_tracking ENABLE ROW LEVEL SECURITY;
CREATE POLICY progress_tracking_select_own ON counsel.progress_tracking
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY progress_tracking_insert_own ON counsel.progress_tracking
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY progress_tracking_update_own ON counsel.progress_tracking
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id) WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY progress_tracking_delete_own ON counsel.progress_tracking
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON counsel.progress_tracking TO authenticated, service_role;

-- DOWN
DROP TABLE counsel.progress_tracking;
