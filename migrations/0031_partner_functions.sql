-- partner: functions and triggers.
-- The document's two triggers (conversation bookkeeping on a new message, preferences
-- timestamp), updated_at triggers for the other tables that have that column, and the
-- trigger that keeps relationship_members equal to relationships' two partners.
-- UP

-- ============================================
-- relationship_members is derived from relationships: one row per partner, role
-- 'partner_a' / 'partner_b'. SECURITY DEFINER because no client role (not even
-- service_role) holds write privileges on relationship_members; rows disappear with
-- their relationship through ON DELETE CASCADE.
-- ============================================
CREATE FUNCTION partner.sync_relationship_members()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM partner.relationship_members
        WHERE relationship_id IN (OLD.id, NEW.id);
    END IF;
    INSERT INTO partner.relationship_members (relationship_id, user_id, role)
    VALUES (NEW.id, NEW.partner_a_id, 'partner_a'),
           (NEW.id, NEW.partner_b_id, 'partner_b');
    RETURN NULL;
END;
$$;

REVOKE EXECUTE ON FUNCTION partner.sync_relationship_members() FROM PUBLIC;

CREATE TRIGGER trigger_sync_relationship_members
    AFTER INSERT OR UPDATE OF id, partner_a_id, partner_b_id ON partner.relationships
    FOR EACH ROW
    EXECUTE FUNCTION partner.sync_relationship_members();

-- ============================================
-- updated_at for relationships and partner_conversations
-- ============================================
CREATE FUNCTION partner.update_updated_at_column()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at = pg_catalog.now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_update_relationships_updated_at
    BEFORE UPDATE ON partner.relationships
    FOR EACH ROW
    EXECUTE FUNCTION partner.update_updated_at_column();

CREATE TRIGGER trigger_update_partner_conversations_updated_at
    BEFORE UPDATE ON partner.partner_conversations
    FOR EACH ROW
    EXECUTE FUNCTION partner.update_updated_at_column();

-- ============================================
-- Auto-update the conversation on a new message. Runs as the inserting user, so the
-- conversation UPDATE passes through that user's RLS policies. A message inserted with an
-- older sent_at (backfill) counts but does not move last_message_at/preview backwards.
-- ============================================
CREATE FUNCTION partner.update_conversation_on_message()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    UPDATE partner.partner_conversations
    SET
        last_message_preview = CASE
            WHEN last_message_at IS NULL OR NEW.sent_at >= last_message_at
            THEN pg_catalog.left(NEW.content, 100)
            ELSE last_message_preview
        END,
        last_message_at = GREATEST(last_message_at, NEW.sent_at),
        message_count = message_count + 1,
        updated_at = pg_catalog.now()
    WHERE id = NEW.conversation_id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_update_conversation_on_message
    AFTER INSERT ON partner.partner_messages
    FOR EACH ROW
    EXECUTE FUNCTION partner.update_conversation_on_message();

-- ============================================
-- Auto-update the preferences timestamp
-- ============================================
CREATE FUNCTION partner.update_messaging_prefs_timestamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at = pg_catalog.now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_update_messaging_prefs_timestamp
    BEFORE UPDATE ON partner.partner_messaging_preferences
    FOR EACH ROW
    EXECUTE FUNCTION partner.update_messaging_prefs_timestamp();

-- DOWN
DROP TRIGGER trigger_update_messaging_prefs_timestamp ON partner.partner_messaging_preferences;
DROP FUNCTION partner.update_messaging_prefs_timestamp();
DROP TRIGGER trigger_update_conversation_on_message ON partner.partner_messages;
DROP FUNCTION partner.update_conversation_on_message();
DROP TRIGGER trigger_update_partner_conversations_updated_at ON partner.partner_conversations;
DROP TRIGGER trigger_update_relationships_updated_at ON partner.relationships;
DROP FUNCTION partner.update_updated_at_column();
DROP TRIGGER trigger_sync_relationship_members ON partner.relationships;
DROP FUNCTION partner.sync_relationship_members();
