-- coach: schema, grants, tables and indexes (source: seeds/000, "Database Schema").
-- RLS is enabled here, together with the tables, so no version exposes a granted table
-- without RLS; the policies follow in 0011, the functions and triggers in 0012.
-- UP
CREATE SCHEMA coach;
GRANT USAGE ON SCHEMA coach TO anon, authenticated, service_role;

-- Users table (extends auth.users)
CREATE TABLE coach.users (
    id              uuid        NOT NULL,
    email           text        NOT NULL,
    goals           text[]      NOT NULL DEFAULT '{}',
    stage           integer     NOT NULL DEFAULT 1,
    profile         jsonb       NOT NULL DEFAULT '{}',
    preferences     jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_active     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    graduation_date timestamptz,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_id_fkey FOREIGN KEY (id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT users_stage_check CHECK (stage IN (1, 2, 3))
);

CREATE TABLE coach.conversations (
    id                uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    user_id           uuid        NOT NULL,
    message_text      text        NOT NULL,
    sender_type       text        NOT NULL,
    message_metadata  jsonb       NOT NULL DEFAULT '{}',
    analysis_included boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT conversations_pkey PRIMARY KEY (id),
    CONSTRAINT conversations_user_id_fkey FOREIGN KEY (user_id) REFERENCES coach.users (id) ON DELETE CASCADE,
    CONSTRAINT conversations_sender_type_check CHECK (sender_type IN ('user', 'assistant'))
);

CREATE TABLE coach.analysis_results (
    id                   uuid         NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    user_id              uuid         NOT NULL,
    chat_score           numeric(3,1) NOT NULL,
    analysis_type        text         NOT NULL,
    message_range        jsonb        NOT NULL,
    insights             jsonb        NOT NULL DEFAULT '{}',
    improvement_areas    text[]       NOT NULL DEFAULT '{}',
    strengths_identified text[]       NOT NULL DEFAULT '{}',
    triggered_milestone  boolean      NOT NULL DEFAULT false,
    created_at           timestamptz  NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT analysis_results_pkey PRIMARY KEY (id),
    CONSTRAINT analysis_results_user_id_fkey FOREIGN KEY (user_id) REFERENCES coach.users (id) ON DELETE CASCADE,
    CONSTRAINT analysis_results_chat_score_check CHECK (chat_score >= 0 AND chat_score <= 14),
    CONSTRAINT analysis_results_analysis_type_check
        CHECK (analysis_type IN ('chat_scoring', 'milestone_check', 'graduation_assessment', 'crisis_review'))
);

CREATE TABLE coach.crisis_events (
    id                   uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    user_id              uuid        NOT NULL,
    message_id           uuid        NOT NULL,
    trigger_type         text        NOT NULL,
    severity_level       text        NOT NULL,
    keywords_detected    text[]      NOT NULL DEFAULT '{}',
    resources_shown      jsonb       NOT NULL DEFAULT '[]',
    user_acknowledged    boolean     NOT NULL DEFAULT false,
    followup_required    boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolution_timestamp timestamptz,
    CONSTRAINT crisis_events_pkey PRIMARY KEY (id),
    CONSTRAINT crisis_events_user_id_fkey FOREIGN KEY (user_id) REFERENCES coach.users (id) ON DELETE CASCADE,
    CONSTRAINT crisis_events_message_id_fkey FOREIGN KEY (message_id) REFERENCES coach.conversations (id) ON DELETE CASCADE,
    CONSTRAINT crisis_events_severity_level_check CHECK (severity_level IN ('low', 'moderate', 'high', 'critical')),
    CONSTRAINT crisis_events_resolution_check CHECK (resolution_timestamp IS NULL OR resolution_timestamp >= created_at)
);

-- Job queue (service only: no policies, no grants to API roles)
CREATE TABLE coach.job_queue (
    id           uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    name         text        NOT NULL,
    data         jsonb       NOT NULL DEFAULT '{}',
    priority     integer     NOT NULL DEFAULT 0,
    retry_limit  integer     NOT NULL DEFAULT 3,
    retry_count  integer     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    start_after  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    completed_at timestamptz,
    CONSTRAINT job_queue_pkey PRIMARY KEY (id),
    CONSTRAINT job_queue_retry_check CHECK (retry_limit >= 0 AND retry_count >= 0)
);

-- Indexes named by the document
CREATE INDEX idx_conversations_user_id_created_at ON coach.conversations (user_id, created_at DESC);
CREATE INDEX idx_analysis_results_user_id_created_at ON coach.analysis_results (user_id, created_at DESC);
CREATE INDEX idx_crisis_events_user_id_severity ON coach.crisis_events (user_id, severity_level);
CREATE INDEX idx_job_queue_name_priority ON coach.job_queue (name, priority DESC, created_at);
-- Added: foreign key crisis_events.message_id had no index
CREATE INDEX idx_crisis_events_message_id ON coach.crisis_events (message_id);
-- Added: serve coach.queue_analysis_check(), which runs on every inserted message
CREATE INDEX idx_conversations_user_pending_analysis ON coach.conversations (user_id)
    WHERE sender_type = 'user' AND NOT analysis_included;
CREATE INDEX idx_job_queue_pending_analysis ON coach.job_queue ((data ->> 'user_id'))
    WHERE name = 'analysis_job' AND completed_at IS NULL;

ALTER TABLE coach.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE coach.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE coach.analysis_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE coach.crisis_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE coach.job_queue ENABLE ROW LEVEL SECURITY;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON coach.users, coach.conversations, coach.analysis_results, coach.crisis_events
    TO authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON coach.job_queue TO service_role;

-- DOWN
DROP TABLE coach.job_queue;
DROP TABLE coach.crisis_events;
DROP TABLE coach.analysis_results;
DROP TABLE coach.conversations;
DROP TABLE coach.users;
DROP SCHEMA coach;
