-- wellness: what a client (authenticated, through PostgREST) may write, per column (issue 11).
-- Table-level grants become column-level ones: the profile email comes from auth.users (a
-- client-written email would let anyone probe the UNIQUE constraint for registered
-- addresses), the assistant's replies and their token counts are the backend's, counters
-- and timestamps are the server's. Rules per table: migrations/README.md, "Client writes".
-- UP

-- users: the profile fields the user edits; no client INSERT/DELETE (no policy either).
REVOKE INSERT, UPDATE, DELETE ON wellness.users FROM authenticated;
GRANT UPDATE (full_name, avatar_url, timezone) ON wellness.users TO authenticated;

-- wellness_entries: the user's own daily data; user_id is set once, on insert.
REVOKE INSERT, UPDATE ON wellness.wellness_entries FROM authenticated;
GRANT INSERT (id, user_id, date, sleep_hours, water_intake_ml, exercise_minutes,
              meditation_minutes, mood_score, energy_level, nutrition_notes)
    ON wellness.wellness_entries TO authenticated;
GRANT UPDATE (date, sleep_hours, water_intake_ml, exercise_minutes, meditation_minutes,
              mood_score, energy_level, nutrition_notes)
    ON wellness.wellness_entries TO authenticated;

-- module_progress: the user's own progress per module; user_id is set once, on insert.
REVOKE INSERT, UPDATE ON wellness.module_progress FROM authenticated;
GRANT INSERT (id, user_id, module_name, progress_percentage, completed_topics, current_focus,
              notes, last_activity)
    ON wellness.module_progress TO authenticated;
GRANT UPDATE (progress_percentage, completed_topics, current_focus, notes, last_activity)
    ON wellness.module_progress TO authenticated;

-- conversations: a user opens and renames its own conversations; message_count is the
-- backend's counter. No client DELETE (no policy either).
REVOKE INSERT, UPDATE, DELETE ON wellness.conversations FROM authenticated;
GRANT INSERT (id, user_id, module_name, topic) ON wellness.conversations TO authenticated;
GRANT UPDATE (topic) ON wellness.conversations TO authenticated;

-- messages: a user inserts its own side of the chat; assistant messages and tokens_used are
-- the backend's. Messages are immutable for clients.
REVOKE INSERT, UPDATE, DELETE ON wellness.messages FROM authenticated;
GRANT INSERT (id, conversation_id, role, content) ON wellness.messages TO authenticated;
ALTER POLICY "Users can insert own messages" ON wellness.messages
    WITH CHECK (
        role = 'user'
        AND EXISTS (
            SELECT 1 FROM wellness.conversations c
            WHERE c.id = messages.conversation_id
              AND c.user_id = (select auth.uid())
        )
    );

-- DOWN
ALTER POLICY "Users can insert own messages" ON wellness.messages
    WITH CHECK (
        EXISTS (
            SELECT 1 FROM wellness.conversations c
            WHERE c.id = messages.conversation_id
              AND c.user_id = (select auth.uid())
        )
    );
REVOKE INSERT (id, conversation_id, role, content) ON wellness.messages FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON wellness.messages TO authenticated;
REVOKE UPDATE (topic) ON wellness.conversations FROM authenticated;
REVOKE INSERT (id, user_id, module_name, topic) ON wellness.conversations FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON wellness.conversations TO authenticated;
REVOKE UPDATE (progress_percentage, completed_topics, current_focus, notes, last_activity)
    ON wellness.module_progress FROM authenticated;
REVOKE INSERT (id, user_id, module_name, progress_percentage, completed_topics, current_focus,
               notes, last_activity)
    ON wellness.module_progress FROM authenticated;
GRANT INSERT, UPDATE ON wellness.module_progress TO authenticated;
REVOKE UPDATE (date, sleep_hours, water_intake_ml, exercise_minutes, meditation_minutes,
               mood_score, energy_level, nutrition_notes)
    ON wellness.wellness_entries FROM authenticated;
REVOKE INSERT (id, user_id, date, sleep_hours, water_intake_ml, exercise_minutes,
               meditation_minutes, mood_score, energy_level, nutrition_notes)
    ON wellness.wellness_entries FROM authenticated;
GRANT INSERT, UPDATE ON wellness.wellness_entries TO authenticated;
REVOKE UPDATE (full_name, avatar_url, timezone) ON wellness.users FROM authenticated;
GRANT INSERT, UPDATE, DELETE ON wellness.users TO authenticated;
