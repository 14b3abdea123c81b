-- signify ("SignifyAI"): schema, grants, tables and indexes
-- (source: ../shared/seeds/003_5759c4ea612082f4.txt, sections 2-3).
-- Tables are created in dependency order: media_assets comes before lessons, which
-- references it. RLS is enabled here on every table; the policies (section 7) are in 0041,
-- triggers and increment_xp in 0042, the practice_metrics_daily view in 0043.
-- UP
CREATE SCHEMA signify;

GRANT USAGE ON SCHEMA signify TO anon, authenticated, service_role;

-- ============================================
-- 3.1 users (profile and XP, 1:1 with auth.users)
-- ============================================
CREATE TABLE signify.users (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    email extensions.citext NOT NULL,
    full_name text,
    nickname text NOT NULL CHECK (char_length(nickname) BETWEEN 2 AND 50),
    -- level is a smallint, so xp above 32767999 fails ("smallint out of range", raised while
    -- computing level, before any CHECK); increment_xp refuses such totals with a clear error
    xp bigint NOT NULL DEFAULT 0 CHECK (xp >= 0),
    level smallint GENERATED ALWAYS AS ((xp / 1000)::smallint) STORED,
    streak_count smallint NOT NULL DEFAULT 0 CHECK (streak_count >= 0),
    last_active_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE INDEX idx_users_last_active ON signify.users (last_active_at);

-- ============================================
-- 3.2 user_settings (1:1 with users)
-- ============================================
CREATE TABLE signify.user_settings (
    user_id uuid PRIMARY KEY REFERENCES signify.users (id) ON DELETE CASCADE,
    app_theme text NOT NULL DEFAULT 'light' CHECK (app_theme IN ('light', 'dark')),
    prefers_assistive_learning boolean NOT NULL DEFAULT false,
    notifications jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(notifications) = 'object'),
    time_zone text NOT NULL DEFAULT 'UTC',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ============================================
-- 3.10 media_assets (storage objects; before lessons, which references it)
-- ============================================
CREATE TABLE signify.media_assets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL for content-team assets uploaded through the service role
    owner_id uuid REFERENCES signify.users (id) ON DELETE CASCADE,
    bucket text NOT NULL,
    path text NOT NULL,
    media_type text,
    duration_seconds numeric CHECK (duration_seconds >= 0),
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_media_owner ON signify.media_assets (owner_id);

-- ============================================
-- 3.3 lessons
-- ============================================
CREATE TABLE signify.lessons (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    author_id uuid REFERENCES signify.users (id) ON DELETE SET NULL,
    lesson_code text NOT NULL,
    title text NOT NULL,
    description text,
    lesson_type text NOT NULL CHECK (lesson_type IN ('word', 'sentence', 'freestyle')),
    difficulty_level text CHECK (difficulty_level IN ('intro', 'intermediate', 'advanced')),
    cover_media_id uuid REFERENCES signify.media_assets (id) ON DELETE SET NULL,
    is_active boolean NOT NULL DEFAULT true,
    published_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lessons_lesson_code_key UNIQUE (lesson_code)
);

CREATE INDEX idx_lessons_type_active ON signify.lessons (lesson_type, is_active);
CREATE INDEX idx_lessons_author ON signify.lessons (author_id);
CREATE INDEX idx_lessons_cover_media ON signify.lessons (cover_media_id);

-- ============================================
-- 3.4 notes
-- ============================================
CREATE TABLE signify.notes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lesson_id uuid NOT NULL REFERENCES signify.lessons (id) ON DELETE CASCADE,
    title text,
    note_content text NOT NULL,
    tool_calls jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(tool_calls) = 'array'),
    tool_calls_content jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(tool_calls_content) = 'array'),
    language_code text NOT NULL DEFAULT 'en',
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_notes_lesson ON signify.notes (lesson_id);

-- ============================================
-- 3.5 tests
-- ============================================
CREATE TABLE signify.tests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lesson_id uuid NOT NULL REFERENCES signify.lessons (id) ON DELETE CASCADE,
    title text,
    passing_score smallint NOT NULL DEFAULT 70 CHECK (passing_score BETWEEN 0 AND 100),
    time_limit_seconds integer CHECK (time_limit_seconds > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_tests_lesson ON signify.tests (lesson_id);

-- ============================================
-- 3.6 tests_content (holds correct_answer: not readable by learners, see 0041)
-- ============================================
CREATE TABLE signify.tests_content (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    test_id uuid NOT NULL REFERENCES signify.tests (id) ON DELETE CASCADE,
    sequence smallint NOT NULL CHECK (sequence >= 0),
    test_type text NOT NULL CHECK (test_type IN ('vid2text', 'text2vid', 'illustration', 'ordering')),
    test_content jsonb NOT NULL,
    test_options jsonb,
    test_ref uuid,
    correct_answer jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_tests_content_test_sequence ON signify.tests_content (test_id, sequence);

-- ============================================
-- 3.7 chat_sessions
-- ============================================
CREATE TABLE signify.chat_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES signify.users (id) ON DELETE CASCADE,
    chat_name text,
    context_snapshot jsonb,
    source_lesson_id uuid REFERENCES signify.lessons (id) ON DELETE SET NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_chat_sessions_user_created ON signify.chat_sessions (user_id, created_at DESC);
CREATE INDEX idx_chat_sessions_source_lesson ON signify.chat_sessions (source_lesson_id);

-- ============================================
-- 3.8 chat_messages
-- ============================================
CREATE TABLE signify.chat_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    chat_id uuid NOT NULL REFERENCES signify.chat_sessions (id) ON DELETE CASCADE,
    sender text NOT NULL CHECK (sender IN ('user', 'tutor', 'system')),
    message_content text,
    tool_calls jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(tool_calls) = 'array'),
    tool_calls_content jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(tool_calls_content) = 'array'),
    attachments jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(attachments) = 'array'),
    -- one identity for the whole table: increasing within each chat, bigint for volume
    sequence bigint GENERATED BY DEFAULT AS IDENTITY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_chat_messages_chat_sequence ON signify.chat_messages (chat_id, sequence DESC);
-- partial index on tutor messages, for analytics over time
CREATE INDEX idx_chat_messages_tutor ON signify.chat_messages (created_at)
    WHERE sender = 'tutor';

-- ============================================
-- 3.9 practice_sessions
-- ============================================
CREATE TABLE signify.practice_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES signify.users (id) ON DELETE CASCADE,
    lesson_id uuid REFERENCES signify.lessons (id) ON DELETE SET NULL,
    mode text NOT NULL CHECK (mode IN ('word', 'sentence', 'freestyle')),
    score numeric(5,2) CHECK (score BETWEEN 0 AND 100),
    raw_metrics jsonb,
    media_id uuid REFERENCES signify.media_assets (id) ON DELETE SET NULL,
    feedback jsonb,
    -- XP this attempt earned (applied to users.xp through increment_xp); feeds
    -- practice_metrics_daily.xp_gained
    xp_awarded integer NOT NULL DEFAULT 0 CHECK (xp_awarded BETWEEN 0 AND 10000),
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CONSTRAINT practice_sessions_completed_after_start
        CHECK (completed_at IS NULL OR completed_at >= started_at)
);

CREATE INDEX idx_practice_user_completed ON signify.practice_sessions (user_id, completed_at DESC);
CREATE INDEX idx_practice_mode ON signify.practice_sessions (mode);
CREATE INDEX idx_practice_lesson ON signify.practice_sessions (lesson_id);
CREATE INDEX idx_practice_media ON signify.practice_sessions (media_id);

-- ============================================
-- Row level security (policies in 0041) and privileges
-- ============================================
ALTER TABLE signify.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.user_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.media_assets ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.lessons ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.tests ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.tests_content ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.chat_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.chat_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE signify.practice_sessions ENABLE ROW LEVEL SECURITY;

-- RLS, not missing grants, decides what a signed-in user sees; anon gets no table privileges.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    signify.users, signify.user_settings, signify.media_assets, signify.lessons,
    signify.notes, signify.tests, signify.tests_content, signify.chat_sessions,
    signify.chat_messages, signify.practice_sessions
TO authenticated, service_role;
-- the identity sequence of chat_messages.sequence
GRANT USAGE, SELECT ON SEQUENCE signify.chat_messages_sequence_seq TO authenticated, service_role;

-- DOWN
DROP TABLE signify.practice_sessions;
DROP TABLE signify.chat_messages;
DROP TABLE signify.chat_sessions;
DROP TABLE signify.tests_content;
DROP TABLE signify.tests;
DROP TABLE signify.notes;
DROP TABLE signify.lessons;
DROP TABLE signify.media_assets;
DROP TABLE signify.user_settings;
DROP TABLE signify.users;
-- no CASCADE: fails loudly if a later migration left something behind
DROP SCHEMA signify;
