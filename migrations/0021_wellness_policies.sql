-- wellness: row level security policies, with the document's names and meaning.
-- Every policy is TO authenticated and calls (select auth.uid()) so it is evaluated once per
-- query. UPDATE policies also get a WITH CHECK, so a row cannot be handed to another user.
-- What the document grants no policy for stays closed to clients (service_role bypasses RLS):
-- users INSERT/DELETE (profiles are created by the backend/signup hook, deleted by the
-- ON DELETE CASCADE from auth.users), conversations DELETE, messages UPDATE/DELETE.
-- UP

-- users
CREATE POLICY "Users can read own data" ON wellness.users
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = id);

CREATE POLICY "Users can update own data" ON wellness.users
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = id)
    WITH CHECK ((select auth.uid()) = id);

-- wellness_entries
CREATE POLICY "Users can read own wellness" ON wellness.wellness_entries
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = user_id);

CREATE POLICY "Users can insert own wellness" ON wellness.wellness_entries
    FOR INSERT TO authenticated
    WITH CHECK ((select auth.uid()) = user_id);

CREATE POLICY "Users can update own wellness" ON wellness.wellness_entries
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);

CREATE POLICY "Users can delete own wellness" ON wellness.wellness_entries
    FOR DELETE TO authenticated
    USING ((select auth.uid()) = user_id);

-- module_progress
CREATE POLICY "Users can read own progress" ON wellness.module_progress
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = user_id);

CREATE POLICY "Users can insert own progress" ON wellness.module_progress
    FOR INSERT TO authenticated
    WITH CHECK ((select auth.uid()) = user_id);

CREATE POLICY "Users can update own progress" ON wellness.module_progress
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);

CREATE POLICY "Users can delete own progress" ON wellness.module_progress
    FOR DELETE TO authenticated
    USING ((select auth.uid()) = user_id);

-- conversations
CREATE POLICY "Users can read own conversations" ON wellness.conversations
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = user_id);

CREATE POLICY "Users can insert own conversations" ON wellness.conversations
    FOR INSERT TO authenticated
    WITH CHECK ((select auth.uid()) = user_id);

CREATE POLICY "Users can update own conversations" ON wellness.conversations
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);

-- messages (ownership through the parent conversation)
CREATE POLICY "Users can read own messages" ON wellness.messages
    FOR SELECT TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM wellness.conversations c
            WHERE c.id = messages.conversation_id
              AND c.user_id = (select auth.uid())
        )
    );

CREATE POLICY "Users can insert own messages" ON wellness.messages
    FOR INSERT TO authenticated
    WITH CHECK (
        EXISTS (
            SELECT 1 FROM wellness.conversations c
            WHERE c.id = messages.conversation_id
              AND c.user_id = (select auth.uid())
        )
    );

-- DOWN
DROP POLICY "Users can insert own messages" ON wellness.messages;
DROP POLICY "Users can read own messages" ON wellness.messages;
DROP POLICY "Users can update own conversations" ON wellness.conversations;
DROP POLICY "Users can insert own conversations" ON wellness.conversations;
DROP POLICY "Users can read own conversations" ON wellness.conversations;
DROP POLICY "Users can delete own progress" ON wellness.module_progress;
DROP POLICY "Users can update own progress" ON wellness.module_progress;
DROP POLICY "Users can insert own progress" ON wellness.module_progress;
DROP POLICY "Users can read own progress" ON wellness.module_progress;
DROP POLICY "Users can delete own wellness" ON wellness.wellness_entries;
DROP POLICY "Users can update own wellness" ON wellness.wellness_entries;
DROP POLICY "Users can insert own wellness" ON wellness.wellness_entries;
DROP POLICY "Users can read own wellness" ON wellness.wellness_entries;
DROP POLICY "Users can update own data" ON wellness.users;
DROP POLICY "Users can read own data" ON wellness.users;
