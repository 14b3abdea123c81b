-- coach: row level security policies (source: seeds/000, "RLS Policies").
-- Same names and meaning as the document, restricted TO authenticated and calling
-- (select auth.uid()) so it is evaluated once per query. job_queue has no policy on purpose:
-- only service_role (BYPASSRLS) and the owner reach it.
-- UP
CREATE POLICY "Users can view their own data" ON coach.users
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = id);
CREATE POLICY "Users can update their own data" ON coach.users
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = id)
    WITH CHECK ((select auth.uid()) = id);
CREATE POLICY "Users can view their own conversations" ON coach.conversations
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can insert their own messages" ON coach.conversations
    FOR INSERT TO authenticated
    WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can view their own analysis" ON coach.analysis_results
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can view their own crisis events" ON coach.crisis_events
    FOR SELECT TO authenticated
    USING ((select auth.uid()) = user_id);

-- DOWN
DROP POLICY "Users can view their own crisis events" ON coach.crisis_events;
DROP POLICY "Users can view their own analysis" ON coach.analysis_results;
DROP POLICY "Users can insert their own messages" ON coach.conversations;
DROP POLICY "Users can view their own conversations" ON coach.conversations;
DROP POLICY "Users can update their own data" ON coach.users;
DROP POLICY "Users can view their own data" ON coach.users;
