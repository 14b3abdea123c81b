-- counsel: what a client (authenticated, through PostgREST) may write, per column (issue 11).
-- The AI coach's and the system's messages, the message log's coaching metadata, the
-- AI-generated personality insights and profile, and server-timed columns are the
-- backend's. The coaching log is append-only. A client's new profile takes its email from
-- the access token the auth server issued from auth.users (a client-chosen email would let
-- anyone probe the case-insensitive UNIQUE constraint for registered addresses).
-- Rules per table: migrations/README.md, "Client writes".
-- UP

-- ============================================
-- users: the user creates and edits its own profile, minus email (from its token),
-- personality_profile (AI-derived) and onboarding_status (assigned by the coaching flow)
-- ============================================
CREATE FUNCTION counsel.set_user_email()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    -- The signed-in user's own profile takes the email of its access token, which the auth
    -- server issues from auth.users (clients cannot write the column, nor the token). Read
    -- from the token rather than auth.users itself: that table has RLS and no client or
    -- migration-role access on hosted Supabase.
    IF NEW.email IS NULL AND NEW.id = (SELECT auth.uid()) THEN
        NEW.email := (SELECT auth.jwt()) ->> 'email';
        IF NEW.email IS NULL THEN
            RAISE EXCEPTION 'counsel.users: the access token carries no email claim for the profile''s email'
                USING ERRCODE = 'not_null_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER set_users_email
    BEFORE INSERT ON counsel.users
    FOR EACH ROW EXECUTE FUNCTION counsel.set_user_email();
REVOKE INSERT, UPDATE ON counsel.users FROM authenticated;
GRANT INSERT (id, full_name, birth_date, birth_time, birth_place, birth_timezone, coaching_goals)
    ON counsel.users TO authenticated;
GRANT UPDATE (full_name, birth_date, birth_time, birth_place, birth_timezone, coaching_goals)
    ON counsel.users TO authenticated;

-- ============================================
-- coaching_conversations: the user opens, titles, rates and closes its sessions;
-- started_at, ended_at and duration_seconds are the server's
-- ============================================
REVOKE INSERT, UPDATE ON counsel.coaching_conversations FROM authenticated;
GRANT INSERT (id, user_id, session_type, title, metadata)
    ON counsel.coaching_conversations TO authenticated;
GRANT UPDATE (status, title, satisfaction_rating, metadata)
    ON counsel.coaching_conversations TO authenticated;

-- ============================================
-- coaching_messages: append-only; the user writes its own side, without coaching metadata
-- ============================================
DROP POLICY coaching_messages_delete_own ON counsel.coaching_messages;
ALTER POLICY coaching_messages_insert_own ON counsel.coaching_messages
    WITH CHECK ((select auth.uid()) = user_id AND sender = 'user');
REVOKE INSERT, UPDATE, DELETE ON counsel.coaching_messages FROM authenticated;
GRANT INSERT (id, conversation_id, user_id, sender, content)
    ON counsel.coaching_messages TO authenticated;

-- ============================================
-- progress_tracking: the user's goals and milestones; personality_metrics (analysed) and
-- achieved_at (server-timed) are the backend's
-- ============================================
REVOKE INSERT, UPDATE ON counsel.progress_tracking FROM authenticated;
GRANT INSERT (id, user_id, tracking_type, title, status, progress_percent, progress_data,
              achievements, challenges, target_date)
    ON counsel.progress_tracking TO authenticated;
GRANT UPDATE (tracking_type, title, status, progress_percent, progress_data, achievements,
              challenges, target_date)
    ON counsel.progress_tracking TO authenticated;

-- ============================================
-- personality_insights: AI-generated; the user reads its own and rates their accuracy
-- ============================================
DROP POLICY personality_insights_insert_own ON counsel.personality_insights;
DROP POLICY personality_insights_delete_own ON counsel.personality_insights;
REVOKE INSERT, UPDATE, DELETE ON counsel.personality_insights FROM authenticated;
GRANT UPDATE (accuracy_rating) ON counsel.personality_insights TO authenticated;

-- DOWN
REVOKE UPDATE (accuracy_rating) ON counsel.personality_insights FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON counsel.personality_insights TO authenticated;
CREATE POLICY personality_insights_delete_own ON counsel.personality_insights
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY personality_insights_insert_own ON counsel.personality_insights
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);

REVOKE UPDATE (tracking_type, title, status, progress_percent, progress_data, achievements,
               challenges, target_date)
    ON counsel.progress_tracking FROM authenticated;
REVOKE INSERT (id, user_id, tracking_type, title, status, progress_percent, progress_data,
               achievements, challenges, target_date)
    ON counsel.progress_tracking FROM authenticated;
GRANT INSERT, UPDATE ON counsel.progress_tracking TO authenticated;

REVOKE INSERT (id, conversation_id, user_id, sender, content)
    ON counsel.coaching_messages FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON counsel.coaching_messages TO authenticated;
ALTER POLICY coaching_messages_insert_own ON counsel.coaching_messages
    WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY coaching_messages_delete_own ON counsel.coaching_messages
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

REVOKE UPDATE (status, title, satisfaction_rating, metadata)
    ON counsel.coaching_conversations FROM authenticated;
REVOKE INSERT (id, user_id, session_type, title, metadata)
    ON counsel.coaching_conversations FROM authenticated;
GRANT INSERT, UPDATE ON counsel.coaching_conversations TO authenticated;

REVOKE UPDATE (full_name, birth_date, birth_time, birth_place, birth_timezone, coaching_goals)
    ON counsel.users FROM authenticated;
REVOKE INSERT (id, full_name, birth_date, birth_time, birth_place, birth_timezone, coaching_goals)
    ON counsel.users FROM authenticated;
GRANT INSERT, UPDATE ON counsel.users TO authenticated;
DROP TRIGGER set_users_email ON counsel.users;
DROP FUNCTION counsel.set_user_email();
