-- partner: what a client (authenticated, through PostgREST) may write, per column and per
-- party (issue 11). Pairing, conversation ownership, analysis, Luna and escalation records
-- are the backend's (service_role); sent_at and the receipt/deletion times are the server's
-- clock. Only the recipient sets receipts, only the sender soft-deletes, and a soft-deleted
-- message is gone for the other partner. Luna's drafts belong to the person who wrote them
-- (author_id), not to a partner_a/partner_b label that the next relationship reuses.
-- References (reply_to_id, final_message_id) stay inside their conversation.
-- Rules per table: migrations/README.md, "Client writes".
-- UP

-- ============================================
-- relationships: read-only for members (pairing is server-side)
-- ============================================
REVOKE INSERT, UPDATE, DELETE ON partner.relationships FROM authenticated;

-- ============================================
-- partner_conversations: a member opens its relationship's conversation and may
-- deactivate it or edit its metadata. relationship_id is fixed once inserted (moving a
-- conversation to another relationship would show it to another person); the counters and
-- preview are maintained by trigger_update_conversation_on_message, which therefore runs
-- as its owner (SECURITY DEFINER: the client may not write those columns itself).
-- ============================================
REVOKE INSERT, UPDATE, DELETE ON partner.partner_conversations FROM authenticated;
GRANT INSERT (id, relationship_id, is_active, metadata) ON partner.partner_conversations TO authenticated;
GRANT UPDATE (is_active, metadata) ON partner.partner_conversations TO authenticated;
ALTER FUNCTION partner.update_conversation_on_message() SECURITY DEFINER;
REVOKE ALL ON FUNCTION partner.update_conversation_on_message() FROM PUBLIC;

-- ============================================
-- partner_messages
-- ============================================
-- a reply quotes a message of the same conversation
-- squawk-ignore constraint-missing-not-valid, disallowed-unique-constraint -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
ALTER TABLE partner.partner_messages
    ADD CONSTRAINT partner_messages_conversation_id_id_key UNIQUE (conversation_id, id);
ALTER TABLE partner.partner_messages DROP CONSTRAINT partner_messages_reply_to_id_fkey;
-- squawk-ignore require-concurrent-index-deletion -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
DROP INDEX partner.idx_partner_messages_reply_to;
-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
ALTER TABLE partner.partner_messages
    ADD CONSTRAINT partner_messages_reply_to_id_fkey FOREIGN KEY (reply_to_id, conversation_id)
        REFERENCES partner.partner_messages (id, conversation_id) ON DELETE SET NULL (reply_to_id);
-- squawk-ignore require-concurrent-index-creation -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
CREATE INDEX idx_partner_messages_reply_to
    ON partner.partner_messages (reply_to_id, conversation_id);

-- a sender writes the message itself; analysis, Luna, receipt and deletion columns and
-- sent_at are not insertable (sent_at takes the server's clock)
REVOKE INSERT ON partner.partner_messages FROM authenticated;
GRANT INSERT (id, conversation_id, sender_id, content, reply_to_id, metadata)
    ON partner.partner_messages TO authenticated;

-- SELECT: the relationship's messages, except those the other partner soft-deleted.
-- INSERT: as oneself. UPDATE (receipts, soft delete; who may change which is decided by
-- trigger_guard_partner_message_update): the messages one can see.
DROP POLICY "Members send messages only as themselves" ON partner.partner_messages;
DROP POLICY "Users can only access their relationship's messages" ON partner.partner_messages;
CREATE POLICY "Users can only access their relationship's messages"
    ON partner.partner_messages
    FOR SELECT
    TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE pc.id = partner_messages.conversation_id
              AND rm.user_id = (select auth.uid())
              AND (partner_messages.deleted_at IS NULL OR partner_messages.sender_id = rm.role)
        )
    );
CREATE POLICY "Members send messages only as themselves"
    ON partner.partner_messages
    FOR INSERT
    TO authenticated
    WITH CHECK (
        (conversation_id, sender_id) IN (
            SELECT pc.id, rm.role FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    );
CREATE POLICY "Members update the messages they can see"
    ON partner.partner_messages
    FOR UPDATE
    TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE pc.id = partner_messages.conversation_id
              AND rm.user_id = (select auth.uid())
              AND (partner_messages.deleted_at IS NULL OR partner_messages.sender_id = rm.role)
        )
    )
    WITH CHECK (
        conversation_id IN (
            SELECT pc.id FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    );

-- Receipts are the recipient's, moving forward only (sent -> delivered -> read), each time
-- set once and stamped with the server's clock. The soft delete is the sender's, once,
-- stamped likewise; nobody un-deletes. Applies to client roles; the backend is trusted.
CREATE FUNCTION partner.guard_partner_message_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    caller_role text;
BEGIN
    IF current_user NOT IN ('anon', 'authenticated') THEN
        RETURN NEW;
    END IF;
    SELECT rm.role INTO caller_role
      FROM partner.partner_conversations pc
      JOIN partner.relationship_members rm ON rm.relationship_id = pc.relationship_id
     WHERE pc.id = OLD.conversation_id AND rm.user_id = (SELECT auth.uid());
    IF NEW.status IS DISTINCT FROM OLD.status
       OR NEW.delivered_at IS DISTINCT FROM OLD.delivered_at
       OR NEW.read_at IS DISTINCT FROM OLD.read_at THEN
        IF caller_role IS NULL OR caller_role = OLD.sender_id THEN
            RAISE EXCEPTION 'partner.partner_messages: only the recipient sets delivery and read receipts'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF pg_catalog.array_position(ARRAY['sent', 'delivered', 'read'], NEW.status)
           < pg_catalog.array_position(ARRAY['sent', 'delivered', 'read'], OLD.status) THEN
            RAISE EXCEPTION 'partner.partner_messages: status moves forward only (% to %)', OLD.status, NEW.status
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF (OLD.delivered_at IS NOT NULL AND NEW.delivered_at IS DISTINCT FROM OLD.delivered_at)
           OR (OLD.read_at IS NOT NULL AND NEW.read_at IS DISTINCT FROM OLD.read_at) THEN
            RAISE EXCEPTION 'partner.partner_messages: a receipt time is set once'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.delivered_at IS DISTINCT FROM OLD.delivered_at THEN
            NEW.delivered_at := pg_catalog.now();
        END IF;
        IF NEW.read_at IS DISTINCT FROM OLD.read_at THEN
            NEW.read_at := pg_catalog.now();
        END IF;
    END IF;
    IF NEW.deleted_at IS DISTINCT FROM OLD.deleted_at THEN
        IF caller_role IS NULL OR caller_role <> OLD.sender_id THEN
            RAISE EXCEPTION 'partner.partner_messages: only the sender deletes a message'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF OLD.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION 'partner.partner_messages: a deleted message stays deleted'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        NEW.deleted_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trigger_guard_partner_message_update
    BEFORE UPDATE ON partner.partner_messages
    FOR EACH ROW
    EXECUTE FUNCTION partner.guard_partner_message_update();

-- ============================================
-- partner_messaging_preferences: both partners' rows are visible in the relationship; each
-- partner writes its own (one SELECT policy, so no two permissive policies overlap)
-- ============================================
DROP POLICY "Partners manage their own messaging preferences" ON partner.partner_messaging_preferences;
CREATE POLICY "Partners create their own messaging preferences"
    ON partner.partner_messaging_preferences
    FOR INSERT
    TO authenticated
    WITH CHECK (
        (relationship_id, partner_id) IN (
            SELECT rm.relationship_id, rm.role FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );
CREATE POLICY "Partners update their own messaging preferences"
    ON partner.partner_messaging_preferences
    FOR UPDATE
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
CREATE POLICY "Partners delete their own messaging preferences"
    ON partner.partner_messaging_preferences
    FOR DELETE
    TO authenticated
    USING (
        (relationship_id, partner_id) IN (
            SELECT rm.relationship_id, rm.role FROM partner.relationship_members rm
            WHERE rm.user_id = (select auth.uid())
        )
    );
REVOKE INSERT, UPDATE ON partner.partner_messaging_preferences FROM authenticated;
GRANT INSERT (id, relationship_id, partner_id, luna_assistance_enabled, suggestion_mode,
              intervention_enabled, intervention_sensitivity, push_notifications_enabled,
              notification_sound, show_sentiment_indicators, show_read_receipts,
              show_typing_indicators)
    ON partner.partner_messaging_preferences TO authenticated;
GRANT UPDATE (luna_assistance_enabled, suggestion_mode, intervention_enabled,
              intervention_sensitivity, push_notifications_enabled, notification_sound,
              show_sentiment_indicators, show_read_receipts, show_typing_indicators)
    ON partner.partner_messaging_preferences TO authenticated;

-- ============================================
-- message_suggestions: Luna (the backend) writes them; the person who drafted the message
-- (author_id) reads them and records its response. author_id defaults, on insert, to the
-- member whose role is sender_id in the conversation's relationship at that moment.
-- ============================================
-- squawk-ignore adding-foreign-key-constraint -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
ALTER TABLE partner.message_suggestions
    ADD COLUMN author_id uuid REFERENCES auth.users (id) ON DELETE CASCADE;
UPDATE partner.message_suggestions ms
   SET author_id = rm.user_id
  FROM partner.partner_conversations pc
  JOIN partner.relationship_members rm ON rm.relationship_id = pc.relationship_id
 WHERE pc.id = ms.conversation_id AND rm.role = ms.sender_id;
-- squawk-ignore adding-not-nullable-field -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
ALTER TABLE partner.message_suggestions ALTER COLUMN author_id SET NOT NULL;
-- squawk-ignore require-concurrent-index-creation -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
CREATE INDEX idx_message_suggestions_author ON partner.message_suggestions (author_id);

CREATE FUNCTION partner.set_message_suggestion_author()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF NEW.author_id IS NULL THEN
        SELECT rm.user_id INTO NEW.author_id
          FROM partner.partner_conversations pc
          JOIN partner.relationship_members rm ON rm.relationship_id = pc.relationship_id
         WHERE pc.id = NEW.conversation_id AND rm.role = NEW.sender_id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trigger_set_message_suggestion_author
    BEFORE INSERT ON partner.message_suggestions
    FOR EACH ROW
    EXECUTE FUNCTION partner.set_message_suggestion_author();

-- the draft's response time is the server's clock
CREATE FUNCTION partner.stamp_message_suggestion_response()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF current_user IN ('anon', 'authenticated')
       AND NEW.user_action IS DISTINCT FROM OLD.user_action THEN
        NEW.responded_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trigger_stamp_message_suggestion_response
    BEFORE UPDATE ON partner.message_suggestions
    FOR EACH ROW
    EXECUTE FUNCTION partner.stamp_message_suggestion_response();

-- the final message is one of the same conversation
ALTER TABLE partner.message_suggestions DROP CONSTRAINT message_suggestions_final_message_id_fkey;
-- squawk-ignore require-concurrent-index-deletion -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
DROP INDEX partner.idx_message_suggestions_final_message;
-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
ALTER TABLE partner.message_suggestions
    ADD CONSTRAINT message_suggestions_final_message_id_fkey
        FOREIGN KEY (final_message_id, conversation_id)
        REFERENCES partner.partner_messages (id, conversation_id) ON DELETE SET NULL (final_message_id);
-- squawk-ignore require-concurrent-index-creation -- partner tables are small (one couple's messages) and the constraint must hold before the policies below rely on it; a brief lock is the price of one migration
CREATE INDEX idx_message_suggestions_final_message
    ON partner.message_suggestions (final_message_id, conversation_id);

DROP POLICY "Senders can only access their own message suggestions" ON partner.message_suggestions;
CREATE POLICY "Senders can only access their own message suggestions"
    ON partner.message_suggestions
    FOR SELECT
    TO authenticated
    USING (
        author_id = (select auth.uid())
        AND (conversation_id, sender_id) IN (
            SELECT pc.id, rm.role FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    );
CREATE POLICY "Senders respond to their own message suggestions"
    ON partner.message_suggestions
    FOR UPDATE
    TO authenticated
    USING (
        author_id = (select auth.uid())
        AND (conversation_id, sender_id) IN (
            SELECT pc.id, rm.role FROM partner.partner_conversations pc
            JOIN partner.relationship_members rm ON pc.relationship_id = rm.relationship_id
            WHERE rm.user_id = (select auth.uid())
        )
    )
    WITH CHECK (author_id = (select auth.uid()));
REVOKE INSERT, UPDATE, DELETE ON partner.message_suggestions FROM authenticated;
GRANT UPDATE (user_action, final_message_id, selected_alternative_index)
    ON partner.message_suggestions TO authenticated;

-- ============================================
-- escalation_events: recorded by the backend's analysis; members read them
-- ============================================
DROP POLICY "Members can record their relationship's escalation events" ON partner.escalation_events;
REVOKE INSERT, UPDATE, DELETE ON partner.escalation_events FROM authenticated;

-- DOWN
GRANT INSERT, UPDATE, DELETE ON partner.escalation_events TO authenticated;
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

REVOKE UPDATE (user_action, final_message_id, selected_alternative_index)
    ON partner.message_suggestions FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON partner.message_suggestions TO authenticated;
DROP POLICY "Senders respond to their own message suggestions" ON partner.message_suggestions;
DROP POLICY "Senders can only access their own message suggestions" ON partner.message_suggestions;
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
DROP INDEX partner.idx_message_suggestions_final_message;
ALTER TABLE partner.message_suggestions DROP CONSTRAINT message_suggestions_final_message_id_fkey;
ALTER TABLE partner.message_suggestions
    ADD CONSTRAINT message_suggestions_final_message_id_fkey FOREIGN KEY (final_message_id)
        REFERENCES partner.partner_messages (id) ON DELETE SET NULL;
CREATE INDEX idx_message_suggestions_final_message
    ON partner.message_suggestions (final_message_id);
DROP TRIGGER trigger_stamp_message_suggestion_response ON partner.message_suggestions;
DROP FUNCTION partner.stamp_message_suggestion_response();
DROP TRIGGER trigger_set_message_suggestion_author ON partner.message_suggestions;
DROP FUNCTION partner.set_message_suggestion_author();
DROP INDEX partner.idx_message_suggestions_author;
ALTER TABLE partner.message_suggestions DROP COLUMN author_id;

REVOKE UPDATE (luna_assistance_enabled, suggestion_mode, intervention_enabled,
               intervention_sensitivity, push_notifications_enabled, notification_sound,
               show_sentiment_indicators, show_read_receipts, show_typing_indicators)
    ON partner.partner_messaging_preferences FROM authenticated;
REVOKE INSERT (id, relationship_id, partner_id, luna_assistance_enabled, suggestion_mode,
               intervention_enabled, intervention_sensitivity, push_notifications_enabled,
               notification_sound, show_sentiment_indicators, show_read_receipts,
               show_typing_indicators)
    ON partner.partner_messaging_preferences FROM authenticated;
GRANT INSERT, UPDATE ON partner.partner_messaging_preferences TO authenticated;
DROP POLICY "Partners delete their own messaging preferences" ON partner.partner_messaging_preferences;
DROP POLICY "Partners update their own messaging preferences" ON partner.partner_messaging_preferences;
DROP POLICY "Partners create their own messaging preferences" ON partner.partner_messaging_preferences;
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

DROP TRIGGER trigger_guard_partner_message_update ON partner.partner_messages;
DROP FUNCTION partner.guard_partner_message_update();
DROP POLICY "Members update the messages they can see" ON partner.partner_messages;
DROP POLICY "Members send messages only as themselves" ON partner.partner_messages;
DROP POLICY "Users can only access their relationship's messages" ON partner.partner_messages;
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
REVOKE INSERT (id, conversation_id, sender_id, content, reply_to_id, metadata)
    ON partner.partner_messages FROM authenticated;
GRANT INSERT ON partner.partner_messages TO authenticated;
DROP INDEX partner.idx_partner_messages_reply_to;
ALTER TABLE partner.partner_messages DROP CONSTRAINT partner_messages_reply_to_id_fkey;
ALTER TABLE partner.partner_messages
    ADD CONSTRAINT partner_messages_reply_to_id_fkey FOREIGN KEY (reply_to_id)
        REFERENCES partner.partner_messages (id) ON DELETE SET NULL;
CREATE INDEX idx_partner_messages_reply_to
    ON partner.partner_messages (reply_to_id);
ALTER TABLE partner.partner_messages DROP CONSTRAINT partner_messages_conversation_id_id_key;

GRANT EXECUTE ON FUNCTION partner.update_conversation_on_message() TO PUBLIC;
ALTER FUNCTION partner.update_conversation_on_message() SECURITY INVOKER;
REVOKE UPDATE (is_active, metadata) ON partner.partner_conversations FROM authenticated;
REVOKE INSERT (id, relationship_id, is_active, metadata) ON partner.partner_conversations FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON partner.partner_conversations TO authenticated;

GRANT INSERT, UPDATE, DELETE ON partner.relationships TO authenticated;
