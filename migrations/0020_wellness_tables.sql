-- wellness ("Organic OS"): schema, grants, tables and indexes
-- (source: ../shared/seeds/001_c40e1bf97b35b528.txt).
-- The document's UNIQUE constraints carry the names it gives as indexes (users_email_idx,
-- wellness_user_date_idx, progress_user_module_idx) instead of a second, identical index.
-- RLS is enabled here on every table; the policies are in 0021, functions/triggers in 0022.
-- UP
CREATE SCHEMA wellness;

GRANT USAGE ON SCHEMA wellness TO anon, authenticated, service_role;

-- ============================================
-- TABLE: users (profile, 1:1 with auth.users)
-- ============================================
CREATE TABLE wellness.users (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    email text NOT NULL,
    full_name text,
    avatar_url text,
    timezone text NOT NULL DEFAULT 'UTC',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_idx UNIQUE (email)
);

-- ============================================
-- TABLE: wellness_entries (one row per user and day)
-- ============================================
CREATE TABLE wellness.wellness_entries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES wellness.users (id) ON DELETE CASCADE,
    date date NOT NULL,
    sleep_hours numeric(4,2) CHECK (sleep_hours BETWEEN 0 AND 24),
    water_intake_ml integer CHECK (water_intake_ml >= 0),
    exercise_minutes integer CHECK (exercise_minutes BETWEEN 0 AND 1440),
    meditation_minutes integer CHECK (meditation_minutes BETWEEN 0 AND 1440),
    mood_score numeric(3,2) CHECK (mood_score >= 0),
    energy_level numeric(3,2) CHECK (energy_level >= 0),
    nutrition_notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- also covers the user_id foreign key (leading column)
    CONSTRAINT wellness_user_date_idx UNIQUE (user_id, date)
);

CREATE INDEX wellness_date_idx ON wellness.wellness_entries (date);

-- ============================================
-- TABLE: module_progress (one row per user and module)
-- ============================================
CREATE TABLE wellness.module_progress (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES wellness.users (id) ON DELETE CASCADE,
    module_name text NOT NULL,
    progress_percentage numeric(5,2) NOT NULL DEFAULT 0
        CHECK (progress_percentage BETWEEN 0 AND 100),
    completed_topics text[] NOT NULL DEFAULT '{}',
    current_focus text,
    notes text,
    last_activity timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- also covers the user_id foreign key (leading column)
    CONSTRAINT progress_user_module_idx UNIQUE (user_id, module_name)
);

CREATE INDEX progress_module_idx ON wellness.module_progress (module_name);

-- ============================================
-- TABLE: conversations (AI coaching conversations)
-- ============================================
CREATE TABLE wellness.conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES wellness.users (id) ON DELETE CASCADE,
    module_name text NOT NULL,
    topic text,
    message_count integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX conversations_user_idx ON wellness.conversations (user_id);
CREATE INDEX conversations_module_idx ON wellness.conversations (module_name);

-- ============================================
-- TABLE: messages (chat messages of a conversation)
-- ============================================
CREATE TABLE wellness.messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES wellness.conversations (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('user', 'assistant')),
    content text NOT NULL,
    tokens_used integer CHECK (tokens_used >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX messages_conversation_idx ON wellness.messages (conversation_id);
CREATE INDEX messages_created_idx ON wellness.messages (created_at);

-- ============================================
-- Row level security (policies in 0021) and privileges
-- ============================================
ALTER TABLE wellness.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE wellness.wellness_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE wellness.module_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE wellness.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE wellness.messages ENABLE ROW LEVEL SECURITY;

-- RLS, not missing grants, decides what a signed-in user sees; anon gets no table privileges.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    wellness.users, wellness.wellness_entries, wellness.module_progress,
    wellness.conversations, wellness.messages
TO authenticated, service_role;

-- DOWN
DROP TABLE wellness.messages;
DROP TABLE wellness.conversations;
DROP TABLE wellness.module_progress;
DROP TABLE wellness.wellness_entries;
DROP TABLE wellness.users;
-- no CASCADE: fails loudly if a later migration left something behind
DROP SCHEMA wellness;
