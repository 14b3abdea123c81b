-- counsel: schema, grants, shared updated_at trigger function and table users
-- (source: seeds/004, migration 001_create_users_table; columns designed from its description).
-- UP
CREATE SCHEMA counsel;
GRANT USAGE ON SCHEMA counsel TO anon, authenticated, service_role;

CREATE FUNCTION counsel.update_updated_at_column()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at = pg_catalog.now();
    RETURN NEW;
END;
$$;

-- User accounts and profile. Authentication (email + password) is owned by auth.users;
-- this profile row shares its id. No password_hash here (see migrations/README.md).
CREATE TABLE counsel.users (
    id                  uuid              NOT NULL,
    email               extensions.citext NOT NULL,
    full_name           text,
    birth_date          date,
    birth_time          time,
    birth_place         text,
    birth_timezone      text,
    personality_profile jsonb             NOT NULL DEFAULT '{}',
    coaching_goals      text[]            NOT NULL DEFAULT '{}',
    onboarding_status   text              NOT NULL DEFAULT 'not_started',
    created_at          timestamptz       NOT NULL DEFAULT pg_catalog.now(),
    updated_at          timestamptz       NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_id_fkey FOREIGN KEY (id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_full_name_check CHECK (full_name IS NULL OR pg_catalog.char_length(full_name) BETWEEN 1 AND 200),
    CONSTRAINT users_birth_date_check CHECK (birth_date IS NULL OR birth_date >= DATE '1900-01-01'),
    CONSTRAINT users_personality_profile_check CHECK (pg_catalog.jsonb_typeof(personality_profile) = 'object'),
    CONSTRAINT users_onboarding_status_check CHECK (onboarding_status IN ('not_started', 'in_progress', 'completed'))
);

-- GIN on the JSONB profile and on the goals array
CREATE INDEX idx_users_personality_profile ON counsel.users USING gin (personality_profile);
CREATE INDEX idx_users_coaching_goals ON counsel.users USING gin (coaching_goals);
-- partial: users still onboarding
CREATE INDEX idx_users_onboarding_pending ON counsel.users (created_at)
    WHERE onboarding_status <> 'completed';

CREATE TRIGGER update_users_updated_at
    BEFORE UPDATE ON counsel.users
    FOR EACH ROW EXECUTE FUNCTION counsel.update_updated_at_column();

ALTER TABLE counsel.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_select_own ON counsel.users
    FOR SELECT TO authenticated USING ((select auth.uid()) = id);
CREATE POLICY users_insert_own ON counsel.users
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = id);
CREATE POLICY users_update_own ON counsel.users
    FOR UPDATE TO authenticated USING ((select auth.uid()) = id) WITH CHECK ((select auth.uid()) = id);
CREATE POLICY users_delete_own ON counsel.users
    FOR DELETE TO authenticated USING ((select auth.uid()) = id);

GRANT SELECT, INSERT, UPDATE, DELETE ON counsel.users TO authenticated, service_role;

-- DOWN
DROP TABLE counsel.users;
DROP FUNCTION counsel.update_updated_at_column();
DROP SCHEMA counsel;
