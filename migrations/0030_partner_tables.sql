-- partner: schema, grants, tables and indexes of partner-to-partner messaging with Luna
-- (source: ../shared/seeds/002_cd0d255a9cd08e93.txt, "009_partner_messaging").
-- `relationships` and `relationship_members` are the tables the document treats as existing.
-- `relationships` is the source of truth for who is in a relationship; `relationship_members`
-- is derived from it by the trigger in 0031 and is read-only to every client role.
-- RLS is enabled here on every table; the policies are in 0032.
-- UP
CREATE SCHEMA partner;

GRANT USAGE ON SCHEMA partner TO anon, authenticated, service_role;

-- ============================================
-- TABLE: relationships (two partners, each an auth user)
-- ============================================
CREATE TABLE partner.relationships (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    partner_a_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    partner_b_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT relationships_distinct_partners CHECK (partner_a_id <> partner_b_id)
);

CREATE INDEX idx_relationships_partner_a ON partner.relationships (partner_a_id);
CREATE INDEX idx_relationships_partner_b ON partner.relationships (partner_b_id);

-- ============================================
-- TABLE: relationship_members (one row per partner; maintained from relationships)
-- ============================================
CREATE TABLE partner.relationship_members (
    relationship_id uuid NOT NULL
        REFERENCES partner.relationships (id) ON DELETE CASCADE ON UPDATE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('partner_a', 'partner_b')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (relationship_id, user_id),
    CONSTRAINT uq_relationship_members_role UNIQUE (relationship_id, role)
);

-- covers the user_id foreign key and is the lookup every policy does
-- (user_id = auth.uid() -> relationship_id, role), as an index-only scan
CREATE INDEX idx_relationship_members_user
    ON partner.relationship_members (user_id, relationship_id, role);

-- ============================================
-- TABLE: partner_conversations (one conversation per relationship)
-- ============================================
CREATE TABLE partner.partner_conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    relationship_id uuid NOT NULL REFERENCES partner.relationships (id) ON DELETE CASCADE,

    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),

    last_message_at timestamptz,
    last_message_preview text,
    message_count integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    is_active boolean NOT NULL DEFAULT true,

    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,

    -- One conversation per relationship. The document also builds a plain index
    -- idx_partner_conversations_relationship on the same column; the unique constraint
    -- carries that name instead of duplicating the index.
    CONSTRAINT idx_partner_conversations_relationship UNIQUE (relationship_id)
);

CREATE INDEX idx_partner_conversations_last_message
    ON partner.partner_conversations (last_message_at DESC);
CREATE INDEX idx_partner_conversations_active
    ON partner.partner_conversations (is_active) WHERE is_active = true;

-- ============================================
-- TABLE: partner_messages (messages between the two partners)
-- ============================================
CREATE TABLE partner.partner_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES partner.partner_conversations (id) ON DELETE CASCADE,
    sender_id text NOT NULL CHECK (sender_id IN ('partner_a', 'partner_b')),
    content text NOT NULL,

    status text NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'delivered', 'read')),
    sent_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    read_at timestamptz,

    -- Analysis fields (populated async, phase 4)
    sentiment_score double precision
        CHECK (sentiment_score >= -1.0 AND sentiment_score <= 1.0),
    sentiment_label text
        CHECK (sentiment_label IN ('positive', 'neutral', 'negative', 'mixed')),
    emotions jsonb NOT NULL DEFAULT '[]'::jsonb,
    detected_triggers jsonb NOT NULL DEFAULT '[]'::jsonb,
    escalation_risk text CHECK (escalation_risk IN ('low', 'medium', 'high', 'critical')),
    gottman_markers jsonb NOT NULL DEFAULT '{}'::jsonb,

    -- Luna intervention tracking (phase 3)
    luna_intervened boolean NOT NULL DEFAULT false,
    intervention_type text CHECK (intervention_type IN ('suggestion', 'warning', 'reframe')),
    intervention_accepted boolean,
    original_content text,

    -- Reply threading: a hard-deleted parent leaves the reply in place
    reply_to_id uuid REFERENCES partner.partner_messages (id) ON DELETE SET NULL,

    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),

    -- Soft delete
    deleted_at timestamptz
);

CREATE INDEX idx_partner_messages_conversation
    ON partner.partner_messages (conversation_id, sent_at DESC);
CREATE INDEX idx_partner_messages_sender
    ON partner.partner_messages (sender_id);
CREATE INDEX idx_partner_messages_status
    ON partner.partner_messages (status);
CREATE INDEX idx_partner_messages_sent_at
    ON partner.partner_messages (sent_at DESC);
CREATE INDEX idx_partner_messages_not_deleted
    ON partner.partner_messages (conversation_id, sent_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX idx_partner_messages_sentiment
    ON partner.partner_messages (sentiment_label) WHERE sentiment_label IS NOT NULL;
CREATE INDEX idx_partner_messages_escalation
    ON partner.partner_messages (escalation_risk) WHERE escalation_risk IS NOT NULL;
CREATE INDEX idx_partner_messages_luna_intervened
    ON partner.partner_messages (luna_intervened) WHERE luna_intervened = true;
-- not in the document: covers the reply_to_id foreign key
CREATE INDEX idx_partner_messages_reply_to
    ON partner.partner_messages (reply_to_id);

-- ============================================
-- TABLE: partner_messaging_preferences (per-partner Luna settings)
-- ============================================
CREATE TABLE partner.partner_messaging_preferences (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    relationship_id uuid NOT NULL REFERENCES partner.relationships (id) ON DELETE CASCADE,
    partner_id text NOT NULL CHECK (partner_id IN ('partner_a', 'partner_b')),

    -- Luna assistance settings
    luna_assistance_enabled boolean NOT NULL DEFAULT true,
    suggestion_mode text NOT NULL DEFAULT 'on_request'
        CHECK (suggestion_mode IN ('always', 'on_request', 'high_risk_only', 'off')),

    -- Active intervention settings
    intervention_enabled boolean NOT NULL DEFAULT true,
    intervention_sensitivity text NOT NULL DEFAULT 'medium'
        CHECK (intervention_sensitivity IN ('low', 'medium', 'high')),

    -- Notification preferences
    push_notifications_enabled boolean NOT NULL DEFAULT true,
    notification_sound boolean NOT NULL DEFAULT true,

    -- UI preferences
    show_sentiment_indicators boolean NOT NULL DEFAULT false,
    show_read_receipts boolean NOT NULL DEFAULT true,
    show_typing_indicators boolean NOT NULL DEFAULT true,

    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),

    -- One preferences record per partner per relationship. The document also builds
    -- idx_messaging_prefs_relationship on (relationship_id), which this constraint's index
    -- already serves as its leading column; the constraint carries that name instead.
    CONSTRAINT idx_messaging_prefs_relationship UNIQUE (relationship_id, partner_id)
);

-- ============================================
-- TABLE: message_suggestions (Luna's pre-send suggestions, private to the sender)
-- ============================================
CREATE TABLE partner.message_suggestions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES partner.partner_conversations (id) ON DELETE CASCADE,
    sender_id text NOT NULL CHECK (sender_id IN ('partner_a', 'partner_b')),

    -- Original message analysis
    original_message text NOT NULL,
    risk_assessment text NOT NULL CHECK (risk_assessment IN ('safe', 'risky', 'high_risk')),
    detected_issues jsonb NOT NULL DEFAULT '[]'::jsonb,

    -- Luna's suggestions
    primary_suggestion text NOT NULL,
    suggestion_rationale text NOT NULL,
    alternatives jsonb NOT NULL DEFAULT '[]'::jsonb,
    underlying_need text,

    -- User response tracking
    user_action text CHECK (user_action IN ('accepted', 'rejected', 'modified', 'ignored')),
    final_message_id uuid REFERENCES partner.partner_messages (id) ON DELETE SET NULL,
    selected_alternative_index integer CHECK (selected_alternative_index >= 0),

    -- Timing and context
    created_at timestamptz NOT NULL DEFAULT now(),
    responded_at timestamptz,
    context_message_count integer CHECK (context_message_count >= 0),

    metadata jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX idx_message_suggestions_conversation
    ON partner.message_suggestions (conversation_id);
CREATE INDEX idx_message_suggestions_sender
    ON partner.message_suggestions (sender_id);
CREATE INDEX idx_message_suggestions_action
    ON partner.message_suggestions (user_action) WHERE user_action IS NOT NULL;
CREATE INDEX idx_message_suggestions_created
    ON partner.message_suggestions (created_at DESC);
CREATE INDEX idx_message_suggestions_risk
    ON partner.message_suggestions (risk_assessment);
-- not in the document: covers the final_message_id foreign key
CREATE INDEX idx_message_suggestions_final_message
    ON partner.message_suggestions (final_message_id);

-- ============================================
-- TABLE: escalation_events (analytics: escalations per relationship)
-- ============================================
CREATE TABLE partner.escalation_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    relationship_id uuid NOT NULL REFERENCES partner.relationships (id) ON DELETE CASCADE,
    source text NOT NULL,  -- 'partner_messaging', 'conflict', 'call', ...
    severity text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    context text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_escalation_events_relationship
    ON partner.escalation_events (relationship_id, created_at DESC);

-- ============================================
-- Row level security (policies in 0032) and privileges
-- ============================================
ALTER TABLE partner.relationships ENABLE ROW LEVEL SECURITY;
ALTER TABLE partner.relationship_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE partner.partner_conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE partner.partner_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE partner.partner_messaging_preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE partner.message_suggestions ENABLE ROW LEVEL SECURITY;
ALTER TABLE partner.escalation_events ENABLE ROW LEVEL SECURITY;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    partner.relationships,
    partner.partner_conversations,
    partner.partner_messaging_preferences,
    partner.message_suggestions,
    partner.escalation_events
    TO authenticated, service_role;
-- partner_messages: the FOR ALL policy lets either partner write any message of the
-- relationship, so column privileges keep clients to delivery/read receipts and the soft
-- delete. Otherwise a member could rewrite the partner's messages, or re-attribute their own
-- to the partner with UPDATE sender_id (which the INSERT-only "send only as themselves"
-- policy cannot see). No client DELETE: hard deletes are the retention job's (service_role).
GRANT SELECT, INSERT, UPDATE, DELETE ON partner.partner_messages TO service_role;
GRANT SELECT, INSERT ON partner.partner_messages TO authenticated;
GRANT UPDATE (status, delivered_at, read_at, deleted_at) ON partner.partner_messages TO authenticated;
-- relationship_members is derived from relationships (trigger in 0031): nobody writes it
-- directly, so that it cannot drift from relationships.
GRANT SELECT ON partner.relationship_members TO authenticated, service_role;

-- DOWN
DROP TABLE partner.escalation_events;
DROP TABLE partner.message_suggestions;
DROP TABLE partner.partner_messaging_preferences;
DROP TABLE partner.partner_messages;
DROP TABLE partner.partner_conversations;
DROP TABLE partner.relationship_members;
DROP TABLE partner.relationships;
DROP SCHEMA partner;
