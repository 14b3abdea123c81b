-- counsel: coaching_conversations, coaching session containers
-- (source: seeds/004, migration 002_create_coaching_conversations_table).
-- UP
CREATE TABLE counsel.coaching_conversations (
    id                  uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    user_id             uuid        NOT NULL,
    session_type        text        NOT NULL DEFAULT 'general',
    status              text        NOT NULL DEFAULT 'active',
    title               text,
    started_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ended_at            timestamptz,
    duration_seconds    integer,
    satisfaction_rating smallint,
    metadata            jsonb       NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT coaching_conversations_pkey PRIMARY KEY (id),
    -- target of coaching_messages' (conversation_id, user_id) foreign key: a message always
    -- belongs to the owner of its conversation
    CONSTRAINT coaching_conversations_id_user_id_key UNIQUE (id, user_id),
    CONSTRAINT coaching_conversations_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES counsel.users (id) ON DELETE CASCADE,
    CONSTRAINT coaching_conversations_session_type_check
        CHECK (session_type IN ('onboarding', 'goal_setting', 'check_in', 'reflection', 'general')),
    CONSTRAINT coaching_conversations_status_check
        CHECK (status IN ('active', 'paused', 'completed', 'abandoned')),
    CONSTRAINT coaching_conversations_ended_at_check CHECK (ended_at IS NULL OR ended_at >= started_at),
    CONSTRAINT coaching_conversations_duration_check CHECK (duration_seconds IS NULL OR duration_seconds >= 0),
    CONSTRAINT coaching_conversations_satisfaction_check CHECK (satisfaction_rating BETWEEN 1 AND 5),
    CONSTRAINT coaching_conversations_metadata_check CHECK (pg_catalog.jsonb_typeof(metadata) = 'object')
);

-- composite: a user's sessions, newest first (also covers the user_id foreign key)
CREATE INDEX idx_coaching_conversations_user_started
    ON counsel.coaching_conversations (user_id, started_at DESC);
-- partial: open sessions
CREATE INDEX idx_coaching_conversations_active
    ON counsel.coaching_conversations (user_id, updated_at DESC)
    WHERE status IN ('active', 'paused');

CREATE TRIGGER update_coaching_conversations_updated_at
    BEFORE UPDATE ON counsel.coaching_conversations
    FOR EACH ROW EXECUTE FUNCTION counsel.update_updated_at_column();

ALTER TABLE counsel.coaching_conversations ENABLE ROW LEVEL SECURITY;
CREATE POLICY coaching_conversations_select_own ON counsel.coaching_conversations
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY coaching_conversations_insert_own ON counsel.coaching_conversations
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY coaching_conversations_update_own ON counsel.coaching_conversations
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id) WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY coaching_conversations_delete_own ON counsel.coaching_conversations
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON counsel.coaching_conversations TO authenticated, service_role;

-- DOWN
DROP TABLE counsel.coaching_conversations;
