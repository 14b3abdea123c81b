-- partner: row level security policies (production policies; the document's MVP
-- "Allow public access to ..." USING (true) policies are deliberately not shipped).
--
-- A signed-in user is a member of a relationship when a relationship_members row has
-- user_id = auth.uid(). Members see their relationship's rows; message_suggestions are
-- private to the partner who drafted them. Membership is resolved without recursion:
--   relationships        -> its own partner_a_id / partner_b_id columns
--   relationship_members -> relationships
--   every other table    -> relationship_members (-> relationships)
-- auth.uid() is always wrapped in (select ...) so it is evaluated once per statement.
-- service_role bypasses RLS (BYPASSRLS); anon has no table privileges at all.
-- UP

-- ============================================
-- relationships / relationship_members: read-only for members (pairing and partner
-- changes are done server-side with service_role)
-- ============================================
CREATE POLICY "Members can view their relationship"
    ON partner.relationships
    FOR SELECT
    TO authenticated
    USING ((select auth.uid()) IN (partner_a_id, partner_b_id));

CREATE POLICY "Members can view their relationship's members"
    ON partner.relationship_members
    FOR SELECT
    TO authenticated
    USING (
        relationship_id IN (
            SELECT r.id FROM partner.relationships r
            WHERE (select auth.uid()) IN (r.partner_a_id, r.partner_b_id)
        )
    );

-- ============================================
-- partner_conversations: members read, create and update (is_active, metadata, the
-- message bookkeeping done by trigger_update_conversation_on_message); no client DELETE,
-- which would erase both partners' history (deactivate with is_active = false instead)
-- ============================================
CREATE POLICY "Members can view their relationship's conversation"
    ON partner.partner_conversations
    FOR SELECT
    TO authenticated
    USING (
        relationship_id IN (
            SELECT rm.relationship_id FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );

CREATE POLICY "Members can create their relationship's conversation"
    ON partner.partner_conversations
    FOR INSERT
    TO authenticated
    WITH CHECK (
        relationship_id IN (
            SELECT rm.relationship_id FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );

CREATE POLICY "Members can update their relationship's conversation"
    ON partner.partner_conversations
    FOR UPDATE
    TO authenticated
    USING (
        relationship_id IN (
            SELECT rm.relationship_id FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    )
    WITH CHECK (
        relationship_id IN (
            SELECT rm.relationship_id FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );

-- ============================================
-- partner_messages: the document's production policy, plus a restrictive INSERT policy
-- so a member cannot send a message as their partner
-- ============================================
CREATE POLICY "Users can only access their relationship's messages"
    ON partner.partner_messages
    FOR ALL
    TO authenticated
    USING (
        conversation_id IN (
            SELECT pc.id FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    )
    WITH CHECK (
        conversation_id IN (
            SELECT pc.id FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    );

CREATE POLICY "Members send messages only as themselves"
    ON partner.partner_messages
    AS RESTRICTIVE
    FOR INSERT
    TO authenticated
    WITH CHECK (
        (conversation_id, sender_id) IN (
            SELECT pc.id, rm.role FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    );

-- ============================================
-- partner_messaging_preferences: both partners' settings are visible to the relationship
-- (read receipts, typing indicators); each partner writes only their own row
-- ============================================
CREATE POLICY "Members can view their relationship's messaging preferences"
    ON partner.partner_messaging_preferences
    FOR SELECT
    TO authenticated
    USING (
        relationship_id IN (
            SELECT rm.relationship_id FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );

CREATE POLICY "Partners manage their own messaging preferences"
    ON partner.partner_messaging_preferences
    FOR ALL
    TO authenticated
    USING (
        (relationship_id, partner_id) IN (
            SELECT rm.relationship_id, rm.role FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    )
    WITH CHECK (
        (relationship_id, partner_id) IN (
            SELECT rm.relationship_id, rm.role FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );

-- ============================================
-- message_suggestions: private to the sender (the partner whose role is sender_id in the
-- conversation's relationship); the other partner never sees unsent drafts
-- ============================================
CREATE POLICY "Senders can only access their own message suggestions"
    ON partner.message_suggestions
    FOR ALL
    TO authenticated
    USING (
        (conversation_id, sender_id) IN (
            SELECT pc.id, rm.role FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    )
    WITH CHECK (
        (conversation_id, sender_id) IN (
            SELECT pc.id, rm.role FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    );

-- ============================================
-- escalation_events: members read and record their relationship's events; append-only
-- for clients so that a partner cannot erase or rewrite a safety record
-- ============================================
CREATE POLICY "Members can view their relationship's escalation events"
    ON partner.escalation_events
    FOR SELECT
    TO authenticated
    USING (
        relationship_id IN (
            SELECT rm.relationship_id FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );

CREATE POLICY "Members can record their relationship's escalation events"
    ON partner.escalation_events
    FOR INSERT
    TO authenticated
    WITH CHECK (
        relationship_id IN (
            SELECT rm.relationship_id FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );

-- DOWN
DROP POLICY "Members can record their relationship's escalation events" ON partner.escalation_events;
DROP POLICY "Members can view their relationship's escalation events" ON partner.escalation_events;
DROP POLICY "Senders can only access their own message suggestions" ON partner.message_suggestions;
DROP POLICY "Partners manage their own messaging preferences" ON partner.partner_messaging_preferences;
DROP POLICY "Members can view their relationship's messaging preferences" ON partner.partner_messaging_preferences;
DROP POLICY "Members send messages only as themselves" ON partner.partner_messages;
DROP POLICY "Users can only access their relationship's messages" ON partner.partner_messages;
DROP POLICY "Members can update their relationship's conversation" ON partner.partner_conversations;
DROP POLICY "Members can create their relationship's conversation" ON partner.partner_conversations;
DROP POLICY "Members can view their relationship's conversation" ON partner.partner_conversations;
DROP POLICY "Members can view their relationship's members" ON partner.relationship_members;
DROP POLICY "Members can view their relationship" ON partner.relationships;
