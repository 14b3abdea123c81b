-- counsel: coaching_messages, the messages of a coaching conversation
-- (source: seeds/004, migration 003_create_coaching_messages_table).
-- Messages are an append-only log: no updated_at and no UPDATE policy.
-- UP
CREATE TABLE counsel.coaching_messages (
    id              uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    conversation_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    sender          text        NOT NULL,
    content         text        NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    CONSTRAINT coaching_messages_pkey PRIMARY KEY (id),
    -- the message's user_id is its conversation's owner (policies check user_id directly)
    CONSTRAINT coaching_messages_conversation_fkey FOREIGN KEY (conversation_id, user_id)
        REFERENCES counsel.coaching_conversations (id, user_id) ON DELETE CASCADE,
    CONSTRAINT coaching_messages_sender_check CHECK (sender IN ('user', 'coach', 'system')),
    CONSTRAINT coaching_messages_content_check CHECK (pg_catalog.char_length(content) > 0),
    CONSTRAINT coaching_messages_metadata_check CHECK (pg_catalog.jsonb_typeof(metadata) = 'object')
);

-- composite: chronological order within a conversation (covers the foreign key)
CREATE INDEX idx_coaching_messages_conversation_created
    ON counsel.coaching_messages (conversation_id, user_id, created_at);
-- GIN: searches in the coaching metadata
CREATE INDEX idx_coaching_messages_metadata ON counsel.coaching_messages USING gin (metadata);

ALTER TABLE counsel.coaching_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY coaching_messages_select_own ON counsel.coaching_messages
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY coaching_messages_insert_own ON counsel.coaching_messages
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY coaching_messages_delete_own ON counsel.coaching_messages
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON counsel.coaching_messages TO authenticated, service_role;

-- DOWN
DROP TABLE counsel.coaching_messages;
