-- counsel: personality_insights, AI-generated insights with their astrological basis
-- (source: seeds/004, migration 005_create_personality_insights_table).
-- UP
CREATE TABLE counsel.personality_insights (
    id                 uuid         NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    user_id            uuid         NOT NULL,
    insight_type       text         NOT NULL,
    insight_text       text         NOT NULL,
    astrological_basis jsonb        NOT NULL DEFAULT '{}',
    coaching_language  text,
    confidence_score   numeric(3,2),
    accuracy_rating    smallint,
    is_disclosed       boolean      NOT NULL DEFAULT false,
    disclosed_at       timestamptz,
    created_at         timestamptz  NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz  NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT personality_insights_pkey PRIMARY KEY (id),
    CONSTRAINT personality_insights_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES counsel.users (id) ON DELETE CASCADE,
    CONSTRAINT personality_insights_insight_type_check CHECK (insight_type IN
        ('strength', 'challenge', 'communication_style', 'motivation', 'growth_area', 'relationship_pattern')),
    CONSTRAINT personality_insights_insight_text_check CHECK (pg_catalog.char_length(insight_text) > 0),
    CONSTRAINT personality_insights_astrological_basis_check
        CHECK (pg_catalog.jsonb_typeof(astrological_basis) = 'object'),
    CONSTRAINT personality_insights_confidence_score_check CHECK (confidence_score BETWEEN 0 AND 1),
    CONSTRAINT personality_insights_accuracy_rating_check CHECK (accuracy_rating BETWEEN 1 AND 5),
    CONSTRAINT personality_insights_disclosed_check CHECK (NOT is_disclosed OR disclosed_at IS NOT NULL)
);

-- composite: a user's insights by type (covers the foreign key)
CREATE INDEX idx_personality_insights_user_type
    ON counsel.personality_insights (user_id, insight_type);
-- GIN: searches in the astrological basis
CREATE INDEX idx_personality_insights_astrological_basis
    ON counsel.personality_insights USING gin (astrological_basis);
-- partial: insights not yet disclosed to the user
CREATE INDEX idx_personality_insights_undisclosed
    ON counsel.personality_insights (user_id, created_at)
    WHERE NOT is_disclosed;

CREATE TRIGGER update_personality_insights_updated_at
    BEFORE UPDATE ON counsel.personality_insights
    FOR EACH ROW EXECUTE FUNCTION counsel.update_updated_at_column();

ALTER TABLE counsel.personality_insights ENABLE ROW LEVEL SECURITY;
CREATE POLICY personality_insights_select_own ON counsel.personality_insights
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY personality_insights_insert_own ON counsel.personality_insights
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY personality_insights_update_own ON counsel.personality_insights
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id) WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY personality_insights_delete_own ON counsel.personality_insights
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON counsel.personality_insights TO authenticated, service_role;

-- DOWN
DROP TABLE counsel.personality_insights;
