-- coach: what a client (authenticated, through PostgREST) may write, per column (issue 11).
-- The document gives clients a profile update and the insert of their own messages; the
-- stage, graduation, activity clock, assistant replies and the analysis bookkeeping are the
-- backend's (its analysis job and crisis review depend on them). Table-level grants become
-- column-level ones, and the message policy admits only the user's own side of the chat.
-- Rules per table: migrations/README.md, "Client writes".
-- UP

-- users: the profile fields the user edits. stage, graduation_date, last_active (assigned or
-- server-timed) and email (from auth.users) are the backend's; profiles are created by it.
REVOKE INSERT, UPDATE, DELETE ON coach.users FROM authenticated;
GRANT UPDATE (goals, profile, preferences) ON coach.users TO authenticated;

-- conversations: a user inserts its own user-side messages only. analysis_included is the
-- analysis job's bookkeeping, created_at the server's clock; messages are immutable.
REVOKE INSERT, UPDATE, DELETE ON coach.conversations FROM authenticated;
GRANT INSERT (id, user_id, message_text, sender_type, message_metadata)
    ON coach.conversations TO authenticated;
ALTER POLICY "Users can insert their own messages" ON coach.conversations
    WITH CHECK ((select auth.uid()) = user_id AND sender_type = 'user');

-- analysis_results, crisis_events: written by the analysis job and the crisis review only.
REVOKE INSERT, UPDATE, DELETE ON coach.analysis_results, coach.crisis_events FROM authenticated;

-- DOWN
GRANT INSERT, UPDATE, DELETE ON coach.analysis_results, coach.crisis_events TO authenticated;
ALTER POLICY "Users can insert their own messages" ON coach.conversations
    WITH CHECK ((select auth.uid()) = user_id);
REVOKE INSERT (id, user_id, message_text, sender_type, message_metadata)
    ON coach.conversations FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON coach.conversations TO authenticated;
REVOKE UPDATE (goals, profile, preferences) ON coach.users FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON coach.users TO authenticated;
